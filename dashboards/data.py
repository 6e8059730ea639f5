"""Find and load the runs under a folder for the dashboard, never raising on a broken one."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gen_eval.errors import GenEvalError

# Columns of the leaderboard, in order: metric name -> header.
LEADERBOARD_METRICS = {
    "fid": "FID",
    "kid": "KID",
    "is": "IS",
    "precision": "precision",
    "recall": "recall",
    "density": "density",
    "coverage": "coverage",
    "bits_per_dim": "bits/dim",
    # Text runs (issue 22); columns no run has are dropped.
    "bits_per_char": "bits/char",
    "ngram_jsd_2": "2-gram JSD",
    "ngram_jsd_4": "4-gram JSD",
    "length_distance": "length W1",
    "train_copies": "train copies",
    "mass_coverage": "mass coverage",
}

HUMAN = "human"  # the leaderboard column of human judgement error rates (gen_eval.human)


@dataclass
class RunInfo:
    """One run folder as the dashboard sees it: loaded, or with the reason it could not be."""

    path: Path
    name: str
    error: str | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    collapse: dict[str, Any] | None = None
    latent: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def model(self) -> str:
        return str(self.manifest.get("generated", {}).get("spec", self.name))

    @property
    def reference(self) -> str:
        return str(self.manifest.get("reference", {}).get("spec", "?"))

    @property
    def features(self) -> str:
        return str(self.manifest.get("extractor", {}).get("name", "?"))

    @property
    def family(self) -> str:
        """The reference model's family, "data" for a dataset, else the source kind."""
        generated = self.manifest.get("generated", {})
        spec = str(generated.get("spec", ""))
        if spec.startswith("ref:"):
            from reference_models import MODELS

            entry = MODELS.get(spec[4:])
            return entry.family if entry else "reference"
        return "data" if generated.get("kind") == "dataset" else str(generated.get("kind", "?"))

    @property
    def verdict(self) -> str:
        return str((self.collapse or {}).get("verdict", "not checked"))


def runs_root(argument: str | None = None) -> Path:
    """The runs folder: the argument, else ``$GEN_EVAL_DASHBOARD_RUNS``, else ``runs``."""
    from dashboards import RUNS_ENV

    return Path(argument or os.environ.get(RUNS_ENV) or "runs")


def root_problem(root: Path) -> str | None:
    """A sentence for the page when ``root`` holds nothing to show, else None."""
    if not root.exists():
        return (
            f"The runs folder {root} does not exist. Run `gen-eval demo` (writes runs/demo) or pass a folder."
        )
    if not root.is_dir():
        return f"{root} is not a folder; pass the folder that holds your runs."
    return None


def _run_folders(root: Path) -> list[Path]:
    """Folders under ``root`` holding a manifest.json, skipping hidden ones (staging, caches)."""
    found = []
    for manifest in sorted(root.rglob("manifest.json")):
        relative = manifest.parent.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        found.append(manifest.parent)
    return found


def load_info(path: Path, root: Path) -> RunInfo:
    """Load one run (checksums verified); a broken or outdated run comes back with ``error`` set."""
    from gen_eval.runs.run import load_run

    name = path.relative_to(root).as_posix() if path != root else path.name
    try:
        run = load_run(path)
    except GenEvalError as exc:
        message = str(exc)
        if "format" in message:
            message += " (written by an older gen-eval)"
        return RunInfo(path, name, error=message)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return RunInfo(path, name, error=f"{path}: unreadable ({type(exc).__name__}: {exc}); re-run it")
    latent = None
    if (path / "latent.json").is_file():
        try:
            latent = json.loads((path / "latent.json").read_text(encoding="utf-8"))
        except ValueError:
            latent = None
    metrics = {key: result.to_dict() for key, result in run.metrics.items()}
    return RunInfo(path, name, manifest=run.manifest, metrics=metrics, collapse=run.collapse, latent=latent)


def find_runs(root: Path) -> list[RunInfo]:
    """Every run under ``root`` (including ``root`` itself when it is one), good and broken."""
    if root_problem(root):
        return []
    return [load_info(folder, root) for folder in _run_folders(root)]


def leaderboard_frame(runs: list[RunInfo], human: dict[str, Any] | None = None) -> Any:
    """One row per loaded run: identity columns, each metric's value and its 95% interval, the verdict.

    Parameters
    ----------
    runs : list of RunInfo
        The runs; broken ones are left out.
    human : dict, optional
        Run name -> ``gen_eval.human.RunHumanResult`` (:func:`human_results`): adds a "human"
        column, the error rate of people telling its samples from real ones, with its interval.

    Returns
    -------
    pandas.DataFrame
    """
    import pandas as pd

    human = human or {}

    rows = []
    for info in runs:
        if not info.ok:
            continue
        row: dict[str, Any] = {
            "run": info.name,
            "model": info.model,
            "family": info.family,
            "reference": info.reference,
            "features": info.features,
            "collapse": (info.collapse or {}).get("status", "not checked"),
        }
        if human:  # first of the value columns: the number people most want to see
            judged = human.get(info.name)
            row[HUMAN] = None if judged is None else judged.error_rate
            row[f"{HUMAN} 95% CI"] = _interval(None if judged is None else judged.error_interval)
        for key, header in LEADERBOARD_METRICS.items():
            result = info.metrics.get(key)
            row[header] = None if result is None else result["value"]
            interval = None if result is None else result.get("interval")
            row[f"{header} 95% CI"] = _interval(interval)
        row["collapse verdict"] = info.verdict
        rows.append(row)
    frame = pd.DataFrame(rows)
    if len(frame):  # drop metrics no run has
        headers = [*LEADERBOARD_METRICS.values(), *([HUMAN] if human else [])]
        empty = [h for h in headers if frame[h].isna().all()]
        frame = frame.drop(columns=empty + [f"{h} 95% CI" for h in empty])
    return frame


