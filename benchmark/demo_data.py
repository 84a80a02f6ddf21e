"""The synthetic `demo` data: real WAV files of synthetic sounds with templated captions.

Everything here is a pure function of a seed, so every machine generates the same ground
truth (the task registry pins its sha256) in a second or two, with no download. Each clip
is one sound source (beep, siren, noise burst, ...) at a low or high pitch, heard one to
three times; its five captions describe the same facts in different words. Source is what
an AudioSet tagger can hear zero-shot; pitch and count are what a trained model must learn.
"""

from __future__ import annotations

import csv
import io
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.atomic import atomic_write_bytes, atomic_write_text

SAMPLE_RATE = 16_000
CLIP_SECONDS = 3.0
CAPTIONS_FILE = "captions.csv"

# split name -> number of clips
SPLITS: dict[str, int] = {"train": 240, "test": 60}
_SEEDS = {"train": 20221, "test": 20222}

_COUNT_WORDS = {1: ("once", "a single"), 2: ("twice", "two"), 3: ("three times", "three")}


@dataclass(frozen=True)
class Source:
    """A kind of synthetic sound: how to render one event, and the nouns that name it."""

    noun: str
    synonyms: tuple[str, ...]
    render: Callable[[np.random.Generator, float, int], np.ndarray]


def _t(n: int) -> np.ndarray:
    return np.arange(n) / SAMPLE_RATE


def _beep(rng: np.random.Generator, pitch: float, n: int) -> np.ndarray:
    return np.sin(2 * np.pi * pitch * _t(n))


def _siren(rng: np.random.Generator, pitch: float, n: int) -> np.ndarray:
    t = _t(n)
    rate = rng.uniform(1.5, 3.0)
    freq = pitch * (1 + 0.35 * np.sin(2 * np.pi * rate * t))
    return np.sin(2 * np.pi * np.cumsum(freq) / SAMPLE_RATE)


def _noise(rng: np.random.Generator, pitch: float, n: int) -> np.ndarray:
    # A moving average whose length follows the pitch: low = rumble, high = hiss.
    width = max(1, int(4000 / pitch))
    out = np.convolve(rng.standard_normal(n), np.ones(width) / width, mode="same")
    return out / (np.abs(out).max() + 1e-9)


def _buzz(rng: np.random.Generator, pitch: float, n: int) -> np.ndarray:
    return np.sign(np.sin(2 * np.pi * (pitch / 4) * _t(n))) * 0.6


def _chirp(rng: np.random.Generator, pitch: float, n: int) -> np.ndarray:
    t = _t(n)
    sweep = pitch * (1 + 2 * t / t[-1])
    return np.sin(2 * np.pi * np.cumsum(sweep) / SAMPLE_RATE)


def _clicks(rng: np.random.Generator, pitch: float, n: int) -> np.ndarray:
    out = np.zeros(n)
    step = max(int(SAMPLE_RATE / rng.uniform(8, 14)), 1)
    decay = np.exp(-np.arange(200) / (20 if pitch > 1000 else 60))
    for start in range(0, n - 200, step):
        out[start:start + 200] += decay * np.sin(2 * np.pi * pitch * np.arange(200) / SAMPLE_RATE)
    return out


SOURCES: tuple[Source, ...] = (
    Source("beep", ("tone", "bleep"), _beep),
    Source("siren", ("wailing alarm", "warning siren"), _siren),
    Source("burst of noise", ("hiss of static", "rush of noise"), _noise),
    Source("buzz", ("buzzing sound", "harsh buzzer"), _buzz),
    Source("rising chirp", ("upward sweep", "rising whistle"), _chirp),
    Source("series of clicks", ("rapid ticking", "clicking rattle"), _clicks),
)
_PITCHES = {"low": (180.0, 320.0), "high": (1200.0, 2400.0)}
_PITCH_WORDS = {"low": ("low", "deep", "low-pitched"), "high": ("high", "shrill", "high-pitched")}


def _captions(source: Source, pitch: str, count: int, rng: np.random.Generator) -> list[str]:
    adv, num = _COUNT_WORDS[count]
    p1, p2, p3 = _PITCH_WORDS[pitch]
    s1, s2 = source.synonyms
    plural = "" if count == 1 else "s"
    templates = [
        f"A {p1} {source.noun} sounds {adv}.",
        f"A {p2} {s1} is heard {adv}.",
        f"Someone plays a {p3} {s2} {adv} in a quiet room.",
        f"There is a {p1} pitched {source.noun}, heard {adv}.",
        f"{num.capitalize()} {p3} {source.noun} event{plural} with silence in between.",
    ]
    order = rng.permutation(len(templates))
    return [templates[i] for i in order]


def _render_clip(source: Source, pitch: float, count: int, rng: np.random.Generator) -> np.ndarray:
    total = int(CLIP_SECONDS * SAMPLE_RATE)
    clip = 0.01 * rng.standard_normal(total)
    event = int(rng.uniform(0.45, 0.6) * SAMPLE_RATE)
    gap = (total - count * event) // (count + 1)
    fade = np.minimum(1.0, np.minimum(np.arange(event), np.arange(event)[::-1]) / 400)
    for k in range(count):
        start = gap * (k + 1) + event * k
        clip[start:start + event] += 0.5 * fade * source.render(rng, pitch, event)
    return np.clip(clip, -1.0, 1.0)


def _wav_bytes(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(SAMPLE_RATE)
        handle.writeframes((samples * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def demo_rows(split: str) -> list[tuple[str, list[str], Source, float, int]]:
    """The clips of a split: (file name, captions, source, pitch in Hz, count). Pure function."""
    rng = np.random.default_rng(_SEEDS[split])
    rows = []
    for i in range(SPLITS[split]):
        source = SOURCES[int(rng.integers(len(SOURCES)))]
        pitch_name = ("low", "high")[int(rng.integers(2))]
        count = int(rng.integers(1, 4))
        pitch = float(rng.uniform(*_PITCHES[pitch_name]))
        captions = _captions(source, pitch_name, count, rng)
        name = f"{split}_{i:04d}.wav"
        rows.append((name, captions, source, pitch, count))
    return rows


def generate(split: str, folder: Path) -> Path:
    """Write the split's WAV files and its Clotho-layout `captions.csv` into `folder`.

    Idempotent: a folder whose captions file exists is complete (it is written last).
    """
    folder.mkdir(parents=True, exist_ok=True)
    captions_path = folder / CAPTIONS_FILE
    if captions_path.exists():
        return captions_path
    rng = np.random.default_rng(_SEEDS[split] + 1)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["file_name"] + [f"caption_{k}" for k in range(1, 6)])
    for name, captions, source, pitch, count in demo_rows(split):
        atomic_write_bytes(folder / name, _wav_bytes(_render_clip(source, pitch, count, rng)))
        writer.writerow([name, *captions])
    atomic_write_text(captions_path, buffer.getvalue())
    return captions_path
