"""Labels of labelled submissions: the classes their samples were asked to be (issue 23).

Three forms give a generated set labels, and with them ``Source.num_classes`` and the
``"labels"`` need of the conditional metrics:

- an ``.npz`` with a ``labels`` array beside the samples (:mod:`gen_eval.sources.arrays`): one
  non-negative integer per sample, checked by :func:`check_labels`;
- a folder per class, ``DIR/0/*.png``, ``DIR/1/*.png`` (dgm-eval's layout;
  :mod:`gen_eval.sources.folder`): :func:`class_of` reads a class from a folder's name;
- a class-conditional generator (:mod:`gen_eval.sources.python`): a model whose int attribute
  ``num_classes`` is set gets ``sample(n, generator, labels=...)`` calls asking for class
  ``i % num_classes`` for global sample index ``i`` (:func:`requested_labels`), so every class
  is asked for equally often and batching never changes which sample gets which class.

:func:`check_class_range` then holds them against the reference's classes before any work.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import numpy as np

from gen_eval.errors import GenEvalError

if TYPE_CHECKING:
    from gen_eval.sources.base import Source

# More classes than any conditional model of this field has (ImageNet-21k: 21,841); a larger value
# is a mistake (a sample count or a seed where the class count belongs).
MAX_CLASSES = 100_000


def check_labels(labels: np.ndarray, count: int, name: str) -> np.ndarray:
    """``labels`` as int64 after checking it holds one non-negative integer per sample.

    Parameters
    ----------
    labels : numpy.ndarray
        What the file holds.
    count : int
        The number of samples beside it.
    name : str
        The file (and member) named in errors.

    Returns
    -------
    numpy.ndarray
        int64, shape (count,).
    """
    if labels.ndim != 1:
        raise GenEvalError(
            f"{name}: labels have shape {labels.shape}; save one integer class per sample, shape ({count},)"
        )
    if len(labels) != count:
        raise GenEvalError(
            f"{name}: {len(labels):,} labels for {count:,} samples; save one label per sample, in order"
        )
    if labels.dtype.kind not in "iu":
        raise GenEvalError(
            f"{name}: labels are {labels.dtype}, not integers; save class indices (labels.astype(int))"
        )
    if count and labels.min() < 0:
        raise GenEvalError(
            f"{name}: label {int(labels.min())} at sample {int(np.argmin(labels))} is negative; "
            "classes are numbered 0, 1, ..."
        )
    if count and labels.max() >= MAX_CLASSES:
        raise GenEvalError(
            f"{name}: label {int(labels.max())} is over {MAX_CLASSES:,}; classes are numbered 0, 1, ..."
        )
    return labels.astype(np.int64, copy=False)


def dropped_classes_note(labels: np.ndarray, kept: int) -> str | None:
    """A note when keeping the first ``kept`` samples (``--num-samples``) leaves whole classes out."""
    if kept >= len(labels):
        return None
    missing = np.setdiff1d(np.unique(labels), np.unique(labels[:kept]))
    if not len(missing):
        return None
    shown = ", ".join(str(int(c)) for c in missing[:10]) + (", ..." if len(missing) > 10 else "")
    return (
        f"the first {kept:,} samples (--num-samples) hold no sample of {len(missing)} classes ({shown}): "
        "samples are kept in file order; interleave the classes to keep them all"
    )


def class_of(folder_name: str) -> int | None:
    """The class a folder's name gives (``"7"`` -> 7), or None for any other name.

    Only plain numbers count: ``"007"`` or ``"000000"`` (EDM's shards of 1,000 seeds) are not classes.
    """
    if not folder_name.isascii() or not folder_name.isdigit() or str(int(folder_name)) != folder_name:
        return None
    value = int(folder_name)
    return value if value < MAX_CLASSES else None


def takes_labels(sample: Any) -> bool:
    """Whether ``sample`` accepts a ``labels=`` keyword (a parameter of that name, or ``**kwargs``)."""
    try:
        parameters = inspect.signature(sample).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable: let the call itself tell
        return True
    return any(
        (p.name == "labels" and p.kind != p.POSITIONAL_ONLY) or p.kind == p.VAR_KEYWORD for p in parameters
    )


def declared_classes(model: Any, name: str) -> int | None:
    """A model's ``num_classes`` (None: unconditional), checked; ``sample`` must then take ``labels``."""
    value = getattr(model, "num_classes", None)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= MAX_CLASSES:
        raise GenEvalError(
            f"{name}: num_classes is {value!r}; a class-conditional model sets it to its number of "
            f"classes (an int from 1 to {MAX_CLASSES:,}), an unconditional one leaves it out"
        )
    if not takes_labels(model.sample):
        raise GenEvalError(
            f"{name}: declares num_classes={int(value)} but its sample() takes no labels; define "
            "sample(n, generator=None, labels=None) (labels: int64 tensor of the requested classes)"
        )
    return int(value)


def requested_labels(start: int, count: int, num_classes: int) -> np.ndarray:
    """The classes asked for samples ``start .. start + count - 1``: index ``i`` asks for ``i % num_classes``."""
    return np.arange(start, start + count, dtype=np.int64) % num_classes


def reference_classes(ref: Source) -> int | None:
    """The reference's number of classes (its largest label + 1), or None when it has no class labels."""
    if ref.num_classes is not None:
        return ref.num_classes
    dataset = getattr(ref, "dataset", None)
    # "factors" (shapes): several numbers per sample, no class; reading them would take seconds.
    if ref.kind != "dataset" or dataset is None or dataset.label_name in ("none", "factors"):
        return None
    _, labels = dataset.read(ref.split, 0, len(ref))  # embedded splits are small (mnist: 5,000)
    labels = np.asarray(labels)
    if labels.ndim != 1 or not len(labels) or labels.dtype.kind not in "iu":
        return None
    return int(labels.max()) + 1


def check_class_range(gen: Source, ref: Source) -> None:
    """Refuse a labelled generated set whose classes the reference does not have (one line, naming the file).

    Runs before any features are extracted; nothing is checked when either side has no classes.
    """
    if gen.num_classes is None:
        return
    classes = reference_classes(ref)
    if classes is None or gen.num_classes <= classes:
        return
    has = f"the reference {ref.spec} has classes 0-{classes - 1}"
    if gen.kind in ("python", "reference"):
        raise GenEvalError(
            f"{gen.spec}: the model declares num_classes={gen.num_classes} but {has}; "
            "evaluate it against a reference with the same classes"
        )
    form = "class folders go up to" if gen.kind == "folder" else "labels go up to"
    raise GenEvalError(
        f"{gen.spec}: {form} {gen.num_classes - 1} but {has}; number the classes as the reference does"
    )
