"""Point-cloud models: the bundled PointNet classifier, the autoencoder, the flow and the faulty model."""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pytest
import torch

from gen_eval.collapse.classes import class_coverage
from gen_eval.datasets import shapes3d
from gen_eval.errors import GenEvalError
from gen_eval.features.pointnet import DEFAULT_WEIGHTS, PointNetExtractor, surface_variation
from gen_eval.features.pointnet_augment import imperfect
from reference_models import load_model
from reference_models.pointcloud_ae import chamfer, sphere_lattice, subsample
from reference_models.pointcloud_flow import Coupling
from reference_models.train import train_model

MODELS = ["pointcloud_ae", "pointcloud_flow", "collapsed_shapes3d"]
COUNT = 140  # test clouds read: 20 of each class


@cache
def extractor() -> PointNetExtractor:
    return PointNetExtractor()


@cache
def head_of_test_split() -> tuple[torch.Tensor, np.ndarray]:
    clouds, labels, _ = shapes3d.read("test", 0, COUNT)
    return torch.from_numpy(clouds), labels


def nearest_test_class(clouds: torch.Tensor, points: int = 128) -> np.ndarray:
    """The class of each cloud's nearest test cloud under Chamfer distance (on ``points``-point subsets).

    A classifier independent of the PointNet that reads overall shape only, blind to the fine
    surface detail the bundled autoencoder does not reproduce: the cross-check of the verdict.
    """
    g = torch.Generator().manual_seed(0)
    reference, labels = head_of_test_split()
    reference = subsample(reference, points, g)
    mine = subsample(clouds, points, g)
    nearest = [int(chamfer(c[None].expand(len(reference), -1, -1), reference).argmin()) for c in mine]
    return labels[nearest]


def as_logits(labels: np.ndarray) -> torch.Tensor:
    """Confident one-hot class scores, what :func:`class_coverage` reads."""
    return 20.0 * torch.nn.functional.one_hot(torch.from_numpy(labels), len(shapes3d.CLASSES)).float()


# ------------------------------------------------------------------------------------- the classifier
def test_pointnet_reads_the_test_split_as_its_record_says() -> None:
    record = json.loads(DEFAULT_WEIGHTS.with_suffix(".json").read_text())
    assert record["classes"] == list(shapes3d.CLASSES)
    assert record["test_items"] == 1000 and record["test_points"] == 2048
    clouds, labels = head_of_test_split()
    out = extractor()(clouds)
    assert out["features"].shape == (COUNT, 128) and out["logits"].shape == (COUNT, len(shapes3d.CLASSES))
    accuracy = float((out["logits"].argmax(1).numpy() == labels).mean())
    # The first COUNT test clouds against the record's 1,000: a binomial 3-sigma band around it.
    p = record["test_accuracy"]
    assert abs(accuracy - p) <= 3 * (p * (1 - p) / COUNT) ** 0.5 + 1e-9, (accuracy, p)
    assert p >= 0.9


def test_pointnet_ignores_point_order_and_refuses_other_shapes() -> None:
    clouds = head_of_test_split()[0][:4]
    shuffled = clouds[:, torch.randperm(clouds.shape[1], generator=torch.Generator().manual_seed(0))]
    a, b = extractor()(clouds), extractor()(shuffled)
    torch.testing.assert_close(a["logits"], b["logits"], rtol=1e-4, atol=1e-4)
    with pytest.raises(GenEvalError, match=r"\(N, P, 3\)"):
        extractor()(torch.zeros(2, 10, 2))


def test_imperfect_copies_are_reproducible_and_lose_the_flat_faces() -> None:
    cubes = shapes3d.read("test", 0, 70, points=512)[0][1::7]  # the 10 cubes among the first 70
    damaged = imperfect(cubes, np.random.default_rng(0))
    np.testing.assert_array_equal(damaged, imperfect(cubes, np.random.default_rng(0)))
    assert damaged.shape == cubes.shape and damaged.dtype == np.float32
    # A third of a cube's points lie on flat faces (variation < 1e-4); jitter and smoothing curve them.
    assert (surface_variation(cubes) < 1e-4).mean() > 0.2
    assert (surface_variation(damaged) < 1e-4).mean() < (surface_variation(cubes) < 1e-4).mean() / 2


