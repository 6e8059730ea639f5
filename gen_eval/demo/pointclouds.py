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
    Section,
    print_section,
    registered_metrics,
    score_section,
    section_rows,
    split_for_section,
)

if TYPE_CHECKING:
    from gen_eval.demo.leaderboard import ModelScore
    from gen_eval.evaluation import Evaluation

DATASET = "shapes3d"
REFERENCE = "shapes3d:test"
FEATURES = "pointnet-shapes3d"
NUM_SAMPLES = 100


def _coverage(evaluation: Evaluation) -> dict[str, Any]:
    """The classes the PointNet reads in the generated clouds (from the collapse check)."""
    from gen_eval.datasets.shapes3d import CLASSES

    report = evaluation.collapse
    classes = report.detectors.get("classes") if report is not None else None
    if classes is None:
        return {}
    return {
        "kind": "classes",
        "covered": classes.classes_covered,
        "total": classes.num_classes,
        "missing": [CLASSES[k] for k in classes.missing],
        "histogram": classes.generated_counts,
        "kl_to_reference": classes.kl_to_reference,
    }


def _classes_columns(scores: list[ModelScore]) -> tuple[list[str], list[list[str]]]:
    cells = []
    for score in scores:
        cov = score.coverage
        cells.append(
            [f"{cov['covered']}/{cov['total']}" if cov else "-", ", ".join(cov.get("missing", [])) or "-"]
        )
    return ["classes", "missing"], cells


def _add_latent(name: str, run_dir: Path, out_dir: str | Path | None, seed: int, show_progress: bool) -> None:
    """Interpolation between shapes, traversals and the rest, with small sample counts (PointNet reads
    about 40 clouds a second on one busy core)."""
    from gen_eval.latent.analyse import analyse_latent, save_latent
    from gen_eval.progress import progress_stage
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


SECTION = Section(
    key=DATASET,
    title=f"{DATASET}: point-cloud models vs {REFERENCE} ({FEATURES} features)",
    reference=REFERENCE,
    belongs=lambda entry: entry.dataset == DATASET,
    metrics=("fid", "precision_recall", "pointflow_cd", "voxel_jsd"),
    columns=(
        ("FPD", "fid", ".3g"),
        ("prec", "precision", ".2f"),
        ("recall", "recall", ".2f"),
        ("MMD-CD", "mmd_cd", ".4f"),
        ("COV-CD", "cov_cd", ".0%"),
        ("1-NNA-CD", "1nna_cd", ".0%"),
        ("JSD", "jsd", ".3f"),
    ),
    floor_spec="shapes3d:validation",
    features=FEATURES,
    max_samples=NUM_SAMPLES,
    # The training split is 4,000 clouds: its features would cost more than the section.
    train=None,
    extra_columns=_classes_columns,
    coverage=_coverage,
    after=_add_latent,
    left=("model", "family", "missing"),
)


def split_names(names: list[str] | None) -> tuple[list[str] | None, list[str]]:
    """``(other models, point-cloud models)`` of a ``--models`` list."""
    return split_for_section(names, SECTION)


def pointcloud_metrics() -> list[str]:
    """The section's metrics that are registered here."""
    return registered_metrics(SECTION.metrics)


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

    ``num_samples`` clouds from each model (at most 100) and ``num_reference`` from the test
    split; ``latent`` adds the latent analyses to models with ``decode``; the rest as
    :func:`gen_eval.demo.sections.score_section`.
    """
    from dataclasses import replace

    section = replace(SECTION, num_reference=num_reference)
    return score_section(
        section,
        names,
        out_dir=out_dir,
        num_samples=num_samples,
        num_resamples=num_resamples,
        seed=seed,
        show_progress=show_progress,
        overwrite=overwrite,
        latent=latent,
    )


def pointcloud_rows(scores: list[ModelScore]) -> tuple[list[str], list[list[str]]]:
    """Column names and text rows of the section's table (the terminal's and the tests')."""
    return section_rows(SECTION, scores)


def print_pointcloud_table(scores: list[ModelScore]) -> None:
    """The section's table on the terminal (nothing when no point-cloud model was scored)."""
    print_section(SECTION, scores)
