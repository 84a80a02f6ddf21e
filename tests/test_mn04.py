"""EfficientAT mn04: our architecture, the published checkpoint loaded strictly, sensible tags on
real clips, and the log-mel front end it was trained on."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from conftest import MIRROR, REFERENCE, require_shared

from baselines.audio.io import load_mono
from baselines.encoders.efficientat_mel import EfficientATMel, kaldi_mel_banks
from baselines.encoders.mn04 import SAMPLE_RATE, Mn04, load_mn04, make_divisible
from benchmark.errors import LarbError

CHECKPOINT = MIRROR / "mn04_as_mAP_432.pt"
AUDIOCAPS_CLIPS = REFERENCE / "audio_mini" / "audiocaps"


def test_channel_rounding_matches_mobilenet_rule():
    # 16 * 0.4 = 6.4 -> 8; 24 * 0.4 = 9.6 -> 8 would lose more than 10 %, so 16; 960 * 0.4 -> 384
    assert [make_divisible(c * 0.4) for c in (16, 24, 40, 72, 960, 1280)] == [8, 16, 16, 32, 384, 512]


def test_architecture_sizes_come_from_the_code():
    model = Mn04()
    assert model.embedding_dim == 384
    assert sum(p.numel() for p in model.parameters()) == 983_599
    out = model.eval()(torch.randn(2, SAMPLE_RATE))
    assert out["logits"].shape == (2, 527) and out["embedding"].shape == (2, 384)


def test_strict_loading_names_the_missing_key(tmp_path):
    state = Mn04().net.state_dict()
    del state["classifier.5.bias"]
    path = tmp_path / "broken.pt"
    torch.save(state, path)
    with pytest.raises(LarbError, match="classifier.5.bias") as error:
        load_mn04(path)
    assert str(path) in str(error.value)


def test_published_checkpoint_loads_strictly(published_mn04):
    model = published_mn04
    published = torch.load(CHECKPOINT, map_location="cpu", weights_only=True)
    ours = model.net.state_dict()
    assert ours.keys() == published.keys()
    assert all(ours[k].shape == published[k].shape and torch.equal(ours[k], published[k]) for k in ours)
    assert not model.training


def test_mel_banks_are_kaldi_triangles():
    banks = kaldi_mel_banks(128, 1024, 32_000, 0.0, 15_000.0)
    assert banks.shape == (128, 513)
    assert torch.all(banks >= 0) and torch.all(banks[:, -1] == 0)
    peaks = banks.argmax(dim=1)
    assert torch.all(peaks[1:] >= peaks[:-1])  # centres rise with the band index
    assert banks.max() <= 1.0 and banks[40:].max(dim=1).values.min() > 0.5  # peak of each triangle


@pytest.mark.parametrize("frequency", [500.0, 1000.0, 4000.0])
def test_a_pure_tone_lands_in_its_mel_band(frequency):
    t = torch.arange(SAMPLE_RATE) / SAMPLE_RATE
    mel = EfficientATMel()(torch.sin(2 * math.pi * frequency * t)[None])
    assert mel.shape == (1, 128, (SAMPLE_RATE - 1) // 320 + 1)  # pre-emphasis drops one sample
    band = int(mel[0, :, 10:-10].mean(dim=1).argmax())

    def to_mel(f: float) -> float:
        return 1127.0 * math.log1p(f / 700.0)

    centre = 700.0 * (math.exp((to_mel(0) + (band + 1) * (to_mel(15_000) - to_mel(0)) / 129) / 1127.0) - 1)
    assert abs(to_mel(centre) - to_mel(frequency)) < 2 * (to_mel(15_000) / 129)


@pytest.fixture(scope="module")
def published_mn04() -> Mn04:
    return load_mn04(require_shared(CHECKPOINT))


def _labels() -> list[str]:
    with open(require_shared(MIRROR / "class_labels_indices.csv"), newline="", encoding="utf-8") as handle:
        return [row["display_name"] for row in csv.DictReader(handle)]


@pytest.mark.parametrize("clip, expected", [
    ("31WGUPOYS5g_22.wav", "siren"),  # "... an emergency vehicle siren sounds and the horn blows"
    ("SGaIvgwwWSE_30.wav", "thunder"),  # "Rain falling and thunder roaring in the distance"
    ("YIqpIjjee00_30.wav", "toilet flush"),  # "A toilet flushing"
    ("yhDw7PZje3g_30.wav", "insect"),  # "Many insects are buzzing, and an adult male speaks"
    ("bpv_LneHmfU_10.wav", "aircraft"),  # "Humming of a distant aircraft engine"
])
def test_top_tags_on_real_clips_are_sensible(published_mn04, clip, expected):
    wave = torch.from_numpy(load_mono(require_shared(AUDIOCAPS_CLIPS / clip), SAMPLE_RATE))[None]
    with torch.no_grad():
        probabilities = torch.sigmoid(published_mn04(wave)["logits"][0]).numpy()
    labels = _labels()
    top5 = [labels[i].lower() for i in np.argsort(-probabilities)[:5]]
    assert any(expected in label for label in top5), top5
