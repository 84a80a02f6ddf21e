"""PaSST encoder: published state-dict layout, strict loading, front end, windowing on tiny configs."""

from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np
import pytest
import torch
from encoder_reference import fill_like_the_reference_run, reference_signal

from baselines.encoders import passt
from baselines.encoders.passt import Passt, PasstConfig, load_passt
from benchmark.errors import LarbError

SR = 32_000
# Default patch geometry (128 mels, 16x16 patches, stride 10) at a test-sized width and depth.
NARROW = {"embed_dim": 16, "num_heads": 2}
SHALLOW = {**NARROW, "depth": 1}
# A half-second model: 50 frames -> 4 time patches; windows of 0.5 s with a 0.125 s hop.
TINY = PasstConfig(embed_dim=16, depth=2, num_heads=2, input_tdim=50, window_seconds=0.5, hop_seconds=0.125)


def published_keys(freq_patches: int = 12, time_positions: int = 99, depth: int = 12) -> dict[str, tuple]:
    """The state dict of the kkoutini/PaSST AudioSet releases (hear21passt models/passt.py)."""
    d, c = 768, 527
    keys = {"cls_token": (1, 1, d), "dist_token": (1, 1, d), "new_pos_embed": (1, 2, d),
            "freq_new_pos_embed": (1, d, freq_patches, 1), "time_new_pos_embed": (1, d, 1, time_positions),
            "patch_embed.proj.weight": (d, 1, 16, 16), "patch_embed.proj.bias": (d,)}
    for i in range(depth):
        b = f"blocks.{i}"
        keys.update({f"{b}.norm1.weight": (d,), f"{b}.norm1.bias": (d,),
                     f"{b}.attn.qkv.weight": (3 * d, d), f"{b}.attn.qkv.bias": (3 * d,),
                     f"{b}.attn.proj.weight": (d, d), f"{b}.attn.proj.bias": (d,),
                     f"{b}.norm2.weight": (d,), f"{b}.norm2.bias": (d,),
                     f"{b}.mlp.fc1.weight": (4 * d, d), f"{b}.mlp.fc1.bias": (4 * d,),
                     f"{b}.mlp.fc2.weight": (d, 4 * d), f"{b}.mlp.fc2.bias": (d,)})
    keys.update({"norm.weight": (d,), "norm.bias": (d,), "head.0.weight": (d,), "head.0.bias": (d,),
                 "head.1.weight": (c, d), "head.1.bias": (c,), "head_dist.weight": (c, d), "head_dist.bias": (c,)})
    return keys


