"""Read a pickle of plain data (EDM2's reference statistics) without running the file's code.

A pickle names the callables that rebuild its objects, and ``pickle.load`` imports and calls
whatever it names: ``os.system`` as easily as ``numpy.ndarray``. :class:`AllowListUnpickler`
resolves a name only when it is one of the few functions numpy's own arrays, dtypes and scalars
are pickled with (:data:`ALLOWED`); any other name stops the load before anything is called.
The objects pickle builds without naming a callable (dicts, lists, tuples, numbers, strings,
bytes) are harmless, and :func:`load_plain_pickle` then checks that the whole result is made of
dicts, lists, numbers, strings and numeric numpy arrays only.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from gen_eval.errors import GenEvalError

__all__ = ["ALLOWED", "AllowListUnpickler", "load_plain_pickle"]


def _allowed() -> dict[tuple[str, str], Any]:
    # Resolved here from numpy itself, never by importing the module the file names: an old
    # pickle's "numpy.core.multiarray" and numpy 2's "numpy._core.multiarray" map to one function.
    from numpy._core import multiarray, numeric

    found: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for package in ("numpy.core", "numpy._core"):
        found[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct  # protocols 2-4
        found[(f"{package}.multiarray", "scalar")] = multiarray.scalar  # numpy scalars (np.float64(2.0))
        found[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer  # protocol 5 arrays
    # Protocol 2 spells bytes as _codecs.encode(text, "latin1"). Only that encoding: another name
    # would make codecs look up (and import) whatever codec search functions are registered.
    found[("_codecs", "encode")] = _latin1
    return found


def _latin1(text: str, encoding: str = "latin1") -> bytes:
    if encoding != "latin1" or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with {encoding!r}")
    return text.encode("latin1")


ALLOWED = _allowed()


class AllowListUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the names in :data:`ALLOWED` (numpy arrays, dtypes, scalars)."""

    def find_class(self, module: str, name: str) -> Any:
        """The allowed function for ``module.name``; anything else stops the load."""
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"{module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        """Persistent ids refer to objects outside the file: never followed."""
        raise pickle.UnpicklingError("a persistent id")


def load_plain_pickle(path: Path, what: str = "reference statistics") -> Any:
    """Load ``path`` through :class:`AllowListUnpickler` and check it holds plain data only.

    Parameters
    ----------
    path : Path
        The ``.pkl`` file.
    what : str
        What the file should be, for messages.

    Returns
    -------
    object
        Dicts (string keys), lists, numbers, strings and numeric numpy arrays.

    Raises
    ------
    GenEvalError
        One line naming the file and what it asked for, when it needs anything else.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise GenEvalError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    try:
        loaded = AllowListUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as exc:
        raise GenEvalError(
            f"{path}: refused: a pickle of {what} may hold only dicts, lists, numbers, strings and numpy "
            f"arrays, and this one asks for {exc}; re-save it as a plain dict of numpy arrays (or as .npz)"
        ) from None
    except Exception as exc:  # truncated or corrupt streams raise many types: all are one line here
        raise GenEvalError(f"{path}: not a readable pickle of {what} ({type(exc).__name__}: {exc})") from None
    problem = _first_unplain(loaded, "the file")
    if problem is not None:
        raise GenEvalError(
            f"{path}: refused: {problem}; a pickle of {what} may hold only dicts, lists, numbers, strings "
            "and numeric numpy arrays"
        )
    return loaded


def _first_unplain(value: Any, where: str) -> str | None:
    """Where ``value`` holds something other than plain data, or None."""
    if value is None or isinstance(value, (bool, int, float, str, np.number, np.bool_)):
        return None
    if isinstance(value, np.ndarray):
        return None if value.dtype.kind in "biufc" else f"{where} is an array of {value.dtype}"
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where} has a key of type {type(key).__name__}"
            if (problem := _first_unplain(item, f"{where}[{key!r}]")) is not None:
                return problem
        return None
    if isinstance(value, list):
        for index, item in enumerate(value):
            if (problem := _first_unplain(item, f"{where}[{index}]")) is not None:
                return problem
        return None
    return f"{where} holds a {type(value).__name__}"
