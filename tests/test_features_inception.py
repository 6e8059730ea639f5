"""InceptionV3 extractor: weight lookup, the weights_only gate, and parity with torch-fidelity.

All weights here are random but informative (see ``inception_weights.py``); nothing is downloaded.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
import torch_fidelity.feature_extractor_inceptionv3 as fidelity_inception

import gen_eval.features.inception as inception_module
from gen_eval.bench.inception_weights import make_informative_inception_weights, varied_images
from gen_eval.errors import GenEvalError
from gen_eval.features import extractor_class
from gen_eval.features.inception import (
    INCEPTION_WEIGHTS_ENV,
    INCEPTION_WEIGHTS_FILENAME,
    INCEPTION_WEIGHTS_URL,
    InceptionExtractor,
    hub_cache_weights_path,
    resolve_inception_weights,
)


def _no_download(*args: object, **kwargs: object) -> None:
    raise AssertionError("a test tried to download weights")


@pytest.fixture(scope="session", autouse=True)
def _downloads_fail():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.hub, "load_state_dict_from_url", _no_download)
        mp.setattr(torch.hub, "download_url_to_file", _no_download)
        mp.setattr(fidelity_inception, "load_state_dict_from_url", _no_download)
        yield


@pytest.fixture(autouse=True)
def _isolated_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No env var, and a torch hub dir inside tmp_path (never the real home cache)."""
    monkeypatch.delenv(INCEPTION_WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # an earlier set_dir() would beat TORCH_HOME


@pytest.fixture(scope="session")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_informative_inception_weights(tmp_path_factory.mktemp("inception") / "informative.pth")


@pytest.fixture(scope="session")
def images() -> torch.Tensor:
    """8 varied 32x32 images; the last two are grey stored as RGB."""
    colour = varied_images(8, 32, seed=1)
    grey = colour[6:].float().mean(1, keepdim=True).round().to(torch.uint8)
    return torch.cat([colour[:6], grey.repeat(1, 3, 1, 1)])


@pytest.fixture(scope="session")
def extractor(weights_file: Path) -> InceptionExtractor:
    return InceptionExtractor(weights_path=weights_file)


@pytest.fixture(scope="session")
def features(extractor: InceptionExtractor, images: torch.Tensor) -> dict[str, torch.Tensor]:
    return extractor(images)


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not read by the lookup")
    return path


# --- where the weights come from ---------------------------------------------------------------


def test_flag_beats_env_beats_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flag, env = _touch(tmp_path / "flag.pth"), _touch(tmp_path / "env.pth")
    hub = _touch(hub_cache_weights_path())
    assert hub.is_relative_to(tmp_path) and hub.name == INCEPTION_WEIGHTS_FILENAME
    monkeypatch.setenv(INCEPTION_WEIGHTS_ENV, str(env))
    assert resolve_inception_weights(flag) == flag
    assert resolve_inception_weights(str(flag)) == flag
    assert resolve_inception_weights() == env
    monkeypatch.delenv(INCEPTION_WEIGHTS_ENV)
    assert resolve_inception_weights() == hub


def test_hub_cache_follows_torch_hub_set_dir(tmp_path: Path) -> None:
    torch.hub.set_dir(str(tmp_path / "other_hub"))  # undone by _isolated_lookup's monkeypatch
    cached = _touch(tmp_path / "other_hub" / "checkpoints" / INCEPTION_WEIGHTS_FILENAME)
    assert resolve_inception_weights() == cached
    assert InceptionExtractor.availability() == (True, str(cached))


def test_named_but_missing_file_is_reported_not_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _touch(hub_cache_weights_path())
    monkeypatch.setenv(INCEPTION_WEIGHTS_ENV, str(_touch(tmp_path / "env.pth")))
    with pytest.raises(GenEvalError, match=r"--inception-weights=.*typo\.pth: does not exist"):
        resolve_inception_weights(tmp_path / "typo.pth")
    with pytest.raises(GenEvalError, match="is a directory"):
        resolve_inception_weights(tmp_path)
    monkeypatch.setenv(INCEPTION_WEIGHTS_ENV, str(tmp_path / "gone.pth"))
    with pytest.raises(GenEvalError, match=rf"{INCEPTION_WEIGHTS_ENV}=.*gone\.pth: does not exist"):
        resolve_inception_weights()


def test_no_weights_anywhere_says_how_to_get_them() -> None:
    with pytest.raises(GenEvalError) as info:
        InceptionExtractor()
    message = str(info.value)
    for needed in (
        INCEPTION_WEIGHTS_FILENAME,
        INCEPTION_WEIGHTS_URL,
        INCEPTION_WEIGHTS_ENV,
        "--inception-weights",
    ):
        assert needed in message
    assert str(hub_cache_weights_path()) in message
    assert "\n" not in message
    assert InceptionExtractor.availability() == (False, message)
    assert extractor_class("inception") is InceptionExtractor


def test_availability_does_not_read_the_file(tmp_path: Path) -> None:
    garbage = _touch(tmp_path / "garbage.pth")
    assert InceptionExtractor.availability(weights_path=garbage) == (True, str(garbage))


# --- the weights_only gate ---------------------------------------------------------------------


class _RunsCodeWhenUnpickled:
    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (exec, (f"open({str(self.sentinel)!r}, 'w').close()",))


def test_pickled_code_is_refused_and_never_runs(tmp_path: Path) -> None:
    sentinel = tmp_path / "SENTINEL"
    evil = tmp_path / "evil.pt"
    torch.save({"Conv2d_1a_3x3.conv.weight": _RunsCodeWhenUnpickled(sentinel)}, evil)
    with pytest.raises(GenEvalError, match="not a plain tensor state dict") as info:
        InceptionExtractor(weights_path=evil)
    assert str(evil) in str(info.value) and "\n" not in str(info.value)
    assert not sentinel.exists()
    # Control: the payload is live, so the assertion above could have failed.
    torch.load(evil, weights_only=False)
    assert sentinel.exists()


def test_truncated_file_is_refused(weights_file: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.pth"
    data = weights_file.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(GenEvalError, match=r"truncated\.pth: not a plain tensor state dict"):
        InceptionExtractor(weights_path=truncated)


def test_safe_file_that_is_not_a_state_dict_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(3)], path)
    with pytest.raises(GenEvalError, match="not a plain tensor state dict"):
        InceptionExtractor(weights_path=path)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda sd: sd.__setitem__("Mixed_5b.renamed", sd.pop("Mixed_5b.branch1x1.conv.weight")),
            "missing 1",
        ),
        (
            lambda sd: sd.__setitem__("fc.weight", torch.zeros(1000, 2048)),
            r"wrong-shape 1 \(e\.g\. fc\.weight\)",
        ),
    ],
    ids=["renamed-key", "wrong-shape"],
)
def test_state_dict_not_matching_the_network_is_refused(weights_file, tmp_path, edit, expected) -> None:
    state_dict = torch.load(weights_file, weights_only=True)
    edit(state_dict)
    path = tmp_path / "edited.pth"
    torch.save(state_dict, path)
    with pytest.raises(GenEvalError, match=expected) as info:
        InceptionExtractor(weights_path=path)
    assert "does not match torch-fidelity's InceptionV3" in str(info.value)


