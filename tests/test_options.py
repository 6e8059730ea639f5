"""Metric and detector options: declared, checked before any work, never silently ignored."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gen_eval.errors import GenEvalError
from gen_eval.evaluation import evaluate
from gen_eval.options import check_applicable, coerce_options, declared_options, parse_option_pairs

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gen_eval", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "GEN_EVAL_CACHE": str(tmp_path / "cache"), "GEN_EVAL_THREADS": "1"},
    )


# -- the four cases of issue 20, as a user meets them ------------------------------------------
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["evaluate", "digits:test", "-o", "kid_subset=100"],
            # The list goes on with the text defaults that read logits or log_prob (issue 22); the
            # hint is checked by the ndb_binz case below.
            "unknown option 'kid_subset' for metrics fid, kid, is, precision_recall, density_coverage, bpd",
        ),
        (["evaluate", "digits:test", "-o", "bogus=1"], "unknown option 'bogus' for metrics fid, kid,"),
        (
            ["collapse", "digits:test", "-o", "ndb_binz=50"],
            "unknown option 'ndb_binz' for metrics density_coverage, ms_ssim and the collapse check: "
            "did you mean 'ndb_bins'? valid: dc_k,",
        ),
        (
            ["evaluate", "digits:test", "-o", "kid_subset_size=abc"],
            "option kid_subset_size='abc': expected an integer, e.g. -o kid_subset_size=1000",
        ),
        (
            ["evaluate", "digits:test", "-o", "fd_inf_points=5"],
            "option 'fd_inf_points' applies to fd_inf, which is not among the metrics: add --metrics "
            "fid,kid,is,precision_recall,density_coverage,fd_inf",
        ),
    ],
)
def test_bad_options_are_one_line_errors_and_nothing_is_written(tmp_path, args, expected):
    out = tmp_path / "run"
    done = _cli(*args, "--out", str(out), tmp_path=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"error: {expected}"), done.stderr
    assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr
    assert not out.exists() and not (tmp_path / "cache").exists()  # stopped before any features


# -- the Python API -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "kwargs", "message"),
    [
        ({"kid_subset": 100}, {}, "did you mean 'kid_subsets' or 'kid_subset_size'?"),
        ({"kid_subset_size": "abc"}, {}, "option kid_subset_size='abc': expected an integer"),
        ({"kid_subset_size": 1.5}, {}, "option kid_subset_size=1.5: expected an integer"),
        ({"kid_subset_size": True}, {}, "expected an integer"),
        ({"is_shuffle": "maybe"}, {}, "option is_shuffle='maybe': expected true or false"),
        (
            {"birthday_batch_sizes": "8,x"},
            {},
            "expected comma-separated integers, e.g. -o birthday_batch_sizes=8,16,24,32",
        ),
        ({"pr_ball": "opn"}, {}, "option pr_ball='opn': choose one of 'closed', 'open'"),
        (
            {"ms_ssim_convention": "nope"},
            {"metrics": ["ms_ssim"]},
            "option ms_ssim_convention='nope': choose one of",
        ),
        (
            {"fd_inf_points": 5},
            {"metrics": ["fid"]},
            "applies to fd_inf, which is not among the metrics: add --metrics fid,fd_inf",
        ),
        ({"ndb_bins": 5}, {"collapse": False}, "applies to the collapse check, which is off"),
        (
            {"kid_subset_size": 5},
            {"metrics": "collapse"},
            "applies to kid, which the collapse check does not compute",
        ),
    ],
)
def test_evaluate_refuses_bad_options_before_any_work(tmp_path, options, kwargs, message):
    with pytest.raises(GenEvalError, match=re.escape(message)):
        evaluate(
            "digits:test",
            "digits:test",
            features="digits",
            num_samples=20,
            num_reference=20,
            metric_options=options,
            cache_dir=tmp_path / "cache",
            out=tmp_path / "run",
            **kwargs,
        )
    assert not (tmp_path / "cache").exists() and not (tmp_path / "run").exists()


def test_values_are_coerced_once_to_the_declared_types():
    raw = parse_option_pairs(
        [
            "kid_subset_size=500",
            "kid_coef0=1",
            "is_shuffle=false",
            "birthday_batch_sizes=8,16,32",
            "pr_ball=open",
        ]
    )
    assert raw["kid_subset_size"] == "500"  # text until checked against the declarations
    options = coerce_options(raw, None)
    assert options == {
        "kid_subset_size": 500,
        "kid_coef0": 1.0,
        "is_shuffle": False,
        "birthday_batch_sizes": (8, 16, 32),
        "pr_ball": "open",
    }
    assert type(options["kid_coef0"]) is float
    python = coerce_options(
        {"birthday_batch_sizes": [8, 16], "kid_subset_size": 100.0, "kid_gamma": None}, ["kid"]
    )
    assert python == {"birthday_batch_sizes": (8, 16), "kid_subset_size": 100, "kid_gamma": None}
    check_applicable(options, ["kid", "is", "precision_recall"], True, "list")  # all of them apply
    with pytest.raises(GenEvalError, match="expected KEY=VALUE"):
        parse_option_pairs(["kid_subset_size"])


def test_options_reach_the_metrics_and_the_manifest(tmp_path):
    result = evaluate(
        "digits:test",
        "digits:test",
        features="digits",
        metrics=["kid"],
        num_samples=60,
        num_reference=60,
        num_resamples=0,
        metric_options={"kid_subset_size": "20", "ndb_bins": "4", "birthday_batch_sizes": "4,8"},
        cache_dir=None,
    )
    assert "clipped" not in " ".join(result.metrics["kid"].warnings)  # 20 < 60: used as given
    assert result.manifest["options"]["metric_options"] == {
        "kid_subset_size": 20,
        "ndb_bins": 4,
        "birthday_batch_sizes": (4, 8),
    }
    assert result.collapse.detectors["ndb"].to_dict()["num_bins"] == 4


# -- fewer samples than asked for -----------------------------------------------------------------
def test_num_samples_beyond_the_source_is_a_visible_warning(tmp_path):
    from PIL import Image

    folder = tmp_path / "samples"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(folder / f"{i}.png")
    out = tmp_path / "run"
    done = _cli(
        "evaluate", str(folder), "-r", "digits:test", "--features", "digits", "--metrics", "fid",
        "--num-samples", "5000", "--num-reference", "40", "--num-resamples", "0", "--no-collapse",
        "--quiet", "--out", str(out), tmp_path=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = f"asked for 5,000 samples; {folder} holds 12: using 12"
    assert f"warning: {expected}" in " ".join(done.stdout.split())  # rich may wrap long lines
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["warnings"] == [expected]
    assert manifest["generated"]["count"] == 12


# -- the declarations cannot fall behind the code ---------------------------------------------------
def _option_reads() -> list[tuple[str, str | re.Pattern, ast.expr | None]]:
    """Every ``context.option(NAME, default)`` / ``options.get(NAME, ...)`` in the metric and detector code."""
    files = [*(ROOT / "gen_eval" / "metrics").glob("*.py"), *(ROOT / "gen_eval" / "collapse").glob("*.py")]
    files.append(ROOT / "gen_eval" / "comparison" / "bootstrap.py")  # recomputes metrics from their options
    # The bpd metric's function: the registry names it by path (the AIS behind it sits a layer up).
    files.append(ROOT / "gen_eval" / "likelihood" / "metric.py")
    files.remove(ROOT / "gen_eval" / "metrics" / "base.py")  # MetricContext.option itself
    reads = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args):
                continue
            target = node.func.value
            is_read = node.func.attr == "option" or (
                node.func.attr == "get"
                and path.parent.name in ("metrics", "collapse")
                and (
                    (isinstance(target, ast.Name) and target.id == "options")
                    or (isinstance(target, ast.Attribute) and target.attr == "options")
                )
            )
            if not is_read:
                continue
            name = node.args[0]
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            default = node.args[1] if len(node.args) > 1 else None
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                reads.append((where, name.value, default))
            elif isinstance(name, ast.JoinedStr):  # f"{prefix}_ball": any declared key of that shape
                pattern = "".join(
                    re.escape(part.value) if isinstance(part, ast.Constant) else r"[a-z0-9]+"
                    for part in name.values
                )
                reads.append((where, re.compile(pattern), default))
            else:
                raise AssertionError(f"{where}: option name is not a literal; declare it and read it by name")
    return reads


def test_every_option_read_in_the_code_is_declared_with_its_default():
    declared = {key: option for options in declared_options().values() for key, option in options.items()}
    reads = _option_reads()
    assert len(reads) > 30
    used = set()
    for where, name, default in reads:
        if isinstance(name, re.Pattern):
            matches = [key for key in declared if name.fullmatch(key)]
            assert matches, f"{where}: no declared option matches {name.pattern!r}"
            used.update(matches)
            continue
        assert name in declared, (
            f"{where} reads option {name!r}, which no metric (gen_eval/metrics/__init__.py) or detector "
            "(DETECTOR_OPTIONS in gen_eval/collapse/check.py) declares: users could not set it"
        )
        used.add(name)
        if default is not None and not any(
            isinstance(n, ast.Name | ast.Call | ast.Attribute) for n in ast.walk(default)
        ):
            value = eval(compile(ast.Expression(default), where, "eval"), {"__builtins__": {}})  # a literal
            assert value == declared[name].default, (
                f"{where}: default {value!r}, declared {declared[name].default!r}"
            )
    assert set(declared) == used, f"declared but never read: {sorted(set(declared) - used)}"


def test_declared_choices_resolve():
    for options in declared_options().values():
        for key, option in options.items():
            accepted = option.accepted()
            assert accepted is None or (option.type is str and option.default in accepted), key
            assert json.dumps(option.describe())


def test_check_collapse_refuses_misspelt_detector_options():
    import torch

    from gen_eval.collapse.check import check_collapse

    features = {"features": torch.randn(200, 4, generator=torch.Generator().manual_seed(0))}
    with pytest.raises(
        GenEvalError, match=r"unknown option 'ndb_binz' for the collapse check: did you mean 'ndb_bins'\?"
    ):
        check_collapse(features, features, options={"ndb_binz": 5})
    report = check_collapse(features, features, options={"ndb_bins": "5", "birthday_batch_sizes": "4,8"})
    assert report.detectors["ndb"].num_bins == 5
