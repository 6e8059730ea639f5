"""Hostile and broken reference statistics for ``gen-eval bench robustness``.

Each case hands ``evaluate`` (``gen-eval evaluate --reference FILE``) a statistics file that is malformed, crafted
to run code when unpickled, or made with another extractor; each must end in its own one-line
error, with a non-zero exit, no traceback, no run folder, and (the crafted pickle) nothing run.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from gen_eval.bench.robustness import Robustness

DIM = 6


class _RunsCommand:
    """Pickles as ``os.system("touch MARKER")``: what unpickling an untrusted EDM2 ``.pkl`` could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str]]:
        import os

        return (os.system, (f"touch {self.marker}",))


def _files(folder: Path, marker: Path) -> dict[str, tuple[Path, list[str], str]]:
    """Case name -> (statistics file, extra evaluate flags, fragment its one-line error must hold)."""
    from gen_eval.sources.statistics import ReferenceStatistics, write_statistics

    eye, zero = np.eye(DIM), np.zeros(DIM)
    np.savez(folder / "shapes.npz", mu=np.zeros(3), sigma=np.eye(2))
    np.savez(folder / "nan.npz", mu=np.full(DIM, np.nan), sigma=eye)
    np.savez(folder / "text.npz", mu=np.array(["a"] * DIM), sigma=eye)
    np.savez(folder / "no_sigma.npz", mu=zero, sigma_s=eye)
    np.savez(folder / "spatial_bad.npz", mu=zero, sigma=eye, mu_s=np.zeros(2), sigma_s=np.eye(3))
    np.savez(folder / "dims.npz", mu=np.zeros(DIM - 1), sigma=np.eye(DIM - 1))
    good = folder / "identity.npz"
    np.savez(good, mu=zero, sigma=eye)
    (folder / "truncated.npz").write_bytes(good.read_bytes()[:200])
    write_statistics(
        ReferenceStatistics(zero, eye, 100, "identity", "identity"), folder / "recorded.npz", "gen-eval"
    )
    (folder / "crafted.pkl").write_bytes(
        pickle.dumps({"fid": {"mu": zero, "sigma": eye}, "x": _RunsCommand(marker)}, protocol=4)
    )
    (folder / "objects.pkl").write_bytes(pickle.dumps({"fid": {"mu": zero.astype(object), "sigma": eye}}))
    (folder / "list.pkl").write_bytes(pickle.dumps([zero, eye]))
    stated = ["--reference-features", "identity"]
    return {
        "mu and sigma of different sizes": (
            folder / "shapes.npz",
            stated,
            "'mu' must be a numeric (D,) vector",
        ),
        "NaN in mu": (folder / "nan.npz", stated, "holds NaN or infinite values"),
        "text arrays": (folder / "text.npz", stated, "'mu' must be a numeric"),
        "mu without sigma": (folder / "no_sigma.npz", stated, "need arrays 'mu' and 'sigma' together"),
        "malformed mu_s/sigma_s": (
            folder / "spatial_bad.npz",
            stated,
            "'mu_s' must be a numeric (D,) vector",
        ),
        "truncated .npz": (folder / "truncated.npz", stated, "truncated.npz"),
        "crafted .pkl (os.system)": (folder / "crafted.pkl", [], "posix.system"),
        "object array in a .pkl": (folder / "objects.pkl", [], "array of object"),
        "a .pkl holding a list": (folder / "list.pkl", [], "holds a list"),
        "another extractor (recorded)": (
            folder / "recorded.npz",
            ["--features", "digits"],
            "extracts with digits",
        ),
        "another extractor (stated)": (good, ["--reference-features", "digits"], "extracts with identity"),
        "extractor not stated": (good, [], "do not record their extractor"),
        "another dimension": (
            folder / "dims.npz",
            stated,
            "dims.npz: the reference statistics have 5 dimensions",
        ),
        "sFID from identity features": (good, [*stated, "--metrics", "sfid"], "Inception's spatial features"),
        "KID asked of statistics": (good, [*stated, "--metrics", "fid,kid"], "needs reference samples"),
    }


def _keywords(flags: list[str]) -> dict[str, object]:
    """``evaluate`` keywords from the command-line flags a case is written in."""
    names = {"--reference-features": "reference_features", "--features": "features", "--metrics": "metrics"}
    pairs = dict(zip(flags[::2], flags[1::2], strict=True))
    keywords: dict[str, object] = {names[flag]: value for flag, value in pairs.items()}
    if "metrics" in keywords:
        keywords["metrics"] = str(keywords["metrics"]).split(",")
    return {"features": "identity", **keywords}


def statistics_cases(report: Robustness, scratch: Path) -> None:
    """Every broken statistics file through ``evaluate`` (what ``gen-eval evaluate`` runs); one check each.

    In-process rather than through the CLI (the bench layer sits below it): a case passes when
    ``evaluate`` raises the one-line GenEvalError the CLI prints as ``error: ...`` (any other
    exception would be a traceback there), writes no run folder, and nothing in a file ran.
    """
    from gen_eval.errors import GenEvalError
    from gen_eval.evaluation import evaluate

    folder = scratch / "statistics"
    folder.mkdir(parents=True)
    marker = folder / "pwned"
    generated = folder / "generated.npz"
    np.savez(generated, np.random.default_rng(0).normal(size=(64, DIM)).astype(np.float32))
    for case, (path, flags, fragment) in _files(folder, marker).items():
        out = folder / "runs" / case.replace(" ", "_")
        text, traceback = "no error", False
        try:
            evaluate(generated, path, out=out, cache_dir=None, num_resamples=5, **_keywords(flags))
        except GenEvalError as exc:
            text = f"error: {exc}"
        except Exception as exc:  # the CLI would print a traceback
            text, traceback = f"{type(exc).__name__}: {exc}", True
        report.tracebacks += int(traceback)
        ok = (
            fragment in text
            and text.startswith("error: ")
            and len(text.splitlines()) == 1
            and not out.exists()
            and not marker.exists()
        )
        report.add("statistics", case, f"one-line error containing '{fragment}'", text, ok)
    fired = marker.exists()
    report.add(
        "statistics",
        "crafted .pkl ran nothing",
        "no marker file",
        "ran" if fired else "nothing ran",
        not fired,
    )
