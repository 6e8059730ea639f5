"""Labelled submissions (issue 23): .npz labels, class folders, class-conditional generators.

Every way a generated set gets labels must bring exactly those labels to the metrics
(``MetricContext.generated_labels``), and every bad label a one-line error naming the file,
a non-zero exit and no run directory.
"""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from gen_eval.cli import app
from gen_eval.datasets import get_dataset
from gen_eval.errors import GenEvalError
from gen_eval.evaluation import evaluate
from gen_eval.evaluation_setup import available_inputs
from gen_eval.metrics import METRICS
from gen_eval.metrics.entry import MetricEntry
from gen_eval.metrics.result import Result
from gen_eval.runs.classes import class_grid_files
from gen_eval.schemas import validator
from gen_eval.sources import open_source
from gen_eval.sources.python import GeneratorSource, open_python_source
from gen_eval.sources.sandbox_worker import requested_classes

runner = CliRunner()
SEEN: dict[str, np.ndarray | None] = {}

MODELS = """
import torch


class Conditional:
    num_classes = 10

    def __init__(self):
        self.asked = []

    def sample(self, n, generator=None, labels=None):
        if labels is None:  # the contract: unasked, a conditional model draws classes uniformly
            labels = torch.randint(0, 10, (n,), generator=generator)
        else:
            self.asked.append(labels.clone())
        x = torch.rand(n, 1, 8, 8, generator=generator) * 0.2
        for i, c in enumerate(labels.tolist()):  # obeys: row c % 8 lit, and column 0 for c >= 8
            x[i, 0, c % 8, 1:] = 1.0
            x[i, 0, :, 0] = float(c >= 8)
        return x


class Deaf:  # declares classes but cannot be asked for one
    num_classes = 10

    def sample(self, n, generator=None):
        return torch.rand(n, 1, 8, 8, generator=generator)


class Twelve(Conditional):
    num_classes = 12


class Words(Conditional):
    num_classes = "ten"


def conditional():
    return Conditional()


def deaf():
    return Deaf()


def twelve():
    return Twelve()


def words():
    return Words()
"""


def label_probe(generated, reference, context) -> dict:
    SEEN["generated"], SEEN["reference"] = context.generated_labels, context.reference_labels
    return {"label_probe": Result("label_probe", 0.0, "lower", len(generated["features"]), 0)}


@pytest.fixture
def probe():
    SEEN.clear()
    entry = MetricEntry(label_probe, "labels", True, "records the labels the metrics receive", {}, None)
    with METRICS.registered("label_probe", entry):
        yield


@pytest.fixture
def models(tmp_path) -> Path:
    path = tmp_path / "student" / "models.py"
    path.parent.mkdir()
    path.write_text(textwrap.dedent(MODELS))
    return path


def _digits(count: int = 120) -> tuple[np.ndarray, np.ndarray]:
    images, labels = get_dataset("digits").read("train", 0, count)
    return np.asarray(images), np.asarray(labels)


def _quick(**extra) -> dict:
    return {"num_resamples": 0, "cache_dir": None, "collapse": False, "device": "cpu", **extra}


def _class_folders(root: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[0]).save(root / str(label) / f"{index:04d}.png")
    return root


def _refused(args: list[str], run: Path, *expected: str) -> None:
    """The CLI fails with a one-line error naming what is wrong, and leaves no run directory."""
    done = runner.invoke(app, ["evaluate", *args, "-r", "digits:test", "--out", str(run), "--no-cache", "-q"])
    assert done.exit_code == 2, done.output
    message = done.output.strip()
    assert message.count("\n") == 0 and "Traceback" not in message, message
    for text in expected:
        assert text in message, message
    assert not run.exists() and not list(run.parent.glob(f".{run.name}*"))


# ---- .npz labels -------------------------------------------------------------------------------


