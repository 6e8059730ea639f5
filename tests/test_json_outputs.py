"""Every JSON output (each ``--json`` and each JSON file a run or a graded folder holds) against its schema.

The outputs are made once per module, small and fast (identity features on ring8, digits
features on a few hundred digits). Each is checked against its schema in ``gen_eval/schemas``
and for numbers written as strings ("285.3", "≤ 2.117"), which the schemas cannot express.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from gen_eval.bench.hostile import CLAIMS_TOML, digits, write_pngs
from gen_eval.cli import app
from gen_eval.schemas import HERE, SCHEMAS, load_schema, schema_for_file, validator

# A number, optionally signed, grouped, with a bound sign before or a unit after: what a
# machine would have to parse back. Plotly figures' display text is exempt (see below).
NUMERIC = re.compile(
    r"^\s*(?:[≤≥<>~≈]=?\s*)?[-+]?(?:\d[\d,_]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?\s*(?:%|[kMG]?B|m?s|x)?\s*$"
)
runner = CliRunner()


def _strict(text: str) -> Any:
    """Parse as standard JSON: NaN and Infinity (which Python's json writes and reads) are refused."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _invoke(args: list[str]) -> Any:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return _strict(result.stdout)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict[str, tuple[str, Any]]:
    """label -> (schema name, parsed document), for every output a user can get as JSON."""
    root = tmp_path_factory.mktemp("json")
    cache = str(root / "cache")
    old_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks: threads only wait on each other on a busy machine
    found: dict[str, tuple[str, Any]] = {}
    for command in ("models", "datasets", "features", "metrics"):
        found[f"{command} --json"] = (command, _invoke([command, "--json"]))
    ring = ["--reference", "ring8", "--features", "identity", "--num-samples", "200", "--cache-dir", cache]
    evaluated = [*ring, "--num-resamples", "5", "-q", "--json"]
    found["evaluate --json"] = (
        "evaluation",
        _invoke(["evaluate", "ring8:test", *evaluated, "--out", str(root / "a")]),
    )
    _invoke(["evaluate", "ring8:train", *evaluated, "--out", str(root / "b")])
    found["collapse --json"] = ("collapse", _invoke(["collapse", "ring8:test", *ring[:-2], "-q", "--json"]))
    statistics = str(root / "ring8_stats.npz")  # and a run scored against them (its files are checked below)
    found["stats --json"] = ("stats", _invoke(["stats", "ring8:test", "--out", statistics, "-q", "--json"]))
    _invoke(["evaluate", "ring8:train", "-r", statistics, *evaluated[2:], "--out", str(root / "from_stats")])
    compare = ["compare", str(root / "a"), str(root / "b"), "--num-resamples", "10", "-q"]
    found["compare --json -"] = ("compare", _invoke([*compare, "--json", "-"]))
    latent = ["latent", "ref:vae", "--out", str(root / "vae"), "--num-pairs", "4", "--ppl-samples", "100"]
    found["latent --json"] = ("latent", _invoke([*latent, "--json"]))
    likelihood = ["likelihood", "ref:vae", "--data", "digits:test", "--num-examples", "4", "--steps", "5"]
    found["likelihood --json"] = (
        "likelihood",
        _invoke([*likelihood, "--chains", "2", "--bdmc-examples", "2", "--json"]),
    )
    subs = root / "subs"
    (subs / "alice").mkdir(parents=True)
    np.savez(subs / "alice" / "samples.npz", digits(0, 100))
    (subs / "alice" / "submission.toml").write_text(CLAIMS_TOML)
    write_pngs(subs / "bob", digits(100, 160))
    write_pngs(subs / "tiny", digits(0, 3))  # a failed row
    score = ["score", str(subs), "-r", "digits:test", "--out", str(root / "graded"), "--num-resamples", "5"]
    runner.invoke(app, [*score, "--cache-dir", cache, "-q"])  # exits non-zero: tiny fails
    demo = ["demo", "--models", "baseline", "--num-samples", "100", "--num-resamples", "0", "-q"]
    done = runner.invoke(app, [*demo, "--out", str(root / "demo")])
    assert done.exit_code == 0, done.output
    for path in sorted(root.rglob("*.json")):
        if "cache" in path.relative_to(root).parts:
            continue
        name = schema_for_file(path)
        assert name is not None, f"no schema for {path.relative_to(root)}"
        found[str(path.relative_to(root))] = (name, _strict(path.read_text()))
    # After the walk over the files: a study's snapshot.json is its own, not a run's output.
    study = ["human", "create", str(root / "demo"), "--runs", "baseline", "--trials", "4", "--samples", "10"]
    found["human create --json"] = ("human-create", _invoke([*study, "--json"]))
    found["human --json"] = ("human", _invoke(["human", str(root / "demo"), "--json"]))
    torch.set_num_threads(old_threads)
    return found


def _strings(document: Any, where: str = "") -> list[tuple[str, str]]:
    if isinstance(document, dict):
        return [s for key, value in document.items() for s in _strings(value, f"{where}.{key}")]
    if isinstance(document, list):
        return [s for i, value in enumerate(document) for s in _strings(value, f"{where}[{i}]")]
    return [(where, document)] if isinstance(document, str) else []


def test_every_output_matches_its_schema(outputs):
    names = {name for name, _ in outputs.values()}
    assert names == set(SCHEMAS), f"outputs without a test: {set(SCHEMAS) - names}"
    for name in ["common", *SCHEMAS]:
        jsonschema.Draft202012Validator.check_schema(load_schema(name))
    for label, (name, document) in outputs.items():
        errors = sorted(validator(name).iter_errors(document), key=str)
        assert not errors, f"{label} vs {name}.schema.json: {errors[0].message} at {list(errors[0].path)}"


def test_no_output_writes_a_number_as_a_string(outputs):
    for label, (name, document) in outputs.items():
        if name == "figure":  # plotly's figure format: its text and tick labels are display strings
            continue
        numeric = [(where, text) for where, text in _strings(document) if NUMERIC.match(text)]
        assert not numeric, f"{label}: numbers as strings at {numeric[:5]}"


@pytest.mark.parametrize(
    ("text", "numeric"),
    [("285.3", True), ("≤ 2.117", True), ("0.66 MB", True), ("1,437", True), ("-1e-3", True), ("12%", True)],
)
def test_the_numeric_string_check_catches_numbers_in_strings(text, numeric):
    assert bool(NUMERIC.match(text)) == numeric
    assert not NUMERIC.match("digits:test") and not NUMERIC.match("2026-12-07T14:05:38+00:00")
    assert not NUMERIC.match("0.1.0") and not NUMERIC.match("fe0652b3")


def test_a_schema_refuses_the_old_string_numbers(outputs):
    """The planted fault: ``gen-eval models --json`` as it was (numbers as text) fails its schema."""
    rows = json.loads(json.dumps(outputs["models --json"][1]))
    rows[0]["fid"], rows[1]["bits_per_dim"] = "285.3", "≤ 2.117"
    errors = list(validator("models").iter_errors(rows))
    assert sorted(list(e.path) for e in errors) == [[0, "fid"], [1, "bits_per_dim"]]
    assert NUMERIC.match(rows[0]["fid"]) and NUMERIC.match(rows[1]["bits_per_dim"])
    # Free-form parts (a metric's details, a detector's numbers) refuse numeric strings too.
    evaluation = json.loads(json.dumps(outputs["evaluate --json"][1]))
    evaluation["metrics"]["fid"]["details"]["feature_dim"] = "2"
    errors = list(validator("evaluation").iter_errors(evaluation))
    assert [list(e.path) for e in errors] == [["metrics", "fid", "details", "feature_dim"]]


def test_schemas_are_shipped_package_data():
    import tomllib

    config = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert "schemas/*.json" in config["tool"]["setuptools"]["package-data"]["gen_eval"]
    for name in ["common", *SCHEMAS]:
        assert load_schema(name)["$id"].endswith(f"/{name}.schema.json")
    shipped = {p.name.removesuffix(".schema.json") for p in HERE.glob("*.json")}
    assert shipped == {"common", *SCHEMAS}


def test_non_finite_numbers_are_written_as_null(tmp_path):
    """Python's json writes NaN/Infinity (not JSON); every output goes through to_json instead."""
    import math

    from gen_eval.metrics.result import Result
    from gen_eval.runs.run import write_run
    from gen_eval.schemas import to_json

    assert json.dumps(math.nan) == "NaN"  # the fault: what the plain writer produced
    assert _strict(to_json({"a": math.nan, "b": [math.inf, 1.5], "c": (-math.inf,)})) == {
        "a": None,
        "b": [None, 1.5],
        "c": [None],
    }
    bad = Result(name="fid", value=math.inf, direction="lower", num_generated=3, num_reference=3)
    bad.interval = (math.nan, math.nan)  # what a bootstrap with no finite replicate returns
    good = Result(name="kid", value=0.5, direction="lower", num_generated=3, num_reference=3)
    good.interval = (0.25, 0.75)
    manifest = {
        "created": "2026-01-01T00:00:00+00:00",
        "versions": {},
        "options": {},
        "extractor": {"name": "x"},
    }
    source = {"spec": "x", "kind": "array", "data_kind": "vector", "count": 3, "sample_shape": [2]}
    source |= {"fingerprint": "0" * 64, "conversions": []}
    manifest |= {"generated": source, "reference": source}
    out = write_run(
        tmp_path / "run", manifest, {"fid": bad, "kid": good}, {"features": torch.zeros(3, 2)}, b"png"
    )
    document = _strict((out / "metrics.json").read_text())
    assert document["metrics"]["fid"]["value"] is None and document["metrics"]["fid"]["interval"] is None
    assert document["metrics"]["kid"]["interval"] == [0.25, 0.75]
    validator("run-metrics").validate(document)
    validator("run-manifest").validate(_strict((out / "manifest.json").read_text()))


def test_training_records_write_numbers_as_numbers():
    """`gen-eval train` prints the config it saves beside each checkpoint; the shipped ones stand in
    for it here (training a network is too slow for this test)."""
    from reference_models import CHECKPOINT_DIR

    records = sorted(CHECKPOINT_DIR.glob("*.json"))
    assert len(records) > 5
    for path in records:
        numeric = [
            (where, text) for where, text in _strings(_strict(path.read_text())) if NUMERIC.match(text)
        ]
        assert not numeric, f"{path.name}: numbers as strings at {numeric[:5]}"
