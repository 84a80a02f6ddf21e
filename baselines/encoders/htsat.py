"""HTSAT (Chen et al., ICASSP 2022) as laion-clap 1.1.7 ships it, as an audio encoder, and its
weights from either release: the official HTS-AT AudioSet checkpoints (RetroCirce/HTS-Audio-
Transformer, e.g. `HTSAT_AudioSet_Saved_1.ckpt`: a Lightning file whose `sed_model.*` keys are the
model) or a LAION-CLAP checkpoint (the `audio_branch.*` keys; trained on LAION-630k, which holds
AudioCaps and Clotho training data). laion-clap's HTSAT is HTS-AT's module with the same keys.

Why laion-clap's file is loaded by path: `import laion_clap` (and any `laion_clap.clap_module.*`
import) executes the package `__init__`s, which import `clap_module/utils.py` and
`training/data.py`; both import torchvision unconditionally. torchvision is not installed here
and must not be: a torchvision that does not match torch exactly breaks transformers' model
imports (research notes, section 3.3), and laion-clap does not declare it. `htsat.py` itself
needs only torch, torchlibrosa and two small helpers of `utils.py` (`do_mixup`, `interpolate`).
So `clap_module/htsat.py` and `clap_module/feature_fusion.py` (torch only) are executed as
members of a synthetic parent package, whose `utils` is the small module defined here.

The encoder takes a log-mel spectrogram (our front end computes it at the baseline's settings)
and returns HTSAT's 768-d clip embedding (`latent_output`: the mean of the last Swin stage's
tokens after the token-semantic regrouping), the `embedding` that laion-clap projects. The
modules that the embedding does not use (HTSAT's own STFT/mel tables, the classification
`tscam_conv` and `head`) are removed, so every parameter left is trained.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import types
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from baselines.encoders.audio_frontend import load_strict, read_checkpoint
from baselines.encoders.augment import SpecAugment
from benchmark.errors import LarbError

_PACKAGE = "larb_laion_clap_module"
# Keys of a CLAP audio branch that the encoder does not keep (front-end tables, classifier).
_DROPPED = ("spectrogram_extractor.", "logmel_extractor.", "tscam_conv.", "head.")
CLAP_CHECKPOINT_URL = "https://huggingface.co/lukewys/laion_clap/resolve/main/630k-audioset-best.pt"
HTSAT_AUDIOSET_RELEASE = ("HTSAT_AudioSet_Saved_1.ckpt of the official HTS-AT release "
                          "(https://github.com/RetroCirce/HTS-Audio-Transformer, 'Model Checkpoints')")
# which release a weights file is, by the prefix of its model keys
RELEASE_PREFIXES = {"audioset": "sed_model.", "laion-clap": "audio_branch."}


def do_mixup(x: torch.Tensor, mixup_lambda: torch.Tensor) -> torch.Tensor:
    """Mix each example with the batch reversed: lambda * x + (1 - lambda) * flip(x) (batch first)."""
    return (x.transpose(0, -1) * mixup_lambda + torch.flip(x, dims=[0]).transpose(0, -1) * (1 - mixup_lambda)
            ).transpose(0, -1)


def interpolate(x: torch.Tensor, ratio: int) -> torch.Tensor:
    """(batch, steps, classes) -> (batch, steps * ratio, classes), each step repeated `ratio` times."""
    batch, steps, classes = x.shape
    return x[:, :, None, :].repeat(1, 1, ratio, 1).reshape(batch, steps * ratio, classes)


def _laion_file(name: str) -> Path:
    spec = importlib.util.find_spec("laion_clap")  # finds the package without executing its __init__
    if spec is None or spec.origin is None:
        raise LarbError("the laion-clap package is not installed.", fix="pip install 'laion-clap==1.1.7'.")
    path = Path(spec.origin).parent / "clap_module" / name
    if not path.is_file():
        raise LarbError(f"laion-clap has no clap_module/{name}.", path=path, fix="install laion-clap 1.1.7.")
    return path


def htsat_module() -> types.ModuleType:
    """laion-clap's `clap_module/htsat.py`, executed once under the synthetic parent package."""
    name = f"{_PACKAGE}.htsat"
    if name in sys.modules:
        return sys.modules[name]
    try:
        import torchlibrosa  # noqa: F401  (laion-clap's declared dependency, used by htsat.py)
    except ImportError:
        raise LarbError("torchlibrosa is not installed (a laion-clap dependency that HTSAT imports).",
                        fix="pip install torchlibrosa.") from None
    package = types.ModuleType(_PACKAGE)
    package.__path__ = []  # a package with no directory: nothing else can be imported from it
    utils = types.ModuleType(f"{_PACKAGE}.utils")
    utils.do_mixup, utils.interpolate = do_mixup, interpolate
    sys.modules[_PACKAGE], sys.modules[utils.__name__] = package, utils
    for member in ("feature_fusion", "htsat"):
        spec = importlib.util.spec_from_file_location(f"{_PACKAGE}.{member}", _laion_file(f"{member}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@dataclass(frozen=True)
class HtsatConfig:
    """Swin configuration of HTSAT; `tiny()` is laion-clap's HTSAT-tiny (`create_htsat_model`)."""

    spec_size: int = 256
    patch_size: int = 4
    patch_stride: tuple[int, int] = (4, 4)
    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (4, 8, 16, 32)
    window_size: int = 8
    mel_bins: int = 64
    n_classes: int = 527
    extra: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def frames(self) -> int:
        """Frames of the input image: spec_size x (spec_size // mel_bins)."""
        return self.spec_size * (self.spec_size // self.mel_bins)

    @property
    def dim(self) -> int:
        return self.embed_dim * 2 ** (len(self.depths) - 1)


HTSAT_TINY = HtsatConfig()
# A test-sized HTSAT: 128 x 128 input image (256 frames x 64 bands), three 1-block stages, 64-d.
HTSAT_TEST = HtsatConfig(spec_size=128, embed_dim=16, depths=(1, 1, 1), num_heads=(1, 2, 4))


class HtsatEncoder(nn.Module):
    """Log-mel (batch, 1, frames, mel_bins) -> HTSAT clip embedding (batch, dim).

    Inputs longer than the model's image (1024 frames for HTSAT-tiny) are resampled in time to
    fit, shorter ones are stretched by HTSAT's own `reshape_wav2img` (bicubic), as laion-clap does.
    """

    def __init__(self, config: HtsatConfig = HTSAT_TINY, spec_augment: bool = True) -> None:
        super().__init__()
        module = htsat_module()
        front_end = types.SimpleNamespace(sample_rate=32_000, window_size=1024, hop_size=320,
                                          mel_bins=config.mel_bins, fmin=50, fmax=14_000)
        with warnings.catch_warnings():  # laion-clap's window attention calls meshgrid the old way
            warnings.filterwarnings("ignore", message="torch.meshgrid", category=UserWarning)
            swin = module.HTSAT_Swin_Transformer(
                spec_size=config.spec_size, patch_size=config.patch_size, patch_stride=config.patch_stride,
                num_classes=config.n_classes, embed_dim=config.embed_dim, depths=list(config.depths),
                num_heads=list(config.num_heads), window_size=config.window_size, config=front_end,
                **config.extra)
        for name in ("spectrogram_extractor", "logmel_extractor", "spec_augmenter", "tscam_conv", "head"):
            delattr(swin, name)
        self.swin = swin
        self.config = config
        self.spec_augment = SpecAugment() if spec_augment else None

    @property
    def dim(self) -> int:
        return self.config.dim

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        swin = self.swin
        x = swin.bn0(logmel.transpose(1, 3)).transpose(1, 3)
        if self.spec_augment is not None:
            x = self.spec_augment(x)
        if x.shape[2] > self.config.frames:
            x = F.interpolate(x, (self.config.frames, x.shape[3]), mode="bicubic", align_corners=True)
        x = swin.reshape_wav2img(x)
        return self._latent(x)

    def _latent(self, x: torch.Tensor) -> torch.Tensor:
        """`forward_features` up to its `latent_output` (the classifier branch is not computed)."""
        swin = self.swin
        frames = x.shape[2]
        x = swin.pos_drop(swin.patch_embed(x))
        for layer in swin.layers:
            x, _ = layer(x)
        x = swin.norm(x)
        batch, _, channels = x.shape
        sf = frames // (2 ** (len(swin.depths) - 1)) // swin.patch_stride[0]
        st = frames // (2 ** (len(swin.depths) - 1)) // swin.patch_stride[1]
        x = x.permute(0, 2, 1).contiguous().reshape(batch, channels, sf, st)
        freq, time = x.shape[2], x.shape[3]
        c_freq_bin = freq // swin.freq_ratio
        x = x.reshape(batch, channels, freq // c_freq_bin, c_freq_bin, time)
        x = x.permute(0, 1, 3, 2, 4).contiguous().reshape(batch, channels, c_freq_bin, -1)
        return torch.flatten(x, 2).mean(dim=2)


def htsat_weights(path: Path, release: str = "audioset") -> dict[str, torch.Tensor]:
    """The HTSAT weights of a release file (`{"state_dict": ...}`, keys possibly prefixed `module.`):
    `release` "audioset" reads an official HTS-AT checkpoint (`sed_model.*`), "laion-clap" the audio
    branch of a LAION-CLAP one (`audio_branch.*`); without the prefix and the parts the encoder does
    not keep. A file of the other release is refused by name, so a run's declared weights are true."""
    content = read_checkpoint(Path(path))
    state = content.get("state_dict", content) if isinstance(content, dict) else None
    if not isinstance(state, dict):
        raise LarbError("not an HTSAT checkpoint (no state dict).", path=path,
                        fix=f"pass {HTSAT_AUDIOSET_RELEASE}, or a LAION-CLAP file with htsat_weights=laion-clap.")
    module = "module." if next(iter(state), "").startswith("module.") else ""
    found = {name for name, prefix in RELEASE_PREFIXES.items() if any(k.startswith(module + prefix) for k in state)}
    if release not in found:
        other = next(iter(found), None)
        fix = (f"this file is a {other} release: add --set htsat_weights={other}" if other else
               f"pass {HTSAT_AUDIOSET_RELEASE} or a non-fusion LAION-CLAP checkpoint (e.g. 630k-audioset-best.pt)")
        raise LarbError(f"the checkpoint holds no {RELEASE_PREFIXES[release]}* weights (htsat_weights={release}).",
                        path=path, fix=fix + ".")
    start = len(module) + len(RELEASE_PREFIXES[release])
    weights = {k[start:]: v for k, v in state.items() if k.startswith(module + RELEASE_PREFIXES[release])}
    return {k: v for k, v in weights.items() if not k.startswith(_DROPPED)}


def load_htsat(checkpoint: str | Path, config: HtsatConfig = HTSAT_TINY, spec_augment: bool = True,
               release: str = "audioset") -> HtsatEncoder:
    """An HTSAT encoder with the weights of a release file (`htsat_weights`), loaded strictly."""
    encoder = HtsatEncoder(config, spec_augment)
    load_strict(encoder.swin, htsat_weights(Path(checkpoint), release), Path(checkpoint), f"HTSAT ({release} release)")
    return encoder


@functools.cache
def htsat_parameter_count(config: HtsatConfig = HTSAT_TINY) -> int:
    """Parameters of `HtsatEncoder(config)`, counted on a CPU build whose (slow) random
    initialisation is skipped: laion-clap's Swin code cannot be built on the meta device."""
    module = htsat_module()
    original = module.trunc_normal_
    module.trunc_normal_ = lambda tensor, *args, **kwargs: tensor
    try:
        encoder = HtsatEncoder(config, spec_augment=False)
    finally:
        module.trunc_normal_ = original
    return sum(p.numel() for p in encoder.parameters())
