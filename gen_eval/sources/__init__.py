"""Sample sources: parse what the user typed into one :class:`Source` interface.

Accepted specs, tried in this order:

- ``path/to/file.py:factory`` (or ``file.py``, factory ``make_model``): a generator in Python;
  runs user code, so it needs ``trust_code=True``;
- paired outputs (:mod:`gen_eval.sources.paired`): an ``.npz`` holding ``outputs`` (plus ``inputs``
  and ``targets``, or a ``task``), or a folder holding ``outputs/`` and ``targets/``;
- ``task:NAME[:SPLIT]`` (:mod:`gen_eval.sources.task`): a paired task's targets with their inputs;
- point clouds (:mod:`gen_eval.sources.pointcloud`): an ``.npz``/``.npy`` holding a float
  (N, P, 3) array, or a folder of ``.ply``/``.xyz``/``.npy`` files, one cloud each;
- an existing folder: images found recursively;
- a statistics file (an ``.npz`` holding ``mu`` and ``sigma``, or an EDM2 ``.pkl``): a reference's
  mean and covariance without samples (:mod:`gen_eval.sources.statistics`; only ``evaluate``'s
  reference reads them);
- a ``.txt`` (one sample per line) or ``.jsonl`` (``text``, optional ``label``) file: strings;
- an existing ``.npz`` / ``.npy`` file: an array of samples;
- ``NAME`` or ``NAME:SPLIT`` for an embedded dataset (see ``gen-eval datasets``; ``shapes3d:SPLIT:POINTS``
  also sets the points per cloud);
- ``ref:NAME`` for a bundled reference model (``gen-eval models``; 1,000 samples unless
  ``num_samples`` says otherwise).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gen_eval.errors import GenEvalError
from gen_eval.kinds import Registry
from gen_eval.sources.base import Batch, Source

__all__ = ["READERS", "Batch", "OpenOptions", "Reader", "Source", "open_source", "shortfall"]


def open_source(
    spec: str | Path | Source,
    *,
    num_samples: int | None = None,
    seed: int = 0,
    trust_code: bool = False,
    key: str | None = None,
    resize: int | None = None,
    value_range: str = "auto",
    sandbox: bool = True,
    resize_method: str = "bicubic",
    unsafe_no_isolation: bool = False,
    resample_points: int | None = None,
) -> Source:
    """Open a sample source from its spec.

    Parameters
    ----------
    spec : str, Path or Source
        What to read (see the module docstring). A :class:`Source` is returned as is.
    num_samples : int, optional
        Keep the first ``num_samples`` items (datasets, folders, arrays); the number to draw
        from a generator (required there).
    seed : int
        Seed of the generator's ``torch.Generator``.
    trust_code : bool
        Allow running a Python generator file.
    sandbox : bool
        Run that file in a separate, limited process (default) rather than importing it here.
    unsafe_no_isolation : bool
        Run that process even where the kernel cannot confine it (``--unsafe-no-isolation``).
    key : str, optional
        Array name inside an ``.npz`` (default ``arr_0``, or its only array).
    resize : int, optional
        Resize every image of a folder to ``resize`` x ``resize`` with ``resize_method``.
    value_range : {"auto", "0,1", "-1,1", "0,255"}
        How float arrays map to uint8 (``auto`` reads the range; see ``sources.convert``).
    resize_method : str
        The method of ``resize`` (see :mod:`gen_eval.sources.resize`; ``refuse`` cannot resize).
    resample_points : int, optional
        Bring every point cloud of a file or folder to this many points (clouds of different
        sizes are refused without it).

    Returns
    -------
    Source
    """
    if isinstance(spec, Source):
        return spec
    if num_samples is not None and num_samples < 1:
        raise GenEvalError(f"--num-samples must be at least 1, got {num_samples}")
    text = str(spec)
    options = OpenOptions(
        num_samples,
        seed,
        trust_code,
        key,
        resize,
        value_range,
        sandbox,
        resize_method,
        unsafe_no_isolation,
        resample_points,
    )
    path = Path(text)
    # Plug-in readers first (newest first), so a new kind's file pattern wins over the built-in array reader.
    readers = [reader for _, reader in reversed(READERS.items())] + list(_BUILTIN_READERS)
    for reader in readers:
        if reader.matches(text, path):
            return reader.open(text, path, options)
    return _open_dataset(text, num_samples)


@dataclass(frozen=True)
class OpenOptions:
    """The options of :func:`open_source`, handed to a reader as they were given."""

    num_samples: int | None = None
    seed: int = 0
    trust_code: bool = False
    key: str | None = None
    resize: int | None = None
    value_range: str = "auto"
    sandbox: bool = True
    resize_method: str = "bicubic"
    unsafe_no_isolation: bool = False
    resample_points: int | None = None


@dataclass(frozen=True)
class Reader:
    """One form of spec and how it is opened.

    Attributes
    ----------
    matches : callable
        ``(text, path) -> bool``: whether this reader opens the spec ``text``.
    open : callable
        ``(text, path, options) -> Source``; a one-line GenEvalError on bad input.
    description : str
        What it reads, for listings.
    kinds : tuple of str
        The data kinds its sources hold (a folder holds images; an array file either).
    """

    matches: Callable[[str, Path], bool]
    open: Callable[[str, Path, OpenOptions], Source]
    description: str
    kinds: tuple[str, ...] = ()


# Readers that plug-ins add (a new kind's file pattern): asked before the built-in ones.
READERS: Registry[Reader] = Registry("source reader")


def _is_code(text: str, path: Path) -> bool:
    return text.endswith(".py") or ".py:" in text


def _open_code(text: str, path: Path, options: OpenOptions) -> Source:
    from gen_eval.sources.python import open_python_source

    if options.num_samples is None:
        raise GenEvalError(f"{text}: a generator needs --num-samples N (how many samples to draw)")
    return open_python_source(
        text,
        options.num_samples,
        options.seed,
        options.trust_code,
        options.sandbox,
        options.unsafe_no_isolation,
    )


def _is_pointclouds(text: str, path: Path) -> bool:
    from gen_eval.sources.pointcloud import is_cloud_array, is_cloud_folder

    return is_cloud_array(path) or is_cloud_folder(path)


def _open_pointclouds(text: str, path: Path, options: OpenOptions) -> Source:
    from gen_eval.sources.pointcloud import PointCloudSource

    return PointCloudSource(
        spec=text,
        path=path,
        key=options.key,
        limit=options.num_samples,
        resample_points=options.resample_points,
        seed=options.seed,
    )


def _open_folder(text: str, path: Path, options: OpenOptions) -> Source:
    from gen_eval.sources.folder import FolderSource

    return FolderSource(
        spec=text,
        root=path,
        limit=options.num_samples,
        resize=options.resize,
        resize_method=options.resize_method,
    )


def _is_file(text: str, path: Path) -> bool:
    return path.is_file()


def _open_file(text: str, path: Path, options: OpenOptions) -> Source:
    if path.suffix.lower() in (".npz", ".npy"):
        from gen_eval.sources.arrays import ArraySource

        return ArraySource(
            spec=text, path=path, key=options.key, limit=options.num_samples, value_range=options.value_range
        )
    raise GenEvalError(
        f"{text}: a single {path.suffix or 'extensionless'} file is not a sample set; "
        "use a folder of images, an .npz/.npy array, or a generator file.py:factory"
    )


def _is_text_file(text: str, path: Path) -> bool:
    return path.suffix.lower() in (".txt", ".jsonl") and path.is_file()


def _open_text_file(text: str, path: Path, options: OpenOptions) -> Source:
    from gen_eval.sources.text import TextFileSource

    return TextFileSource(spec=text, path=path, limit=options.num_samples)


def _is_statistics(text: str, path: Path) -> bool:
    from gen_eval.sources.statistics import looks_like_statistics

    return looks_like_statistics(path)


def _open_statistics(text: str, path: Path, options: OpenOptions) -> Source:
    from gen_eval.sources.statistics_source import StatisticsSource

    return StatisticsSource(spec=text, path=path)


def _open_reference(text: str, path: Path, options: OpenOptions) -> Source:
    from gen_eval.sources.reference import open_reference_source

    return open_reference_source(text, options.num_samples or 1000, options.seed)


def _is_paired(text: str, path: Path) -> bool:
    from gen_eval.sources.paired import is_paired_folder, is_paired_npz

    return is_paired_npz(path) or is_paired_folder(path)


def _open_paired(text: str, path: Path, options: OpenOptions) -> Source:
    from gen_eval.sources.paired import PairedFileSource

    return PairedFileSource(spec=text, path=path, limit=options.num_samples)


def _open_task(text: str, path: Path, options: OpenOptions) -> Source:
    from gen_eval.sources.task import open_task_source

    return open_task_source(text, options.num_samples)


# The built-in readers in the order of the module docstring; an embedded dataset is the fallback.
_BUILTIN_READERS = (
    Reader(
        _is_code, _open_code, "a generator in Python (file.py:factory)", ("image", "vector", "pointcloud")
    ),
    Reader(
        _is_paired,
        _open_paired,
        "paired outputs: an .npz with outputs (+ inputs/targets or a task), or outputs/ + targets/ folders",
        ("image",),
    ),
    Reader(
        lambda text, path: text.startswith("task:"),
        _open_task,
        "a paired task's real pairs (task:sr4)",
        ("image",),
    ),
    Reader(
        _is_pointclouds,
        _open_pointclouds,
        "point clouds: an (N, P, 3) .npz/.npy, or a folder of .ply/.xyz/.npy files",
        ("pointcloud",),
    ),
    Reader(lambda text, path: path.is_dir(), _open_folder, "a folder of images", ("image",)),
    Reader(
        _is_statistics,
        _open_statistics,
        "reference statistics (mu/sigma .npz, EDM2 .pkl)",
        ("image", "vector"),
    ),
    Reader(_is_text_file, _open_text_file, "a text file: .txt (a sample per line) or .jsonl", ("text",)),
    Reader(_is_file, _open_file, "an .npz/.npy array", ("image", "vector")),
    Reader(lambda text, path: text.startswith("ref:"), _open_reference, "a bundled reference model"),
)


def _open_dataset(text: str, num_samples: int | None) -> Source:
    from gen_eval.datasets import dataset_names, get_dataset
    from gen_eval.sources.dataset import DatasetSource

    name, _, split = text.partition(":")
    if name not in dataset_names():
        raise GenEvalError(
            f"{text}: no such file or folder, and not an embedded dataset "
            f"({', '.join(dataset_names())}; see gen-eval datasets)"
        )
    info = get_dataset(name)
    split, _, setting = split.partition(":")
    if setting:
        if info.configure is None:
            raise GenEvalError(f"{text}: dataset {name} takes no setting after its split (NAME:SPLIT)")
        info = info.configure(setting)
    split = split or info.default_split
    if split not in info.splits:
        raise GenEvalError(f"{text}: dataset {name} has splits {', '.join(info.splits)}, not {split!r}")
    return DatasetSource(spec=text, dataset=info, split=split, limit=num_samples)


def shortfall(source: Source, asked: int | None, what: str = "samples") -> str | None:
    """A warning when ``source`` holds fewer items than the ``asked`` (``--num-samples``) count.

    A folder, array or dataset keeps its first N items and silently has fewer when it is smaller;
    a generator draws exactly N, so never falls short.

    Parameters
    ----------
    source : Source
        The opened source.
    asked : int, optional
        The count asked for; None (all of it) never falls short.
    what : str
        What the items are, for the message (``"samples"``, ``"reference samples"``).

    Returns
    -------
    str or None
        ``"asked for 5,000 samples; samples/ holds 300: using 300"``, or None.
    """
    if asked is None or len(source) >= asked:
        return None
    return f"asked for {asked:,} {what}; {source.spec} holds {len(source):,}: using {len(source):,}"
