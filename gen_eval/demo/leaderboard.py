"""Score the bundled reference models against held-out data: the main job and the scorecard.

``score_models()`` evaluates each model (``ref:NAME``) against the test split of its dataset, one
run directory per model, and adds what a leaderboard needs beyond the metrics: classes covered
(digits, read by the digits classifier) or known modes covered (2-D mixtures).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gen_eval.demo.stored_scores import ASSUMED_NOISE, add_stored_likelihoods, bpd_cell
from gen_eval.demo.stored_scores import BPD_MARKS as BPD_MARKS  # re-exported: the scorecard reads it here
from gen_eval.errors import GenEvalError
from gen_eval.evaluation import Evaluation, evaluate
from gen_eval.progress import progress_group, progress_stage, sampling_progress
from gen_eval.schemas import to_json

IMAGE_METRICS = ["fid", "kid", "is", "precision_recall", "density_coverage"]
VECTOR_METRICS = ["fid", "precision_recall", "density_coverage"]
FLOOR = "train split"
LEADERBOARD_FILES = ("leaderboard.json", "leaderboard.csv")  # what write_leaderboard writes


@dataclass
class ModelScore:
    """One leaderboard row: a model (or the train-split floor) scored against a test split."""

    name: str
    family: str
    dataset: str
    faulty: str | None
    metrics: dict[str, dict[str, Any]]
    run_dir: str | None
    coverage: dict[str, Any] = field(default_factory=dict)  # classes or known modes covered
    collapse: dict[str, str] = field(default_factory=dict)  # {"status", "verdict"} of the collapse check
    notes: list[str] = field(default_factory=list)  # printed under the table (a stale stored result)

    def value(self, metric: str) -> float | None:
        entry = self.metrics.get(metric)
        return None if entry is None else entry["value"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_evaluation(
        cls,
        name: str,
        family: str,
        dataset: str,
        faulty: str | None,
        evaluation: Evaluation,
        coverage: dict[str, Any] | None = None,
    ) -> ModelScore:
        """The row of one evaluation: its metrics as dicts, its run folder and collapse verdict."""
        report = evaluation.collapse
        return cls(
            name=name,
            family=family,
            dataset=dataset,
            faulty=faulty,
            metrics={k: v.to_dict() for k, v in evaluation.metrics.items()},
            run_dir=str(evaluation.run_dir) if evaluation.run_dir else None,
            coverage=coverage or {},
            collapse={"status": report.status, "verdict": report.verdict} if report else {},
        )


def _coverage(evaluation: Evaluation) -> dict[str, Any]:
    """Known modes (2-D mixtures) or digit classes covered, from the evaluation's collapse check."""
    found = evaluation.collapse.detectors if evaluation.collapse is not None else {}
    if "modes" in found:
        modes = found["modes"]
        return {
            "kind": "modes",
            "covered": modes.modes_covered,
            "total": modes.num_modes,
            "missing": modes.missing,
            "hq_share": modes.hq_share,
            "reverse_kl": modes.reverse_kl,
        }
    if "classes" in found:
        classes = found["classes"]
        return {
            "kind": "classes",
            "covered": classes.classes_covered,
            "total": classes.num_classes,
            "missing": classes.missing,
            "histogram": classes.generated_counts,
            "kl_to_reference": classes.kl_to_reference,
        }
    return {}


