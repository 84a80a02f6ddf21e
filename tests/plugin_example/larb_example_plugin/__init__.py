"""A plug-in baseline for LARB: coarse log spectra and hashed words, two linear maps, NT-Xent."""

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.functional import normalize

from baselines.audio.io import load_mono
from baselines.losses import ntxent, same_audio_mask
from baselines.models.end_to_end import EndToEndSettings
from baselines.spec import BaselineSpec, ParameterCounts, SyntheticSystem, TrainingHooks
from baselines.task_features import TaskFeatures


@dataclass(frozen=True)
class Settings(EndToEndSettings):
    dim: int = 32
    epochs: int = 20
    batch_size: int = 64
    lr: float = 3e-3
    num_workers: int = 0


def spectrum(path) -> np.ndarray:
    return np.log1p(np.abs(np.fft.rfft(load_mono(path, 16_000), n=256))[:128])


def words(text: str) -> np.ndarray:
    out = np.zeros(128)
    for word in text.lower().replace(".", " ").replace(",", " ").split():
        out[int(hashlib.md5(word.encode()).hexdigest(), 16) % 128] += 1.0
    return out


class Head(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.audio, self.text = nn.Linear(128, dim), nn.Linear(128, dim)

    def embed_audio(self, audio):
        return normalize(self.audio(audio), dim=-1)

    def embed_text(self, text):
        return normalize(self.text(text), dim=-1)

    def forward(self, audio, text):
        return self.embed_audio(audio), self.embed_text(text)


class System(TrainingHooks):
    needs_training = True

    def __init__(self, config) -> None:
        self.config = config
        torch.manual_seed(config["seed"])
        self.head = Head(config["dim"])

    def task_features(self, task) -> TaskFeatures:
        gt = task.ground_truth
        audio = np.stack([spectrum(task.audio_path(name)) for name in gt.corpus])
        text = np.stack([words(caption) for caption in gt.query_texts])
        return TaskFeatures(gt, torch.tensor(audio, dtype=torch.float32), torch.tensor(text, dtype=torch.float32))

    def loss(self, audio, text, audio_ids, generator=None):
        return ntxent(audio @ text.T, same_audio=same_audio_mask(audio_ids.tolist()))


def synthetic(config) -> SyntheticSystem:
    g = torch.Generator().manual_seed(0)
    return SyntheticSystem(System(config), torch.randn(16, 128, generator=g), torch.randn(16, 128, generator=g),
                           torch.arange(16) // 2, config["dim"])


SPEC = BaselineSpec(
    name="spectrum-words", paper="LARB plug-in example", links={"code": "https://example.org/spectrum-words"},
    audio_encoder="log spectrum, 128 bins", text_encoder="hashed words, 128 buckets", head="two linear maps",
    loss="NT-Xent", training_data="any text-to-audio task", defaults=Settings(), model_keys=("dim",),
    build=lambda config, device, progress: System(config),
    parameter_counts=lambda config: ParameterCounts({}, 2 * (128 * config["dim"] + config["dim"])),
    required_assets=lambda config: [], synthetic_system=synthetic,
    system_name=lambda config: f"Spectrum + words (d={config['dim']})")
