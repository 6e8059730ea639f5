"""Metrics: a registry mapping names to plain functions over feature dicts.

Every metric function has the signature ``(generated, reference, context) -> {name: Result}``
(see :mod:`gen_eval.metrics.base`); one function may give several results (precision and
recall). ``requires`` says what a metric needs beyond the ``"features"`` embedding; ``options``
declares every ``context.option`` the metric reads (``-o KEY=VALUE``), which is what
:mod:`gen_eval.options` checks user options against (``tests/test_options.py`` checks that each
option read in the code is declared here).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from typing import TYPE_CHECKING

from gen_eval.errors import GenEvalError
from gen_eval.kinds import Registry
from gen_eval.metrics.base import MetricContext
from gen_eval.metrics.result import Result
from gen_eval.option_types import Option

if TYPE_CHECKING:
    from gen_eval.metrics.base import MetricFunction

__all__ = [
    "METRICS",
    "MetricContext",
    "MetricEntry",
    "Result",
    "choose_metrics",
    "default_metrics",
    "get_metric",
    "metric_names",
    "register_metric",
    "resolve_metric_name",
]


from gen_eval.metrics.entries_conditional import CONDITIONAL_METRICS
from gen_eval.metrics.entries_paired import PAIRED_METRICS
from gen_eval.metrics.entries_pointclouds import POINTCLOUD_METRICS
from gen_eval.metrics.entries_text import TEXT_FEATURE_METRICS
from gen_eval.metrics.entries_translation import TRANSLATION_METRICS
from gen_eval.metrics.entry import KID_OPTIONS, MetricEntry, knn_options

_FD_INF_OPTIONS = {
    "fd_inf_points": Option(int, 15, "subset sizes in the 1/N fit"),
    "fd_inf_min": Option(int, None, "smallest subset size (default min(5000, N // 10))"),
    "fd_inf_convention": Option(
        str,
        "dgm-eval",
        "subset sizes as dgm-eval, or gen-eval's legacy ones",
        "gen_eval.metrics.fd_infinity:_CONVENTIONS",
    ),
    "fd_inf_interval": Option(
        str, "bootstrap+ols", "how the interval is computed", "gen_eval.metrics.fd_infinity:_INTERVALS"
    ),
}
_CMMD_OPTIONS = {
    "cmmd_sigma": Option(float, 10.0, "RBF kernel bandwidth (the paper's 10)"),
    "cmmd_scale": Option(float, 1000.0, "factor the MMD^2 is multiplied by (the paper's 1000)"),
    "cmmd_estimator": Option(
        str, "biased", "biased (V-statistic, as the paper's code) or unbiased", ("biased", "unbiased")
    ),
    "cmmd_normalise": Option(bool, True, "L2-normalise each embedding first (as CLIP's are in the paper)"),
}
_MS_SSIM_OPTIONS = {
    "ms_ssim_pairs": Option(int, 1000, "random image pairs per set"),
    "ms_ssim_convention": Option(
        str, "torchmetrics", "whose MS-SSIM arithmetic to follow", "gen_eval.metrics.ms_ssim:CONVENTIONS"
    ),
    "ms_ssim_per_class": Option(bool, False, "also a mean per class label"),
    "ms_ssim_class_pairs": Option(int, 100, "pairs per class with ms_ssim_per_class"),
}


_BUILTIN: dict[str, MetricEntry] = {
    "fid": MetricEntry(
        "gen_eval.metrics.fid:fid",
        "features",
        True,
        "Fréchet distance of feature Gaussians",
        {},
        from_statistics=True,
    ),
    "sfid": MetricEntry(
        "gen_eval.metrics.sfid:sfid",
        "spatial",
        False,
        "sFID: Fréchet distance of Inception's spatial features (ADM's mixed_6/conv, 2023-d)",
        {},
        ("image",),
        from_statistics=True,  # ADM's mu_s and sigma_s
    ),
    "fd_inf": MetricEntry(
        "gen_eval.metrics.fd_infinity:fd_infinity",
        "features",
        False,
        "FID extrapolated to infinite N (dgm-eval's subset sizes; interval from a bootstrap)",
        _FD_INF_OPTIONS,
        from_statistics=True,
    ),
    "fd_dinov2": MetricEntry(
        "gen_eval.metrics.fd_dinov2:fd_dinov2",
        "dinov2-vit-l14",
        True,
        "FD_DINOv2 (EDM2): Fréchet distance of DINOv2 ViT-L/14 features",
        {},
        ("image",),
        from_statistics=True,
    ),
    "kid": MetricEntry(
        "gen_eval.metrics.kid:kid", "features", True, "unbiased MMD^2, cubic polynomial kernel", KID_OPTIONS
    ),
    "is": MetricEntry(
        "gen_eval.metrics.inception_score:inception_score",
        "logits",
        True,
        "Inception Score",
        {
            "is_splits": Option(int, 10, "splits of the generated set"),
            "is_shuffle": Option(bool, True, "shuffle the logits before splitting (torch-fidelity)"),
        },
        from_statistics=True,  # reads the generated logits only
    ),
    "precision_recall": MetricEntry(
        "gen_eval.metrics.precision_recall:precision_recall",
        "features",
        True,
        "k-NN precision/recall (k=3)",
        knn_options("pr", 3),
    ),
    "density_coverage": MetricEntry(
        "gen_eval.metrics.density_coverage:density_coverage",
        "features",
        True,
        "density/coverage (k=5)",
        knn_options("dc", 5),
    ),
    "ms_ssim": MetricEntry(
        "gen_eval.metrics.ms_ssim:ms_ssim",
        "images",
        False,
        "MS-SSIM diversity of image pairs",
        _MS_SSIM_OPTIONS,
        ("image",),
    ),
    "cmmd": MetricEntry(
        "gen_eval.metrics.cmmd:cmmd",
        "features",
        False,
        "CMMD (Jayasumana et al. 2024): RBF-kernel MMD^2 x 1000, sigma 10, on L2-normalised CLIP "
        "embeddings (--features clip-vit-l14-336); biased estimator as the paper's code",
        _CMMD_OPTIONS,
    ),
    "swd": MetricEntry(
        "gen_eval.metrics.sliced_wasserstein:sliced_wasserstein",
        "features",
        False,
        "sliced Wasserstein distance over seeded random directions (as POT's), in feature units",
        {
            "swd_projections": Option(int, 256, "random directions L"),
            "swd_p": Option(float, 2, "order p of the Wasserstein distance"),
        },
    ),
    "realism": MetricEntry(
        "gen_eval.metrics.realism:realism_rarity",
        "features",
        False,
        "per-sample realism (Kynkäänniemi et al. 2019; median shown) and rarity (Han et al. 2022; "
        "mean over samples inside a real k-NN ball); the report shows the most and least realistic",
        {
            "realism_k": Option(int, 3, "k of the reference k-NN radii for realism (half largest dropped)"),
            "rarity_k": Option(int, 3, "k of the reference k-NN radii for rarity"),
            "realism_chunk_size": Option(int, None, "rows per distance block for the radii"),
            "realism_memory_mb": Option(float, None, "memory for one distance block in MB for the radii"),
        },
    ),
    "authpct": MetricEntry(
        "gen_eval.metrics.authenticity:authpct",
        "train",
        False,
        "AuthPct (Alaa et al. 2022): % of samples farther from their nearest training sample than "
        "its own nearest neighbour; beside the held-out reference's value",
        {},
    ),
    "c_t": MetricEntry(
        "gen_eval.metrics.authenticity:c_t",
        "train",
        False,
        "C_T data-copying test (Meehan et al. 2020): Mann-Whitney z of generated vs held-out distances "
        "to the training set over k-means cells; << 0 (below -3) flags copying",
        {
            "ct_cells": Option(int, 20, "k-means cells of the training set"),
            "ct_tau": Option(float, None, "least share of generated samples a cell needs (default 20 / N)"),
        },
    ),
    "bpd": MetricEntry(
        # Named by path, not imported: the AIS behind bpd_method=ais lives in a higher layer.
        "gen_eval.likelihood.metric:bits_per_dim",
        "log_prob",
        True,
        "log-likelihood in bits/dim",
        {
            "bpd_levels": Option(int, None, "levels per pixel value (default: the model's, else 256)"),
            "bpd_batch_size": Option(int, 256, "images per log_prob call"),
            "bpd_method": Option(
                str,
                "auto",
                "auto: the model's log_prob (exact or a bound); ais: annealed importance sampling over "
                "the latent (slow; gives a GAN a bits/dim under Gaussian observation noise)",
                ("auto", "ais"),
            ),
            "bpd_steps": Option(int, 1000, "AIS annealing steps (bpd_method=ais)"),
            "bpd_chains": Option(int, 16, "AIS chains per test image (bpd_method=ais)"),
            "bpd_sigma": Option(
                float,
                None,
                "AIS observation noise of a deterministic decoder (default: chosen on validation data)",
            ),
        },
        ("image",),  # text has its own likelihood metrics (text_bpc, text_kl)
    ),
    # Text (requires the strings themselves; gen_eval/metrics/text.py says what each measures).
    "text_ngrams": MetricEntry(
        "gen_eval.metrics.text:text_ngrams",
        "strings",
        True,
        "character n-gram JSD (n=1..4) and length distance to the reference",
        kinds=("text",),
    ),
    "text_novelty": MetricEntry(
        "gen_eval.metrics.text:text_novelty",
        "strings",
        True,
        "shares of strings copied from the training set, found in the reference, and distinct",
        {
            "text_train": Option(
                str, "auto", "training set: a source spec, auto (the dataset's train split) or none"
            )
        },
        kinds=("text",),
    ),
    "text_truth": MetricEntry(
        "gen_eval.metrics.text:text_truth",
        "strings",
        True,
        "mass coverage and total variation against a known true distribution (embedded text data)",
        kinds=("text",),
    ),
    "text_bpc": MetricEntry(
        "gen_eval.metrics.text_likelihood:text_bpc",
        "log_prob",
        True,
        "bits per character and perplexity of the test strings (characters + one end token each)",
        kinds=("text",),
    ),
    "text_kl": MetricEntry(
        "gen_eval.metrics.text_likelihood:text_kl",
        "log_prob",
        True,
        "exact KL(truth || model) and cross-entropy, summed over a known true distribution's strings",
        kinds=("text",),
    ),
    **TEXT_FEATURE_METRICS,
    **CONDITIONAL_METRICS,
    **POINTCLOUD_METRICS,
    **TRANSLATION_METRICS,
    **PAIRED_METRICS,
}
# The one metric registry (``register_metric`` adds to it; ``METRICS.registered`` in tests).
METRICS: Registry[MetricEntry] = Registry("metric")
for _name, _entry in _BUILTIN.items():
    METRICS.register(_name, _entry)

_ALIASES = {
    "pr": "precision_recall",
    "prc": "precision_recall",
    "dc": "density_coverage",
    "inception_score": "is",
    "isc": "is",
    "bits_per_dim": "bpd",
    "fid_inf": "fd_inf",
    "msssim": "ms_ssim",
    "rarity": "realism",
    "sliced_wasserstein": "swd",
    "authenticity": "authpct",
    "ct": "c_t",
}


def register_metric(name: str, entry: MetricEntry) -> MetricEntry:
    """Add metric ``name`` (a new kind's measure); ``METRICS.unregister(name)`` removes it."""
    return METRICS.register(name, entry)


def metric_names() -> list[str]:
    """Names accepted by ``--metrics`` (aliases aside)."""
    return METRICS.names()


def resolve_metric_name(name: str) -> str:
    """Canonical registry name for ``name`` or an alias."""
    canonical = _ALIASES.get(name.lower(), name.lower())
    if canonical not in METRICS:
        raise GenEvalError(f"unknown metric {name!r}: choose from {', '.join(METRICS.names())}")
    return canonical


def metric_requirement(name: str) -> str:
    """What metric ``name`` needs: "features", "logits", "images" or "log_prob"."""
    return METRICS.get(resolve_metric_name(name)).requires


def metric_kinds(name: str) -> tuple[str, ...] | None:
    """The data kinds metric ``name`` applies to (None: every kind)."""
    return METRICS.get(resolve_metric_name(name)).kinds


def get_metric(name: str) -> MetricFunction:
    """The function computing metric ``name``: ``(generated, reference, context) -> {name: Result}``."""
    target = METRICS.get(resolve_metric_name(name)).target
    if callable(target):
        return target
    module_name, function_name = target.split(":")
    return getattr(import_module(module_name), function_name)


def default_metrics(available: set[str], kind: str | None = None) -> list[str]:
    """The default metric set given what is ``available`` ({"features", "logits", "images", "log_prob"}).

    With ``kind``, only metrics that apply to that data kind.
    """
    return [
        name
        for name, entry in METRICS.items()
        if entry.default and entry.requires in available and (kind is None or _applies(entry, kind))
    ]


def _applies(entry: MetricEntry, kind: str) -> bool:
    return entry.kinds is None or kind in entry.kinds


def applicable(names: list[str], available: set[str], kind: str) -> list[str]:
    """Those of ``names`` whose needs are ``available`` and that apply to data ``kind``."""
    return [
        name
        for name in names
        if METRICS.get(name).requires in available and _applies(METRICS.get(name), kind)
    ]


# What each need means when it is missing (``--metrics X`` that cannot run).
NEEDS = {
    "logits": "class logits: use --features inception or digits",
    "labelled logits": "labelled samples (an .npz with labels, class folders, a .jsonl with labels or a "
    "class-conditional generator) and a classifier's logits (--features digits, mnist or inception)",
    "labels": "labelled samples: an .npz with a labels array, class folders 0/ 1/ ..., or a class-conditional generator",
    "translation": "an unpaired translation model (translate and translate_back): ref:cyclegan_digits2mnist",
    "pairs": "outputs with their targets: task:NAME, ref:NAME of a paired model, an .npz with outputs and targets (or a task), or outputs/ + targets/ folders",
    "pairs_task": "paired outputs whose task is known (task='sr4' in the .npz, or inputs that are a task's degradation of the targets)",
    "pairs_multi": "several outputs per input: save outputs as (N, K, C, H, W) with K > 1",
    "dinov2-vit-l14": "DINOv2 ViT-L/14 features (EDM2's FD_DINOv2): use --features dinov2-vit-l14",
    "images": "images, but the samples are {plural}",
    "train": "the model's training set: give --train SPEC (default: the reference dataset's train split)",
    "spatial": "Inception's spatial features: use --features inception",
    "log_prob": "a model with log_prob(x) as the source (a Python generator or ref:NAME), or -o bpd_method=ais for a model with a latent decoder",
}


def choose_metrics(requested: list[str] | None, available: set[str], kind: str) -> list[str]:
    """The metrics to compute: the requested ones (checked) or the defaults whose needs are met.

    Parameters
    ----------
    requested : list of str, optional
        Canonical names; None for the defaults.
    available : set of str
        What the evaluation offers: ``"features"``, ``"logits"`` (a classifier), the kind's own
        ``provides`` (``"images"``), ``"log_prob"`` (a model that has it).
    kind : str
        The data kind of the samples.

    Returns
    -------
    list of str
    """
    from gen_eval.kinds import get_kind

    if requested is None:
        return default_metrics(available, kind)
    plural = get_kind(kind).plural
    for metric in requested:
        entry = METRICS.get(metric)
        if entry.requires not in available:
            need = NEEDS.get(entry.requires, f"{entry.requires}, which these samples do not offer")
            raise GenEvalError(f"metric {metric} needs {need.format(plural=plural)}")
        if not _applies(entry, kind):
            applies = ", ".join(entry.kinds or ())
            raise GenEvalError(
                f"metric {metric} applies to {applies} samples, not {plural}; drop it from --metrics"
            )
    return requested


def split_for_statistics(chosen: list[str], requested: list[str] | None) -> tuple[list[str], list[str]]:
    """The metrics a statistics reference (mean and covariance, no samples) can give, and why the others not.

    Parameters
    ----------
    chosen : list of str
        The metrics :func:`choose_metrics` picked.
    requested : list of str, optional
        What ``--metrics`` asked for (None: the defaults); asking for one that needs samples is an error.

    Returns
    -------
    tuple
        The metrics to compute, and one line per metric left out.
    """
    kept = [name for name in chosen if METRICS.get(name).from_statistics]
    left_out = [name for name in chosen if name not in kept]
    if requested is not None and left_out:
        raise GenEvalError(
            f"metric {left_out[0]} needs reference samples: statistics (a mean and covariance) alone cannot "
            f"give it; drop it from --metrics or give the reference samples"
        )
    return kept, [
        f"{name}: not computed: it needs reference samples, and statistics (a mean and covariance) alone cannot give it"
        for name in left_out
    ]


def metric_options() -> dict[str, Mapping[str, Option]]:
    """Metric name -> the options it reads (``{"kid": {"kid_subset_size": Option, ...}, ...}``)."""
    return {name: entry.options for name, entry in METRICS.items()}


def metric_table() -> list[dict[str, object]]:
    """One row per metric: name, what it needs, whether it is a default, a summary, its options."""
    return [
        {
            "name": name,
            "requires": e.requires,
            "default": e.default,
            "summary": e.summary,
            "options": {key: option.describe() for key, option in e.options.items()},
        }
        for name, e in METRICS.items()
    ]
