"""Sample sources: parse what the user typed into one :class:`Source` interface.

Accepted specs, tried in this order:

- ``path/to/file.py:factory`` (or ``file.py``, factory ``make_model``): a generator in Python;
  runs user code, so it needs ``trust_code=True``;
- an existing folder: images found recursively;
- an existing ``.npz`` / ``.npy`` file: an array of samples;
- ``NAME`` or ``NAME:SPLIT`` for an embedded dataset (see ``gen-eval datasets``);
- ``ref:NAME`` for a bundled reference model (``gen-eval models``; 1,000 samples unless
  ``num_samples`` says otherwise).
"""

from __future__ import annotations

from pathlib import Path

from gen_eval.errors import GenEvalError
from gen_eval.sources.base import Batch, Source

__all__ = ["Batch", "Source", "open_source", "shortfall"]


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

    Returns
    -------
    Source
    """
    if isinstance(spec, Source):
        return spec
    if num_samples is not None and num_samples < 1:
        raise GenEvalError(f"--num-samples must be at least 1, got {num_samples}")
    text = str(spec)
    path = Path(text)
    if text.endswith(".py") or ".py:" in text:
        from gen_eval.sources.python import open_python_source

        if num_samples is None:
            raise GenEvalError(f"{text}: a generator needs --num-samples N (how many samples to draw)")
        return open_python_source(text, num_samples, seed, trust_code, sandbox, unsafe_no_isolation)
    if path.is_dir():
        from gen_eval.sources.folder import FolderSource

        return FolderSource(
            spec=text, root=path, limit=num_samples, resize=resize, resize_method=resize_method
        )
    if path.is_file():
        if path.suffix.lower() in (".npz", ".npy"):
            from gen_eval.sources.arrays import ArraySource

            return ArraySource(spec=text, path=path, key=key, limit=num_samples, value_range=value_range)
        raise GenEvalError(
            f"{text}: a single {path.suffix or 'extensionless'} file is not a sample set; "
            "use a folder of images, an .npz/.npy array, or a generator file.py:factory"
        )
    if text.startswith("ref:"):
        from gen_eval.sources.reference import open_reference_source

        return open_reference_source(text, num_samples or 1000, seed)
    return _open_dataset(text, num_samples)


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
