"""Import a submitted ``file.py`` and call its factory: the one loader of generator files.

Used inside the sandboxed worker (:mod:`gen_eval.sources.sandbox_worker`) and, with
``--no-sandbox`` / ``--unsafe-no-isolation``, in the grader's own process
(:mod:`gen_eval.sources.python`). It imports nothing else of gen-eval's sources, so neither
side makes an import cycle.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from gen_eval.errors import GenEvalError


def load_factory(path: Path, factory: str) -> Any:
    """Import ``path`` as a module and call ``factory()``; errors name the file."""
    module_name = f"gen_eval_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise GenEvalError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise GenEvalError(f"{path}: importing it raised {type(exc).__name__}: {exc}") from exc
    if not callable(getattr(module, factory, None)):
        raise GenEvalError(f"{path}: has no callable {factory!r}; name the function that builds the model")
    try:
        model = getattr(module, factory)()
    except Exception as exc:
        raise GenEvalError(f"{path}:{factory}() raised {type(exc).__name__}: {exc}") from exc
    if not callable(getattr(model, "sample", None)):
        raise GenEvalError(
            f"{path}:{factory}() returned {type(model).__name__}, which has no sample(n, generator)"
        )
    return model