def test_surface_variation_closed_forms() -> None:
    rng = np.random.default_rng(0)
    plane = np.concatenate([rng.uniform(-1, 1, (1, 500, 2)), np.zeros((1, 500, 1))], axis=2)
    assert np.abs(surface_variation(plane)).max() < 1e-6  # a plane has no variation
    # Isotropic scatter: equal eigenvalues would give 1/3; 16 neighbours' sample covariance has a
    # smaller smallest eigenvalue (median 0.18 here), still 100x a curved surface's.
    blob = surface_variation(rng.normal(size=(1, 4000, 3)))
    assert float(np.median(blob)) > 0.1 and blob.max() <= 1 / 3 + 1e-6
    # On a sphere of N even points the k = 16 nearest span a cap of area 4 pi k / N, a disc of
    # radius a with a^2 = 4k/N (R = 1); its sag h = rho^2 / 2 is uniform on [0, a^2 / 2], so the
    # normal variance is a^4 / 48 against a^2 / 4 along each tangent: variation ~ a^2 / 24 = k / (6N).
    for n in (1024, 4096):
        sphere = sphere_lattice(n).numpy()[None].astype(np.float64)
        v = float(np.median(surface_variation(sphere)))
        assert v == pytest.approx(16 / (6 * n), rel=0.1), n


