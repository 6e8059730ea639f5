"""A statistics file where ``evaluate`` expects a reference: :class:`StatisticsSource` and its provenance.

The file formats are :mod:`gen_eval.sources.statistics`. ``evaluate`` asks
:func:`is_statistics_reference`, takes the extractor from :func:`reference_extractor` when
``--features auto``, and refuses statistics from another extractor with :func:`check_extractor`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gen_eval.errors import GenEvalError
from gen_eval.sources.base import Batch, Source
from gen_eval.sources.statistics import ReferenceStatistics, read_statistics

__all__ = ["StatisticsSource", "check_extractor", "is_statistics_reference", "reference_extractor"]


@dataclass
class StatisticsSource(Source):
    """A statistics file where a reference is expected: its mean and covariance, and no samples.

    ``gen-eval evaluate`` reads it for FID and FD-infinity; anything that reads samples from it gets
    a one-line error (from :meth:`batches`).
    """

    kind = "statistics"
    path: Path = Path()
    statistics: ReferenceStatistics | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.statistics = read_statistics(self.path)
        provenance = self.statistics.provenance
        self.data_kind = str(provenance.get("data_kind", "image"))
        self.sample_shape = tuple(provenance.get("sample_shape", ()))
        self._count = self.statistics.count or 0
        # The file's SHA-256: what runs scored against the same statistics share (never a cache key:
        # there are no samples to extract).
        self._fingerprint = hashlib.sha256(self.path.read_bytes()).hexdigest()
        self.notes.append(f"reference statistics ({self.statistics.format} format), not samples")

    def batches(self, batch_size: int) -> Iterator[Batch]:
        """Refused: the file holds a mean and a covariance, not samples."""
        raise GenEvalError(
            f"{self.spec}: holds reference statistics (a mean and covariance), not samples; only gen-eval "
            "evaluate --reference reads them (FID, FD-infinity); give the samples themselves here"
        )

    def describe(self) -> dict[str, Any]:
        """The manifest's entry: the source fields plus the format and what the file says it came from."""
        stats = self.statistics
        assert stats is not None
        return {
            **super().describe(),  # count 0: the file does not record it
            "format": stats.format,
            "extractor": stats.extractor,
            "weights_sha256": stats.weights_sha256,
            "recorded": {key: value for key, value in stats.provenance.items() if key != "key"},
        }


def reference_extractor(source: StatisticsSource, stated: str | None) -> tuple[str | None, str | None, str]:
    """The extractor the statistics came from: (name, weights sha256, who says so).

    Parameters
    ----------
    source : StatisticsSource
        The opened file.
    stated : str, optional
        ``--reference-features NAME[@SHA256]``: what the user says made a file that does not record it.

    Returns
    -------
    tuple
        Name, weights hash (None when unknown), and ``"recorded in the file"`` or
        ``"stated by the user"``.
    """
    stats = source.statistics
    assert stats is not None
    name, _, weights = (stated or "").partition("@")
    if stats.extractor is not None:
        if stated and (
            name != stats.extractor or (weights and stats.weights_sha256 and weights != stats.weights_sha256)
        ):
            raise GenEvalError(
                f"{source.spec}: records extractor {stats.extractor}, but --reference-features says {stated}; "
                "drop the flag (the file says which)"
            )
        return stats.extractor, stats.weights_sha256, "recorded in the file"
    if not name:
        raise GenEvalError(
            f"{source.spec}: {stats.format} statistics do not record their extractor; say which with "
            "--reference-features NAME (e.g. inception), and the manifest records it as stated by the user"
        )
    return name, weights or None, "stated by the user"


def check_extractor(source: StatisticsSource, stated: str | None, describe: dict[str, Any]) -> dict[str, Any]:
    """Refuse statistics from another extractor than the run's; the manifest's provenance entry.

    Parameters
    ----------
    source : StatisticsSource
        The opened file.
    stated : str, optional
        ``--reference-features`` as given.
    describe : dict
        The run's ``extractor.describe()`` (``name``, ``weights_sha256``).

    Returns
    -------
    dict
        ``{"extractor", "weights_sha256", "provenance"}`` for the manifest.
    """
    name, weights, said_by = reference_extractor(source, stated)
    run_name, run_weights = describe.get("name"), describe.get("weights_sha256")
    if name != run_name:
        raise GenEvalError(
            f"{source.spec}: statistics from extractor {name} ({said_by}), but this run extracts with "
            f"{run_name}; use --features {name} or statistics made with {run_name}"
        )
    if weights and run_weights and weights != run_weights:
        raise GenEvalError(
            f"{source.spec}: statistics from {name} weights {weights[:12]} ({said_by}), but this run's "
            f"{name} weights are {str(run_weights)[:12]}; use the same weights file"
        )
    return {"extractor": name, "weights_sha256": weights, "provenance": said_by}


def is_statistics_reference(
    ref: Source,
    gen: Source,
    reference_features: str | None,
    collapse_only: bool,
    num_reference: int | None = None,
) -> bool:
    """Whether ``evaluate``'s reference is a statistics file, checking what must go with that.

    Parameters
    ----------
    ref, gen : Source
        The opened reference and generated set.
    reference_features : str, optional
        ``--reference-features``: only meaningful with statistics.
    collapse_only : bool
        The run is ``gen-eval collapse``, whose detectors compare samples.
    num_reference : int, optional
        ``--num-reference``: statistics cannot be cut to N samples, so it is refused with them.

    Returns
    -------
    bool
    """
    if not isinstance(ref, StatisticsSource):
        if reference_features is not None:
            raise GenEvalError(
                f"--reference-features is for a statistics file, and {ref.spec} holds samples; drop it"
            )
        return False
    if collapse_only:
        raise GenEvalError(
            f"{ref.spec}: the collapse check compares samples, and this holds statistics; give the samples"
        )
    if num_reference is not None:
        raise GenEvalError(
            f"--num-reference: {ref.spec} holds statistics of a fixed set, which cannot be cut; drop it"
        )
    assert ref.statistics is not None
    if "data_kind" not in ref.statistics.provenance:
        ref.data_kind = gen.data_kind  # foreign files do not say; the extractor check decides
    return True
