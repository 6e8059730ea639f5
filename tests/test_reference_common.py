"""The reference-model plumbing: data splits, training/checkpoints, ref:NAME sources, leaderboard."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from gen_eval.cli import app
from gen_eval.collapse.classes import class_coverage
from gen_eval.collapse.known_modes import mode_coverage
from gen_eval.datasets.mixtures import get_mixture, sample_mixture
from gen_eval.errors import GenEvalError
from gen_eval.sources import open_source
from reference_models import MODELS, load_model
from reference_models.common import load_training_data
from reference_models.protocol import GenerativeModel
from reference_models.train import train_model

runner = CliRunner()


def test_validation_split_is_disjoint_fixed_and_filterable():
    data = load_training_data("digits")
    assert (len(data.train), len(data.val)) == (1293, 144)
    flat = lambda t: {bytes(row) for row in t.reshape(len(t), -1).numpy()}  # noqa: E731
    again = load_training_data("digits")
    assert torch.equal(data.val, again.val)
    # Digits has a few duplicate images, so compare indices via labels+pixels only loosely: sizes add up.
    assert len(flat(data.train) & flat(data.val)) < 5
    three = load_training_data("digits", keep_labels=[0, 1, 7])
    assert set(three.train_labels.tolist()) | set(three.val_labels.tolist()) == {0, 1, 7}


def test_training_is_reproducible_and_checkpoints_round_trip(tmp_path):
    model_a, config = train_model("baseline", directory=tmp_path / "a", show_progress=False)
    model_b, _ = train_model("baseline", directory=tmp_path / "b", show_progress=False)
    assert torch.equal(model_a.log_probs, model_b.log_probs)
    loaded = load_model("baseline", directory=tmp_path / "a")
    assert torch.equal(loaded.log_probs, model_a.log_probs)
    assert config["seed"] == 0 and config["hyperparameters"] == {"alpha": 1.0}
    saved = json.loads((tmp_path / "a" / "baseline.json").read_text())
    assert saved["summary"]["val_bits_per_dim"] < math.log2(17)
    assert (tmp_path / "a" / "baseline.log.jsonl").read_text().strip()
    # Each pixel's categorical is normalised.
    assert torch.allclose(loaded.log_probs.exp().sum(-1), torch.ones(1, 8, 8, dtype=torch.float64))


@pytest.mark.parametrize("name", [n for n, e in MODELS.items() if e.checkpoint.is_file()])
def test_every_shipped_model_follows_the_protocol(name):
    model = load_model(name)
    assert MODELS[name].checkpoint.stat().st_size < 5e6
    if callable(getattr(model, "translate", None)):  # image-to-image (issue 23): answers inputs, no sample()
        _check_translator(model)
        return
    assert isinstance(model, GenerativeModel)
    samples = model.sample(4, generator=torch.Generator().manual_seed(0))
    expected = {"ring8": (4, 2), "grid25": (4, 2), "shapes3d": (4, 2048, 3)}.get(MODELS[name].dataset)
    if MODELS[name].dataset in ("census_names", "hmm_language"):  # text models sample strings
        assert len(samples) == 4 and all(isinstance(s, str) for s in samples)
    elif expected:
        assert tuple(samples.shape) == expected
    else:
        assert samples.shape[0] == 4 and samples.shape[1] == 1 and samples.ndim == 4
        if samples.dtype != torch.uint8:
            assert samples.min() >= 0 and samples.max() <= 1


def _check_translator(model):
    """A paired model answers its task's inputs with uint8 targets' shape; a translator 8x8 digits with 28x28."""
    from gen_eval.datasets import get_dataset
    from gen_eval.datasets.tasks import get_task, task_names

    if model.task in task_names():
        inputs, targets, _ = get_task(model.task).read("test", 0, 4)
    else:  # unpaired translation: digits (8x8) <-> mnist (28x28), either way
        from gen_eval.sources.translation import TRANSLATIONS

        source, target = TRANSLATIONS[model.task]
        inputs, _ = get_dataset(source).read("test", 0, 4)
        targets, _ = get_dataset(target).read("test", 0, 4)
    outputs = model.translate(torch.from_numpy(inputs.copy()), generator=torch.Generator().manual_seed(0))
    assert outputs.dtype == torch.uint8 and tuple(outputs.shape) == targets.shape


def test_ref_source_is_seeded_cached_and_named():
    source = open_source("ref:gmm", num_samples=50, seed=3)
    batch = next(source.batches(64)).data
    assert batch.shape == (50, 1, 8, 8) and batch.dtype == torch.uint8
    assert torch.equal(batch, next(open_source("ref:gmm", num_samples=50, seed=3).batches(64)).data)
    assert source.fingerprint == open_source("ref:gmm", num_samples=50, seed=3).fingerprint
    assert source.fingerprint != open_source("ref:gmm", num_samples=50, seed=4).fingerprint
    with pytest.raises(GenEvalError, match="no reference model 'nope'"):
        open_source("ref:nope")


def test_bits_per_dim_reads_the_models_levels():
    from gen_eval import evaluate

    result = evaluate("ref:baseline", "digits:test", metrics=["bpd"], num_resamples=0, num_samples=10)
    model = load_model("baseline")
    test = open_source("digits:test").head(360).data
    expected = float(-model.log_prob(test).mean() / (64 * math.log(2)))
    bpd = result.metrics["bits_per_dim"]
    assert bpd.details["levels"] == 17 and bpd.kind == "exact"
    assert bpd.value == pytest.approx(expected, rel=1e-12)


def test_known_mode_coverage_on_perfect_and_planted_samplers():
    spec = get_mixture("ring8")
    points, _ = sample_mixture("ring8", 20_000, 0)
    perfect = mode_coverage(points, spec.centres, spec.std)
    assert perfect.modes_covered == 8 and perfect.missing == []
    assert perfect.hq_share == pytest.approx(1 - math.exp(-4.5), abs=0.003)
    assert perfect.reverse_kl < 0.01
    kept = points[np.isin(np.argmin(((points[:, None] - spec.centres) ** 2).sum(-1), 1), [0, 1, 2, 3, 4])]
    planted = mode_coverage(kept, spec.centres, spec.std)
    assert planted.covered == [0, 1, 2, 3, 4] and planted.missing == [5, 6, 7]
    assert planted.reverse_kl == pytest.approx(math.log(8 / 5), abs=0.01)
    one_mode = mode_coverage(np.repeat(spec.centres[:1], 10, 0), spec.centres, spec.std)
    assert one_mode.reverse_kl == pytest.approx(math.log(8))
    far = mode_coverage(np.zeros((10, 2)), spec.centres, spec.std)
    assert far.hq_share == 0 and far.modes_covered == 0


def test_class_coverage_flags_missing_classes():
    reference = 10 * torch.eye(10).repeat(30, 1)  # 30 of each class, confident
    generated = 10 * torch.eye(10)[torch.tensor([0, 1, 7] * 100 + [3] * 5)]  # a few stray 3s do not count
    coverage = class_coverage(generated, reference)
    assert coverage.covered == [0, 1, 7] and coverage.classes_covered == 3
    assert coverage.missing == [2, 3, 4, 5, 6, 8, 9]
    assert coverage.kl_to_reference > 1.0
    assert class_coverage(reference, reference).kl_to_reference == pytest.approx(0.0, abs=1e-12)


def test_cli_models_train_and_demo(tmp_path):
    listed = runner.invoke(app, ["models", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [row["name"] for row in json.loads(listed.output)] == list(MODELS)
    trained = runner.invoke(app, ["train", "baseline", "--out", str(tmp_path / "ckpt"), "-q"])
    assert trained.exit_code == 0 and (tmp_path / "ckpt" / "baseline.safetensors").is_file()
    wrong = runner.invoke(app, ["train", "nope"])
    assert wrong.exit_code == 2 and "no reference model 'nope'" in wrong.output
    steps = runner.invoke(app, ["train", "baseline", "--steps", "3", "--out", str(tmp_path / "x"), "-q"])
    assert steps.exit_code == 2 and "not steps" in steps.output
    demo = runner.invoke(
        app,
        [
            "demo",
            "--models",
            "baseline,gmm",
            "--num-samples",
            "100",
            "--num-resamples",
            "0",
            "--out",
            str(tmp_path / "demo"),
            "-q",
        ],
    )
    assert demo.exit_code == 0, demo.output
    board = json.loads((tmp_path / "demo" / "leaderboard.json").read_text())
    assert [row["name"] for row in board] == ["train split", "baseline", "gmm"]
    assert (tmp_path / "demo" / "gmm" / "metrics.json").is_file()
    assert board[1]["metrics"]["fid"]["value"] > board[2]["metrics"]["fid"]["value"]  # gmm beats baseline


def test_readme_protocol_example_runs_through_the_cli():
    result = runner.invoke(
        app,
        [
            "evaluate",
            "examples/pixel_categorical.py:make_model",
            "--trust-code",
            "--num-samples",
            "200",
            "--metrics",
            "fid,bpd",
            "--num-resamples",
            "0",
            "--no-save",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)["metrics"]
    assert metrics["bits_per_dim"]["kind"] == "exact"
    assert 2.3 < metrics["bits_per_dim"]["value"] < 2.5  # what the shipped baseline scores


def test_class_coverage_ignores_unconfident_predictions():
    reference = 10 * torch.eye(10).repeat(30, 1)
    blurry = torch.zeros(300, 10)  # uniform softmax: no class is read
    blurry[:, 3] = 0.01
    assert class_coverage(blurry, reference).classes_covered == 0
    assert class_coverage(blurry, reference, min_confidence=0.0).covered == [3]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # 5 EM iterations, on purpose
def test_gmm_trains_in_one_small_step_and_train_picks_the_dataset(tmp_path):
    tiny = {"components": [2], "reg_covar": [0.1], "dequantisation_copies": 1, "max_iter": 5}
    model, config = train_model("gmm", directory=tmp_path, show_progress=False, overrides=tiny)
    loaded = load_model("gmm", directory=tmp_path)
    x = open_source("digits:test").head(20).data
    g = torch.Generator().manual_seed(0)
    assert torch.equal(loaded.log_prob(x, torch.Generator().manual_seed(0)), model.log_prob(x, g))
    assert config["hyperparameters"]["chosen_components"] == 2
    from reference_models import resolve_model

    assert resolve_model("dcgan", "ring8") == "dcgan_ring8"
    assert resolve_model("beta_vae", "shapes") == "beta_vae_shapes"
    assert resolve_model("vae", "digits") == "vae"
    with pytest.raises(KeyError, match="not bundled for dataset 'ring8'"):
        resolve_model("vae", "ring8")
    wrong = runner.invoke(app, ["train", "pixelcnn", "--dataset", "grid25"])
    assert wrong.exit_code == 2 and "not bundled" in wrong.output