# ---------------------------------------------------------------------------------------- the models
def test_chamfer_equals_brute_force() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 5, 3, generator=g), torch.randn(3, 7, 3, generator=g)
    brute = []
    for x, y in zip(a, b, strict=True):
        d = [[float(((p - q) ** 2).sum()) for q in y] for p in x]
        brute.append(np.mean([min(row) for row in d]) + np.mean([min(col) for col in zip(*d, strict=True)]))
    torch.testing.assert_close(
        chamfer(a, b).double(), torch.tensor(brute, dtype=torch.float64), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("name", MODELS)
def test_shipped_model_samples_encodes_and_decodes(name: str) -> None:
    model = load_model(name)
    x = model.sample(6, torch.Generator().manual_seed(0))
    assert x.shape == (6, 2048, 3) and x.dtype == torch.float32 and torch.isfinite(x).all()
    torch.testing.assert_close(x, model.sample(6, torch.Generator().manual_seed(0)), rtol=0, atol=0)
    assert not torch.equal(x, model.sample(6, torch.Generator().manual_seed(1)))
    z = model.encode(head_of_test_split()[0][:6])
    assert z.shape == (6, model.latent_dim)
    assert model.decode(z).shape == (6, 2048, 3)


def test_autoencoder_reconstructs_better_than_another_shape() -> None:
    model = load_model("pointcloud_ae")
    clouds = head_of_test_split()[0][:20]
    own = chamfer(model.decode(model.encode(clouds)), clouds)
    other = chamfer(clouds.roll(1, 0), clouds)  # each cloud against the next test cloud
    assert float(own.median()) < 0.25 * float(other.median()), (own.median(), other.median())


def test_coupling_inverts_and_its_log_determinant_is_the_jacobians() -> None:
    torch.manual_seed(0)
    layer = Coupling(kept=1, latent_dim=4, hidden=8)
    for p in layer.net[-1].parameters():  # leave the identity it starts as
        torch.nn.init.normal_(p, std=0.5)
    code, x = torch.randn(1, 4), torch.randn(1, 5, 3)
    y, log_det = layer(x, code)
    torch.testing.assert_close(layer.inverse(y, code), x, rtol=1e-5, atol=1e-5)
    for i in range(5):
        jac = torch.autograd.functional.jacobian(
            lambda p: layer(p.reshape(1, 1, 3), code)[0].reshape(3), x[0, i]
        )
        torch.testing.assert_close(log_det[0, i], torch.linalg.slogdet(jac)[1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("name", "tiny", "metric"),
    [
        ("pointcloud_ae", {"hidden": 16, "latent_dim": 4, "gmm_components": 2}, "val_chamfer"),
        (
            "pointcloud_flow",
            {"hidden": 8, "latent_dim": 4, "couplings": 3, "gmm_components": 2},
            "val_nll_per_point",
        ),
    ],
)
def test_a_few_training_steps_lower_the_validation_loss_reproducibly(name, tiny, metric, tmp_path) -> None:
    overrides = {**tiny, "max_items": 80, "points": 64, "train_points": 64, "val_every": 10, "patience": 10}
    model, _ = train_model(name, steps=30, directory=tmp_path, show_progress=False, overrides=overrides)
    rows = [json.loads(line) for line in (tmp_path / f"{name}.log.jsonl").read_text().splitlines()]
    assert rows[-1][metric] < rows[0][metric], rows
    loaded = load_model(name, directory=tmp_path)
    torch.testing.assert_close(
        loaded.sample(3, torch.Generator().manual_seed(0)), model.sample(3, torch.Generator().manual_seed(0))
    )
    again, _ = train_model(
        name, steps=30, directory=tmp_path / "again", show_progress=False, overrides=overrides
    )
    for key, value in model.state_dict().items():
        torch.testing.assert_close(again.state_dict()[key], value, rtol=0, atol=0, msg=key)


# ---------------------------------------------------------------------------------- the faulty model
@cache
def pointnet_coverage(name: str):
    """The collapse verdict's class coverage of 140 samples of ``name`` through the PointNet's logits."""
    if name in shapes3d.SPLITS:
        clouds = torch.from_numpy(shapes3d.read(name, 0, COUNT)[0])
    else:
        clouds = load_model(name).sample(COUNT, torch.Generator().manual_seed(0))
    return class_coverage(extractor()(clouds)["logits"], extractor()(head_of_test_split()[0])["logits"])


# The known limit (gen_eval/features/pointnet_augment.py): the PointNet reads the autoencoder's rounded,
# rough clouds as spheres and cylinders, so the honest model is flagged and the faulty model's own
# gaps drown. strict: these fail the day the PointNet (or the models) get good enough.
KNOWN_LIMIT = pytest.mark.xfail(
    strict=True, reason="the PointNet reads pointcloud_ae's samples as spheres and cylinders (issue 24)"
)


@pytest.mark.parametrize("name", ["validation", "train", pytest.param("pointcloud_ae", marks=KNOWN_LIMIT)])
def test_real_clouds_and_the_honest_autoencoder_miss_no_class_through_the_pointnet(name: str) -> None:
    # Every class must be judged, or "nothing missing" would say nothing.
    coverage = pointnet_coverage(name)
    assert coverage.missing == [] and len(coverage.judged) == len(shapes3d.CLASSES), coverage.to_dict()


@KNOWN_LIMIT
def test_faulty_model_is_flagged_for_exactly_its_missing_classes_through_the_pointnet() -> None:
    """The product path: the PointNet's logits through :func:`class_coverage` (today: 5 missing)."""
    model = load_model("collapsed_shapes3d")
    missing_by_design = [1, 4]  # cube, torus: its mixture never saw their codes
    assert "cube" in model.faulty and "tori" in model.faulty
    faulty = pointnet_coverage("collapsed_shapes3d")
    assert faulty.missing == missing_by_design, faulty.to_dict()
    assert len(faulty.judged) == len(shapes3d.CLASSES), faulty.to_dict()


def test_faulty_model_is_flagged_for_exactly_its_missing_classes() -> None:
    """The verdict's class coverage, classes read by the nearest test cloud under Chamfer distance.

    A classifier independent of the PointNet that reads overall shape (see KNOWN_LIMIT).
    """
    reference = as_logits(head_of_test_split()[1])
    samples = load_model("collapsed_shapes3d").sample(COUNT, torch.Generator().manual_seed(0))
    faulty = class_coverage(as_logits(nearest_test_class(samples)), reference)
    assert faulty.missing == [1, 4], faulty.to_dict()
    honest_samples = load_model("pointcloud_ae").sample(COUNT, torch.Generator().manual_seed(0))
    honest = class_coverage(as_logits(nearest_test_class(honest_samples)), reference)
    assert honest.missing == [], honest.to_dict()


# ------------------------------------------------------------------------------------------- the demo
def test_demo_section_scores_the_point_cloud_models(tmp_path) -> None:
    from gen_eval.demo.pointclouds import pointcloud_rows, score_pointcloud_models, split_names

    assert split_names(["vae", "pointcloud_ae", "dcgan"]) == (["vae", "dcgan"], ["pointcloud_ae"])
    others, clouds = split_names(None)
    assert others is None and set(clouds) == set(MODELS)
    scores = score_pointcloud_models(
        ["pointcloud_ae"],
        out_dir=tmp_path,
        num_samples=24,
        num_reference=24,
        num_resamples=0,
        show_progress=False,
    )
    assert [s.name for s in scores] == ["validation split", "pointcloud_ae"]
    assert all(s.dataset == "shapes3d" and s.run_dir for s in scores)
    assert (tmp_path / "pointcloud_ae" / "samples.png").is_file()
    columns, rows = pointcloud_rows(scores)
    assert columns[:3] == ["model", "family", "FPD"] and len(rows) == 2
    fpd = [s.value("fid") for s in scores]
    assert all(v is not None and v >= 0 for v in fpd)