def score_models(
    names: list[str] | None = None,
    *,
    datasets: tuple[str, ...] = ("digits",),
    out_dir: str | Path | None = "runs/models",
    num_samples: int = 1000,
    num_resamples: int = 100,
    seed: int = 0,
    include_floor: bool = True,
    show_progress: bool = True,
    latent: bool = False,
    overwrite: bool = True,
    threads: int | None = None,
    workers: int = 1,
) -> list[ModelScore]:
    """Evaluate bundled models against the test split of their dataset.

    Parameters
    ----------
    names : list of str, optional
        Registry names (default: every model whose dataset is in ``datasets``).
    datasets : tuple of str
        Which datasets' models to score when ``names`` is None.
    out_dir : path, optional
        One run directory per model, ``out_dir/NAME`` (replaced if present); None writes nothing.
    num_samples : int
        Samples drawn from each model.
    num_resamples : int
        Bootstrap resamples for the 95% intervals.
    seed : int
        Seeds sampling and resampling.
    include_floor : bool
        Also score the train split against the test split (the best a model can hope for).
    show_progress : bool
        Progress bars.
    latent : bool
        Also add the latent analyses (``gen_eval.latent``, quick settings) to the runs of models
        with ``decode``: a few seconds each.
    overwrite : bool
        Replace whatever is at ``out_dir/NAME`` and the leaderboard files. False refuses (a
        GenEvalError before any work) when a file there was not written by an earlier call or has
        changed since, such as a report or a saved embedding (see :mod:`gen_eval.demo.files`).
    threads : int, optional
        CPU threads for torch and the BLAS libraries while scoring, restored after (None: leave
        them). The bundled networks are small: on a busy 2-core machine one thread drew PixelCNN
        samples with 8x less CPU time than two, whose threads spin while they wait for each other.
    workers : int
        Score this many models at once, each in a process of its own with ``threads`` threads
        (:mod:`gen_eval.workers`); 1 scores them one after another here. The numbers are the same.

    Returns
    -------
    list of ModelScore, in registry order (the floor first for each dataset).
    """
    from reference_models import MODELS

    if names is None:  # every shipped model of those datasets
        names = [n for n, e in MODELS.items() if e.dataset in datasets and e.checkpoint.is_file()]
    # shapes models are for the latent-space analysers; image metrics here use 8x8 digits features.
    # Translators and paired-task models (issue 23) have no sample(): their demo sections score them.
    names = [
        name
        for name in names
        if MODELS[name].dataset != "shapes"
        and MODELS[name].family not in ("translation", "paired")
        and "task" not in MODELS[name].config
    ]
    untrained = [name for name in names if not MODELS[name].checkpoint.is_file()]
    if untrained:
        raise GenEvalError(
            f"no shipped checkpoint for {', '.join(untrained)}; train with gen-eval train NAME"
        )
    jobs: list[tuple[str, str, str, str | None, str]] = []
    for dataset in dict.fromkeys(MODELS[name].dataset for name in names):
        if include_floor and dataset != "shapes":
            jobs.append((FLOOR, "data", dataset, None, f"{dataset}:train"))
        for name in names:
            entry = MODELS[name]
            if entry.dataset == dataset:
                jobs.append((name, entry.family, dataset, entry.faulty, f"ref:{name}"))
    if out_dir is not None:
        from gen_eval.demo.files import check_replaceable

        folders = [_run_name(name, dataset) for name, _, dataset, _, _ in jobs]
        check_replaceable(out_dir, [*folders, *LEADERBOARD_FILES], overwrite)
    settings = {
        "out_dir": out_dir,
        "num_samples": num_samples,
        "num_resamples": num_resamples,
        "seed": seed,
        "show_progress": show_progress,
        "latent": latent,
    }
    calls = [
        (
            f"{dataset} train split" if name == FLOOR else name,
            {"name": name, "family": family, "dataset": dataset, "faulty": faulty, "spec": spec, **settings},
        )
        for name, family, dataset, faulty, spec in jobs
    ]
    with progress_group("models", len(jobs), show_progress) as group:
        if workers > 1 and len(jobs) > 1:
            from gen_eval.workers import run_jobs

            slow = {"autoregressive", "diffusion"}  # minutes, not seconds: started first
            scores = run_jobs(
                [(label, _score_one, kwargs) for label, kwargs in calls],
                workers=min(workers, len(jobs)),
                group=group,
                threads=threads,
                first=lambda label: any(label == n and f in slow for n, f, *_ in jobs),
            )
            return add_stored_likelihoods(scores)
        scores = []
        with _thread_limit(threads):
            for label, kwargs in calls:
                with group.item(label):
                    scores.append(_score_one(**kwargs))
        return add_stored_likelihoods(scores)


