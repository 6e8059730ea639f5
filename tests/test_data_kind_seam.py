"""The data-kind seam: a toy kind plugs in through registries alone, and the built-in kinds keep their behaviour.

The toy kind is "sets of 3 numbers": float (N, 3) arrays in ``*.triples.npz`` files (array
``triples``). A set has no order, so its extractor sorts each row; a metric of its own (the gap
between the mean sums) applies to it alone. Everything is registered between ``with`` lines and
gone afterwards; ``evaluate``, ``compare`` and ``score`` are not touched.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

import gen_eval
from gen_eval.errors import GenEvalError
from gen_eval.features import EXTRACTORS, ExtractorEntry, extractor_names
from gen_eval.features.base import FeatureExtractor
from gen_eval.kinds import DataKind, Samples, get_kind, infer_kind, registered_kind
from gen_eval.metrics import METRICS, MetricEntry, Result, metric_names
from gen_eval.sources import READERS, Batch, Reader, Source, open_source

# ---- the toy kind's registration: everything a new kind needs (kept under 100 lines) ------------


def _validate_triples(batch, name: str) -> None:
    if tuple(batch.shape[1:]) != (3,) or not str(batch.dtype).split(".")[-1].startswith("float"):
        raise GenEvalError(f"{name}: triples must be float (N, 3), got {batch.dtype} {tuple(batch.shape)}")


def _draw_triples(generated, reference, names) -> bytes:
    from PIL import Image

    canvas = np.full((64, 64, 3), 255, np.uint8)
    for x, y in np.clip((np.sort(generated, axis=1)[:, :2] + 4) * 8, 0, 63).astype(int):
        canvas[63 - y, x] = (31, 119, 180)
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format="PNG")
    return buffer.getvalue()


TRIPLES = DataKind(
    name="triples",
    plural="triples",
    description="unordered sets of 3 numbers, float (N, 3)",
    dtype="float32",
    default_extractor="sorted_triples",
    validate=_validate_triples,
    draw=_draw_triples,
    picture_count=500,
)


@dataclass
class TriplesSource(Source):
    kind = "array"
    path: Path = field(default=Path())
    limit: int | None = None

    def __post_init__(self) -> None:
        with np.load(self.path, allow_pickle=False) as archive:
            self._data = np.asarray(archive["triples"], np.float32)[: self.limit]
        _validate_triples(self._data, self.spec)
        self.data_kind, self.sample_shape, self._count = "triples", (3,), len(self._data)
        self._fingerprint = hashlib.sha256(self._data.tobytes()).hexdigest()

    def batches(self, batch_size: int) -> Iterator[Batch]:
        for start in range(0, self._count, batch_size):
            yield Batch(torch.from_numpy(self._data[start : start + batch_size].copy()))


class SortedTriples(FeatureExtractor):
    name, input_kind, description = "sorted_triples", "triples", "each set's numbers in increasing order"
    preprocessing = "float32, each row sorted"
    weights_fingerprint = "sorted-triples-v1"

    def extract(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"features": torch.sort(batch.float(), dim=1).values}


def mean_sum_gap(generated, reference, context) -> dict:
    gap = float(abs(generated["features"].sum(1).mean() - reference["features"].sum(1).mean()))
    n, m = len(generated["features"]), len(reference["features"])
    return {"mean_sum_gap": Result("mean_sum_gap", gap, "lower", n, m)}


@contextmanager
def toy_kind() -> Iterator[None]:
    def open_triples(text, path, options):
        return TriplesSource(spec=text, path=path, limit=options.num_samples)

    reader = Reader(lambda text, path: text.endswith(".triples.npz"), open_triples, "sets of 3", ("triples",))
    metric = MetricEntry(mean_sum_gap, "features", True, "gap of the mean set sums", {}, ("triples",))
    with ExitStack() as stack:
        stack.enter_context(registered_kind(TRIPLES))
        stack.enter_context(READERS.registered("triples", reader))
        stack.enter_context(
            EXTRACTORS.registered("sorted_triples", ExtractorEntry(SortedTriples, ("triples",)))
        )
        stack.enter_context(METRICS.registered("mean_sum_gap", metric))
        yield


# ---- the toy kind end to end -------------------------------------------------------------------


def _save(path: Path, values: np.ndarray) -> str:
    np.savez(path, triples=values.astype(np.float32))
    return str(path)


def test_toy_kind_runs_end_to_end_through_evaluate_and_load_run(tmp_path):
    rng = np.random.default_rng(0)
    ref_values, gen_values = rng.normal(size=(400, 3)), rng.normal(size=(300, 3)) + 0.5
    ref = _save(tmp_path / "ref.triples.npz", ref_values)
    gen = _save(tmp_path / "gen.triples.npz", gen_values)
    with toy_kind():
        result = gen_eval.evaluate(
            gen, ref, out=tmp_path / "run", num_resamples=0, cache_dir=None, device="cpu"
        )
        run = gen_eval.load_run(tmp_path / "run")
    assert result.manifest["generated"]["data_kind"] == "triples"
    assert result.manifest["extractor"]["name"] == "sorted_triples"
    # Feature metrics apply to every kind; MS-SSIM (images) and IS (logits) do not run.
    assert set(result.metrics) >= {"fid", "kid", "precision", "recall", "density", "coverage", "mean_sum_gap"}
    assert not {"is", "ms_ssim"} & set(result.metrics)
    # Independent reference: the gap of the mean sums (sorting keeps sums), 3 x the planted 0.5 shift.
    expected = abs(gen_values.sum(1).mean() - ref_values.sum(1).mean())
    assert result.metrics["mean_sum_gap"].value == pytest.approx(expected, rel=1e-5)
    assert expected == pytest.approx(1.5, abs=0.3)
    # FID of the sorted sets against numpy's own Fréchet distance.
    from scipy import linalg

    a, b = np.sort(gen_values, 1), np.sort(ref_values, 1)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    fid = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca + cb - 2 * linalg.sqrtm(ca @ cb).real)
    assert result.metrics["fid"].value == pytest.approx(fid, rel=1e-3)
    assert result.collapse is not None  # the feature detectors ran on the toy kind
    assert run.metrics["mean_sum_gap"].value == pytest.approx(expected, rel=1e-5)
    assert run.manifest["generated"]["data_kind"] == "triples"
    assert (tmp_path / "run" / "samples.png").read_bytes() == _draw_triples(gen_values, None, ("", ""))
    assert torch.equal(run.features()["features"], torch.sort(torch.from_numpy(gen_values).float(), 1).values)


def test_toy_kind_is_gone_after_its_block(tmp_path):
    path = _save(tmp_path / "only.triples.npz", np.zeros((5, 3)))
    with toy_kind():
        assert get_kind("triples") is TRIPLES
        assert open_source(path).data_kind == "triples"
    with pytest.raises(GenEvalError, match="unknown data kind 'triples'"):
        get_kind("triples")
    assert open_source(path).data_kind == "vector"  # the array reader again
    assert "sorted_triples" not in extractor_names()
    assert "mean_sum_gap" not in metric_names()


def test_toy_metric_is_refused_for_other_kinds(tmp_path):
    points = tmp_path / "points.npy"
    np.save(points, np.random.default_rng(1).normal(size=(50, 2)).astype(np.float32))
    with (
        toy_kind(),
        pytest.raises(GenEvalError, match="mean_sum_gap applies to triples samples, not vectors"),
    ):
        gen_eval.evaluate(str(points), str(points), metrics=["mean_sum_gap"], collapse=False, cache_dir=None)


def test_an_image_network_refuses_a_kind_it_does_not_read(tmp_path):
    path = _save(tmp_path / "x.triples.npz", np.zeros((20, 3)))
    with toy_kind(), pytest.raises(GenEvalError, match="needs images; use --features sorted_triples"):
        gen_eval.evaluate(path, path, features="digits", collapse=False, cache_dir=None, num_resamples=0)


# ---- Samples: labels and pairs ------------------------------------------------------------------


def test_samples_carry_labels_and_pairs_and_check_their_lengths():
    images = np.zeros((4, 1, 8, 8), np.uint8)
    s = Samples(images, "image", labels=np.arange(4), inputs=np.ones((4, 2), np.float32), input_kind="vector")
    assert s.conditional and s.paired and s.kind is get_kind("image") and len(s) == 4
    picked = s.select([3, 1])
    assert picked.labels.tolist() == [3, 1] and picked.inputs.shape == (2, 2) and len(s.head(10)) == 4
    with pytest.raises(GenEvalError, match=r"^samples: 3 labels for 4 samples; give exactly one per sample$"):
        Samples(images, "image", labels=np.arange(3))
    with pytest.raises(GenEvalError, match="5 targets for 4 samples"):
        Samples(images, "image", targets=np.zeros((5, 1, 8, 8), np.uint8))
    with pytest.raises(GenEvalError, match=r"x \(targets\).*uint8"):
        Samples(images, "image", targets=np.zeros((4, 1, 8, 8), np.float32), name="x")
    with pytest.raises(GenEvalError, match="a target must be comparable"):
        Samples(images, "image", targets=np.zeros((4, 3, 8, 8), np.uint8))
    with pytest.raises(GenEvalError, match="images must be uint8"):
        Samples(np.zeros((4, 2), np.float32), "image")
    plain = Samples(np.zeros((4, 2), np.float32), get_kind("vector"))
    assert not plain.conditional and not plain.paired
    first = open_source("digits:test").samples(5)  # a source's head, with its kind and labels
    assert first.kind.name == "image" and first.conditional and len(first.labels) == len(first) == 5
    assert open_source("ring8:test").samples(10**6).kind.name == "vector"  # all of it when asked for more


# ---- the built-in kinds behave as before ----------------------------------------------------------


def test_builtin_kinds_infer_and_convert_as_before():
    from gen_eval.sources.python import canonical_samples

    assert infer_kind((5, 2), "float32").name == "vector"
    assert infer_kind((5, 3, 8, 8), "uint8").name == "image"
    seen = []
    spy = DataKind(
        "spy",
        "spies",
        "",
        "float32",
        "identity",
        _validate_triples,
        _draw_triples,
        claims=lambda s, d: seen.append(d),
    )
    with registered_kind(spy):  # a kind declared later is asked first, with the element type's name
        assert infer_kind((5, 2), np.dtype("float64")).name == "vector"
        assert infer_kind((5, 2), torch.float16).name == "vector"
    assert seen == ["float64", "float16"]
    floats = np.full((2, 1, 4, 4), 0.5, np.float32)
    converted, kind, note = canonical_samples(floats, "m", 2)
    assert kind == "image" and converted.dtype == np.uint8 and (converted == 128).all()
    assert note == "float [0,1] samples -> uint8 via round(x * 255)"
    assert canonical_samples(np.zeros((2, 3), np.float64), "m", 2)[1:] == ("vector", None)
    with pytest.raises(GenEvalError, match=r"expected \(N, C, H, W\) with C in 1 or 3"):
        canonical_samples(np.zeros((2, 5), np.float32)[:, :, None], "m", 2)
    with pytest.raises(GenEvalError, match=r"\(N, D\) samples must be floats"):
        canonical_samples(np.zeros((2, 3), np.int64), "m", 2)


def test_builtin_pictures_are_the_run_pictures_of_before():
    from PIL import Image

    from gen_eval.figure_style import scatter_png

    images = np.random.default_rng(2).integers(0, 256, (10, 3, 8, 8), dtype=np.uint8)
    drawn = np.asarray(Image.open(io.BytesIO(get_kind("image").draw(images, None, ("g", "r")))))
    # Independent reference: 8 x 8 images upscaled 8x into 64-pixel cells, 8 per row, 2 px white gaps.
    expected = np.full((2 * 66 + 2, 8 * 66 + 2, 3), 255, np.uint8)
    for index, image in enumerate(images):
        top, left = 2 + (index // 8) * 66, 2 + (index % 8) * 66
        expected[top : top + 64, left : left + 64] = np.kron(image.transpose(1, 2, 0), np.ones((8, 8, 1)))
    assert np.array_equal(drawn, expected)
    assert get_kind("image").picture_count == 64 and not get_kind("image").picture_reference
    points = np.random.default_rng(3).normal(size=(30, 2))
    title = "Generated samples (blue) over the reference (grey)"
    expected_png = scatter_png(points, points, title=title, names=("g", "r"))
    assert get_kind("vector").draw(points, points, ("g", "r")) == expected_png
    assert get_kind("vector").picture_count == 5000 and get_kind("vector").picture_reference


def test_auto_features_and_metrics_per_kind_as_before():
    from gen_eval.features import choose_extractor
    from gen_eval.metrics import choose_metrics

    digits, ring = open_source("digits:test"), open_source("ring8:test")
    assert choose_extractor(digits, digits) == "digits" and choose_extractor(ring, ring) == "identity"
    assert choose_extractor(open_source("shapes:test"), open_source("shapes:test")) == "inception"
    assert choose_extractor(ring, digits) == "identity"  # mixed kinds: the extractor that reads both
    assert choose_metrics(None, {"features"}, "vector") == [
        "fid",
        "kid",
        "precision_recall",
        "density_coverage",
    ]
    with pytest.raises(GenEvalError, match=r"^metric ms_ssim needs images, but the samples are vectors$"):
        choose_metrics(["ms_ssim"], {"features"}, "vector")


def test_grading_checks_per_kind_as_before(tmp_path):
    from gen_eval.grading.submissions import check_samples

    rng = np.random.default_rng(4)
    np.save(tmp_path / "three.npy", rng.normal(size=(20, 3)).astype(np.float32))
    np.save(tmp_path / "two.npy", rng.normal(size=(20, 2)).astype(np.float32))
    three, two = open_source(str(tmp_path / "three.npy")), open_source(str(tmp_path / "two.npy"))
    with pytest.raises(GenEvalError, match=r"three.npy: vectors of dimension 3, the reference's are 2$"):
        check_samples(three, two, num_samples=None, min_samples=10)
    check_samples(two, two, num_samples=None, min_samples=10)  # same shape: no refusal
    digits, shapes = open_source("digits:test"), open_source("shapes:test")
    check_samples(digits, shapes, num_samples=None, min_samples=10)  # images: the size rule decides
