"""Download 10-second AudioCaps segments from YouTube with yt-dlp (and ffmpeg when present).

With ffmpeg, yt-dlp fetches only the segment and converts it to WAV. Without it, the whole
audio stream is fetched and cut here with soundfile, which works only for formats libsndfile
reads; anything else is recorded as failed with "install ffmpeg" as the reason. A clip is
written as `<youtube_id>_<start>.wav` (the harness's name), via a temporary file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import soundfile as sf

from benchmark.errors import LarbError
from datasets_builders import urls
from datasets_builders.fetchjobs import Job, Unavailable

WATCH_URL = "https://www.youtube.com/watch?v={}"
SEGMENT_SECONDS = 10
USER_AGENT = "larb-datasets/0.1 (research dataset builder; +https://github.com/larb-benchmark/larb)"
# messages of yt-dlp that mean the video will not come back
_GONE = ("video unavailable", "private video", "has been removed", "is not available", "account associated",
         "copyright", "http error 404", "http error 410", "this video has been", "no longer available",
         "members-only", "does not exist")


class _Quiet:
    """yt-dlp logger that keeps its messages out of the progress output."""

    def debug(self, msg: str) -> None:
        pass

    info = warning = debug

    def error(self, msg: str) -> None:
        pass


def has_ffmpeg() -> bool:
    return shutil.which("ffmpeg") is not None


def segment_fetcher(cookies: str = "") -> Callable[[Job], None]:
    """A `fetchjobs` fetch function: job.source is 'youtube_id start_time'."""

    def fetch(job: Job) -> None:
        youtube_id, start = job.source.split(" ")
        download_segment(youtube_id, int(start), job.target, cookies=cookies)

    return fetch


def download_segment(youtube_id: str, start: int, target: Path, *, cookies: str = "") -> Path:
    """Write the [start, start+10 s] audio of a video to `target` (WAV), or raise `Unavailable`."""
    import yt_dlp

    ffmpeg = has_ffmpeg()
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".yt-") as tmp:
        options: dict[str, object] = {
            "format": "bestaudio/best", "outtmpl": os.path.join(tmp, "clip.%(ext)s"), "quiet": True,
            "no_warnings": True, "noprogress": True, "logger": _Quiet(), "retries": 3, "socket_timeout": 30,
            "http_headers": {"User-Agent": USER_AGENT}, "noplaylist": True,
        }
        if cookies:
            options["cookiefile"] = cookies
        if ffmpeg:
            options["download_ranges"] = yt_dlp.utils.download_range_func(None, [(start, start + SEGMENT_SECONDS)])
            options["force_keyframes_at_cuts"] = True
            options["postprocessors"] = [{"key": "FFmpegExtractAudio", "preferredcodec": "wav"}]
        try:
            with yt_dlp.YoutubeDL(options) as downloader:
                downloader.extract_info(urls.resolve(WATCH_URL.format(youtube_id)), download=True)
        except yt_dlp.utils.DownloadError as exc:
            message = str(exc)
            if "confirm you" in message.lower() and "not a bot" in message.lower():
                raise LarbError("YouTube asks to confirm that this is not a bot; further downloads would fail.",
                                fix="export your browser's YouTube cookies to a cookies.txt file and pass "
                                    "--option cookies=PATH (the clips done so far are kept).") from None
            if any(marker in message.lower() for marker in _GONE):
                raise Unavailable(message.replace("ERROR: ", "", 1)) from None
            raise
        files = [p for p in Path(tmp).iterdir() if p.is_file() and p.name.startswith("clip.")]
        if not files:
            raise RuntimeError("yt-dlp wrote no file")
        written = Path(tmp) / "segment.wav"
        if ffmpeg:
            os.replace(files[0], written)
        else:
            _cut(files[0], start, written)
        os.replace(written, target)
    return target


def _cut(source: Path, start: int, target: Path) -> None:
    """The 10-second segment of a file libsndfile can read, as 16-bit WAV."""
    try:
        info = sf.info(str(source))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise RuntimeError(f"cannot cut this format without ffmpeg ({exc}); install ffmpeg") from None
    first = int(start * info.samplerate)
    if first >= info.frames:
        raise Unavailable(f"the video is shorter than the segment start ({start} s)")
    samples, rate = sf.read(str(source), start=first, stop=min(info.frames, first + SEGMENT_SECONDS * info.samplerate),
                            dtype="float32", always_2d=True)
    sf.write(str(target), samples, rate, subtype="PCM_16", format="WAV")