# --- features ----------------------------------------------------------------------------------


def test_shapes_dtypes_and_finite(features: dict[str, torch.Tensor]) -> None:
    assert tuple(features) == InceptionExtractor.feature_names
    shapes = {name: tuple(value.shape) for name, value in features.items()}
    assert shapes == {"features": (8, 2048), "logits": (8, 1008), "logits_unbiased": (8, 1008)}
    for value in features.values():
        assert value.dtype == torch.float32 and torch.isfinite(value).all()
    assert not torch.allclose(features["logits"], features["logits_unbiased"])  # fc bias is non-zero


def test_random_weights_are_informative(features: dict[str, torch.Tensor]) -> None:
    feats = features["features"][:6]  # the six colour images
    spread = (feats.std(0).mean() / feats.mean(0).abs().mean()).item()
    # Calibration: these weights give ~1.0 here; default init or kaiming with identity BatchNorm
    # give 0.2-0.33, with 10-18 % of features zero for every image (default init also vanishes: ~1e-8).
    assert spread > 0.5, f"per-dimension std / mean magnitude = {spread:.3g}: features barely differ"
    assert (feats.abs().amax(0) > 0).float().mean() > 0.95, "too many features are zero for every image"
    assert 0.05 < feats.abs().mean() < 50, "activations vanished or exploded"
    distances = torch.cdist(feats, feats) + torch.eye(len(feats)) * 1e9
    assert distances.min() > 0.05 * feats.norm(dim=1).mean()


def test_matches_torch_fidelity_on_the_same_file(weights_file, images, features) -> None:
    reference = fidelity_inception.FeatureExtractorInceptionV3(
        "inception-v3-compat",
        ["2048", "logits_unbiased", "logits"],
        feature_extractor_weights_path=str(weights_file),
    )
    with torch.inference_mode():
        theirs = dict(zip(["features", "logits_unbiased", "logits"], reference(images), strict=True))
    for name in InceptionExtractor.feature_names:
        assert _rel_err(features[name], theirs[name]) < 1e-6, name


def test_grey_one_channel_equals_repeated_rgb(extractor, images, features) -> None:
    grey = images[6:, :1]
    ours = extractor(grey)
    for name in InceptionExtractor.feature_names:
        assert _rel_err(ours[name], features[name][6:]) < 1e-5, name


def test_channels_last_agrees(weights_file, images, features) -> None:
    fast = InceptionExtractor(weights_path=weights_file, channels_last=True)
    assert fast.model.Conv2d_1a_3x3.conv.weight.is_contiguous(memory_format=torch.channels_last)
    ours = fast(images[:2])
    for name in InceptionExtractor.feature_names:
        assert _rel_err(ours[name], features[name][:2]) < 1e-4, name


