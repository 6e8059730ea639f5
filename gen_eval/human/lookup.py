"""A run's human judgements, found from the run's folder (for ``compare``, the report, the dashboard).

A study's database lives in the runs folder it was created in (``RUNS_DIR/human/``), and names
its runs relative to that folder, so the judgements of ``runs/class/alice`` are looked for in
``runs/class/human/`` and ``runs/human/`` (every folder above the run). Nothing is created:
a run with no study nearby simply has no human results.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from gen_eval.human.store import DATABASE, HumanStore

if TYPE_CHECKING:
    from gen_eval.human.model import Study
    from gen_eval.human.results import RunHumanResult


def run_human_results(run_dir: str | Path) -> list[tuple[Study, RunHumanResult]]:
    """Every study that judged the run and holds judgements of it, oldest first.

    Parameters
    ----------
    run_dir : str or Path
        A run directory.

    Returns
    -------
    list of (Study, RunHumanResult)
        Empty when no study judged it (or none has answers yet).
    """
    from gen_eval.human.results import study_results

    run_dir = Path(run_dir).resolve()
    found = []
    for root in run_dir.parents:
        if not (root / DATABASE).is_file():
            continue
        store = HumanStore(root / DATABASE)
        name = run_dir.relative_to(root).as_posix()
        for study in store.studies():
            if name in study.runs:
                result = study_results(store, study.study_id)[study.runs.index(name)]
                if result.judgements:
                    found.append((study, result))
    return sorted(
        found, key=lambda pair: pair[0].created
    )  # stable: one database's studies stay in creation order


def human_comparison(run_a: str | Path, run_b: str | Path) -> dict[str, Any] | None:
    """Run B's human error rate against run A's, with a test, when both have judgements.

    The latest study that judged both is used (the same people saw both); failing that, each
    run's latest study, and the result says the studies differ.

    Returns
    -------
    dict or None
        :func:`gen_eval.human.results.compare_human` of (A, B) (``difference`` is B - A), plus ``study_a``/``study_b`` (codes) and ``same_study``; None
        when either run has no judgements.
    """
    from gen_eval.human.results import compare_human

    a, b = run_human_results(run_a), run_human_results(run_b)
    if not a or not b:
        return None
    shared = [study.study_id for study, _ in a if study.study_id in {s.study_id for s, _ in b}]
    if shared:
        pick_a = next(pair for pair in reversed(a) if pair[0].study_id == shared[-1])
        pick_b = next(pair for pair in reversed(b) if pair[0].study_id == shared[-1])
    else:
        pick_a, pick_b = a[-1], b[-1]
    out = compare_human(pick_a[1], pick_b[1])
    out.update(study_a=pick_a[0].code, study_b=pick_b[0].code, same_study=bool(shared))
    return out