@contextmanager
def _thread_limit(threads: int | None) -> Iterator[None]:
    """Use ``threads`` CPU threads in torch and BLAS inside the block (None: no change)."""
    if threads is None:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(before)


def _run_name(name: str, dataset: str) -> str:
    """The run folder of a job inside ``out_dir``."""
    return f"{dataset}-train-floor" if name == FLOOR else name


def _score_one(
    name: str,
    family: str,
    dataset: str,
    faulty: str | None,
    spec: str,
    *,
    out_dir: str | Path | None,
    num_samples: int,
    num_resamples: int,
    seed: int,
    show_progress: bool,
    latent: bool,
) -> ModelScore:
    """Evaluate one job of :func:`score_models` (and add its latent analyses)."""
    from gen_eval.sources import open_source

    vector = dataset in ("ring8", "grid25")
    reference = f"{dataset}:test"
    metrics = list(VECTOR_METRICS if vector else IMAGE_METRICS)
    features = "identity" if vector else "digits"
    # Open the source here (loading the model once) to see whether it offers log_prob.
    count = num_samples if spec.startswith("ref:") else None
    with progress_stage("loading", show_progress):
        source = open_source(spec, num_samples=count, seed=seed)
    if callable(getattr(getattr(source, "model", None), "log_prob", None)):
        metrics.append("bpd")
    target = None if out_dir is None else Path(out_dir) / _run_name(name, dataset)
    with sampling_progress(source, show_progress):
        evaluation = evaluate(
            source,
            reference,
            features=features,
            metrics=metrics,
            num_samples=count,  # recorded in the manifest; the source already holds it
            num_resamples=num_resamples,
            seed=seed,
            out=target,
            overwrite=True,
            # The floor *is* the training split: the memorisation check would flag all of it.
            train=None if name == FLOOR else "auto",
            show_progress=show_progress,
        )
    if target is not None and evaluation.run_dir:
        from gen_eval.demo.files import record_files

        record_files(out_dir, [target.name])  # the run is the demo's own (before a slow latent step)
    model = getattr(source, "model", None)
    if (
        latent
        and evaluation.run_dir
        and callable(getattr(model, "decode", None))
        and getattr(model, "latent_dim", None)
    ):
        from gen_eval.demo.files import record_files
        from gen_eval.latent.analyse import analyse_latent, save_latent

        with progress_stage("latent analyses", show_progress):
            analysis = analyse_latent(
                model,
                name=name,
                reference=reference,
                features=features,
                ppl_samples=500,
                num_pairs=16,
                random_state=seed,
            )
            save_latent(str(evaluation.run_dir), analysis)
        record_files(out_dir, [Path(evaluation.run_dir).name])
    return ModelScore.from_evaluation(name, family, dataset, faulty, evaluation, _coverage(evaluation))


def write_leaderboard(scores: list[ModelScore], out_dir: str | Path) -> Path:
    """Write ``leaderboard.json`` and ``leaderboard.csv`` into ``out_dir``."""
    import pandas as pd

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "leaderboard.json").write_text(to_json([s.to_dict() for s in scores]) + "\n")
    rows = []
    for score in scores:
        row: dict[str, Any] = {"model": score.name, "family": score.family, "dataset": score.dataset}
        for metric, entry in score.metrics.items():
            row[metric] = entry["value"]
            if entry.get("interval"):
                row[f"{metric}_low"], row[f"{metric}_high"] = entry["interval"]
        if score.coverage:
            row[f"{score.coverage['kind']}_covered"] = score.coverage["covered"]
        row["collapse"] = score.collapse.get("verdict", "")
        row["faulty"] = score.faulty or ""
        rows.append(row)
    pd.DataFrame(rows).to_csv(out / "leaderboard.csv", index=False)
    from gen_eval.demo.files import record_files

    record_files(out, list(LEADERBOARD_FILES))
    return out / "leaderboard.json"


