"""PANNs encoders: published state-dict layout, strict loading, front end, outputs on tiny configs."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch
from encoder_reference import fill_like_the_reference_run, reference_signal

from baselines.encoders import panns
from baselines.encoders.audio_frontend import LogmelFilterBank, Spectrogram, read_checkpoint
from benchmark.assets import Asset
from benchmark.errors import LarbError

SR = 32_000
TINY_CNN14 = {"widths": (4, 8, 8, 16, 16, 32)}
TINY_RESNET38 = {"widths": (4, 8, 8, 16), "blocks": (1, 2, 1, 1), "embedding_dim": 32}
TINY_WAVEGRAM = {"widths": (4, 8, 8, 16, 16, 32), "wave_widths": (4, 4, 32, 32)}


# ---- the published layout, written out from qiuqiangkong/audioset_tagging_cnn pytorch/models.py ----

def _bn(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
            f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}


def _conv_block(prefix: str, cin: int, cout: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.conv1.weight": (cout, cin, 3, 3), f"{prefix}.conv2.weight": (cout, cout, 3, 3),
            **_bn(f"{prefix}.bn1", cout), **_bn(f"{prefix}.bn2", cout)}


def _front_and_head() -> dict[str, tuple[int, ...]]:
    return {"spectrogram_extractor.stft.conv_real.weight": (513, 1, 1024),
            "spectrogram_extractor.stft.conv_imag.weight": (513, 1, 1024),
            "logmel_extractor.melW": (513, 64), **_bn("bn0", 64),
            "fc1.weight": (2048, 2048), "fc1.bias": (2048,),
            "fc_audioset.weight": (527, 2048), "fc_audioset.bias": (527,)}


def _cnn14_keys(first_in: int = 1) -> dict[str, tuple[int, ...]]:
    channels = [(first_in, 64), (64, 128), (128, 256), (256, 512), (512, 1024), (1024, 2048)]
    keys = _front_and_head()
    for i, (cin, cout) in enumerate(channels, start=1):
        keys.update(_conv_block(f"conv_block{i}", cin, cout))
    return keys


def _resnet38_keys() -> dict[str, tuple[int, ...]]:
    keys = {**_front_and_head(), **_conv_block("conv_block1", 1, 64),
            **_conv_block("conv_block_after1", 512, 2048)}
    cin = 64
    for layer, (c, n) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3), strict=True), start=1):
        for j in range(n):
            p = f"resnet.layer{layer}.{j}"
            keys.update({f"{p}.conv1.weight": (c, cin if j == 0 else c, 3, 3), f"{p}.conv2.weight": (c, c, 3, 3),
                         **_bn(f"{p}.bn1", c), **_bn(f"{p}.bn2", c)})
            if j == 0 and layer > 1:
                keys.update({f"{p}.downsample.1.weight": (c, cin, 1, 1), **_bn(f"{p}.downsample.2", c)})
        cin = c
    return keys


def _wavegram_keys() -> dict[str, tuple[int, ...]]:
    keys = _cnn14_keys()
    keys.update(_conv_block("conv_block2", 128, 128))
    keys.update({"pre_conv0.weight": (64, 1, 11), **_bn("pre_bn0", 64), **_conv_block("pre_block4", 4, 64)})
    for i, (cin, cout) in enumerate([(64, 64), (64, 128), (128, 128)], start=1):
        keys.update({f"pre_block{i}.conv1.weight": (cout, cin, 3), f"pre_block{i}.conv2.weight": (cout, cout, 3),
                     **_bn(f"pre_block{i}.bn1", cout), **_bn(f"pre_block{i}.bn2", cout)})
    return keys


PUBLISHED = {panns.Cnn14: _cnn14_keys, panns.ResNet38: _resnet38_keys, panns.WavegramLogmelCnn14: _wavegram_keys}


@pytest.mark.parametrize("cls", list(PUBLISHED), ids=lambda c: c.__name__)
def test_full_size_state_dict_has_the_published_keys_and_shapes(cls):
    expected = PUBLISHED[cls]()
    with torch.device("meta"):
        model = cls()
    actual = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert actual == expected
    assert model.embedding_dim == 2048 and model.sample_rate == SR


def test_published_key_counts_and_parameter_totals():
    # Key counts of the Zenodo state dicts; parameters exclude the frozen STFT/mel tables, which
    # are buffers here (PANNs' README counts 81.8 M for Cnn14 including them).
    expected = {panns.Cnn14: (84, 80_753_615), panns.ResNet38: (246, 73_783_247),
                panns.WavegramLogmelCnn14: (138, 81_065_487)}
    for cls, (keys, parameters) in expected.items():
        with torch.device("meta"):
            model = cls()
        assert len(model.state_dict()) == keys
        assert sum(p.numel() for p in model.parameters()) == parameters


def _reference_dft(n_fft: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    n = np.arange(n_fft)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)  # periodic Hann
    angle = 2 * np.pi * np.outer(np.arange(n_fft // 2 + 1), n) / n_fft
    real = torch.tensor(np.cos(angle) * window, dtype=torch.float32).unsqueeze(1)
    imag = torch.tensor(-np.sin(angle) * window, dtype=torch.float32).unsqueeze(1)
    return real, imag


def _distinct_state(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """Each tensor filled with its own value, so a swapped or skipped key shows after loading."""
    real, imag = _reference_dft()
    state = {}
    for i, (key, shape) in enumerate(shapes.items()):
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(i, dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = torch.full(shape, 1.0 + i * 1e-4)
        else:
            state[key] = torch.full(shape, i * 1e-4)
    state["spectrogram_extractor.stft.conv_real.weight"] = real
    state["spectrogram_extractor.stft.conv_imag.weight"] = imag
    return state


def test_official_cnn14_checkpoint_layout_loads_strictly(tmp_path):
    state = _distinct_state(_cnn14_keys())
    path = tmp_path / "Cnn14_mAP=0.431.pth"
    torch.save({"iteration": 660_000, "model": state}, path)  # the layout of the Zenodo files
    model = panns.load_cnn14(path)
    assert not model.training
    loaded = model.state_dict()
    assert loaded.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key
    with torch.no_grad():
        out = model(torch.randn(1, SR // 2))
    assert out["logits"].shape == (1, 527) and out["embedding"].shape == (1, 2048)


def test_a_missing_or_extra_key_is_a_user_error_naming_the_file(tmp_path):
    state = panns.Cnn14(**TINY_CNN14).state_dict()
    del state["conv_block6.bn2.running_var"]
    path = tmp_path / "broken.pth"
    torch.save({"model": state}, path)
    with pytest.raises(LarbError, match=r"1 missing key\(s\) \(conv_block6.bn2.running_var\)") as err:
        panns.load_cnn14(path, **TINY_CNN14)
    assert str(path) in str(err.value)
    torch.save({"model": panns.ResNet38(**TINY_RESNET38).state_dict()}, path)
    with pytest.raises(LarbError, match=r"does not fit Cnn14: 60 missing .* unexpected key\(s\) \(resnet\."):
        panns.load_cnn14(path, **TINY_CNN14)  # a ResNet38 file is not a Cnn14 file
    with pytest.raises(LarbError, match=r"does not fit ResNet38: .*fc1.weight: \(32, 32\) instead of \(2048, 2048\)"):
        panns.load_resnet38(path)  # nor does a tiny ResNet38 fit the full-size one


def test_checkpoint_with_foreign_stft_kernels_is_refused(tmp_path):
    model = panns.Cnn14(**TINY_CNN14)
    state = model.state_dict()
    state["spectrogram_extractor.stft.conv_real.weight"] = torch.ones(513, 1, 1024)
    path = tmp_path / "hamming.pth"
    torch.save(state, path)
    with pytest.raises(LarbError, match="STFT kernels"):
        panns.load_cnn14(path, **TINY_CNN14)


class _SamplerState:
    """Stands for the non-tensor objects PANNs' training checkpoints pickle."""


