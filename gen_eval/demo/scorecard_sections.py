"""The scorecard's issue-23 part: class-conditional, paired and translation models.

``gen-eval scorecard`` writes it inside the full scorecard; ``gen-eval scorecard --sections
conditional,paired,translation`` rescores only those sections and replaces only their block of
``reports/reference_models.md`` (between two HTML comments), since the full scorecard takes an
hour. The paired table is the one super-resolution papers print (method, PSNR/SSIM, FID, LPIPS),
per task; the plane (``figures/reference_models/paired_plane.png``) shows the same numbers as
distortion against realism, and their points are stored beside the checkpoints
(``paired_scores.json``) for the run report's plane.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gen_eval.errors import GenEvalError

if TYPE_CHECKING:
    from gen_eval.demo.leaderboard import ModelScore
    from gen_eval.demo.sections import Section

START, END = "<!-- issue-23 sections: start -->", "<!-- issue-23 sections: end -->"
GROUPS = ("conditional", "paired", "translation")


def sections_of(groups: tuple[str, ...] = GROUPS) -> list[Section]:
    """The demo sections of the named groups, in scorecard order."""
    from gen_eval.demo import conditional, paired, translation

    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise GenEvalError(f"--sections {','.join(unknown)}: choose from {', '.join(GROUPS)} (or all)")
    chosen = []
    if "conditional" in groups:
        chosen.append(conditional.SCORECARD_SECTION)
    if "paired" in groups:
        chosen += list(paired.SECTIONS.values())
    if "translation" in groups:
        chosen += list(translation.SECTIONS.values())
    return chosen


def score_sections(
    sections: list[Section], runs_dir: str | Path, num_samples: int, num_resamples: int, show_progress: bool
) -> list[tuple[Section, list[ModelScore]]]:
    """Every shipped model of each section scored (the floor first where a section has one)."""
    from gen_eval.demo.sections import score_section

    return [
        (
            section,
            score_section(
                section,
                section.model_names(),
                out_dir=runs_dir,
                num_samples=num_samples,
                num_resamples=num_resamples,
                show_progress=show_progress,
            ),
        )
        for section in sections
    ]


def _cell(score: ModelScore, key: str, spec: str) -> str:
    value = score.value(key)
    return "-" if value is None else format(value, spec)


def _paired_table(scored: list[tuple[Section, list[ModelScore]]]) -> list[str]:
    """The papers' table: method, PSNR/SSIM, FID, LPIPS (or the named feature distance), consistency."""
    rows = [
        (section.key, s) for section, found in scored if section.reference.startswith("task:") for s in found
    ]
    if not rows:
        return []
    perceptual = "LPIPS" if any(s.value("lpips") is not None for _, s in rows) else "feature distance"
    lines = [
        "### Paired tasks: the papers' table",
        "",
        "PSNR (dB) / SSIM from scikit-image against the targets, FID and KID of the outputs against the "
        f"targets (mnist features), {perceptual}"
        + (
            " (LPIPS's VGG weights are not on this machine: the mnist network's feature distance, named as such)"
            if perceptual != "LPIPS"
            else ""
        )
        + ", and consistency (RMSE in grey levels between the degraded output and the input: 0 means the "
        "output explains its input exactly).",
        "",
        f"| task | method | family | PSNR/SSIM | FID | {perceptual} | consistency |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for task, s in rows:
        key = "lpips" if perceptual == "LPIPS" else "feature_distance"
        lines.append(
            f"| {task} | {s.name} | {s.family} | {_cell(s, 'psnr', '.2f')}dB/{_cell(s, 'ssim', '.4f')} | "
            f"{_cell(s, 'fid', '.4g')} | {_cell(s, key, '.4g')} | {_cell(s, 'consistency', '.3g')} |"
        )
    return [*lines, "", *_trade_off(rows)]


def _trade_off(rows: list[tuple[str, ModelScore]]) -> list[str]:
    """Per task, what the measured numbers say about distortion vs realism (written from the rows)."""
    sentences = []
    for task in dict.fromkeys(task for task, _ in rows):
        found = {s.name: s for t, s in rows if t == task}
        unet, gan = found.get(f"unet_{task}"), found.get(f"pix2pix_{task}")
        if unet is None or gan is None or None in (unet.value("psnr"), gan.value("psnr")):
            continue
        psnr = gan.value("psnr") - unet.value("psnr")
        fid = gan.value("fid") - unet.value("fid")
        shape = (
            "the papers' trade-off: the adversarial model gives up distortion for realism"
            if psnr < 0 and fid < 0
            else "better on both"
            if psnr >= 0 and fid < 0
            else "worse on both"
            if psnr < 0
            else "more PSNR but less realism"
        )
        overlapping = [m for m in ("psnr", "fid") if _overlap(unet, gan, m)]
        caveat = (
            f"; the 95% intervals of {' and '.join(m.upper() for m in overlapping)} overlap, so that part is "
            "within the noise"
            if overlapping
            else ""
        )
        sentences.append(
            f"{task}: pix2pix vs the L1 U-Net, PSNR {psnr:+.2f} dB and FID {fid:+.3g} ({shape}{caveat})."
        )
    return (["Measured: " + " ".join(sentences), ""]) if sentences else []


def _overlap(a: ModelScore, b: ModelScore, metric: str) -> bool:
    """Whether two scores' 95% intervals of ``metric`` overlap (True when either has none)."""
    first, second = ((s.metrics.get(metric) or {}).get("interval") for s in (a, b))
    if not first or not second:
        return True
    return first[0] <= second[1] and second[0] <= first[1]


def section_lines(scored: list[tuple[Section, list[ModelScore]]], plane: str | None) -> list[str]:
    """The block's Markdown: a table per section, the papers' table, the plane."""
    from gen_eval.demo.sections import section_rows

    lines = [START, "", "## Conditional, paired and translation models (issue 23)", ""]
    lines.append(
        f"Regenerate this part alone with `gen-eval scorecard --sections {','.join(GROUPS)}` (written "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC). Intervals and counts are in each run's metrics.json."
    )
    for section, found in scored:
        if not found:
            continue
        columns, rows = section_rows(section, found)
        lines += ["", f"### {section.title}", "", "| " + " | ".join(columns) + " |"]
        lines.append("| " + " | ".join("---" for _ in columns) + " |")
        lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", *_paired_table(scored)]
    if plane:
        lines += [f"![distortion vs realism of the paired models]({plane})", ""]
    return [*lines, END]


