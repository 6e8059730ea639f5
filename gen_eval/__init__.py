"""gen-eval: score and explain generative models.

Public API (imported lazily, so ``import gen_eval`` and ``gen-eval --help`` stay fast)::

    import gen_eval
    result = gen_eval.evaluate("digits:train", "digits:test", out="runs/demo")
    result.metrics["fid"].value
    run = gen_eval.load_run("runs/demo")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gen_eval.errors import GenEvalError

__version__ = "0.1.0"
__all__ = [
    "Evaluation",
    "GenEvalError",
    "HumanStore",
    "Result",
    "Run",
    "RunHumanResult",
    "Study",
    "StudySettings",
    "Trial",
    "TrialItem",
    "analyse_latent",
    "compare",
    "compare_human",
    "evaluate",
    "load_run",
    "open_source",
    "sample_picture",
    "sample_text",
    "score",
    "study_results",
]

if TYPE_CHECKING:
    from gen_eval.comparison.compare import compare
    from gen_eval.evaluation import Evaluation, evaluate
    from gen_eval.grading.score import score
    from gen_eval.human import (
        HumanStore,
        RunHumanResult,
        Study,
        StudySettings,
        Trial,
        TrialItem,
        compare_human,
        sample_picture,
        sample_text,
        study_results,
    )
    from gen_eval.latent.analyse import analyse_latent
    from gen_eval.metrics.result import Result
    from gen_eval.runs.run import Run, load_run
    from gen_eval.sources import open_source

_LAZY = {
    "evaluate": "gen_eval.evaluation",
    "Evaluation": "gen_eval.evaluation",
    "Result": "gen_eval.metrics.result",
    "load_run": "gen_eval.runs.run",
    "Run": "gen_eval.runs.run",
    "open_source": "gen_eval.sources",
    "score": "gen_eval.grading.score",
    "compare": "gen_eval.comparison.compare",
    "analyse_latent": "gen_eval.latent.analyse",
    **dict.fromkeys(
        (
            "HumanStore",
            "RunHumanResult",
            "Study",
            "StudySettings",
            "Trial",
            "TrialItem",
            "compare_human",
            "sample_picture",
            "sample_text",
            "study_results",
        ),
        "gen_eval.human",
    ),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gen_eval' has no attribute {name!r}")