def test_non_tensor_objects_are_unpickled_only_for_the_pinned_file(tmp_path, monkeypatch):
    path = tmp_path / "full.pth"
    torch.save({"model": panns.Cnn14(**TINY_CNN14).state_dict(), "sampler": _SamplerState()}, path)
    with pytest.raises(LarbError, match="not a pinned official file"):
        panns.load_cnn14(path, **TINY_CNN14)
    pinned = Asset("test/cnn14", "https://example.org/full.pth", "md5:" + hashlib.md5(path.read_bytes()).hexdigest())
    assert isinstance(read_checkpoint(path, pinned)["sampler"], _SamplerState)
    monkeypatch.setattr(panns, "CNN14_ASSET", pinned)
    assert isinstance(panns.load_cnn14(path, **TINY_CNN14), panns.Cnn14)
    other = Asset("test/other", "https://example.org/x.pth", "md5:" + "0" * 32)
    with pytest.raises(LarbError, match="not a pinned official file"):
        read_checkpoint(path, other)


def test_unreadable_or_missing_checkpoint_is_a_user_error(tmp_path):
    with pytest.raises(LarbError, match="not found"):
        panns.load_cnn14(tmp_path / "absent.pth", **TINY_CNN14)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all" * 20)
    with pytest.raises(LarbError, match="not a tensors-only PyTorch checkpoint"):
        panns.load_cnn14(junk, **TINY_CNN14)


