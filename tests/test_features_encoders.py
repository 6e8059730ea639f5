"""DINOv2 and CLIP extractors: torch-fidelity 0.4 parity, weight lookup, and the weights-only gates.

Every weights file here is random and made by the test (ViT-S/14 in DINOv2's official layout,
CLIP ViT-B/32 as a TorchScript archive like OpenAI's); nothing is downloaded. torch-fidelity's
DINOv2 extractor gets its network from torch hub: the official code when it is in the hub cache
(``facebookresearch_dinov2_main``, or ``$GEN_EVAL_TEST_DINOV2_CODE``), else timm's network
(which then only checks preprocessing, the fused forward and the metrics).
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch_fidelity

from gen_eval.bench.encoders_bench import make_random_clip_archive, make_random_dinov2_weights
from gen_eval.bench.inception_weights import varied_images
from gen_eval.bench.parity import fid_eigvals_rank_limited
from gen_eval.bench.parity_encoders import ImageDataset
from gen_eval.errors import GenEvalError
from gen_eval.features import create_extractor, extractor_status
from gen_eval.features.clip import WEIGHTS as CLIP_WEIGHTS
from gen_eval.features.dinov2 import WEIGHTS as DINO_WEIGHTS
from gen_eval.features.dinov2 import official_shapes
from gen_eval.metrics import MetricContext, get_metric

_HUB_CODE = Path(
    os.environ.get("GEN_EVAL_TEST_DINOV2_CODE", "")
    or Path(torch.hub.get_dir()) / "facebookresearch_dinov2_main"
)
N = 8  # images per set: enough for k-NN with k=3, quick through a ViT on the CPU


@pytest.fixture(autouse=True)
def _isolated_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for spec in [*DINO_WEIGHTS.values(), *CLIP_WEIGHTS.values()]:
        monkeypatch.delenv(spec.env, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)


@pytest.fixture(scope="session")
def dino_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = make_random_dinov2_weights(tmp_path_factory.mktemp("dinov2") / "dinov2_vits14_pretrain.pth")
    shapes = {k: tuple(v.shape) for k, v in torch.load(path, weights_only=True).items()}
    assert shapes == official_shapes("dinov2-vit-s14")
    return path


def _official_dinov2(weights: Path) -> torch.nn.Module:
    """The network torch-fidelity would get from torch hub, with these weights."""
    state = torch.load(weights, weights_only=True)
    if _HUB_CODE.is_dir():
        os.environ["XFORMERS_DISABLED"] = "1"
        model = torch.hub.load(str(_HUB_CODE), "dinov2_vits14", source="local", pretrained=False)
        model.load_state_dict(state)
        return model.eval()
    from gen_eval.features.dinov2 import build_network

    return build_network("dinov2-vit-s14", state)


@pytest.fixture(scope="session")
def clip_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_random_clip_archive(tmp_path_factory.mktemp("clip") / "ViT-B-32.pt")


@pytest.fixture(scope="session")
def images() -> tuple[torch.Tensor, torch.Tensor]:
    """Generated and reference sets that overlap in part (half the reference is inverted)."""
    half = N // 2
    return varied_images(N, 32, seed=1), torch.cat(
        [varied_images(half, 32, seed=2), 255 - varied_images(half, 32, seed=3)]
    )


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def _fidelity_dinov2(weights: Path, monkeypatch: pytest.MonkeyPatch):
    """torch-fidelity's own DINOv2 extractor, its hub call answered with these weights."""
    from torch_fidelity.feature_extractor_dinov2 import FeatureExtractorDinoV2

    # Built before the patch: _official_dinov2 itself calls torch.hub.load for the hub code.
    network = _official_dinov2(weights)
    monkeypatch.setattr(torch.hub, "load", lambda *a, **k: network)
    return FeatureExtractorDinoV2("dinov2-vit-s-14", ["dinov2"]).eval()


