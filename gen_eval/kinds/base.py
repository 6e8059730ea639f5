"""The declaration of a kind of sample, and the one registry of kinds every layer reads.

A kind is plain data plus a few functions (checks, conversion of what code returns, a picture).
Layers above (sources, features, metrics, collapse, latent, reports) keep their own registries
keyed by :attr:`DataKind.name`; none of them tests a kind by name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from gen_eval.kinds.registry import Registry

# (generated, reference or None, (generated name, reference name)) -> PNG bytes.
DrawFunction = Callable[[Any, Any, tuple[str, str]], bytes]


def element_type(batch: Any) -> str:
    """``"uint8"`` for a numpy array or a torch tensor of that type (torch's ``torch.uint8`` too)."""
    return str(getattr(batch, "dtype", type(batch).__name__)).split(".")[-1]


@dataclass(frozen=True)
class DataKind:
    """What gen-eval needs to know about one kind of sample.

    Attributes
    ----------
    name : str
        Registry key and the ``data_kind`` recorded in manifests (``"image"``, ``"vector"``).
    plural : str
        For messages: ``"images"``, ``"vectors"``.
    description : str
        One line for listings.
    dtype : str
        Element type of a canonical batch (``"uint8"``, ``"float32"``); sizes memory estimates.
    default_extractor : str
        Feature extractor ``--features auto`` picks for this kind.
    validate : callable
        ``(batch, name) -> None``: raises a one-line GenEvalError naming ``name`` and the problem
        when a canonical batch (array or tensor, one sample per row) is not of this kind. Checks
        shape and type only, so it is cheap enough to run on every batch.
    draw : callable
        ``(generated, reference, names) -> PNG bytes``: the run's sample picture.
    picture_count : int
        Samples of each set the picture shows (at most).
    picture_reference : bool
        Whether the picture also draws the reference (a scatter does; an image grid does not).
    provides : frozenset of str
        Needs a metric may declare beyond features that this kind meets (``{"images"}``).
    claims : callable, optional
        ``(shape, dtype) -> bool``: whether a batch that code returned is of this kind. Kinds
        registered later are asked first; None: this kind is only made by its own reader.
    from_code : callable, optional
        ``(array, name) -> (canonical array, note or None)``: brings what code returned to the
        canonical form (the note says what was converted, for the manifest).
    caption : callable, optional
        ``(generated, reference) -> str`` from the two manifest entries: the report's words
        under the sample picture.
    run_files : callable, optional
        ``(generated, reference or None) -> {relative path: bytes}``: files a run keeps beside
        its picture, from the first ``picture_count`` samples of each set (point clouds keep
        ``clouds.npz`` for the reports' interactive 3-D views).
    """

    name: str
    plural: str
    description: str
    dtype: str
    default_extractor: str
    validate: Callable[[Any, str], None]
    draw: DrawFunction
    picture_count: int = 64
    picture_reference: bool = False
    provides: frozenset[str] = field(default_factory=frozenset)
    claims: Callable[[tuple[int, ...], str], bool] | None = None
    from_code: Callable[[Any, str], tuple[Any, str | None]] | None = None
    caption: Callable[[dict[str, Any], dict[str, Any]], str] | None = None
    run_files: Callable[[Any, Any], dict[str, bytes]] | None = None

    @property
    def itemsize(self) -> int:
        """Bytes per element of a canonical batch."""
        import numpy as np

        return int(np.dtype(self.dtype).itemsize)


KINDS: Registry[DataKind] = Registry("data kind")


def register_kind(kind: DataKind, *, replace: bool = False) -> DataKind:
    """Declare ``kind`` (a name already taken is an error unless ``replace``)."""
    return KINDS.register(kind.name, kind, replace=replace)


def unregister_kind(name: str) -> DataKind:
    """Remove the kind ``name`` (tests and plug-ins that clean up after themselves)."""
    return KINDS.unregister(name)


@contextmanager
def registered_kind(kind: DataKind) -> Iterator[DataKind]:
    """``kind`` is declared for the body of the ``with`` block only."""
    with KINDS.registered(kind.name, kind):
        yield kind


def get_kind(name: str) -> DataKind:
    """The kind ``name``, or a one-line GenEvalError naming the kinds there are."""
    return KINDS.get(name)


def kinds() -> list[DataKind]:
    """Every declared kind, the built-in ones first (``gen_eval.kinds`` declares them on import)."""
    return [kind for _, kind in KINDS.items()]


def infer_kind(shape: tuple[int, ...], dtype: Any) -> DataKind | None:
    """The kind a batch of ``shape`` and ``dtype`` that code returned belongs to, or None.

    Kinds declared later are asked first, so a specific new kind (``(N, P, 3)`` point clouds)
    wins over the built-in image kind, which claims every shape but 2-D so that its check can
    say what an image must be.
    """
    name = str(dtype).split(".")[-1]  # "float32" from numpy's dtype, torch's torch.float32 or a string
    for kind in reversed(kinds()):
        if kind.claims is not None and kind.claims(tuple(shape), name):
            return kind
    return None
