"""Reference statistics from features: what ``gen-eval stats`` writes and ``evaluate`` reads back.

The mean and covariance are float64, the covariance unbiased (divides by N - 1, as pytorch-fid's
``np.cov(rowvar=False)`` and clean-fid do), computed from the same cached features ``evaluate``
extracts, so FID against the statistics equals FID against the samples they came from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gen_eval.errors import GenEvalError

if TYPE_CHECKING:
    import torch

    from gen_eval.features.base import FeatureExtractor
    from gen_eval.features.cache import FeatureCache
    from gen_eval.features.extract import Features
    from gen_eval.sources import Source
    from gen_eval.sources.statistics import ReferenceStatistics
    from gen_eval.sources.statistics_source import StatisticsSource


def compute_statistics(
    source: Source,
    extractor: FeatureExtractor,
    *,
    batch_size: int,
    cache: FeatureCache,
    show_progress: bool = False,
    resize_method: str = "bicubic",
) -> ReferenceStatistics:
    """The feature mean and covariance of ``source``, with the extractor and set they came from.

    Parameters
    ----------
    source : Source
        The reference samples.
    extractor : FeatureExtractor
        What embeds them (its name and weights hash are recorded).
    batch_size : int
        Samples per forward pass.
    cache : FeatureCache
        The feature cache (the same entries ``evaluate`` reads and writes).
    show_progress : bool
        A progress bar on stderr.
    resize_method : str
        How images of another size than the extractor's input are resized (the image-size rule).

    Returns
    -------
    ReferenceStatistics
    """
    import torch

    from gen_eval.features.extract import extract_features
    from gen_eval.sources.resize import target_size
    from gen_eval.sources.statistics import ReferenceStatistics

    features = extract_features(
        source,
        extractor,
        batch_size=batch_size,
        cache=cache,
        show_progress=show_progress,
        label="statistics",
        size=target_size(extractor, source),
        resize_method=resize_method,
    )
    x = features.tensors["features"].to(torch.float64)
    if len(x) < 2:
        raise GenEvalError(f"{source.spec}: statistics need at least 2 samples; it holds {len(x)}")
    mean, cov = _mean_cov(x)
    extra = {}
    if "spatial" in features.tensors:  # Inception's spatial features: ADM's mu_s, sigma_s (sFID)
        mean_s, cov_s = _mean_cov(features.tensors["spatial"].to(torch.float64))
        extra = {"mu_s": mean_s.numpy(), "sigma_s": cov_s.numpy()}
    described = extractor.describe()
    provenance: dict[str, Any] = {
        "source": source.spec,
        "fingerprint": source.fingerprint,
        "data_kind": source.data_kind,
        "sample_shape": list(source.sample_shape),
        "preprocessing": described.get("preprocessing"),
        "resized": features.resized,
    }
    return ReferenceStatistics(
        mean.numpy(),
        cov.numpy(),
        len(x),
        str(described["name"]),
        described.get("weights_sha256"),  # type: ignore[arg-type]
        extra=extra,
        provenance=provenance,
    )


def _mean_cov(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased covariance (divides by N - 1) of float64 rows."""
    mean = x.mean(dim=0)
    centred = x - mean
    return mean, centred.T @ centred / (len(x) - 1)


def statistics_features(source: StatisticsSource) -> Features:
    """A statistics file as the reference's "features": ``mean``, ``cov`` and ``count`` (0: unknown).

    The metrics that accept statistics (FID, FD-inf) read these instead of ``features``; sFID reads
    ``spatial_mean`` and ``spatial_cov``, present when the file holds ADM's ``mu_s`` and ``sigma_s``.
    """
    import torch

    from gen_eval.features.extract import Features

    stats = source.statistics
    assert stats is not None
    tensors = {
        "mean": torch.from_numpy(stats.mu),
        "cov": torch.from_numpy(stats.sigma),
        "count": torch.tensor(stats.count or 0),
    }
    if "mu_s" in stats.extra and "sigma_s" in stats.extra:  # what sFID reads
        tensors["spatial_mean"] = torch.from_numpy(stats.extra["mu_s"])
        tensors["spatial_cov"] = torch.from_numpy(stats.extra["sigma_s"])
    return Features(tensors, None, False, None)
