"""Near-duplicate audio: the Haitsma-Kalker fingerprint and an index that finds copies.

Haitsma & Kalker, "A Highly Robust Audio Fingerprinting System" (ISMIR 2002): the audio, mono
at 5,512.5 Hz (44.1 kHz / 8, so every usual rate keeps the band), is cut into 0.37 s Hann frames
every 11.6 ms; each frame's energy in 33 bands spaced logarithmically from 300 Hz to 2 kHz gives
32 bits, bit m = 1 when the energy difference of bands m and m+1 grew since the previous frame.
Signs of energy differences ignore gain; the 97 % frame overlap absorbs a trim that is not a
whole hop; coarse bands survive resampling and lossy re-encoding.

Two clips are near-copies when, at their best alignment, the bit error rate (BER) over their
overlap (at least `MIN_OVERLAP_FRAMES`) is below `THRESHOLD`. The paper's threshold is 0.35;
`scripts/bench_fingerprint.py` measures it on generated near-copies (re-encoded, resampled,
gain-changed, trimmed) and on distinct clips, and `THRESHOLD` is set from that measurement.
Candidates come from the paper's lookup: a frame word (or one of its one-bit neighbours) that
appears in both clips votes for an alignment; the best-voted alignments are verified by their BER.

Written here rather than taken from Chromaprint (`fpcalc`): Chromaprint's chroma features are
made for music and it needs a binary the project cannot pin; this one is numpy and soxr only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

RATE = 5512.5
FRAME = 2048
HOP = 64
BANDS = np.geomspace(300.0, 2000.0, 34)
THRESHOLD = 0.35
MIN_OVERLAP_FRAMES = 64      # 0.74 s
_SILENT = 1e-10              # frames below this mean energy carry no bits (silence)
_COMMON_WORD = 200           # a word this frequent in the index is a stop word (noise floor patterns)
_CANDIDATES = 5              # alignments verified per candidate clip
_CANDIDATE_CLIPS = 20        # clips verified per query (those with the most votes at one alignment)


@dataclass(frozen=True)
class Fingerprint:
    """One clip's 32-bit frame words (uint32) and which frames carry sound."""

    words: np.ndarray
    voiced: np.ndarray  # bool per frame

    def __len__(self) -> int:
        return len(self.words)


def fingerprint(samples: np.ndarray, rate: int) -> Fingerprint:
    """The fingerprint of (frames,) or (frames, channels) float samples at `rate`."""
    import soxr

    mono = samples.mean(axis=1) if samples.ndim == 2 else samples
    audio = soxr.resample(mono.astype(np.float32), rate, RATE, quality="HQ") if rate != RATE else mono
    if len(audio) < FRAME + HOP:
        return Fingerprint(np.zeros(0, np.uint32), np.zeros(0, bool))
    frames = np.lib.stride_tricks.sliding_window_view(audio, FRAME)[::HOP] * np.hanning(FRAME).astype(np.float32)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    freqs = np.fft.rfftfreq(FRAME, 1 / RATE)
    edges = np.searchsorted(freqs, BANDS)
    energy = np.add.reduceat(power, edges, axis=1)[:, :33]  # the 34th segment runs on to Nyquist
    diff = energy[:, :-1] - energy[:, 1:]
    bits = (diff[1:] - diff[:-1]) > 0
    words = (bits.astype(np.uint64) << np.arange(32, dtype=np.uint64)).sum(axis=1).astype(np.uint32)
    voiced = power[1:].mean(axis=1) > _SILENT
    return Fingerprint(words, voiced)


def _popcount(x: np.ndarray) -> np.ndarray:
    return np.unpackbits(x.view(np.uint8)).reshape(len(x), 32).sum(axis=1)


def bit_error_rate(a: Fingerprint, b: Fingerprint, offset: int) -> float:
    """BER of a against b shifted by `offset` frames (a[i] vs b[i + offset]), over voiced overlap;
    1.0 when the overlap is shorter than `MIN_OVERLAP_FRAMES`."""
    start, stop = max(0, -offset), min(len(a), len(b) - offset)
    if stop - start < MIN_OVERLAP_FRAMES:
        return 1.0
    keep = a.voiced[start:stop] & b.voiced[start + offset:stop + offset]
    if keep.sum() < MIN_OVERLAP_FRAMES:
        return 1.0
    errors = _popcount(a.words[start:stop][keep] ^ b.words[start + offset:stop + offset][keep])
    return float(errors.sum()) / (32 * int(keep.sum()))


def best_alignment(a: Fingerprint, b: Fingerprint, offsets: Iterable[int]) -> tuple[float, int]:
    """(lowest BER, its offset) among `offsets`, each tried with its two neighbours."""
    best = (1.0, 0)
    for offset in offsets:
        for shift in (offset - 1, offset, offset + 1):
            best = min(best, (bit_error_rate(a, b, shift), shift))
    return best


