"""The demo's point-cloud section: the bundled ``shapes3d`` models scored against ``shapes3d:test``.

``gen-eval demo`` scores the digits models with :mod:`gen_eval.demo.leaderboard`; the point-cloud
models (``pointcloud_ae``, ``pointcloud_flow``, the faulty ``collapsed_shapes3d``) need other
features and metrics, so they get this section of their own: FPD (the Fréchet distance of the
bundled PointNet's features, Shu et al. 2019), precision/recall on the same features, the
PointFlow protocol with Chamfer distance (MMD-CD, COV-CD, 1-NNA-CD) and the voxel JSD where those
metrics are registered, and the classes covered (read by the PointNet) with the collapse verdict.
The floor is the validation split (an independent draw of the same shapes) against the test split.

The PointFlow metrics compare every pair of clouds, so the section is small by default
(``num_samples`` = ``num_reference`` = 100 clouds of 2,048 points).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from gen_eval.demo.sections import (
    metric_rows,
    model_score,
    print_section_table,
    registered_metrics,
    split_by_dataset,
)
from gen_eval.errors import GenEvalError
from gen_eval.progress import progress_group, progress_stage, sampling_progress

if TYPE_CHECKING:
    from gen_eval.demo.leaderboard import ModelScore
    from gen_eval.evaluation import Evaluation

DATASET = "shapes3d"
REFERENCE = "shapes3d:test"
FLOOR_SPEC = "shapes3d:validation"
FLOOR = "validation split"
FEATURES = "pointnet-shapes3d"
# Wanted in this order; those another part of gen-eval has not registered are left out.
WANTED_METRICS = ("fid", "precision_recall", "pointflow_cd", "voxel_jsd")
NUM_SAMPLES = 100


def split_names(names: list[str] | None) -> tuple[list[str] | None, list[str]]:
    """``(other models, point-cloud models)`` of a ``--models`` list (see ``split_by_dataset``)."""
    return split_by_dataset(names, DATASET)


def pointcloud_metrics() -> list[str]:
    """The section's metrics that are registered here."""
    return registered_metrics(WANTED_METRICS)


def score_pointcloud_models(
    names: list[str],
    *,
    out_dir: str | Path | None,
    num_samples: int = NUM_SAMPLES,
    num_reference: int = NUM_SAMPLES,
    num_resamples: int = 100,
    seed: int = 0,
    show_progress: bool = True,
    latent: bool = False,
    overwrite: bool = True,
) -> list[ModelScore]:
    """Evaluate the point-cloud models ``names`` (and the validation-split floor) against ``shapes3d:test``.

    Parameters
    ----------
    names : list of str
        Bundled ``shapes3d`` models (an empty list scores nothing, not even the floor).
    out_dir : path, optional
        One run per model, ``out_dir/NAME`` (the floor: ``out_dir/shapes3d-validation-floor``).
    num_samples, num_reference : int
        Clouds drawn from each model, and read from the test split.
    num_resamples, seed, show_progress : as for :func:`gen_eval.demo.leaderboard.score_models`.
    latent : bool
        Also add the latent analyses (interpolation between shapes, traversals) to models with ``decode``.
    overwrite : bool
        False refuses to replace files the demo did not write (:mod:`gen_eval.demo.files`).

    Returns
    -------
    list of ModelScore, the floor first.
    """
    from reference_models import MODELS

    if not names:
        return []
    wrong = [name for name in names if MODELS[name].dataset != DATASET]
    if wrong:
        raise GenEvalError(
            f"{', '.join(wrong)}: not point-cloud models; the point-cloud section scores {DATASET} models"
        )
    jobs = [(FLOOR, "data", None, FLOOR_SPEC)] + [
        (n, MODELS[n].family, MODELS[n].faulty, f"ref:{n}") for n in names
    ]
    if out_dir is not None:
        from gen_eval.demo.files import check_replaceable

        check_replaceable(out_dir, [_run_name(name) for name, *_ in jobs], overwrite)
    metrics = pointcloud_metrics()
    scores = []
    with progress_group("point-cloud models", len(jobs), show_progress) as group:
        for name, family, faulty, spec in jobs:
            with group.item(name):
                evaluation = _evaluate(
                    name,
                    spec,
                    metrics,
                    out_dir,
                    num_samples,
                    num_reference,
                    num_resamples,
                    seed,
                    show_progress,
                )
                if latent and name != FLOOR and evaluation.run_dir:
                    _add_latent(name, Path(evaluation.run_dir), out_dir, seed, show_progress)
                scores.append(_score(name, family, faulty, evaluation))
    return scores