_STATUS_CELLS = {
    "ok": "[green]ok[/green]",
    "warning": "[yellow]warning[/yellow]",
    "collapse": "[bold red]COLLAPSE[/bold red]",
    "memorisation": "[bold magenta]COPIES[/bold magenta]",
}


def print_leaderboard(scores: list[ModelScore]) -> None:
    """A rich table per dataset, sorted by FID (the floor first)."""
    from rich import box
    from rich.table import Table

    from gen_eval.tables import console_for, unclipped

    tables = []
    for dataset in dict.fromkeys(s.dataset for s in scores):
        rows = sorted(
            (s for s in scores if s.dataset == dataset),
            key=lambda s: (s.name != FLOOR, s.value("fid") if s.value("fid") is not None else 1e9),
        )
        vector = dataset in ("ring8", "grid25")
        features = "identity" if vector else "digits"
        table = Table(title=f"{dataset}: models vs {dataset}:test ({features} features)", box=box.SIMPLE_HEAD)
        columns = ["model", "family", "FID", "95% CI"] + ([] if vector else ["IS"])
        columns += (
            ["prec", "recall", "dens", "cover"]
            + (["modes", "HQ"] if vector else ["bits/dim", "classes"])
            + ["collapse"]
        )
        for column in columns:
            justify = "left" if column in ("model", "family") else "right"
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        unclipped(table, whole=("model",))
        keys = ([] if vector else ["is"]) + ["precision", "recall", "density", "coverage"]
        for score in rows:
            fid = score.metrics["fid"]
            interval = fid.get("interval")
            cells = [
                score.name + (" [red](faulty)[/red]" if score.faulty else ""),
                score.family,
                f"{fid['value']:.2f}",
                f"{interval[0]:.1f}-{interval[1]:.1f}" if interval else "-",
            ]
            cells += [f"{score.value(k):.2f}" if score.value(k) is not None else "-" for k in keys]
            cov = score.coverage
            if vector:
                cells += [f"{cov['covered']}/{cov['total']}", f"{cov['hq_share']:.0%}"]
            else:
                bpd = score.metrics.get("bits_per_dim")
                cells.append("-" if bpd is None else bpd_cell(bpd))
                style = "" if not cov or cov["covered"] == cov["total"] else "[red]"
                cells.append(f"{style}{cov['covered']}/{cov['total']}" if cov else "-")
            status = score.collapse.get("status", "")
            cells.append(_STATUS_CELLS.get(status, status or "-"))
            table.add_row(*cells)
        tables.append(table)
    # Piped output (CI logs, files) is as wide as the columns need; a terminal keeps its own.
    console = console_for(*tables)
    for table in tables:
        console.print(table)
    console.print(
        "[dim]≤: an upper bound on bits/dim (dequantised density, IWAE or ELBO); ≈: an estimate by annealed "
        "importance sampling (a large RBM's log Z, which errs low; a GAN's stored AIS result, which errs high); "
        "†: AIS under Gaussian observation noise (sigma below, chosen on validation images): not comparable with "
        "exact likelihoods; classes: digit classes the "
        "classifier reads in the samples; prec/recall/dens/cover: precision, recall, density, coverage; "
        "collapse: the verdict of the mode-collapse detectors (gen-eval collapse ref:NAME for the evidence)[/dim]"
    )
    for score in scores:
        # Every caveat of a number shown: the assumed noise (†), a sigma at the end of its grid, an RBM's AIS log Z.
        for warning in (score.metrics.get("bits_per_dim") or {}).get("warnings", []):
            mark = "†" if warning.startswith(ASSUMED_NOISE) else "-"
            console.print(f"[dim]{mark} {score.name} bits/dim: {warning}[/dim]")
        for note in score.notes:
            console.print(f"[yellow]{score.name}[/yellow]: {note}")
    for score in scores:
        if score.collapse.get("status") in ("collapse", "memorisation"):
            console.print(f"[red]{score.name}[/red]: {score.collapse['verdict']}")