def test_npz_labels_reach_the_metrics_through_evaluate(tmp_path, probe):
    images, labels = _digits()
    order = np.random.default_rng(0).permutation(len(labels))  # labels not in class order
    np.savez(tmp_path / "gen.npz", samples=images[order], labels=labels[order])
    result = evaluate(str(tmp_path / "gen.npz"), "digits:test", metrics=["label_probe"], **_quick())
    assert np.array_equal(SEEN["generated"], labels[order])
    assert np.array_equal(SEEN["reference"], get_dataset("digits").read("test", 0, 360)[1])
    assert result.manifest["generated"]["num_classes"] == 10
    assert result.manifest["reference"]["num_classes"] is None  # a dataset's labels are facts
    kept = evaluate(
        str(tmp_path / "gen.npz"), "digits:test", metrics=["label_probe"], num_samples=25, **_quick()
    )
    assert np.array_equal(SEEN["generated"], labels[order][:25]) and "label_probe" in kept.metrics


def test_a_sample_limit_that_drops_whole_classes_is_noted(tmp_path):
    images, labels = _digits()
    order = np.argsort(labels, kind="stable")  # class-sorted, as a class-folder listing is
    np.savez(tmp_path / "sorted.npz", samples=images[order], labels=labels[order])
    kept = open_source(tmp_path / "sorted.npz", num_samples=30)
    assert any("hold no sample of" in note for note in kept.notes)
    assert not any("hold no sample of" in note for note in open_source(tmp_path / "sorted.npz").notes)
    folders = _class_folders(tmp_path / "folders", images, labels)
    missing = 10 - len(np.unique(np.sort(labels)[:25]))  # folders 0/ ... 9/ are read in class order
    assert any(
        f"hold no sample of {missing} classes" in note for note in open_source(folders, num_samples=25).notes
    )


def test_a_graded_submission_may_label_its_samples(tmp_path):
    from gen_eval.grading.submissions import _npz_key

    images, labels = _digits(20)
    np.savez(tmp_path / "named.npz", digits=images, labels=labels)
    np.savez(tmp_path / "two.npz", digits=images, more=images, labels=labels)
    assert _npz_key(tmp_path / "named.npz", "named.npz") is None  # ArraySource picks the one sample array
    assert open_source(tmp_path / "named.npz").key == "digits"
    with pytest.raises(GenEvalError, match="holds arrays digits, more; save the samples as arr_0"):
        _npz_key(tmp_path / "two.npz", "two.npz")


def test_labels_are_a_need_only_labelled_sets_meet(tmp_path):
    images, labels = _digits(40)
    np.savez(tmp_path / "plain.npz", images)
    np.savez(tmp_path / "labelled.npz", samples=images, labels=labels)
    assert "labels" not in available_inputs(open_source(tmp_path / "plain.npz"), ("features",))
    assert "labels" in available_inputs(open_source(tmp_path / "labelled.npz"), ("features",))
    assert "labels" not in available_inputs(open_source("digits:test"), ("features",))


def test_labels_change_the_cache_key(tmp_path):
    images, labels = _digits(40)
    np.savez(tmp_path / "a.npz", samples=images, labels=labels)
    np.savez(tmp_path / "b.npz", samples=images, labels=(labels + 1) % 10)
    np.savez(tmp_path / "c.npz", samples=images)
    keys = {open_source(tmp_path / name).fingerprint for name in ("a.npz", "b.npz", "c.npz")}
    assert len(keys) == 3


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (np.arange(119) % 10, "119 labels for 120 samples"),
        (np.arange(120) % 10 * 1.0, "labels are float64, not integers"),
        (np.arange(120) % 10 - 1, "label -1 at sample 0 is negative"),
        (np.zeros((120, 2), np.int64), "labels of shape (120, 2)"),
        (np.arange(120) % 13, "labels go up to 12 but the reference digits:test has classes 0-9"),
    ],
)
def test_bad_npz_labels_are_one_line_errors_naming_the_file(tmp_path, labels, expected):
    images, _ = _digits()
    np.savez(tmp_path / "gen.npz", samples=images, labels=labels)
    _refused([str(tmp_path / "gen.npz")], tmp_path / "run", "gen.npz", expected)


# ---- class folders -----------------------------------------------------------------------------


