"""The feature cache is reused and never trusted when damaged; runs are atomic and verified."""

from __future__ import annotations

import json
import os

import pytest

import gen_eval
from gen_eval import GenEvalError
from gen_eval.features.cache import FeatureCache
from gen_eval.features.identity import IdentityExtractor


@pytest.fixture
def counted_calls(monkeypatch):
    """Counts samples passed through the identity extractor."""
    seen = {"samples": 0}
    original = IdentityExtractor.extract

    def counting(self, batch):
        seen["samples"] += len(batch)
        return original(self, batch)

    monkeypatch.setattr(IdentityExtractor, "extract", counting)
    return seen


def _evaluate(cache_dir, **kwargs):
    options = {"features": "identity", "metrics": ["fid"], "num_resamples": 0, "cache_dir": cache_dir}
    return gen_eval.evaluate("digits:train", "digits:test", **options, **kwargs)


def test_second_evaluation_extracts_nothing(tmp_path, counted_calls):
    first = _evaluate(tmp_path)
    assert counted_calls["samples"] == 1437 + 360
    second = _evaluate(tmp_path)
    assert counted_calls["samples"] == 1437 + 360
    assert (
        second.manifest["reference"]["features_from_cache"]
        and second.manifest["generated"]["features_from_cache"]
    )
    assert second.metrics["fid"].value == first.metrics["fid"].value


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty"])
def test_damaged_cache_entry_is_rebuilt(tmp_path, counted_calls, damage):
    first = _evaluate(tmp_path)
    path = FeatureCache(tmp_path).path(first.manifest["reference"]["cache_key"])
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[-10] ^= 0xFF  # inside the tensor bytes: only the checksum can notice
    elif damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    counted_calls["samples"] = 0
    second = _evaluate(tmp_path)
    assert counted_calls["samples"] == 360  # the reference again, not the intact generated entry
    assert not second.manifest["reference"]["features_from_cache"]
    assert second.metrics["fid"].value == first.metrics["fid"].value
    assert FeatureCache(tmp_path).load(first.manifest["reference"]["cache_key"]) is not None


def test_cache_key_depends_on_extractor_weights():
    base = {"name": "digits", "weights_sha256": "a", "preprocessing": "p"}
    assert FeatureCache.key("src", base) != FeatureCache.key("src", {**base, "weights_sha256": "b"})
    assert FeatureCache.key("src", base) != FeatureCache.key("other", base)


def test_run_directory_is_complete_and_verified(tmp_path):
    out = tmp_path / "runs" / "one"
    result = _evaluate(tmp_path / "cache", out=out)
    assert sorted(os.listdir(out)) == [
        "collapse",
        "features.safetensors",
        "manifest.json",
        "metrics.json",
        "samples.png",
    ]
    run = gen_eval.load_run(out)
    assert run.collapse["verdict"] and all(
        f"collapse/{n}" in run.manifest["files"] for n in os.listdir(out / "collapse")
    )
    assert run.metrics["fid"].value == result.metrics["fid"].value
    assert run.features()["features"].shape == (1437, 64)
    assert run.manifest["extractor"]["name"] == "identity"
    assert run.manifest["options"]["seed"] == 0 and "torch" in run.manifest["versions"]
    assert os.listdir(out.parent) == ["one"]  # no staging leftovers

    with pytest.raises(GenEvalError, match="--overwrite"):
        _evaluate(tmp_path / "cache", out=out)
    metrics_path = out / "metrics.json"
    doc = json.loads(metrics_path.read_text())
    doc["metrics"]["fid"]["value"] = 0.0
    metrics_path.write_text(json.dumps(doc))
    with pytest.raises(GenEvalError, match="checksum"):
        gen_eval.load_run(out)
    _evaluate(tmp_path / "cache", out=out, overwrite=True)
    figure = next((out / "collapse").iterdir())
    figure.write_bytes(figure.read_bytes() + b" ")  # a figure is checked like every other file
    with pytest.raises(GenEvalError, match="checksum"):
        gen_eval.load_run(out)
    _evaluate(tmp_path / "cache", out=out, overwrite=True)
    assert gen_eval.load_run(out).metrics["fid"].value == result.metrics["fid"].value


def test_a_run_that_fails_midway_leaves_nothing(tmp_path, monkeypatch):
    import gen_eval.runs.run as run_module

    def explode(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(run_module, "_write_bytes", explode)
    out = tmp_path / "runs" / "failed"
    with pytest.raises(GenEvalError, match="nothing was written"):
        _evaluate(tmp_path / "cache", out=out)
    assert not out.exists() and os.listdir(out.parent) == []


def test_load_run_rejects_non_runs(tmp_path):
    with pytest.raises(GenEvalError, match="not a gen-eval run"):
        gen_eval.load_run(tmp_path)


def test_reference_covariance_root_is_computed_once_per_reference(tmp_path, monkeypatch):
    import gen_eval.metrics.fid as fid_module

    calls = {"n": 0}
    original = fid_module.covariance_factor

    def counting(matrix):
        calls["n"] += 1
        return original(matrix)

    monkeypatch.setattr(fid_module, "covariance_factor", counting)
    options = {"features": "digits", "metrics": ["fid"], "num_resamples": 3, "cache_dir": tmp_path}
    first = gen_eval.evaluate("digits:train", "digits:test", **options)
    assert (
        first.metrics["fid"].details["method"] == "eigh" and calls["n"] == 1
    )  # point and bootstrap share it
    second = gen_eval.evaluate("digits:train", "digits:test", **options)
    assert calls["n"] == 1  # loaded from the cache beside the reference's features
    assert second.metrics["fid"].value == pytest.approx(first.metrics["fid"].value, rel=1e-12)
    assert second.metrics["fid"].interval == pytest.approx(first.metrics["fid"].interval, rel=1e-12)