def test_dinov2_features_equal_torch_fidelity(dino_weights, images, monkeypatch):
    fidelity = _fidelity_dinov2(dino_weights, monkeypatch)
    batch = images[0][:4]
    with torch.no_grad():
        theirs = fidelity(batch)[0]
    extractor = create_extractor("dinov2-vit-s14", weights_path=dino_weights, resize_mode="legacy-tf")
    fast = extractor(batch)
    grey = batch[:2].float().mean(1, keepdim=True).to(torch.uint8)  # grey images read as RGB
    assert torch.equal(extractor(grey)["features"], extractor(grey.repeat(1, 3, 1, 1))["features"])
    plain = create_extractor("dinov2-vit-s14", weights_path=dino_weights, resize_mode="legacy-tf", fast=False)
    assert _rel(fast["features"], theirs) < 1e-5
    assert _rel(plain(batch)["features"], theirs) < 1e-6
    assert fast["features"].shape == (4, 384)
    # The default (EDM2's bicubic) is another convention: the features must differ, visibly.
    assert (
        _rel(create_extractor("dinov2-vit-s14", weights_path=dino_weights)(batch)["features"], theirs) > 1e-3
    )


def test_dinov2_bicubic_is_edm2s_preprocessing(dino_weights, images):
    """EDM2's detector: interpolate(bicubic, antialias) on [0, 255], /255, ImageNet mean/std."""
    extractor = create_extractor("dinov2-vit-s14", weights_path=dino_weights, fast=False)
    x = torch.nn.functional.interpolate(
        images[0][:2].float(), size=(224, 224), mode="bicubic", antialias=True
    )
    x = (x / 255 - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]
    ).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = extractor.model(x)
    assert _rel(extractor(images[0][:2])["features"], expected) < 1e-6
    assert "bicubic" in extractor.describe()["preprocessing"]


def test_clip_features_equal_torch_fidelity(clip_weights, images):
    from torch_fidelity.feature_extractor_clip import FeatureExtractorCLIP

    with pytest.warns(FutureWarning):  # torch-fidelity loads the archive with torch.jit.load
        fidelity = FeatureExtractorCLIP(
            "clip-vit-b-32", ["clip"], feature_extractor_weights_path=str(clip_weights)
        )
    with torch.no_grad():
        theirs = fidelity.eval()(images[0][:4])[0]
    ours = create_extractor("clip-vit-b32", weights_path=clip_weights, resize_mode="legacy-tf")(images[0][:4])
    assert _rel(ours["features"], theirs) < 1e-5
    plain = create_extractor("clip-vit-b32", weights_path=clip_weights, resize_mode="legacy-tf", fast=False)
    assert _rel(plain(images[0][:4])["features"], theirs) == 0.0


def _our_metrics(extractor, images) -> dict[str, float]:
    gen, ref = extractor(images[0]), extractor(images[1])
    context = MetricContext(num_resamples=0, random_state=0, options={"kid_subset_size": N})
    results = {}
    for name in ("fid", "kid", "precision_recall"):
        results.update(get_metric(name)(gen, ref, context))
    values = {name: result.value for name, result in results.items()}
    from torch_fidelity.metric_kid import kid_features_to_metric

    # torch-fidelity's KID formula on these features in float64 (its calculate_metrics runs float32).
    float64 = kid_features_to_metric(
        gen["features"].double(), ref["features"].double(), kid_subset_size=N, verbose=False
    )
    values["kid_fidelity_float64"] = float64["kernel_inception_distance_mean"]
    values["fid_rank_limited"] = fid_eigvals_rank_limited(
        gen["features"].double().numpy(), ref["features"].double().numpy()
    )
    return values


def _their_metrics(feature_extractor: str, images, **kwargs) -> dict[str, float]:
    raw = torch_fidelity.calculate_metrics(
        input1=ImageDataset(images[0]),
        input2=ImageDataset(images[1]),
        cuda=False,
        fid=True,
        kid=True,
        prc=True,
        kid_subset_size=N,
        feature_extractor=feature_extractor,
        cache=False,
        verbose=False,
        save_cpu_ram=True,
        **kwargs,
    )
    return {
        "fid": raw["frechet_inception_distance"],
        "kid": raw["kernel_inception_distance_mean"],
        "precision": raw["precision"],
        "recall": raw["recall"],
    }


