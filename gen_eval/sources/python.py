"""A generator written in Python: ``path/to/file.py:factory``.

``factory()`` returns an object with ``sample(n, generator=None)`` that gives a tensor
(or array) of n samples: NCHW images as floats in [0, 1] or uint8, or (n, D) float
vectors (or any kind :func:`gen_eval.kinds.infer_kind` recognises). A class-conditional model
sets an int attribute ``num_classes`` and takes ``sample(n, generator=None, labels=None)``, where
``labels`` is an int64 tensor (n,) of the requested classes: sample ``i`` (counted over the whole
set, so batching never changes it) is asked for class ``i % num_classes`` and labelled with it
(:mod:`gen_eval.sources.labels`). Loading the file runs its code, so it is allowed only with
``trust_code=True`` (the CLI's ``--trust-code``). A sampler's output is not known in advance, so its
features are never cached; a seeded ``torch.Generator`` makes reruns agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gen_eval.errors import GenEvalError
from gen_eval.sources.base import Batch, Source
from gen_eval.sources.factory import load_factory
from gen_eval.sources.labels import declared_classes, requested_labels


def canonical_samples(raw: Any, name: str, requested: int) -> tuple[np.ndarray, str, str | None]:
    """Check one batch a sampler returned and bring it to its kind's canonical form.

    Returns
    -------
    (numpy.ndarray, str, str or None)
        The samples (uint8 NCHW images, float32 (N, D) vectors, ...), the name of their kind
        (:func:`gen_eval.kinds.infer_kind` decides), and the conversion applied, if any.
    """
    import torch

    from gen_eval.kinds import infer_kind

    if isinstance(raw, torch.Tensor):
        raw = raw.detach().to("cpu").numpy()
    if isinstance(raw, (list, tuple)) and raw and all(isinstance(item, str) for item in raw):
        raw = np.array(raw, dtype=str)  # strings (text models): a 1-D unicode array, never objects
    if not isinstance(raw, np.ndarray):
        raise GenEvalError(
            f"{name}: sample() returned {type(raw).__name__}; return a torch.Tensor or numpy array"
        )
    if raw.ndim == 0 or raw.dtype.kind not in "buifU":  # len() of a 0-d array would raise
        raise GenEvalError(
            f"{name}: sample() returned a {raw.ndim}-d array of {raw.dtype}; return numeric samples, one per row"
        )
    if len(raw) != requested:
        raise GenEvalError(f"{name}: sample({requested}) returned {len(raw)} samples")
    kind = infer_kind(raw.shape, raw.dtype)
    if kind is None or kind.from_code is None:
        raise GenEvalError(f"{name}: sample() returned shape {raw.shape}, which no data kind accepts")
    samples, note = kind.from_code(raw, name)
    return samples, kind.name, note


@dataclass
class GeneratorSource(Source):
    """``count`` samples drawn from a model implementing ``sample(n, generator)``.

    A model with ``num_classes`` is asked for balanced classes (sample ``i``: ``i % num_classes``)
    and each batch carries the classes asked for as its labels.
    """

    kind = "python"
    model: Any = None
    count: int = 0
    seed: int = 0
    content_hash: str | None = None
    _first: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._count, self._fingerprint = self.count, self.content_hash
        if self.count < 1:
            raise GenEvalError(
                f"{self.spec}: asked for {self.count} samples; pass --num-samples N with N >= 1"
            )
        self.num_classes = declared_classes(self.model, self.spec)
        if self.num_classes is not None:
            classes = self.num_classes
            if self._fingerprint is not None:  # asked for classes: other samples than unconditional ones
                key = f"{self._fingerprint}:labels=i%{classes}"
                self._fingerprint = hashlib.sha256(key.encode()).hexdigest()
            least, most = self.count // classes, -(-self.count // classes)
            per_class = f"{least:,}" if least == most else f"{least:,}-{most:,}"
            self.notes.append(
                f"class-conditional ({classes} classes): sample i asked for class i % {classes}, "
                f"{per_class} per class"
            )
        # Draw one small batch now: a shape or range problem should fail before any work.
        raw = self._draw(0, 1, self._generator())
        probe, self.data_kind, note = canonical_samples(raw, self.spec, 1)
        self.sample_shape = tuple(probe.shape[1:])
        if note is not None:
            self.notes.append(note)

    def _generator(self) -> Any:
        import torch

        return torch.Generator().manual_seed(self.seed)

    def _labels(self, start: int, n: int) -> np.ndarray | None:
        return None if self.num_classes is None else requested_labels(start, n, self.num_classes)

    def _draw(self, start: int, n: int, generator: Any) -> Any:
        import torch

        labels = self._labels(start, n)
        try:
            if labels is None:
                return self.model.sample(n, generator=generator)
            return self.model.sample(n, generator=generator, labels=torch.from_numpy(labels))
        except GenEvalError:
            raise
        except Exception as exc:
            raise GenEvalError(f"{self.spec}: sample({n}) raised {type(exc).__name__}: {exc}") from exc

    def batches(self, batch_size: int) -> Iterator[Batch]:
        import torch

        generator = self._generator()
        for start in range(0, self.count, batch_size):
            n = min(batch_size, self.count - start)
            samples, kind, _ = canonical_samples(self._draw(start, n, generator), self.spec, n)
            if kind != self.data_kind or tuple(samples.shape[1:]) != self.sample_shape:
                raise GenEvalError(
                    f"{self.spec}: batch at sample {start} has shape {samples.shape[1:]}, "
                    f"earlier batches {self.sample_shape}; every batch must have one shape"
                )
            yield Batch(torch.from_numpy(samples), self._labels(start, n))


def open_python_source(
    spec: str,
    count: int,
    seed: int,
    trust_code: bool,
    sandbox: bool = True,
    unsafe_no_isolation: bool = False,
) -> GeneratorSource:
    """Load ``file.py:factory`` (only when ``trust_code``) and wrap it as a source.

    With ``sandbox`` (the default) the code runs in a separate process that the kernel confines
    (:mod:`gen_eval.sources.sandbox`) and that only samples; a system without the kernel
    features is refused unless ``unsafe_no_isolation``. Without ``sandbox`` the file is imported
    here, which also makes ``log_prob``, ``encode`` and ``decode`` available.
    """
    file_part, _, factory = spec.rpartition(":")
    if not file_part.endswith(".py"):
        file_part, factory = spec, "make_model"
    path = Path(file_part)
    if not trust_code:
        raise GenEvalError(
            f"{spec} is Python code, which runs with your permissions; pass --trust-code if you trust it"
        )
    if not path.is_file():
        raise GenEvalError(f"{path}: no such Python file")
    if sandbox:
        from gen_eval.sources.sandbox import sandboxed_model

        model = sandboxed_model(spec, path, factory, isolation=not unsafe_no_isolation)
        try:
            source = GeneratorSource(spec=spec, model=model, count=count, seed=seed)
        except BaseException:
            model.close()
            raise
        confined = "confined by the kernel" if model.isolation else "NOT isolated (--unsafe-no-isolation)"
        source.notes.append(
            f"sampled in a separate process, {confined} "
            f"(limits: {model.time_limit:g} s per call, {model.memory_mb} MiB)"
        )
        return source
    return GeneratorSource(spec=spec, model=load_factory(path, factory), count=count, seed=seed)