def test_class_folders_label_their_images(tmp_path, probe):
    images, labels = _digits(60)
    root = _class_folders(tmp_path / "samples", images, labels)
    source = open_source(root)
    assert source.num_classes == 10
    streamed = np.concatenate([batch.labels for batch in source.batches(7)])
    # Files come in sorted path order: each image's label is its folder's number.
    expected = [int(path.relative_to(root).parts[0]) for path in source.files]
    assert streamed.tolist() == expected and sorted(streamed.tolist()) == sorted(labels.tolist())
    for batch, start in zip(source.batches(16), range(0, 60, 16), strict=True):  # the images match too
        for image, path in zip(batch.data.numpy(), source.files[start : start + 16], strict=True):
            assert np.array_equal(image[0], np.asarray(Image.open(path)))
    evaluate(str(root), "digits:test", metrics=["label_probe"], **_quick())
    assert SEEN["generated"].tolist() == expected


def test_numbered_shards_and_a_single_numbered_folder_stay_unlabelled(tmp_path):
    images, _ = _digits(6)
    shards = _class_folders(tmp_path / "edm", images, np.array(["000000", "000000", "001000"] * 2))
    assert open_source(shards).num_classes is None
    single = _class_folders(tmp_path / "one", images, np.zeros(6, np.int64))
    assert open_source(single).num_classes is None
    named = _class_folders(tmp_path / "named", images, np.array(["cats", "dogs"] * 3))
    assert open_source(named).num_classes is None and len(open_source(named)) == 6


def test_files_or_folders_beside_class_folders_are_refused(tmp_path):
    images, labels = _digits(20)
    loose = _class_folders(tmp_path / "loose", images, labels)
    Image.fromarray(images[0, 0]).save(loose / "stray.png")
    _refused([str(loose)], tmp_path / "run", "stray.png", "an image beside the class folders 0/, 1/, 2/, ...")
    other = _class_folders(tmp_path / "other", images, labels)
    _class_folders(other / "misc", images[:2], np.array([3, 4]))  # misc/3/, misc/4/: no class of its own
    _refused([str(other)], tmp_path / "run", "other/misc", "a folder beside the class folders")
    wide = _class_folders(tmp_path / "wide", images, labels + 5)  # classes 5..14 vs digits' 0-9
    _refused([str(wide)], tmp_path / "run", "wide", f"class folders go up to {labels.max() + 5}")


# ---- class-conditional generators ---------------------------------------------------------------


def _drawn(source) -> tuple[torch.Tensor, np.ndarray]:
    batches = list(source.batches(7))
    return torch.cat([b.data for b in batches]), np.concatenate([b.labels for b in batches])


def _obeyed(images: torch.Tensor) -> np.ndarray:
    """The class each toy sample shows (its lit row, plus 8 when column 0 is lit)."""
    rows = images[:, 0, :, 1:].float().mean(-1).argmax(-1)
    return (rows + 8 * (images[:, 0, 0, 0] > 128)).numpy()


def test_a_conditional_generator_is_asked_for_balanced_classes_whatever_the_batching(models):
    source = open_python_source(f"{models}:conditional", 25, 3, trust_code=True, sandbox=False)
    assert source.num_classes == 10 and any("i % 10" in note for note in source.notes)
    images, labels = _drawn(source)
    assert labels.tolist() == [i % 10 for i in range(25)]
    assert _obeyed(images).tolist() == labels.tolist()  # what was asked is what the model received
    asked = torch.cat(source.model.asked[1:])  # [0] is the one-sample probe
    assert asked.dtype == torch.int64 and asked.tolist() == labels.tolist()
    other = np.concatenate([b.labels for b in source.batches(10)])
    assert other.tolist() == labels.tolist()


def test_asking_for_classes_changes_the_cache_key(models):
    from gen_eval.sources.factory import load_factory

    model = load_factory(models, "conditional")
    asked = GeneratorSource(spec="ref:toy", model=model, count=20, seed=0, content_hash="abc")
    model.num_classes = None
    plain = GeneratorSource(spec="ref:toy", model=model, count=20, seed=0, content_hash="abc")
    assert plain.fingerprint == "abc" and asked.fingerprint not in (None, "abc")


