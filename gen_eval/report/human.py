"""The run report's "Human judgement" section: the run's error rates in every study that judged it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gen_eval.errors import GenEvalError

if TYPE_CHECKING:
    from gen_eval.report.html import Page
    from gen_eval.runs.run import Run


def human_judgements(run: Run) -> list[Any] | str:
    """The (study, result) pairs of the studies that judged ``run``; a sentence when they cannot be read."""
    from gen_eval.human import run_human_results

    try:
        return run_human_results(run.path)
    except GenEvalError as exc:  # a damaged study database costs this section, not the report
        return f"The human judgements could not be read: {exc}"


def _percent(rate: float | None, interval: tuple[float, float] | None) -> str:
    if rate is None:
        return "—"
    return f"{100 * rate:.1f}%" + (
        "" if interval is None else f" [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"
    )


def human_section(page: Page, judged: list[Any] | str) -> None:
    """Add the section: one row per study (rates with 95% Wilson intervals), and what 50% means."""
    from gen_eval.human import CHANCE_NOTE
    from gen_eval.human.results import INTERVAL_NOTE
    from gen_eval.report.html import table

    page.add("<h2 id='human'>Human judgement</h2>")
    if isinstance(judged, str):
        page.paragraph(judged, "muted")
        return
    page.paragraph(
        "People judged this run's samples against real ones (gen-eval human): the share of generated "
        "samples judged real, of real samples judged fake, and of both mistakes together. " + CHANCE_NOTE
    )
    rows = []
    for study, result in judged:
        spread = (
            "—"
            if result.participant_min is None
            else f"{100 * result.participant_min:.0f}–{100 * result.participant_max:.0f}%"
        )
        rows.append(
            [
                f"{study.code} ({study.settings.mode}, {study.created[:10]})",
                f"{result.participants} ({result.excluded_participants} left out)",
                str(result.judgements),
                _percent(result.fool_rate, result.fool_interval),
                _percent(result.real_error_rate, result.real_error_interval),
                _percent(result.error_rate, result.error_interval),
                _percent(result.error_rate, result.error_interval_people),
                spread,
                "—" if result.median_seconds is None else f"{result.median_seconds:.1f} s",
            ]
        )
    columns = [
        "study",
        "participants",
        "judgements",
        "fakes judged real",
        "reals judged fake",
        "error (both)",
    ]
    page.add(table([*columns, "error, people resampled", "per participant", "median time"], rows))
    page.paragraph(f"{INTERVAL_NOTE}; participants who missed an attention check are left out.", "muted")
