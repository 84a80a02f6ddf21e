"""The pretrained files the baselines need, registered with the harness's asset cache.

Official URLs and checksums; `$LARB_ASSETS_MIRROR` replaces the network (files under their
published names, model repositories as folders under their repository names). Importing this
module registers them; `fetch` is the harness's, so verification is the same everywhere.
"""

from __future__ import annotations

from pathlib import Path

from benchmark import assets
from benchmark.assets import Asset

MN04 = "efficientat/mn04_as"
AUDIOSET_LABELS = "audioset/class_labels_indices"  # registered by benchmark.tasks
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
MPNET = "sentence-transformers/all-mpnet-base-v2"

for _asset in (
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
):
    assets.register(_asset)


def fetch(name: str) -> Path:
    """A verified local path of a registered asset (cache, mirror, then download)."""
    return assets.fetch(name)


def available_offline(name: str) -> bool:
    """Whether `fetch(name)` would find the asset without the network (cached or mirrored)."""
    return assets.locate(name) is not None