def _assert_metrics_agree(ours: dict[str, float], theirs: dict[str, float]) -> None:
    for name in ("precision", "recall"):
        assert ours[name] == pytest.approx(theirs[name], rel=1e-4), name
    # KID is a small difference of kernel means: torch-fidelity's float32 arithmetic loses ~0.3% of
    # it here (measured: 1.7812e-05 vs 1.7861e-05 for CLIP). Its formula in float64 agrees to 1e-9.
    assert ours["kid"] == pytest.approx(ours["kid_fidelity_float64"], rel=1e-6)
    assert ours["kid"] == pytest.approx(theirs["kid"], rel=1e-2)
    # N <= D: torch-fidelity's eigvals add square roots of noise eigenvalues (see parity.md); our
    # FID equals the rank-limited formula to 1e-4 and torch-fidelity's raw value to 1e-3.
    assert ours["fid"] == pytest.approx(ours["fid_rank_limited"], rel=1e-4)
    assert ours["fid"] == pytest.approx(theirs["fid"], rel=1e-3)
    assert 0 < theirs["precision"] < 1 or 0 < theirs["recall"] < 1  # a case where k-NN balls can differ


def test_dinov2_metrics_equal_torch_fidelity(dino_weights, images, monkeypatch):
    from torch_fidelity import registry

    network = _official_dinov2(dino_weights)  # before the patch, as in _fidelity_dinov2
    monkeypatch.setattr(torch.hub, "load", lambda *a, **k: network)
    assert registry.FEATURE_EXTRACTORS_REGISTRY["dinov2-vit-s-14"]
    theirs = _their_metrics("dinov2-vit-s-14", images)
    ours = _our_metrics(
        create_extractor("dinov2-vit-s14", weights_path=dino_weights, resize_mode="legacy-tf"), images
    )
    _assert_metrics_agree(ours, theirs)


def test_clip_metrics_equal_torch_fidelity(clip_weights, images):
    with pytest.warns(FutureWarning):
        theirs = _their_metrics("clip-vit-b-32", images, feature_extractor_weights_path=str(clip_weights))
    ours = _our_metrics(
        create_extractor("clip-vit-b32", weights_path=clip_weights, resize_mode="legacy-tf"), images
    )
    _assert_metrics_agree(ours, theirs)


@pytest.mark.parametrize("name", ["dinov2-vit-l14", "clip-vit-l14-336"])
def test_missing_weights_error_is_one_line_naming_the_file(name):
    spec = (DINO_WEIGHTS | CLIP_WEIGHTS)[name]
    with pytest.raises(GenEvalError) as error:
        create_extractor(name)
    message = str(error.value)
    assert "\n" not in message
    assert spec.filename in message and spec.url in message and spec.env in message
    assert str(spec.hub_cache_path()) in message


def test_weights_found_in_env_then_hub_cache_and_listed(dino_weights, monkeypatch):
    spec = DINO_WEIGHTS["dinov2-vit-s14"]
    rows = {row["name"]: row for row in extractor_status()}
    assert not rows["dinov2-vit-s14"]["available"] and spec.env in rows["dinov2-vit-s14"]["detail"]
    monkeypatch.setenv(spec.env, str(dino_weights))
    assert {r["name"]: r for r in extractor_status()}["dinov2-vit-s14"]["detail"] == str(dino_weights)
    monkeypatch.delenv(spec.env)
    spec.hub_cache_path().parent.mkdir(parents=True)
    spec.hub_cache_path().symlink_to(dino_weights)
    assert create_extractor("dinov2-vit-s14").weights_path == spec.hub_cache_path()
    monkeypatch.setenv(spec.env, str(dino_weights.parent / "typo.pth"))
    with pytest.raises(GenEvalError, match=r"typo\.pth: does not exist"):
        create_extractor("dinov2-vit-s14")


