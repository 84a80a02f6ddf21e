"""A registered LARB baseline (a trained checkpoint, or a zero-shot configuration) behind the model
protocol, so that `evaluate_model` and `larb model run` treat it like any outside model.

A baseline's system reads audio files itself (its own front end, crops and caches), so the
adapter hands it the protocol's waveforms as float32 WAV files at the system's own rate in a
temporary task folder: the system then reads exactly the samples it would have read from the
original files (`load_mono` resamples both the same way), and ranks exactly as
`larb baseline run` does.
"""

from __future__ import annotations

import csv
import hashlib
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from baselines.config import resolve_device
from baselines.inference import Member, embed, load_member
from benchmark.errors import LarbError
from benchmark.tasks import folder_task


class BaselineModel:
    """`checkpoint`: a best.pt of `larb baseline train` (its baseline is read from it); without one,
    `baseline` is run zero-shot. `settings`: `--set` assignments, separated by ';'."""

    def __init__(self, checkpoint: str | None = None, baseline: str | None = None, settings: str = "") -> None:
        overrides = [part.strip() for part in settings.split(";") if part.strip()]
        member = load_member(Member(checkpoint=Path(checkpoint) if checkpoint else None, baseline=baseline),
                             overrides, progress=False)
        self.system = member.system
        self.spec = member.spec
        rate = getattr(self.system, "sample_rate", None)
        if not isinstance(rate, int):
            raise LarbError(f"baseline {member.spec.name} does not say at which rate its system reads audio.",
                            fix="give its System a sample_rate (see baselines.spec.System).")
        self.sample_rate = rate
        counts = member.spec.parameter_counts(self.system.config)
        self.parameters = {"total": counts.total, "trainable": counts.trainable}
        self.training_data = list(member.info["training_data"])
        self.description = f"{member.spec.paper}; {member.spec.system_name(self.system.config)}"
        self.links = dict(member.spec.links)
        identity = Path(checkpoint).read_bytes() if checkpoint else repr(sorted(self.system.config.items())).encode()
        self.name = f"larb-{member.spec.name}@{hashlib.sha256(identity).hexdigest()[:12]}"
        self._device = resolve_device(self.system.config)

    def _embed(self, waveforms: Sequence[np.ndarray], captions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(caption embeddings, audio embeddings) of files holding `waveforms`, each file captioned by
        the captions given for it (the first file takes them all, the others a placeholder)."""
        with tempfile.TemporaryDirectory(prefix="larb-adapter-") as tmp:
            folder = Path(tmp)
            rows = []
            for i, wave in enumerate(waveforms):
                name = f"clip_{i:06d}.wav"
                sf.write(folder / name, np.asarray(wave, dtype=np.float32), self.sample_rate, subtype="FLOAT")
                rows.append([name, *(captions if i == 0 else ["a sound"])])
            width = max(len(row) for row in rows)
            with open(folder / "captions.csv", "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["file_name", *(f"caption_{k}" for k in range(1, width))])
                writer.writerows(row + [""] * (width - len(row)) for row in rows)
            features = self.system.task_features(folder_task(folder))
            return embed(self.system.head, features, self._device)

    def encode_audio(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        return self._embed(waveforms, ["a sound"])[1]

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        if any(not text.strip() for text in texts):
            raise LarbError("a query text is empty.", fix="give every query a caption.")
        silence = np.zeros(self.sample_rate, dtype=np.float32)
        return self._embed([silence], list(texts))[0][:len(texts)]