class Index:
    """Fingerprints of one side of an audit, searchable by frame word (sorted numpy arrays).

    It holds 12 bytes per voiced frame (word, clip, frame): about 3.7 MB per hour of audio, so the
    audit indexes the smaller side and streams the other through it."""

    def __init__(self, prints: Sequence[Fingerprint]) -> None:
        self.prints = prints
        words = np.concatenate([fp.words[fp.voiced] for fp in prints] or [np.zeros(0, np.uint32)])
        clip = np.concatenate([np.full(int(fp.voiced.sum()), i, np.int32) for i, fp in enumerate(prints)]
                              or [np.zeros(0, np.int32)])
        frame = np.concatenate([np.flatnonzero(fp.voiced).astype(np.int32) for fp in prints]
                               or [np.zeros(0, np.int32)])
        order = np.argsort(words, kind="stable")
        words, clip, frame = words[order], clip[order], frame[order]
        # stop words (noise-floor patterns) appear far more often than a word of 32 random bits could
        unique, counts = np.unique(words, return_counts=True)
        common = np.isin(words, unique[counts > max(_COMMON_WORD, len(words) >> 16)])
        self.words, self.clip, self.frame = words[~common], clip[~common], frame[~common]

    def _votes(self, query: Fingerprint) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(clip, offset, votes) for every alignment that a query word or one of its one-bit
        neighbours (the paper's toggling of unreliable bits) finds in the index."""
        frames = np.flatnonzero(query.voiced)
        flips = np.concatenate([[0], np.left_shift(np.uint32(1), np.arange(32, dtype=np.uint32))]).astype(np.uint32)
        wanted = (query.words[frames][None, :] ^ flips[:, None]).ravel()
        at = np.tile(frames, len(flips))
        lo, hi = np.searchsorted(self.words, wanted, "left"), np.searchsorted(self.words, wanted, "right")
        counts = hi - lo
        if not counts.sum():
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        starts = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        clip = self.clip[starts].astype(np.int64)
        offset = self.frame[starts].astype(np.int64) - np.repeat(at, counts)
        pairs, votes = np.unique(np.stack([clip, offset]), axis=1, return_counts=True)
        return pairs[0], pairs[1], votes

    def matches(self, query: Fingerprint, threshold: float = THRESHOLD) -> list[tuple[int, float, int]]:
        """(clip, BER, offset) of every indexed clip that `query` nearly copies, best first.

        Only the `_CANDIDATE_CLIPS` clips with the most votes at one alignment are verified (a copy
        gathers hundreds of votes at its offset, an unrelated clip a few chance ones), each at its
        `_CANDIDATES` best-voted offsets, so a query costs the same whatever the index's size."""
        clip, offset, votes = self._votes(query)
        order = np.lexsort((offset, -votes))  # most votes first
        clip, offset = clip[order], offset[order]
        clips, first = np.unique(clip, return_index=True)
        found = []
        for c in clips[np.argsort(first)][:_CANDIDATE_CLIPS]:
            ber, best = best_alignment(query, self.prints[int(c)], (int(o) for o in offset[clip == c][:_CANDIDATES]))
            if ber < threshold:
                found.append((int(c), ber, best))
        return sorted(found, key=lambda m: (m[1], m[0]))


def near_copies(samples: np.ndarray, rate: int) -> dict[str, tuple[np.ndarray, int]]:
    """The distortions `THRESHOLD` is measured on: each a (samples, rate) near-copy of mono `samples`.

    Re-encoded as Ogg Vorbis and as MP3 (libsndfile's encoders, default quality), resampled to
    16 kHz, gain -6 dB and +3 dB (clipped), trimmed 1.013 s at the start (not a whole hop) and
    by a fifth at the end."""
    import io

    import soundfile as sf
    import soxr

    def reencoded(fmt: str, subtype: str) -> tuple[np.ndarray, int]:
        buffer = io.BytesIO()
        sf.write(buffer, samples, rate, format=fmt, subtype=subtype)
        buffer.seek(0)
        decoded, decoded_rate = sf.read(buffer, dtype="float32")
        return decoded, decoded_rate

    trim = int(1.013 * rate)
    return {
        "ogg-vorbis": reencoded("OGG", "VORBIS"),
        "mp3": reencoded("MP3", "MPEG_LAYER_III"),
        "resampled-16k": (soxr.resample(samples, rate, 16000).astype(np.float32), 16000),
        "gain-6dB": (samples * 10 ** (-6 / 20), rate),
        "gain+3dB": (np.clip(samples * 10 ** (3 / 20), -1, 1), rate),
        "trimmed-start": (samples[trim:], rate),
        "trimmed-end": (samples[: len(samples) * 4 // 5], rate),
    }