def _meta_shapes(config: PasstConfig) -> dict[str, tuple]:
    with torch.device("meta"):
        model = Passt(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_default_model_has_the_published_keys_and_shapes():
    expected = published_keys()
    assert len(expected) == 159
    assert _meta_shapes(passt.VARIANTS[passt.DEFAULT_VARIANT]) == expected


@pytest.mark.parametrize("variant, freq, time", [("passt_s_p16_s16_128_ap468", 8, 62),
                                                 ("passt_s_f128_30sec_p16_s10_ap473_swa", 12, 300)])
def test_other_variants_differ_only_in_their_position_tables(variant, freq, time):
    assert _meta_shapes(passt.VARIANTS[variant]) == published_keys(freq, time)


def test_parameter_count_is_that_of_passt_s():
    with torch.device("meta"):
        model = Passt()
    assert sum(p.numel() for p in model.parameters()) == 86_153_758
    assert model.sample_rate == SR and model.embedding_dim == 768


def test_published_checkpoint_layout_loads_strictly_and_runs(tmp_path):
    state = {k: torch.full(shape, i * 1e-4) for i, (k, shape) in enumerate(published_keys().items())}
    path = tmp_path / "passt-s-f128-p16-s10-ap.476-swa.pt"
    torch.save(state, path)
    model = load_passt(path)
    assert not model.training
    loaded = model.state_dict()
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key
    with torch.no_grad():
        out = model(torch.randn(2, SR // 2))
    assert out["logits"].shape == (2, 527) and out["embedding"].shape == (2, 768)
    assert torch.isfinite(out["logits"]).all()


def test_flattened_patch_projection_of_old_checkpoints_is_reshaped(tmp_path):
    model = Passt(TINY)
    state = model.state_dict()
    weight = state["patch_embed.proj.weight"]
    state["patch_embed.proj.weight"] = weight.reshape(weight.shape[0], -1)
    path = tmp_path / "old.pt"
    torch.save(state, path)
    loaded = load_passt(path, **asdict(TINY))
    assert torch.equal(loaded.patch_embed.proj.weight, weight)


def test_wrong_checkpoint_is_a_user_error_naming_the_file(tmp_path):
    state = Passt(TINY).state_dict()
    state["blocks.2.norm1.weight"] = torch.ones(16)
    path = tmp_path / "other.pt"
    torch.save(state, path)
    with pytest.raises(LarbError, match=r"blocks\.2\.norm1\.weight") as err:
        load_passt(path, **asdict(TINY))
    assert str(path) in str(err.value)
    with pytest.raises(LarbError, match="does not fit PaSST passt_s_p16_s16_128_ap468"):
        load_passt(path, variant="passt_s_p16_s16_128_ap468", **SHALLOW)


def test_unknown_variant_and_unpinned_download_are_user_errors():
    with pytest.raises(LarbError, match="unknown PaSST variant"):
        load_passt(variant="passt_xl")
    with pytest.raises(LarbError, match="no pinned checksum.*passt-s-f128-30sec"):
        load_passt(variant="passt_s_f128_30sec_p16_s10_ap473_swa")


def test_default_load_fetches_the_pinned_release_and_verifies_it(tmp_path, monkeypatch):
    monkeypatch.setenv("LARB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("LARB_ASSETS_MIRROR", str(tmp_path))
    (tmp_path / "passt-s-f128-p16-s10-ap.476-swa.pt").write_bytes(b"not the release")
    with pytest.raises(LarbError, match="checksum mismatch.*passt/passt_s_swa_p16_128_ap476"):
        load_passt()
    asset = passt.ASSETS[passt.DEFAULT_VARIANT]
    assert asset.checksum == "sha256:302903fa8c4aee817b11dc982da0b29aaf8d11a3e722420476d0a12c9db70c2c"


# ---- front end: hear21passt's AugmentMelSTFT in eval mode ----

def test_front_end_matches_hear21passt_reference_numbers():
    """Numbers from torchaudio 2.11 `kaldi.get_mel_banks(128, 1024, 32000, 0, 15000)` (hear21passt's
    eval-mode banks, padded with a zero Nyquist column), computed once with the real torchaudio."""
    banks = Passt(TINY).mel.mel_banks
    assert banks.shape == (128, 513)
    assert torch.allclose(banks.sum(dim=1)[[0, 10, 127]], torch.tensor([0.188595, 0.721652, 11.832725]), atol=1e-4)
    assert banks.argmax(dim=1)[[0, 64, 127]].tolist() == [1, 85, 468]
    assert banks[:, -1].abs().max() == 0


def test_ten_seconds_fill_exactly_the_time_positions():
    """10 s -> 1000 frames (pre-emphasis drops one sample) -> 99 patches = the 99 positions."""
    model = Passt(replace(passt.VARIANTS[passt.DEFAULT_VARIANT], **SHALLOW)).eval()
    wave = torch.randn(1, 10 * SR) * 0.1
    assert model.mel(wave).shape == (1, 128, 1000)
    assert model.patch_embed(model.mel(wave).unsqueeze(1)).shape[-2:] == (12, 99)
    with torch.no_grad():
        whole = model(wave)
        direct = model.forward_window(wave)
    assert torch.equal(whole["logits"], direct["logits"])  # not windowed at exactly one window


def test_thirty_second_variant_takes_thirty_seconds_in_one_pass():
    model = Passt(replace(passt.VARIANTS["passt_s_f128_30sec_p16_s10_ap473_swa"], **SHALLOW)).eval()
    wave = torch.randn(1, 30 * SR) * 0.1
    assert model.patch_embed(model.mel(wave).unsqueeze(1)).shape[-1] == 299  # <= 300 positions
    with torch.no_grad():
        assert torch.equal(model(wave)["embedding"], model.forward_window(wave)["embedding"])


def test_outputs_equal_the_upstream_implementation():
    """Reference numbers computed once with hear21passt 0.0.26 (`PaSST(img_size=(128, 998), stride=10,
    embed_dim=16, depth=2, num_heads=2, distilled=True)` after its eval-mode `AugmentMelSTFT`, with
    torchaudio 2.11's mel banks) on the same weights and input."""
    model = fill_like_the_reference_run(Passt(replace(passt.VARIANTS[passt.DEFAULT_VARIANT], **NARROW, depth=2)))
    with torch.no_grad():
        out = model(reference_signal())
    assert torch.allclose(out["logits"][0, :4], torch.tensor([-1.650198, -0.32846, 1.004939, 0.815262]), atol=2e-4)
    assert torch.allclose(out["embedding"][0, :4], torch.tensor([1.386746, 1.800641, -0.541496, -0.553387]),
                          atol=2e-4)


# ---- behaviour on a tiny configuration ----

def test_outputs_shapes_and_determinism():
    torch.manual_seed(0)
    model = Passt(TINY).eval()
    wave = torch.randn(3, SR // 4) * 0.1
    with torch.no_grad():
        out, again, alone = model(wave), model(wave), model(wave[2:])
    assert out["logits"].shape == (3, 527) and out["embedding"].shape == (3, 16)
    assert torch.equal(out["logits"], again["logits"])
    assert torch.allclose(out["embedding"][2:], alone["embedding"], atol=1e-5)


def test_long_clips_average_hear21passt_windows():
    torch.manual_seed(0)
    model = Passt(TINY).eval()
    length = int(1.3 * SR)
    wave = torch.randn(2, length) * 0.1
    window, hop = SR // 2, SR // 8
    padded = np.pad(wave.numpy(), ((0, 0), (window // 2, window // 2)), mode="reflect")
    starts = range(0, padded.shape[1] - window + 1, hop)
    assert len(starts) == 11  # (1.3 s + 0.5 s - 0.5 s) / 0.125 s + 1
    with torch.no_grad():
        per_window = [model.forward_window(torch.from_numpy(padded[:, s:s + window].copy())) for s in starts]
        out = model(wave)
    for key in ("logits", "embedding"):
        expected = torch.stack([w[key] for w in per_window]).mean(dim=0)
        assert torch.allclose(out[key], expected, atol=1e-6), key
    assert not torch.allclose(out["logits"], per_window[0]["logits"], atol=1e-3)


def test_windows_are_cut_per_clip():
    model = Passt(TINY).eval()
    wave = torch.arange(2 * SR, dtype=torch.float32).reshape(2, SR)
    windows = model.windows(wave)
    assert windows.shape == (9, 2, SR // 2)  # (1 s + 0.5 s - 0.5 s) / 0.125 s + 1
    # window k starts k hops into the padded clip, i.e. at k * 0.125 s - 0.25 s of the clip itself
    assert torch.equal(windows[4, 1], wave[1, SR // 4: 3 * SR // 4])
    assert torch.equal(windows[0, 0, : SR // 4], wave[0, 1: SR // 4 + 1].flip(0))  # reflected start


def test_inputs_shorter_than_one_patch_are_zero_padded():
    model = Passt(TINY).eval()
    short = torch.randn(1, 1000)
    with torch.no_grad():
        out = model(short)
        padded = model(torch.nn.functional.pad(short, (0, model.min_samples - 1000)))
    assert torch.equal(out["logits"], padded["logits"])


def test_structured_patchout_only_in_training():
    config = PasstConfig(**{**asdict(TINY), "s_patchout_t": 2, "s_patchout_f": 4})
    model = Passt(config)
    spec = torch.randn(1, 1, 128, 50)
    model.eval()
    assert torch.equal(model.forward_features(spec), model.forward_features(spec))
    model.train()
    torch.manual_seed(1)
    first = model.forward_features(spec)
    torch.manual_seed(2)
    assert not torch.allclose(first, model.forward_features(spec))
    seen = []
    model.blocks[0].register_forward_hook(lambda m, i, o: seen.append(i[0].shape[1]))
    model.forward_features(spec)
    assert seen == [2 + (12 - 4) * (4 - 2)]  # tokens + kept frequency rows x kept time columns


def test_too_long_spectrogram_is_refused_with_a_pointer_to_forward():
    model = Passt(TINY)
    with pytest.raises(ValueError, match="windows it"):
        model.forward_features(torch.randn(1, 1, 128, 100))
