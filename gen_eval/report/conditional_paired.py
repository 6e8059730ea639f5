"""The run report's sections for conditional and paired runs (issue 23).

A labelled run (a conditional generator, a labelled submission) gets "Classes": the per-class
sample grid the run keeps (``classes.png``) and one table row per class with every per-class
metric (FID, KID, precision, recall, coverage, the diversity ratio, the class read by the
classifier). A paired run (outputs with inputs and targets) gets "Pairs": the input/output/target
triplets (``triplets.png``) and the distortion-realism plane, this run's PSNR and FID beside the
bundled models' of the same task (:mod:`gen_eval.report.plane`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gen_eval.report.html import Page, escape, image_tag, table

if TYPE_CHECKING:
    from gen_eval.runs.run import Run

CLASSES_PICTURE = "classes.png"
TRIPLETS_PICTURE = "triplets.png"
# Per-class metrics shown as columns, in this order: (result key, column label, format).
PER_CLASS = (
    ("conditional_accuracy", "class read", ".0%"),
    ("fid_per_class", "FID", ".4g"),
    ("kid_per_class", "KID", ".4g"),
    ("precision_per_class", "precision", ".3f"),
    ("recall_per_class", "recall", ".3f"),
    ("coverage_per_class", "coverage", ".3f"),
    ("intra_class_diversity", "diversity / real", ".3f"),
)


def has_classes(run: Run) -> bool:
    """Whether the run is labelled: a class grid or a per-class metric."""
    return (run.path / CLASSES_PICTURE).is_file() or any(key in run.metrics for key, _, _ in PER_CLASS)


def is_paired(run: Run) -> bool:
    """Whether the run's generated set was paired (outputs with inputs/targets)."""
    return bool(run.manifest.get("generated", {}).get("paired")) or (run.path / TRIPLETS_PICTURE).is_file()


def per_class_table(run: Run) -> tuple[list[str], list[list[str]]]:
    """Columns and rows (one per class) of every per-class metric the run has; no rows when none ran."""
    shown = [(key, label, spec) for key, label, spec in PER_CLASS if key in run.metrics]
    per_class = {key: (run.metrics[key].details or {}).get("per_class") or {} for key, _, _ in shown}
    classes = sorted({str(c) for values in per_class.values() for c in values}, key=_class_order)
    rows = []
    for c in classes:
        cells = [c]
        for key, _, spec in shown:
            value = per_class[key].get(c)
            cells.append("-" if value is None else format(value, spec))
        rows.append(cells)
    return ["class", *[label for _, label, _ in shown]], rows


PER_CLASS_NOTE = (
    "Each column is its metric computed on one class's samples alone (the headline is the mean over "
    "classes, in the metrics table); 'class read' is the share the classifier reads as the class asked for."
)


def classes_section(page: Page, run: Run) -> None:
    """The class grid and the per-class table."""
    page.add("<h2 id='classes'>Classes</h2>")
    picture = run.path / CLASSES_PICTURE
    if picture.is_file():
        page.add(image_tag(picture.read_bytes(), "generated and reference samples per class"))
    columns, rows = per_class_table(run)
    if not rows:
        page.paragraph("No per-class metric ran on this run.", "muted")
        return
    page.paragraph(PER_CLASS_NOTE)
    page.add(table(columns, rows))


def _class_order(name: str) -> tuple[int, str]:
    return (int(name), "") if name.lstrip("-").isdigit() else (1 << 30, name)


def pairs_section(page: Page, run: Run) -> None:
    """The triplets picture and the PSNR-vs-FID plane with the bundled models of the run's task."""
    from gen_eval.report.plane import plane_figure

    page.add("<h2 id='pairs'>Pairs</h2>")
    picture = run.path / TRIPLETS_PICTURE
    if picture.is_file():
        page.add(image_tag(picture.read_bytes(), "inputs, outputs and targets"))
    points = plane_points(run)
    if points is None:
        page.paragraph("The plane needs this run's PSNR and FID; one of them did not run.", "muted")
        return
    task = run.manifest.get("generated", {}).get("task")
    page.paragraph(
        "Distortion (PSNR, up) against realism (FID of the outputs against the targets, left): "
        f"this run beside the bundled models of task {escape(str(task))} "
        "(their numbers from the scorecard). No model can be best at both (Blau & Michaeli 2018)."
    )
    page.figure(plane_figure(points))


def plane_points(run: Run) -> list[dict] | None:
    """This run's (PSNR, FID) point beside the bundled models' of its task; None without both numbers."""
    from gen_eval.report.plane import stored_points

    psnr, fid = run.metrics.get("psnr"), run.metrics.get("fid")
    if psnr is None or fid is None:
        return None
    generated = run.manifest.get("generated", {})
    task = generated.get("task")
    this_run = {
        "name": str(generated.get("spec", "this run")),
        "task": task,
        "psnr": psnr.value,
        "fid": fid.value,
        "submission": True,
    }
    return [*stored_points(task), this_run]