def _interval(interval: Any) -> str:
    return "" if not interval else f"{interval[0]:.4g} – {interval[1]:.4g}"


def human_results(root: Path) -> dict[str, Any]:
    """Each run's human judgement results, from the newest study that judged it.

    A study's database sits in the runs folder it was created in (``FOLDER/human/``, see
    ``gen_eval.human.lookup``) and names runs relative to that folder, so the databases in
    ``root``, in the folders above it and in the folders below it are all read; nothing is created
    when there is none. A run judged in several studies shows the newest with counted answers:
    studies differ in their settings (mode, time limit), so their rates are not pooled.

    Parameters
    ----------
    root : Path
        The runs folder.

    Returns
    -------
    dict
        Run name (relative to ``root``, as the leaderboard names it) -> ``RunHumanResult``.

    Raises
    ------
    GenEvalError
        A database cannot be read.
    """
    from gen_eval.human import HumanStore, study_results
    from gen_eval.human.store import DATABASE

    top = root.resolve()
    databases = [folder / DATABASE for folder in (top, *top.parents)]
    for path in sorted(top.rglob(DATABASE.as_posix())):  # hidden folders (staging, caches) skipped
        if path not in databases and not any(p.startswith(".") for p in path.relative_to(top).parts):
            databases.append(path)
    judged = []  # (study created, run name, result)
    for database in databases:
        if not database.is_file():
            continue
        store = HumanStore(database)
        for study in store.studies():
            for result in study_results(store, study.study_id):
                run = (database.parent.parent / result.run).resolve()
                if result.judgements and run.is_relative_to(top):
                    name = run.relative_to(top).as_posix() if run != top else run.name
                    judged.append((study.created, name, result))
    found: dict[str, Any] = {}
    for _, name, result in sorted(judged, key=lambda item: item[0], reverse=True):
        found.setdefault(name, result)
    return found


def human_table(results: list[Any]) -> Any:
    """A table of human judgement results, one row per run (rates as fractions, intervals as text).

    Parameters
    ----------
    results : list of RunHumanResult

    Returns
    -------
    pandas.DataFrame
    """
    import pandas as pd

    def percent(interval: Any) -> str:
        return "" if not interval else f"{interval[0]:.1%} – {interval[1]:.1%}"

    rows = []
    for r in results:
        spread = "" if r.participant_min is None else f"{r.participant_min:.0%} – {r.participant_max:.0%}"
        if r.participant_sd is not None:
            spread += f" (sd {r.participant_sd:.1%})"
        rows.append(
            {
                "run": r.run,
                "error rate": r.error_rate,
                "error 95% CI": percent(r.error_interval),
                "error 95% CI over people": percent(r.error_interval_people),
                "fakes judged real": r.fool_rate,
                "fakes judged real 95% CI": percent(r.fool_interval),
                "reals judged fake": r.real_error_rate,
                "reals judged fake 95% CI": percent(r.real_error_interval),
                "judgements": r.judgements,
                "participants": r.participants,
                "spread across participants": spread,
                "median answer s": r.median_seconds,
                "timed out": r.timeouts,
                "left out (attention)": r.excluded_participants,
            }
        )
    return pd.DataFrame(rows)


def default_pair(runs: list[RunInfo]) -> list[str]:
    """The two runs the compare page starts with: a meaningful pair, not the first two names.

    Among the runs that can be compared (the largest group sharing a reference and features;
    the newest run breaks ties), the best and the worst by the first leaderboard metric they all
    have (FID when present), best first as the baseline. Without such a metric, the two most
    recent runs (by the manifest's creation time), older first.

    Parameters
    ----------
    runs : list of RunInfo
        Loaded runs.

    Returns
    -------
    list of str
        Two run names (fewer when there are fewer runs).
    """
    good = [info for info in runs if info.ok]
    if len(good) < 2:
        return [info.name for info in good]

    def created(info: RunInfo) -> str:
        return str(info.manifest.get("created", ""))

    groups: dict[tuple[str, str], list[RunInfo]] = {}
    for info in good:
        groups.setdefault((info.reference, info.features), []).append(info)
    group = max(groups.values(), key=lambda members: (len(members), max(map(created, members))))
    if len(group) < 2:
        group = good
    for metric in LEADERBOARD_METRICS:
        results = [info.metrics.get(metric) for info in group]
        if all(r is not None and r.get("value") is not None for r in results):
            sign = -1 if results[0].get("direction") == "higher" else 1
            ranked = sorted(group, key=lambda info: (sign * info.metrics[metric]["value"], info.name))
            return [ranked[0].name, ranked[-1].name]
    recent = sorted(group, key=lambda info: (created(info), info.name))[-2:]
    return [info.name for info in recent]


def figure_files(info: RunInfo, folder: str) -> list[tuple[str, Path, Path | None]]:
    """(stem, json path, png path or None) of the plotly figures in ``info.path / folder``."""
    root = info.path / folder
    if not root.is_dir():
        return []
    return [
        (p.stem, p, p.with_suffix(".png") if p.with_suffix(".png").is_file() else None)
        for p in sorted(root.glob("*.json"))
    ]
