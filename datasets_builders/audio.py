"""Audio for the built datasets: read with soundfile, resample with soxr, store as bytes.

`datasets` >= 4.1 needs torchcodec to *encode* an `Audio` column, so the builders write the
column in its storage form, a `{"bytes", "path"}` struct, and the finished dataset casts it
to `Audio(decode=False)`: it loads anywhere, `decode()` below reads it with soundfile, and a
user with torchcodec can `cast_column("audio", Audio())`.

At the original rate a WAV or FLAC file is stored byte for byte. A target rate resamples
with soxr's very-high-quality filter and stores FLAC (16-bit, or 24-bit when the source has
more than 16 bits).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmark.errors import LarbError

SAMPLE_RATES = (16_000, 22_050, 32_000, 44_100, 48_000)
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff")
_KEEP_FORMATS = ("WAV", "FLAC")
_WIDE_SUBTYPES = ("PCM_24", "PCM_32", "FLOAT", "DOUBLE")


@dataclass(frozen=True)
class Encoded:
    """One clip ready for the `audio` column, with the facts the common schema keeps."""

    data: bytes
    name: str
    sampling_rate: int
    duration: float
    channels: int

    def column(self) -> dict[str, object]:
        return {"bytes": self.data, "path": self.name}


class AudioReadError(Exception):
    """The file is not decodable audio (corrupt, empty, an HTML error page...)."""


def check_sample_rate(rate: int | None) -> int | None:
    if rate is not None and rate not in SAMPLE_RATES:
        raise LarbError(f"unsupported sample rate {rate}.",
                        fix=f"choose one of {', '.join(map(str, SAMPLE_RATES))}, or leave it out for the "
                            "original rate.")
    return rate


def encode(path: Path, target_rate: int | None = None) -> Encoded:
    """Read `path` and return its bytes at `target_rate` (None: original rate, original bytes)."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioReadError(f"{path.name}: {exc}") from None
    rate = info.samplerate
    if info.frames <= 0:
        raise AudioReadError(f"{path.name}: no audio frames")
    if (target_rate is None or target_rate == rate) and info.format in _KEEP_FORMATS:
        return Encoded(path.read_bytes(), path.name, rate, info.frames / rate, info.channels)
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioReadError(f"{path.name}: {exc}") from None
    out_rate = target_rate or rate
    if out_rate != rate:
        samples = resample(samples, rate, out_rate)
    subtype = "PCM_24" if info.subtype in _WIDE_SUBTYPES else "PCM_16"
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(samples, -1.0, 1.0), out_rate, format="FLAC", subtype=subtype)
    return Encoded(buffer.getvalue(), Path(path.name).stem + ".flac", out_rate, len(samples) / out_rate,
                   samples.shape[1])


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """High-quality (soxr VHQ) resampling of a (frames, channels) float array."""
    import soxr

    return soxr.resample(samples, rate, target, quality="VHQ").astype(np.float32, copy=False)


def content_hash(data: bytes) -> str:
    """sha256 of the decoded audio (rate, channels, float32 samples), not of the file: the same
    samples in WAV and FLAC, or with other headers and tags, hash alike (`larb audit` compares these)."""
    samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    digest = hashlib.sha256(f"{rate}:{samples.shape[1]}:".encode())
    digest.update(np.ascontiguousarray(samples, dtype="<f4").tobytes())
    return digest.hexdigest()


def decode(value: dict[str, object], *, mono: bool = False) -> tuple[np.ndarray, int]:
    """(samples, rate) of an `audio` cell as the builders store it, with soundfile (no torchcodec)."""
    data = value.get("bytes")
    source = io.BytesIO(data) if data else str(value["path"])
    samples, rate = sf.read(source, dtype="float32", always_2d=True)
    return (samples.mean(axis=1) if mono else samples), rate