def test_a_conditional_generator_in_the_sandbox_gets_the_same_classes_and_samples(models, monkeypatch):
    monkeypatch.setenv("GEN_EVAL_SANDBOX_TIME_S", "60")
    sandboxed = open_python_source(f"{models}:conditional", 25, 3, trust_code=True)
    try:
        assert sandboxed.num_classes == 10
        images, labels = _drawn(sandboxed)
    finally:
        sandboxed.model.close()
    in_process, expected = _drawn(
        open_python_source(f"{models}:conditional", 25, 3, trust_code=True, sandbox=False)
    )
    assert labels.tolist() == expected.tolist() == [i % 10 for i in range(25)]
    assert torch.equal(images, in_process) and _obeyed(images).tolist() == labels.tolist()


def test_the_worker_checks_the_classes_it_is_sent():
    path = Path("gens.py")
    assert requested_classes(np.zeros(0, np.uint8), 3, None, path) is None
    assert requested_classes(np.array([0, 9, 4]), 3, 10, path).tolist() == [0, 9, 4]
    for bad, classes in [
        (np.array([0, 10, 1]), 10),
        (np.array([0, 1], np.int32), 10),
        (np.array([0, 1]), 10),
        (np.array([0, 1, 2]), None),
    ]:
        with pytest.raises(ValueError, match=r"gens\.py"):
            requested_classes(bad, 3, classes, path)


def test_bad_conditional_generators_are_one_line_errors(models, tmp_path):
    deaf = "declares num_classes=10 but its sample() takes no labels"
    with pytest.raises(GenEvalError, match=r"models\.py: " + deaf.replace("(", r"\(").replace(")", r"\)")):
        open_python_source(f"{models}:deaf", 10, 0, trust_code=True)  # in the sandbox
    base = ["--trust-code", "--no-sandbox", "--num-samples", "20"]
    _refused([f"{models}:deaf", *base], tmp_path / "run", "models.py:deaf", deaf)
    _refused([f"{models}:words", *base], tmp_path / "run", "models.py:words", "num_classes is 'ten'")
    _refused([f"{models}:twelve", *base], tmp_path / "run", "declares num_classes=12", "classes 0-9")


# ---- classes.png --------------------------------------------------------------------------------


def test_a_labelled_run_gets_a_per_class_grid_of_the_right_samples(tmp_path, models):
    result = evaluate(
        f"{models}:conditional",
        "digits:test",
        metrics=["fid"],
        num_samples=40,
        trust_code=True,
        sandbox=False,
        out=tmp_path / "run",
        **_quick(),
    )
    grid = Image.open(tmp_path / "run" / "classes.png")
    assert grid.height > 10 * 48  # ten rows of (upscaled) 8x8 samples
    written = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert "classes.png" in written["files"] and result.manifest["generated"]["num_classes"] == 10
    validator("run-manifest").validate(written)  # num_classes, and a generator's null fingerprint
    # Which samples the grid shows: the first of each class, in class order.
    labels = np.arange(40) % 3
    taken: list[list[int]] = []

    def take(indices: list[int]) -> np.ndarray:
        taken.append(indices)
        return np.full((len(indices), 1, 8, 8), 7, np.uint8)

    gen = open_source(f"{models}:conditional", num_samples=40, trust_code=True, sandbox=False)
    files = class_grid_files(gen, open_source("digits:test"), labels, take, per_class=4)
    assert taken == [[0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]]
    assert Image.open(io.BytesIO(files["classes.png"])).height > 3 * 48
    images, _ = _digits(30)
    np.savez(tmp_path / "plain.npz", images)
    evaluate(
        str(tmp_path / "plain.npz"), "digits:test", metrics=["fid"], out=tmp_path / "unlabelled", **_quick()
    )
    assert not (tmp_path / "unlabelled" / "classes.png").exists()
