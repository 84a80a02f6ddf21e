"""Reading audio files as the pretrained taggers expect them: mono float32 at their rate.

Mono is the mean of the channels and resampling uses soxr's high-quality mode, which is what
`librosa.load(sr=...)` (EfficientAT's inference script) does, so features match the
publishers' own front ends without depending on librosa or torchaudio.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from benchmark.errors import LarbError


def load_mono(path: str | Path, sample_rate: int) -> np.ndarray:
    """The file's samples as a 1-D float32 array at `sample_rate`."""
    try:
        samples, source_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise LarbError(f"cannot read this audio file ({exc}).", path=path,
                        fix="convert it to WAV or FLAC, or remove it from the task.") from None
    if samples.shape[0] == 0:
        raise LarbError("the audio file holds no samples.", path=path, fix="remove it from the task.")
    mono = samples.mean(axis=1)
    if source_rate != sample_rate:
        mono = soxr.resample(mono, source_rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)