def test_default_load_fetches_the_registered_asset_and_verifies_it(tmp_path, monkeypatch):
    monkeypatch.setenv("LARB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("LARB_ASSETS_MIRROR", str(tmp_path))
    (tmp_path / "Cnn14_mAP=0.431.pth").write_bytes(b"a different file")
    with pytest.raises(LarbError, match="checksum mismatch.*panns/cnn14"):
        panns.load_cnn14()


def test_registered_assets_pin_the_zenodo_files():
    assets = {a.name: a for a in (panns.CNN14_ASSET, panns.RESNET38_ASSET, panns.WAVEGRAM_LOGMEL_CNN14_ASSET)}
    assert assets["panns/cnn14"].checksum == "md5:541141fa2ee191a88f24a3219fff024e"
    assert assets["panns/resnet38"].file_name == "ResNet38_mAP=0.434.pth"
    assert all(a.url.startswith("https://zenodo.org/record/3987831/files/") for a in assets.values())


# Computed once with the upstream code (audioset_tagging_cnn pytorch/models.py @d2f4b8c, torchlibrosa
# 0.1.0, librosa 0.11) on the same weights and input: logit(clipwise_output)[:4], embedding[:6].
UPSTREAM = {
    panns.Cnn14: ([-0.007153, -0.009734, 0.008485, 0.046607], [0.0, 0.040437, 0.0, 0.067097, 0.0, 0.00342]),
    panns.ResNet38: ([-0.178367, 0.080085, 0.057783, 0.015797], [0.0, 0.283849, 0.070389, 0.143231, 0.15258, 0.0]),
    panns.WavegramLogmelCnn14: ([-0.006896, -0.01116, 0.010431, 0.046037],
                                [0.0, 0.043918, 0.0, 0.067508, 0.0, 0.00374]),
}


@pytest.mark.parametrize("cls", list(UPSTREAM), ids=lambda c: c.__name__)
def test_outputs_equal_the_upstream_implementation(cls):
    model = fill_like_the_reference_run(cls())
    with torch.no_grad():
        out = model(reference_signal())
    logits, embedding = UPSTREAM[cls]
    assert torch.allclose(out["logits"][0, :4].double(), torch.tensor(logits, dtype=torch.float64), atol=2e-5)
    assert torch.allclose(out["embedding"][0, :6].double(), torch.tensor(embedding, dtype=torch.float64), atol=2e-5)


# ---- the front end against torchlibrosa / librosa (the code PANNs was trained with) ----

def test_dft_kernels_and_mel_filters_match_torchlibrosa():
    tl = pytest.importorskip("torchlibrosa.stft")
    reference = tl.Spectrogram(n_fft=1024, hop_length=320, win_length=1024, window="hann", center=True,
                               pad_mode="reflect", freeze_parameters=True)
    mel = tl.LogmelFilterBank(sr=SR, n_fft=1024, n_mels=64, fmin=50, fmax=14000, ref=1.0, amin=1e-10,
                              top_db=None, freeze_parameters=True)
    ours_spec, ours_mel = Spectrogram(1024, 320), LogmelFilterBank(SR, 1024, 64, 50.0, 14_000.0)
    assert torch.allclose(ours_spec.stft.conv_real.weight, reference.stft.conv_real.weight, atol=1e-6)
    assert torch.allclose(ours_spec.stft.conv_imag.weight, reference.stft.conv_imag.weight, atol=1e-6)
    assert torch.allclose(ours_mel.melW, mel.melW, rtol=1e-5, atol=1e-8)
    wave = torch.randn(2, 20_000, generator=torch.Generator().manual_seed(1)) * 0.1
    expected = mel(reference(wave))
    actual = ours_mel(ours_spec(wave))
    assert actual.shape == expected.shape == (2, 1, 20_000 // 320 + 1, 64)
    assert (actual - expected).abs().max() < 1e-3  # dB; FFT vs direct DFT rounding


def test_the_reference_dft_agrees_with_the_spectrogram_module():
    real, imag = _reference_dft()
    assert Spectrogram().matches_kernels() and torch.allclose(Spectrogram().stft.conv_real.weight, real, atol=1e-6)
    assert torch.allclose(Spectrogram().stft.conv_imag.weight, imag, atol=1e-6)


def test_log_mel_of_a_pure_tone_peaks_in_the_band_of_its_frequency():
    t = torch.arange(SR) / SR
    tone = torch.sin(2 * math.pi * 1000.0 * t).unsqueeze(0)
    logmel = LogmelFilterBank()(Spectrogram()(tone))[0, 0, 50]
    melW = LogmelFilterBank().melW
    assert int(logmel.argmax()) == int(melW[round(1000 * 1024 / SR)].argmax())
    # A full-scale sine carries power (N/4)^2 = 65536 in its bin with a Hann window of 1024 samples.
    assert logmel.max() > 10 * math.log10(65536 * melW.max()) - 6


# ---- behaviour on tiny configurations ----

@pytest.mark.parametrize("cls, config", [(panns.Cnn14, TINY_CNN14), (panns.ResNet38, TINY_RESNET38),
                                         (panns.WavegramLogmelCnn14, TINY_WAVEGRAM)],
                         ids=["cnn14", "resnet38", "wavegram"])
def test_tiny_models_output_logits_probabilities_and_embedding(cls, config):
    torch.manual_seed(0)
    model = cls(**config).eval()
    wave = torch.randn(3, SR + 3_210) * 0.1  # a length where the wavegram and mel frame counts differ
    with torch.no_grad():
        out = model(wave)
        again = model(wave)
        alone = model(wave[1:2])
    assert out["logits"].shape == (3, 527) and out["embedding"].shape == (3, 32)
    assert model.embedding_dim == 32
    assert torch.allclose(out["probabilities"], torch.sigmoid(out["logits"]))
    assert torch.equal(out["logits"], again["logits"])  # eval mode is deterministic
    assert torch.allclose(out["embedding"][1:2], alone["embedding"], atol=1e-5)  # no batch coupling
    assert (out["embedding"] >= 0).all()  # ReLU(fc1)


def test_training_mode_applies_dropout_and_eval_does_not():
    torch.manual_seed(0)
    model = panns.Cnn14(**TINY_CNN14)
    wave = torch.randn(2, SR)
    model.train()
    first, second = model(wave)["embedding"], model(wave)["embedding"]
    assert not torch.equal(first, second)
    model.eval()
    assert torch.equal(model(wave)["embedding"], model(wave)["embedding"])


def test_wavegram_rejects_widths_that_cannot_be_regrouped_into_bands():
    with pytest.raises(ValueError, match="multiple of 32"):
        panns.WavegramLogmelCnn14(wave_widths=(4, 4, 8, 40))
