"""The pretrained files the baselines need, declared for the harness's asset cache.

Official URLs and checksums; `$LARB_ASSETS_MIRROR` replaces the network (files under their
published names, model repositories as folders under their repository names). The harness reads
`ASSETS` through the `larb.assets` entry point, so `larb assets list` shows them on a core
install: this module imports nothing but the harness. `fetch` is the harness's, so verification
is the same everywhere.
"""

from __future__ import annotations

from pathlib import Path

from benchmark import assets
from benchmark.assets import Asset

MN04 = "efficientat/mn04_as"
AUDIOSET_LABELS = "audioset/class_labels_indices"  # declared by benchmark.task_assets
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
MPNET = "sentence-transformers/all-mpnet-base-v2"

_PANNS_ZENODO = "https://zenodo.org/record/3987831/files/{}?download=1"
# The MD5s Zenodo publishes for record 3987831 (as pinned by e.g. Labbeti/dcase2022task6a nn/urls.py).
PANNS_CNN14 = Asset(
    "panns/cnn14", _PANNS_ZENODO.format("Cnn14_mAP%3D0.431.pth"), "md5:541141fa2ee191a88f24a3219fff024e",
    file_name="Cnn14_mAP=0.431.pth", description="PANNs Cnn14, AudioSet mAP .431")
PANNS_RESNET38 = Asset(
    "panns/resnet38", _PANNS_ZENODO.format("ResNet38_mAP%3D0.434.pth"), "md5:bf12f36aaabac4e0855e22d3c3239c1b",
    file_name="ResNet38_mAP=0.434.pth", description="PANNs ResNet38, AudioSet mAP .434")
PANNS_WAVEGRAM_LOGMEL_CNN14 = Asset(
    "panns/wavegram-logmel-cnn14", _PANNS_ZENODO.format("Wavegram_Logmel_Cnn14_mAP%3D0.439.pth"),
    "md5:17fa9ab65af3c0eb5ffbc5f65552c4e1", file_name="Wavegram_Logmel_Cnn14_mAP=0.439.pth",
    description="PANNs Wavegram-Logmel-Cnn14, AudioSet mAP .439")
# sha256 of the release file (344 665 734 bytes), as recorded independently by several projects.
PASST_S_SWA = Asset(
    "passt/passt_s_swa_p16_128_ap476",
    "https://github.com/kkoutini/PaSST/releases/download/v0.0.1-audioset/passt-s-f128-p16-s10-ap.476-swa.pt",
    "sha256:302903fa8c4aee817b11dc982da0b29aaf8d11a3e722420476d0a12c9db70c2c",
    description="PaSST-S, stride 10, SWA, AudioSet mAP .476 (Apache-2.0)")

ASSETS: tuple[Asset, ...] = (
    Asset(MN04, "https://github.com/fschmid56/EfficientAT/releases/download/v0.0.1/mn04_as_mAP_432.pt",
          "sha256:899a8c6217063f6941793102a2780b3dd788ab11fce468d9cf5f0577c453321c",
          description="EfficientAT MobileNetV3 mn04 AudioSet tagger (mAP .432), MIT licence"),
    Asset(MINILM, "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2",
          "sha256:53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
          kind="repo", check_file="model.safetensors",
          description="sentence encoder, 384-d, Apache-2.0"),
    # Checksum of model.safetensors as pinned by openshift/lightspeed-service artifacts.lock.yaml
    # (hermeto-verified build input); not re-computed here because the file is not mirrored.
    Asset(MPNET, "https://huggingface.co/sentence-transformers/all-mpnet-base-v2",
          "sha256:78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
          kind="repo", check_file="model.safetensors",
          description="sentence encoder, 768-d, Apache-2.0 (the paper's MPNet)"),
    PANNS_CNN14, PANNS_RESNET38, PANNS_WAVEGRAM_LOGMEL_CNN14, PASST_S_SWA,
)


def fetch(name: str) -> Path:
    """A verified local path of a registered asset (cache, mirror, then download)."""
    return assets.fetch(name)


def available_offline(name: str) -> bool:
    """Whether `fetch(name)` would find the asset without the network (cached or mirrored)."""
    return assets.locate(name) is not None
