"""Paired submissions (issue 23): each output beside the input it was made from and the target it should match.

Two forms (``task:NAME`` and ``ref:NAME`` of a paired model are in :mod:`gen_eval.sources.task`):

- an ``.npz`` holding ``outputs``, (N, C, H, W) (or NHWC, or (N, H, W) grey) for one output per
  input, or (N, K, C, H, W) for K outputs per input (multi-modal models), plus either ``inputs``
  and ``targets`` arrays (N rows each; optional ``labels``) or a ``task`` string naming a task
  (``sr4``, ``inpaint``, ``edges``): then the i-th output answers the i-th input of that task's
  test split, and the counts must match. Read with ``allow_pickle=False``; float arrays map to
  uint8 by the rule of :mod:`gen_eval.sources.convert`, chosen per array.
- a folder with ``outputs/`` and ``targets/`` (and optionally ``inputs/``) holding image files
  with matching names (``outputs/0001.png`` answers ``targets/0001.png``; suffixes may differ).

With K outputs per input, the source yields N*K rows: output j of input i is row i*K + j, beside
copies of input i and target i (``outputs_per_input`` records K). When inputs are given without
a task name, the task whose degradation of the targets gives exactly the inputs is recognised
(so consistency can be measured); every paired source keeps all its pairs in memory, which suits
the tasks' 28x28 digits (10,000 pairs: 16 MB).
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from gen_eval.errors import GenEvalError
from gen_eval.sources.base import Batch, Source


@dataclass(frozen=True)
class Pairs:
    """All of a paired source's rows: uint8 NCHW numpy arrays, row-aligned (N*K rows each).

    ``inputs``/``targets`` repeat each input/target K times (``outputs_per_input``); ``labels``
    are int64 or None; ``task`` names the task the inputs came from, when known.
    """

    outputs: np.ndarray
    inputs: np.ndarray | None
    targets: np.ndarray | None
    labels: np.ndarray | None
    outputs_per_input: int = 1
    task: str | None = None

    @property
    def num_inputs(self) -> int:
        return len(self.outputs) // self.outputs_per_input


@dataclass
class PairedSource(Source):
    """A source whose rows are outputs with their inputs and targets; ``pairs()`` gives them all."""

    kind = "paired"
    paired: ClassVar[bool] = True
    task_name: str | None = field(default=None, init=False)
    outputs_per_input: int = field(default=1, init=False)

    def pairs(self) -> Pairs:
        """Every row, in order (computed once)."""
        cached = getattr(self, "_pairs", None)
        if cached is None:
            cached = self._load_pairs()
            self._pairs = cached
        return cached

    def _load_pairs(self) -> Pairs:
        raise NotImplementedError

    def _set_pairs(self, pairs: Pairs) -> None:
        """Record ``pairs`` and derive count, shape and fingerprint from them."""
        self._pairs = pairs
        self._count = len(pairs.outputs)
        self.sample_shape = tuple(pairs.outputs.shape[1:])
        self.outputs_per_input, self.task_name = pairs.outputs_per_input, pairs.task
        digest = hashlib.sha256(f"paired-v1:{pairs.outputs_per_input}:{pairs.task}".encode())
        for array in (pairs.outputs, pairs.inputs, pairs.targets, pairs.labels):
            digest.update(b"-" if array is None else repr(array.shape).encode() + array.tobytes())
        self._fingerprint = digest.hexdigest()

    def batches(self, batch_size: int) -> Iterator[Batch]:
        import torch

        pairs = self.pairs()

        def part(array: np.ndarray | None, start: int, stop: int) -> torch.Tensor | None:
            return None if array is None else torch.from_numpy(np.ascontiguousarray(array[start:stop]))

        for start in range(0, len(self), batch_size):
            stop = min(start + batch_size, len(self))
            labels = None if pairs.labels is None else pairs.labels[start:stop].copy()
            yield Batch(
                part(pairs.outputs, start, stop),
                labels,
                part(pairs.inputs, start, stop),
                part(pairs.targets, start, stop),
            )

    def describe(self) -> dict:
        info = super().describe()
        info.update(paired=True, task=self.task_name, outputs_per_input=self.outputs_per_input)
        return info


def repeat_rows(array: np.ndarray | None, k: int) -> np.ndarray | None:
    """Each row ``k`` times in a row (input i beside its outputs i*K ... i*K + K - 1)."""
    if array is None or k == 1:
        return array
    return np.repeat(array, k, axis=0)


def recognise_task(inputs: np.ndarray, targets: np.ndarray) -> str | None:
    """The task whose degradation of ``targets`` is exactly ``inputs`` (None when no task's is)."""
    import torch

    from gen_eval.datasets.tasks import get_task, task_names

    for name in task_names():
        task = get_task(name)
        if inputs.shape[1:] != task.input_shape or targets.shape[1:] != task.target_shape:
            continue
        if np.array_equal(task.degrade(torch.from_numpy(np.ascontiguousarray(targets))).numpy(), inputs):
            return name
    return None


def _images(array: np.ndarray, name: str) -> np.ndarray:
    """``array`` (N images in any layout :func:`infer_layout` reads) as uint8 NCHW."""
    from gen_eval.sources.convert import check_finite, choose_value_rule, infer_layout, to_canonical

    if array.dtype.kind not in "buif":
        raise GenEvalError(f"{name}: holds {array.dtype} values; save uint8 or float images")
    layout = infer_layout(array.shape, array.dtype, name)
    if layout.data_kind != "image":
        raise GenEvalError(f"{name}: shape {array.shape} is not a set of images; save (N, C, H, W) uint8")
    check_finite(array, name)
    low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
    return to_canonical(array, layout, choose_value_rule(array.dtype, low, high, name))


def read_paired_npz(path: Path, limit: int | None = None) -> Pairs:
    """The pairs an ``.npz`` holds (see the module docstring); one-line errors name the file."""
    from gen_eval.datasets.tasks import get_task, task_names
    from gen_eval.sources.labels import check_labels

    try:
        with np.load(path, allow_pickle=False) as archive:
            stored = {key: archive[key] for key in archive.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise GenEvalError(
            f"{path}: not a readable .npz of numeric arrays ({exc}); re-save it with numpy.savez"
        ) from None
    outputs = stored["outputs"]
    if outputs.ndim not in (3, 4, 5) or len(outputs) == 0:
        raise GenEvalError(
            f"{path}: outputs has shape {outputs.shape}; save (N, C, H, W) images, or (N, K, C, H, W) for K per input"
        )
    k = outputs.shape[1] if outputs.ndim == 5 else 1
    n = len(outputs)
    flat = _images(
        outputs.reshape(n * k, *outputs.shape[2:]) if k > 1 or outputs.ndim == 5 else outputs,
        f"{path}:outputs",
    )
    task_name = None
    if "task" in stored:
        task_name = (
            str(stored["task"]) if stored["task"].ndim == 0 and stored["task"].dtype.kind == "U" else None
        )
        if task_name not in task_names():
            raise GenEvalError(
                f"{path}: task is "
                + (repr(task_name) if task_name is not None else f"an array of {stored['task'].dtype}")
                + f"; name one of {', '.join(task_names())} as a string (task=np.array('sr4'))"
            )
    labels = None
    if "inputs" in stored or "targets" in stored:
        missing = [key for key in ("inputs", "targets") if key not in stored]
        if missing:
            raise GenEvalError(
                f"{path}: has {'targets' if missing == ['inputs'] else 'inputs'} but no {missing[0]}; save both, or a task name instead"
            )
        inputs = _images(stored["inputs"], f"{path}:inputs")
        targets = _images(stored["targets"], f"{path}:targets")
        if "labels" in stored:
            labels = check_labels(stored["labels"], len(targets), f"{path}:labels")
        if task_name is not None:
            recognised = recognise_task(inputs, targets) if len(inputs) == len(targets) else None
            if recognised != task_name:
                raise GenEvalError(
                    f"{path}: inputs are not task {task_name}'s degradation of targets "
                    "(misaligned rows, or another task); save the task's own inputs or drop the task name"
                )
    elif task_name is not None:
        inputs, targets, labels = get_task(task_name).read("test")
        if len(inputs) != n:
            raise GenEvalError(
                f"{path}: {n:,} outputs for task {task_name}, whose test split has {len(inputs):,} inputs; "
                "save one output per test input, in order (gen_eval.datasets.tasks.get_task(name).read('test'))"
            )
    else:
        raise GenEvalError(
            f"{path}: outputs without inputs/targets or a task; save inputs and targets arrays, or task='sr4' (or inpaint, edges)"
        )
    return _checked(flat, inputs, targets, labels, k, task_name, str(path), limit)


def _checked(
    outputs: np.ndarray,
    inputs: np.ndarray | None,
    targets: np.ndarray,
    labels: np.ndarray | None,
    k: int,
    task_name: str | None,
    name: str,
    limit: int | None,
) -> Pairs:
    """Check counts and shapes, recognise the task, keep the first ``limit`` rows."""
    n = len(outputs) // k
    if len(targets) != n:
        raise GenEvalError(
            f"{name}: {n:,} outputs per position but {len(targets):,} targets; save one target per input, in order"
        )
    if inputs is not None and len(inputs) != n:
        raise GenEvalError(
            f"{name}: {len(inputs):,} inputs but {len(targets):,} targets; save one input per target, in order"
        )
    if outputs.shape[1:] != targets.shape[1:]:
        raise GenEvalError(
            f"{name}: outputs are {'x'.join(map(str, outputs.shape[1:]))} (C x H x W) but targets "
            f"{'x'.join(map(str, targets.shape[1:]))}; an output must have its target's shape"
        )
    if task_name is None and inputs is not None:
        task_name = recognise_task(inputs, targets)
    if limit is not None:
        n = min(n, limit)
        outputs, targets = outputs[: n * k], targets[:n]
        inputs = None if inputs is None else inputs[:n]
        labels = None if labels is None else labels[:n]
    return Pairs(
        np.ascontiguousarray(outputs),
        repeat_rows(inputs, k),
        repeat_rows(targets, k),
        repeat_rows(labels, k),
        k,
        task_name,
    )


def _folder_images(root: Path) -> tuple[list[str], np.ndarray]:
    """Names (relative path without suffix) and uint8 NCHW images of the folder ``root``."""
    import torch

    from gen_eval.sources.folder import FolderSource

    folder = FolderSource(spec=str(root), root=root)
    names = [path.relative_to(root).with_suffix("").as_posix() for path in folder.files]
    images = torch.cat([batch.data for batch in folder.batches(256)]).numpy()
    return names, images


def _match(names: list[str], other: list[str], root: Path, part: str) -> None:
    if names == other:
        return
    missing = sorted(set(names) - set(other))
    extra = sorted(set(other) - set(names))
    shown = "; ".join(
        f"{label}: {', '.join(items[:3])}{' ...' if len(items) > 3 else ''}"
        for label, items in ((f"not in {part}/", missing), (f"only in {part}/", extra))
        if items
    )
    raise GenEvalError(
        f"{root}: outputs/ ({len(names):,} files) and {part}/ ({len(other):,}) do not hold the same names ({shown}); "
        "give every output a file of the same name in each folder"
    )


def read_paired_folder(root: Path, limit: int | None = None) -> Pairs:
    """The pairs of a folder with ``outputs/``, ``targets/`` and optionally ``inputs/``."""
    names, outputs = _folder_images(root / "outputs")
    target_names, targets = _folder_images(root / "targets")
    _match(names, target_names, root, "targets")
    inputs = None
    if (root / "inputs").is_dir():
        input_names, inputs = _folder_images(root / "inputs")
        _match(names, input_names, root, "inputs")
    return _checked(outputs, inputs, targets, None, 1, None, str(root), limit)


def is_paired_npz(path: Path) -> bool:
    """Whether ``path`` is an ``.npz`` with an ``outputs`` array (read from the zip index only)."""
    if path.suffix.lower() != ".npz" or not path.is_file():
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return "outputs.npy" in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def is_paired_folder(path: Path) -> bool:
    """Whether ``path`` is a folder holding ``outputs/`` and ``targets/``."""
    return path.is_dir() and (path / "outputs").is_dir() and (path / "targets").is_dir()


@dataclass
class PairedFileSource(PairedSource):
    """A paired ``.npz`` or folder (see the module docstring)."""

    kind = "paired"
    path: Path = field(default=Path())
    limit: int | None = None

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        reader = read_paired_folder if self.path.is_dir() else read_paired_npz
        pairs = reader(self.path, self.limit)
        self._set_pairs(pairs)
        k = pairs.outputs_per_input
        self.notes.append(
            f"paired: {pairs.num_inputs:,} inputs, {k} output{'s' if k > 1 else ''} each"
            + (f", task {pairs.task}" if pairs.task else ", no task recognised (no consistency)")
        )

    def _load_pairs(self) -> Pairs:  # set in __post_init__
        raise AssertionError("unreachable")


TRANSLATE_CHUNK = 256


def translate_all(
    model: Any, inputs: np.ndarray, seed: int, spec: str, sample_shape: tuple[int, ...]
) -> np.ndarray:
    """``model.translate`` over ``inputs`` in chunks, seeded, each answer checked (uint8, one per input,
    of ``sample_shape``); a one-line GenEvalError naming ``spec`` otherwise. Paired-task models and
    unpaired translators answer through this one loop."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    parts = []
    for start in range(0, len(inputs), TRANSLATE_CHUNK):
        chunk = torch.from_numpy(inputs[start : start + TRANSLATE_CHUNK].copy())
        try:
            out = model.translate(chunk, generator=generator)
        except GenEvalError:
            raise
        except Exception as exc:
            raise GenEvalError(f"{spec}: translate() raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(out, torch.Tensor) or out.dtype != torch.uint8:
            raise GenEvalError(
                f"{spec}: translate() returned {getattr(out, 'dtype', type(out))}; return a uint8 tensor"
            )
        if tuple(out.shape) != (len(chunk), *sample_shape):
            raise GenEvalError(
                f"{spec}: translate() of {len(chunk)} inputs returned shape {tuple(out.shape)}; "
                f"expected {(len(chunk), *sample_shape)}"
            )
        parts.append(out.detach().cpu().numpy())
    return np.concatenate(parts)
