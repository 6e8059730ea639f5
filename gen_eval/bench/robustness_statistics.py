"""Hostile and broken reference statistics for ``gen-eval bench robustness``.

Each case hands ``gen-eval evaluate --reference FILE`` a statistics file that is malformed, crafted
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


def statistics_cases(report: Robustness, scratch: Path) -> None:
    """Every broken statistics file through ``gen-eval evaluate``; add one check per case to ``report``."""
    from typer.testing import CliRunner

    from gen_eval.cli import app

    folder = scratch / "statistics"
    folder.mkdir(parents=True)
    marker = folder / "pwned"
    generated = folder / "generated.npz"
    np.savez(generated, np.random.default_rng(0).normal(size=(64, DIM)).astype(np.float32))
    runner = CliRunner()
    for case, (path, flags, fragment) in _files(folder, marker).items():
        out = folder / "runs" / case.replace(" ", "_")
        args = ["evaluate", str(generated), "--reference", str(path), "--out", str(out), "--no-cache", "-q"]
        if "--features" not in flags:
            args += ["--features", "identity"]
        done = runner.invoke(app, [*args, *flags, "--num-resamples", "5"])
        text = done.output.strip()
        traceback = "Traceback" in text or (
            done.exception is not None and not isinstance(done.exception, SystemExit)
        )
        report.tracebacks += int(traceback)
        ok = (
            done.exit_code != 0
            and fragment in text
            and len(text.splitlines()) == 1
            and not traceback
            and not out.exists()
            and not marker.exists()
        )
        report.add("statistics", case, f"one-line error containing '{fragment}'", text or "no output", ok)
    fired = marker.exists()
    report.add(
        "statistics",
        "crafted .pkl ran nothing",
        "no marker file",
        "ran" if fired else "nothing ran",
        not fired,
    )