def _run_name(name: str) -> str:
    return f"{DATASET}-validation-floor" if name == FLOOR else name


def _evaluate(
    name: str,
    spec: str,
    metrics: list[str],
    out_dir: str | Path | None,
    num_samples: int,
    num_reference: int,
    num_resamples: int,
    seed: int,
    show_progress: bool,
) -> Evaluation:
    from gen_eval.evaluation import evaluate
    from gen_eval.sources import open_source

    with progress_stage("loading", show_progress):
        source = open_source(spec, num_samples=num_samples, seed=seed)
    target = None if out_dir is None else Path(out_dir) / _run_name(name)
    with sampling_progress(source, show_progress):
        evaluation = evaluate(
            source,
            REFERENCE,
            features=FEATURES,
            metrics=metrics,
            num_samples=num_samples,
            num_reference=num_reference,
            num_resamples=num_resamples,
            seed=seed,
            out=target,
            overwrite=True,
            # The training split is 4,000 clouds: its features would cost more than the section.
            train=None,
            show_progress=show_progress,
        )
    if target is not None and evaluation.run_dir:
        from gen_eval.demo.files import record_files

        record_files(out_dir, [target.name])
    return evaluation


def _add_latent(name: str, run_dir: Path, out_dir: str | Path | None, seed: int, show_progress: bool) -> None:
    """Interpolation between shapes, traversals and the rest, with small sample counts (PointNet reads
    about 40 clouds a second on one busy core)."""
    from gen_eval.latent.analyse import analyse_latent, save_latent
    from reference_models import load_model

    model = load_model(name)
    if not callable(getattr(model, "decode", None)):
        return
    with progress_stage("latent analyses", show_progress):
        analysis = analyse_latent(
            model,
            name=name,
            reference=REFERENCE,
            features=FEATURES,
            ppl_samples=100,
            num_pairs=8,
            steps=8,
            num_real=140,
            random_state=seed,
        )
        save_latent(str(run_dir), analysis)
    if out_dir is not None:
        from gen_eval.demo.files import record_files

        record_files(out_dir, [run_dir.name])


def _score(name: str, family: str, faulty: str | None, evaluation: Evaluation) -> ModelScore:
    from gen_eval.datasets.shapes3d import CLASSES

    report = evaluation.collapse
    coverage: dict[str, Any] = {}
    classes = report.detectors.get("classes") if report is not None else None
    if classes is not None:
        coverage = {
            "kind": "classes",
            "covered": classes.classes_covered,
            "total": classes.num_classes,
            "missing": [CLASSES[k] for k in classes.missing],
            "histogram": classes.generated_counts,
            "kl_to_reference": classes.kl_to_reference,
        }
    return model_score(name, family, faulty, evaluation, DATASET, coverage)


def pointcloud_rows(scores: list[ModelScore]) -> tuple[list[str], list[list[str]]]:
    """Column names and text rows of the section's table (the terminal's and the tests')."""
    keys = [
        ("FPD", "fid", ".3g"),
        ("prec", "precision", ".2f"),
        ("recall", "recall", ".2f"),
        ("MMD-CD", "mmd_cd", ".4f"),
        ("COV-CD", "cov_cd", ".0%"),
        ("1-NNA-CD", "1nna_cd", ".0%"),
        ("JSD", "jsd", ".3f"),
    ]
    columns, rows = metric_rows(scores, keys)
    for score, cells in zip(scores, rows, strict=True):
        cov = score.coverage
        cells.append(f"{cov['covered']}/{cov['total']}" if cov else "-")
        cells.append(", ".join(cov.get("missing", [])) or "-")
        cells.append(score.collapse.get("status", "-"))
    return [*columns, "classes", "missing", "collapse"], rows


def print_pointcloud_table(scores: list[ModelScore]) -> None:
    """The section's table on the terminal (nothing when no point-cloud model was scored)."""
    if scores:
        title = f"{DATASET}: point-cloud models vs {REFERENCE} ({FEATURES} features)"
        print_section_table(title, *pointcloud_rows(scores), left=("model", "family", "missing"))
