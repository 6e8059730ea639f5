"""The kinds of sample gen-eval evaluates, declared in one place (the data-kind seam).

:class:`DataKind` says how a batch of a kind is checked, converted from what code returns,
and drawn, and which feature extractor reads it by default; :class:`Samples` carries a batch
with its kind, and labels (conditional data) or inputs/targets (paired data). The image and
vector kinds (and point clouds and text) are declared here on import; a new kind is declared with :func:`register_kind`
(see ARCHITECTURE.md, "The data-kind seam", for the other layers' registries).

This package sits at the bottom of the layers: it imports only :mod:`gen_eval.errors`, and
inside functions numpy, PIL and :mod:`gen_eval.figure_style` (importing it stays cheap: the
CLI's help reads registries that import it).
"""

from __future__ import annotations

from gen_eval.kinds.base import (
    KINDS,
    DataKind,
    get_kind,
    infer_kind,
    kinds,
    register_kind,
    registered_kind,
    unregister_kind,
)
from gen_eval.kinds.image import IMAGE
from gen_eval.kinds.pointcloud import POINTCLOUD
from gen_eval.kinds.registry import Registry
from gen_eval.kinds.samples import Samples
from gen_eval.kinds.text import TEXT
from gen_eval.kinds.vector import VECTOR

for _kind in (IMAGE, VECTOR, POINTCLOUD, TEXT):
    if _kind.name not in KINDS:
        register_kind(_kind)

__all__ = [
    "IMAGE",
    "KINDS",
    "POINTCLOUD",
    "TEXT",
    "VECTOR",
    "DataKind",
    "Registry",
    "Samples",
    "get_kind",
    "infer_kind",
    "kinds",
    "register_kind",
    "registered_kind",
    "unregister_kind",
]