class _Planted:
    """Unpickling this would create ``marker``: a stand-in for code in a weights file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_with_planted_object_is_refused(dino_weights, tmp_path):
    marker = tmp_path / "ran"
    state = torch.load(dino_weights, weights_only=True)
    state["planted"] = _Planted(marker)
    evil = tmp_path / "dinov2_vits14_pretrain.pth"
    torch.save(state, evil)
    with pytest.raises(GenEvalError, match="refused to load it") as error:
        create_extractor("dinov2-vit-s14", weights_path=evil)
    assert "\n" not in str(error.value) and not marker.exists()


def test_torchscript_archive_with_planted_object_is_refused(clip_weights, tmp_path):
    marker = tmp_path / "ran"
    evil = tmp_path / "ViT-B-32.pt"
    with zipfile.ZipFile(clip_weights) as source, zipfile.ZipFile(evil, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename.endswith("/data.pkl"):
                data = pickle.dumps({"visual": _Planted(marker)}, protocol=2)
            target.writestr(item, data)
    with pytest.raises(GenEvalError, match="TorchScript archive refused") as error:
        create_extractor("clip-vit-b32", weights_path=evil)
    assert "\n" not in str(error.value) and not marker.exists()
    # A file of another variant is refused by name, not run into a shape error.
    state = {k: v for k, v in torch.jit.load(str(clip_weights)).state_dict().items()}
    state["visual.proj"] = state["visual.proj"][:, :100]
    wrong = tmp_path / "wrong.pth"
    torch.save(state, wrong)
    with pytest.raises(GenEvalError, match="not this variant's weights"):
        create_extractor("clip-vit-b32", weights_path=wrong)


def test_plain_state_dict_of_clip_gives_the_same_features(clip_weights, tmp_path, images):
    buffer = io.BytesIO()
    torch.save(torch.jit.load(str(clip_weights)).state_dict(), buffer)
    plain = tmp_path / "clip.pth"
    plain.write_bytes(buffer.getvalue())
    a = create_extractor("clip-vit-b32", weights_path=clip_weights)(images[0][:2])["features"]
    b = create_extractor("clip-vit-b32", weights_path=plain)(images[0][:2])["features"]
    assert torch.equal(a, b)
    assert np.isfinite(a.numpy()).all()


def test_fd_dinov2_is_fid_on_dinov2_l14_features_only():
    from gen_eval.features.dinov2 import DinoV2Extractor, DinoV2LargeExtractor
    from gen_eval.metrics import choose_metrics

    generator = torch.Generator().manual_seed(0)
    gen = {"features": torch.randn(40, 6, generator=generator) + 3}
    ref = {"features": torch.randn(50, 6, generator=generator)}
    context = MetricContext(num_resamples=0)
    assert (
        get_metric("fd_dinov2")(gen, ref, context)["fd_dinov2"].value
        == get_metric("fid")(gen, ref, context)["fid"].value
    )
    with pytest.raises(GenEvalError, match="use --features dinov2-vit-l14"):
        choose_metrics(["fd_dinov2"], {"features", *DinoV2Extractor.provides}, "image")
    assert "fd_dinov2" in choose_metrics(None, {"features", *DinoV2LargeExtractor.provides}, "image")
    assert "fd_dinov2" not in choose_metrics(None, {"features"}, "image")


def test_evaluate_runs_the_feature_metrics_and_cache_on_dinov2(dino_weights, images, tmp_path):
    from gen_eval.evaluation import evaluate

    for role, batch in zip(("gen", "ref"), images, strict=True):
        np.savez(tmp_path / f"{role}.npz", arr_0=batch.permute(0, 2, 3, 1).numpy())
    runs = [
        evaluate(
            tmp_path / "gen.npz",
            tmp_path / "ref.npz",
            features="dinov2-vit-s14",
            weights=dino_weights,
            metrics=["fid", "kid", "precision_recall"],
            num_resamples=0,
            collapse=False,
            cache_dir=tmp_path / "cache",
            metric_options={"kid_subset_size": N},
        )
        for _ in range(2)
    ]
    assert runs[0].manifest["extractor"]["name"] == "dinov2-vit-s14"
    assert "bicubic" in runs[0].manifest["extractor"]["preprocessing"]
    assert {k: r.value for k, r in runs[0].metrics.items()} == {
        k: r.value for k, r in runs[1].metrics.items()
    }
    assert runs[0].metrics["fid"].value > 0
    with pytest.raises(GenEvalError, match="dinov2-vit-l14"):
        evaluate(
            tmp_path / "gen.npz",
            tmp_path / "ref.npz",
            features="dinov2-vit-s14",
            weights=dino_weights,
            metrics=["fd_dinov2"],
        )
    # --resize-mode reaches the encoders: torch-fidelity's convention is recorded, cached apart,
    # changes the features, and the reproduce command states it; Inception's modes are refused.
    legacy = evaluate(
        tmp_path / "gen.npz",
        tmp_path / "ref.npz",
        features="dinov2-vit-s14",
        weights=dino_weights,
        metrics=["fid"],
        num_resamples=0,
        collapse=False,
        cache_dir=tmp_path / "cache",
        resize_mode="legacy-tf",
    )
    assert legacy.manifest["options"]["resize_mode"] == "legacy-tf"
    assert runs[0].manifest["options"]["resize_mode"] == "bicubic"
    assert "legacy-tf" in legacy.manifest["extractor"]["preprocessing"]
    assert legacy.metrics["fid"].value != runs[0].metrics["fid"].value
    from gen_eval.report.manifest import reproduce_command

    assert "--resize-mode legacy-tf" in reproduce_command(legacy.manifest)
    assert "--resize-mode" not in reproduce_command(runs[0].manifest)
    with pytest.raises(
        GenEvalError,
        match="--resize-mode clean is not one of --features dinov2-vit-s14's: bicubic, legacy-tf",
    ):
        evaluate(
            tmp_path / "gen.npz",
            tmp_path / "ref.npz",
            features="dinov2-vit-s14",
            weights=dino_weights,
            resize_mode="clean",
        )


@pytest.mark.parametrize("family", ["dinov2", "clip"])
def test_fused_forward_without_onednn_is_the_cuda_paths_arithmetic(
    family, dino_weights, clip_weights, images, monkeypatch
):
    """Off the CPU (CUDA) the fused forward runs F.linear instead of oneDNN: checked here on the CPU."""
    import gen_eval.features.vit_fast as vit_fast

    name, weights = ("dinov2-vit-s14", dino_weights) if family == "dinov2" else ("clip-vit-b32", clip_weights)
    reference = create_extractor(name, weights_path=weights, fast=False)(images[0][:2])["features"]
    monkeypatch.setattr(vit_fast, "onednn_available", lambda device: False)
    extractor = create_extractor(name, weights_path=weights)
    assert not extractor.blocks.uses_onednn
    assert _rel(extractor(images[0][:2])["features"], reference) < 1e-5


def test_batch_split_over_threads_gives_each_image_its_own_features(dino_weights, images):
    """With 2 torch threads the CPU batch runs as two single-thread parts; one part alone must agree."""
    extractor = create_extractor("dinov2-vit-s14", weights_path=dino_weights)
    batch = images[0][:5]
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        split = extractor(batch)["features"]
        assert torch.get_num_threads() == 2  # restored after the parts ran
        torch.set_num_threads(1)
        whole = extractor(batch)["features"]
        alone = extractor(batch[3:4])["features"]
    finally:
        torch.set_num_threads(previous)
    assert split.shape == (5, 384)
    assert _rel(split, whole) < 1e-6 and _rel(split[3:4], alone) < 1e-6