def replace_block(text: str, block: list[str]) -> str:
    """``text`` with its issue-23 block replaced (or inserted before "## Samples", else appended)."""
    joined = "\n".join(block)
    if START in text and END in text:
        head, rest = text.split(START, 1)
        return head + joined + rest.split(END, 1)[1]
    marker = "\n## Samples\n"
    if marker in text:
        head, tail = text.split(marker, 1)
        return f"{head}\n{joined}\n{marker}{tail}"
    return f"{text.rstrip()}\n\n{joined}\n"


def store_points(points: list[dict[str, Any]]) -> Path:
    """The paired models' plane points beside the checkpoints (read by the run report's plane)."""
    from gen_eval.report.plane import STORED
    from gen_eval.schemas import to_json
    from reference_models import CHECKPOINT_DIR

    path = Path(CHECKPOINT_DIR) / STORED
    document = {"format": "gen-eval-paired-scores-v1", "written": f"{datetime.now(timezone.utc):%Y-%m-%d}"}
    path.write_text(to_json(document | {"points": points}, sort_keys=True) + "\n", encoding="utf-8")
    json.loads(path.read_text(encoding="utf-8"))  # what was written reads back
    return path


def write_sections(
    out: str | Path,
    runs_dir: str | Path,
    groups: tuple[str, ...] = GROUPS,
    *,
    num_samples: int = 1000,
    num_resamples: int = 100,
    show_progress: bool = True,
) -> list[str]:
    """Score the groups' sections and return their scorecard block (plane PNG and stored points written)."""
    from gen_eval.demo.paired import plane_points
    from gen_eval.report.plane import plane_png

    scored = score_sections(sections_of(groups), runs_dir, num_samples, num_resamples, show_progress)
    points = plane_points([s for _, found in scored for s in found])
    plane = None
    if points:
        figures = Path(out).parent / "figures" / "reference_models"
        figures.mkdir(parents=True, exist_ok=True)
        plane_png(points, figures / "paired_plane.png")
        plane = "figures/reference_models/paired_plane.png"
        store_points(points)
    return section_lines(scored, plane)


def update_scorecard(out: str | Path, block: list[str]) -> Path:
    """Replace the issue-23 block of the scorecard at ``out`` (written whole: a temporary, then renamed)."""
    out = Path(out)
    text = out.read_text(encoding="utf-8") if out.is_file() else "# Reference-model scorecard\n"
    staging = out.with_name(f".{out.name}.partial")
    staging.write_text(replace_block(text, block), encoding="utf-8")
    staging.replace(out)
    return out
