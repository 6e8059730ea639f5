"""``Samples``: a batch with its kind, and what conditional and paired data add to it.

Conditional data carry one label per sample (the class a sample was generated for); paired data
carry the input each output was made from and/or the target it should match (image-to-image,
super-resolution: input/output/target triples). Every part is checked once, here, so the layers
that read a ``Samples`` never check lengths again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gen_eval.errors import GenEvalError
from gen_eval.kinds.base import DataKind, get_kind


@dataclass(frozen=True)
class Samples:
    """A batch of one kind, optionally labelled (conditional) or paired.

    Parameters
    ----------
    data : array or tensor
        The samples (the outputs, for paired data), canonical for their kind.
    kind : str or DataKind
        Their kind (stored as the :class:`DataKind`).
    labels : array, optional
        One condition per sample (class index, or a row per sample).
    inputs : array or tensor, optional
        Paired data: what each sample was made from, one per sample.
    targets : array or tensor, optional
        Paired data: what each sample should match, one per sample, of the samples' kind.
    name : str
        Where the samples came from, for messages.
    input_kind : str or DataKind, optional
        Kind of ``inputs`` (default: the samples' kind; a text-to-image pair differs).

    Raises
    ------
    GenEvalError
        One line naming ``name`` when a part is not of its kind or its length differs.
    """

    data: Any
    kind: DataKind
    labels: Any = None
    inputs: Any = None
    targets: Any = None
    name: str = "samples"
    input_kind: DataKind | None = None

    def __post_init__(self) -> None:
        kind = self.kind if isinstance(self.kind, DataKind) else get_kind(str(self.kind))
        object.__setattr__(self, "kind", kind)
        if self.input_kind is not None and not isinstance(self.input_kind, DataKind):
            object.__setattr__(self, "input_kind", get_kind(str(self.input_kind)))
        kind.validate(self.data, self.name)
        count = len(self.data)
        for part, what in ((self.labels, "labels"), (self.inputs, "inputs"), (self.targets, "targets")):
            if part is not None and len(part) != count:
                raise GenEvalError(
                    f"{self.name}: {len(part):,} {what} for {count:,} samples; give exactly one per sample"
                )
        if self.inputs is not None:
            (self.input_kind or kind).validate(self.inputs, f"{self.name} (inputs)")
        if self.targets is not None:
            kind.validate(self.targets, f"{self.name} (targets)")
            if tuple(self.targets.shape[1:]) != tuple(self.data.shape[1:]):
                raise GenEvalError(
                    f"{self.name}: targets have shape {tuple(self.targets.shape[1:])} per sample but the "
                    f"samples {tuple(self.data.shape[1:])}; a target must be comparable with its output"
                )

    def __len__(self) -> int:
        return len(self.data)

    @property
    def conditional(self) -> bool:
        """Whether every sample has a label."""
        return self.labels is not None

    @property
    def paired(self) -> bool:
        """Whether samples come with inputs or targets."""
        return self.inputs is not None or self.targets is not None

    def select(self, indices: Any) -> Samples:
        """The samples at ``indices`` (a slice, or integer positions), their labels and pairs with them."""

        def pick(part: Any) -> Any:
            return None if part is None else part[indices]

        return Samples(
            pick(self.data),
            self.kind,
            pick(self.labels),
            pick(self.inputs),
            pick(self.targets),
            self.name,
            self.input_kind,
        )

    def head(self, n: int) -> Samples:
        """The first ``n`` samples (all of them when there are fewer)."""
        return self.select(slice(0, n))