def test_bad_images_are_refused(extractor: InceptionExtractor) -> None:
    for bad in (torch.zeros(1, 3, 8, 8), torch.zeros(1, 4, 8, 8, dtype=torch.uint8), torch.zeros(3, 8, 8)):
        with pytest.raises(GenEvalError, match=r"uint8 \(N, 1 or 3, H, W\)"):
            extractor(bad)


def test_fingerprint_is_file_sha256_and_hashed_once(extractor, weights_file, monkeypatch) -> None:
    assert extractor.weights_fingerprint == hashlib.sha256(weights_file.read_bytes()).hexdigest()
    assert extractor.is_official_weights is False
    assert extractor.describe()["weights_sha256"] == extractor.weights_fingerprint
    calls = []
    monkeypatch.setattr(inception_module, "file_sha256", lambda p: calls.append(p) or "x")
    assert inception_module.weights_file_sha256(weights_file) == extractor.weights_fingerprint
    assert calls == []


def test_spatial_features_are_adm_mixed_6_conv(weights_file, images, extractor, one_thread) -> None:
    from gen_eval.bench.parity_inception import peer_features

    spatial = InceptionExtractor(weights_path=weights_file, spatial=True)
    out = spatial(images[:3])
    assert out["spatial"].shape == (3, 2023) and spatial.feature_names[-1] == "spatial"
    # Asking for them leaves the pool path bit for bit as it was (same batch: same conv algorithm).
    plain = extractor(images[:3])
    for name in ("features", "logits", "logits_unbiased"):
        torch.testing.assert_close(out[name], plain[name], rtol=0, atol=0)
    # Independent: a forward hook on pytorch-fid's network (same weights), first 7 channels in NHWC order.
    theirs = torch.from_numpy(
        peer_features(images[:3], "legacy-tf", "torch-fidelity", weights_file)["spatial"]
    )
    assert _rel_err(out["spatial"].double(), theirs) <= 1e-6
    assert "spatial" not in InceptionExtractor(weights_path=weights_file)(images[:1])


def test_sfid_equals_an_independent_fd_and_adm_statistics_give_it(weights_file, tmp_path, one_thread) -> None:
    import numpy as np
    from typer.testing import CliRunner

    from gen_eval import evaluate
    from gen_eval.bench.common import write_png_folder
    from gen_eval.bench.parity import fid_eigvals_rank_limited
    from gen_eval.bench.parity_inception import peer_features
    from gen_eval.cli import app

    gen_images, ref_images = varied_images(5, 32, seed=11), varied_images(6, 32, seed=12)
    gen = write_png_folder(gen_images.numpy(), tmp_path / "gen")
    ref = write_png_folder(ref_images.numpy(), tmp_path / "ref")
    cache = tmp_path / "cache"  # each set's spatial features extracted once, for all the runs below
    common = {
        "features": "inception",
        "inception_weights": weights_file,
        "cache_dir": cache,
        "collapse": False,
    }
    run = evaluate(gen, ref, metrics=["sfid"], num_resamples=0, **common)
    # Independent: the hook's features and numpy's eigenvalues of S1 S2 (the true rank's only).
    theirs = [
        peer_features(x, "legacy-tf", "torch-fidelity", weights_file)["spatial"]
        for x in (gen_images, ref_images)
    ]
    expected = fid_eigvals_rank_limited(*theirs)
    assert run.metrics["sfid"].value == pytest.approx(expected, rel=1e-6) and expected > 1
    # ADM's reference batch from `gen-eval stats --format adm` gives the same sFID without the samples.
    adm = tmp_path / "VIRTUAL_ref.npz"
    args = ["stats", str(ref), "--features", "inception", "--format", "adm", "--out", str(adm), "-q"]
    args += ["--inception-weights", str(weights_file), "--cache-dir", str(cache)]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    with np.load(adm, allow_pickle=False) as written:
        assert sorted(written.files) == ["mu", "mu_s", "sigma", "sigma_s"]  # no images unless --adm-images
    against = evaluate(gen, adm, metrics=["sfid"], num_resamples=0, reference_features="inception", **common)
    # Statistics take the eigenvalue path on a rank-5 covariance, samples the exact low-rank one.
    assert against.metrics["sfid"].value == pytest.approx(run.metrics["sfid"].value, rel=1e-5)
    assert against.manifest["reference_statistics"]["provenance"] == "stated by the user"
    # Statistics without the spatial pair, and extractors without spatial features: one-line errors.
    pytorch_fid = tmp_path / "pt.npz"
    np.savez(pytorch_fid, mu=written_mu(adm), sigma=np.eye(2048))
    with pytest.raises(GenEvalError, match="hold no spatial statistics"):
        evaluate(
            gen, pytorch_fid, metrics=["sfid"], num_resamples=0, reference_features="inception", **common
        )
    with pytest.raises(GenEvalError, match="metric sfid needs Inception's spatial features"):
        evaluate(gen, ref, metrics=["sfid"], **{**common, "features": "identity"})


def written_mu(path: Path):
    import numpy as np

    with np.load(path, allow_pickle=False) as arrays:
        return arrays["mu"]
