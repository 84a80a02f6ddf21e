"""Scrapers that rebuild or refresh the WavText5K table from SoundBible and BigSoundBank.

The WavText5K authors did not publish their crawler. These read the sites' listing and
sound pages politely (robots.txt, a delay per host, retries with backoff, a clear
User-Agent), resume from a state folder, and report what changed against the published CSV.
"""
