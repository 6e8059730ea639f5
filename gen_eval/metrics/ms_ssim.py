"""MS-SSIM diversity (Odena et al. 2017, AC-GAN): mean MS-SSIM of random pairs within a set.

MS-SSIM (Wang et al. 2003) is 1 for identical images and near 0 for unrelated ones, so the
mean over random pairs of *distinct* samples measures how alike a set's samples are: a
collapsed generator repeats itself and scores high. Lower is **not** always better: pure
noise scores a few hundredths, as low as or lower than real data. What matters is the
comparison with the reference computed the same way: far above it means collapse (too
little diversity), far below it means noise or artefacts rather than genuine variety. Both
values are reported ("ms_ssim" and "ms_ssim_reference") for that reason.

Small images. The standard settings (5 scales, 11-px Gaussian window, sigma 1.5) need at
least 161 px (torchmetrics asks 176). For smaller images :func:`msssim_settings` keeps as
many scales as leave the coarsest at >= 8 px, drops the coarsest betas (renormalising the
rest to sum to 1) and uses the largest odd window <= 11 that fits every scale (and
torchmetrics' own size check):

====== ====== ====== ======================================= ===============
size   scales kernel betas                                   sigma
====== ====== ====== ======================================= ===============
8      1      7      (1.0,) -- plain SSIM                    0.955
16     2      7      (0.1356, 0.8644)                        0.955
32     3      7      (0.0711, 0.4530, 0.4760)                0.955
64     4      7      (0.0517, 0.3295, 0.3462, 0.2726)        0.955
128    5      7      Wang's five                             0.955
256    5      11     Wang's five (0.0448 ... 0.1333)         1.5 (standard)
====== ====== ====== ======================================= ===============

The Gaussian's sigma is ``1.5 * kernel / 11`` so that torchmetrics' window (``2 *
int(3.5 sigma + 0.5) + 1``) is exactly ``kernel`` px. Values at different sizes are not
comparable; compare generated and reference at the same size.

Conventions (``ms_ssim_convention``; recorded in ``details["convention"]``). MS-SSIM has no
single reference implementation and the two common ones disagree:

- ``"torchmetrics"`` (default): each scale's SSIM/contrast term is averaged over channels
  *and* pixels, then the product across scales is taken per image. Filtering pads by
  reflection; the contrast terms are then cropped to the windows that lie inside the image,
  but the coarsest scale's SSIM is averaged over the whole (padded) map. Downsampling floors
  odd sizes. Negative averages are clipped at 0.
- ``"pytorch_msssim"`` (pytorch-msssim 1.0): "valid" filtering (no padding: only windows
  inside the image, at every scale, the coarsest SSIM included), the product across scales
  taken per channel and *then* the channel mean; each channel's term is clipped at 0; odd
  sizes are zero-padded by one pixel before downsampling. Variances are not clipped at 0.

The gap depends on size and content, not on a constant factor. Mean over random pairs of
distinct images (dissimilar) and over images paired with a copy plus N(0, 8) grey-level noise
(similar), torchmetrics -> pytorch-msssim:

========================== ========================== ==========================
set                        dissimilar                 similar
========================== ========================== ==========================
digits 8 px grey           0.304 -> 0.180 (-41%)      0.980 -> 0.997 (+1.7%)
shapes 64 px grey          0.433 -> 0.180 (-59%)      0.863 -> 0.951 (+10%)
varied 32 px RGB           0.0501 -> 0.0498 (-0.7%)   0.9843 -> 0.9842
varied 64 px RGB           0.0530 -> 0.0483 (-8.9%)   0.9909 -> 0.9909
smooth noise 256 px RGB    0.504 -> 0.499 (-1.0%)     0.9354 -> 0.9354
========================== ========================== ==========================

Blank backgrounds make the difference: a window of two blank patches has SSIM 1, and
torchmetrics' coarsest-scale SSIM averages the whole reflected map (8 x 8 windows for a
64-px image's 8-px scale) where valid filtering keeps the 2 x 2 inside windows, mostly on
the object. Compare values only under one convention.
"""

from __future__ import annotations

import numpy as np
import torch

from gen_eval.errors import GenEvalError
from gen_eval.kinds import get_kind
from gen_eval.metrics.base import MetricContext
from gen_eval.metrics.bootstrap import mean_interval
from gen_eval.metrics.result import Result

WANG_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MIN_COARSEST = 8  # coarsest scale kept at >= 8 px: below that a window sees almost the whole image
CONVENTIONS = {
    "torchmetrics": "torchmetrics: reflection padding, channel mean before the product across scales",
    "pytorch_msssim": "pytorch-msssim: valid filtering (no padding), product across scales per channel",
}


def msssim_settings(height: int, width: int) -> tuple[int, tuple[float, ...]]:
    """Gaussian window size and per-scale betas for images of ``height`` x ``width``.

    Parameters
    ----------
    height, width : int
        Image size in pixels.

    Returns
    -------
    kernel_size : int
        Odd window size (3 to 11); the Gaussian's sigma is ``1.5 * kernel_size / 11``.
    betas : tuple of float
        One exponent per scale: Wang's five for >= 128 px, else the finest ones renormalised.

    Raises
    ------
    GenEvalError
        Below 3 px, too small for even one scale with a 3-px window.
    """
    size = min(height, width)
    if size < 3:
        raise GenEvalError(f"MS-SSIM needs images of at least 3x3 pixels; got {height}x{width}")
    scales = 1
    while scales < len(WANG_BETAS) and size >> scales >= MIN_COARSEST:
        scales += 1
    # Every scale must be at least as large as the window; torchmetrics also insists on
    # size // (scales - 1)**2 >= kernel, which is stricter at 4 scales.
    limit = min(11, size >> (scales - 1), size // max(1, scales - 1) ** 2)
    kernel = limit if limit % 2 else limit - 1
    if scales == len(WANG_BETAS):
        return kernel, WANG_BETAS
    kept = WANG_BETAS[:scales]
    return kernel, tuple(float(b / sum(kept)) for b in kept)


def check_convention(convention: str) -> str:
    """``convention`` if it names one of :data:`CONVENTIONS`, else a one-line GenEvalError."""
    if convention not in CONVENTIONS:
        raise GenEvalError(
            f"unknown ms_ssim_convention {convention!r}; use one of {', '.join(map(repr, CONVENTIONS))}"
        )
    return convention


def msssim_valid(a: torch.Tensor, b: torch.Tensor, kernel: int, betas: tuple[float, ...]) -> torch.Tensor:
    """MS-SSIM under pytorch-msssim's convention (valid filtering, product per channel, then channel mean).

    Written out rather than calling ``pytorch_msssim.ms_ssim``: that package is not a
    dependency, and its ``ms_ssim`` refuses images of (kernel - 1) * 16 px or less whatever the
    number of scales, i.e. every size below 128 px in :func:`msssim_settings`' table. The
    operations and their order are its own (``_fspecial_gauss_1d``, filtering along height then
    width, ``avg_pool2d`` with ``padding = size % 2``, relu of each channel's terms); the tests
    hold this function to ``pytorch_msssim.ms_ssim`` where that accepts the images.

    Parameters
    ----------
    a, b : torch.Tensor
        Float (P, C, H, W) images in [0, 1].
    kernel : int
        Odd Gaussian window; sigma is ``1.5 * kernel / 11``.
    betas : tuple of float
        One exponent per scale (finest first).

    Returns
    -------
    torch.Tensor
        (P,) values in [0, 1].
    """
    channels = a.shape[1]
    sigma = 1.5 * kernel / 11
    coords = torch.arange(kernel, dtype=a.dtype, device=a.device) - kernel // 2
    window = torch.exp(-(coords**2) / (2 * sigma**2))
    window = (window / window.sum()).repeat(channels, 1, 1, 1)  # (C, 1, 1, k)
    c1, c2 = 0.01**2, 0.03**2

    def blur(z: torch.Tensor) -> torch.Tensor:  # separable, no padding: only windows inside the image
        z = torch.nn.functional.conv2d(z, window.transpose(2, 3), groups=channels)
        return torch.nn.functional.conv2d(z, window, groups=channels)

    terms = []
    for scale in range(len(betas)):
        if scale:
            padding = [size % 2 for size in a.shape[2:]]
            a = torch.nn.functional.avg_pool2d(a, kernel_size=2, padding=padding)
            b = torch.nn.functional.avg_pool2d(b, kernel_size=2, padding=padding)
        mu_a, mu_b = blur(a), blur(b)
        cs_map = (2 * (blur(a * b) - mu_a * mu_b) + c2) / (
            blur(a * a) - mu_a.square() + blur(b * b) - mu_b.square() + c2
        )
        if scale == len(betas) - 1:  # the coarsest scale contributes the full SSIM, the others cs
            cs_map = (2 * mu_a * mu_b + c1) / (mu_a.square() + mu_b.square() + c1) * cs_map
        terms.append(torch.relu(cs_map.flatten(2).mean(-1)))  # (P, C): one term per channel
    exponents = torch.tensor(betas, dtype=a.dtype, device=a.device).view(-1, 1, 1)
    return torch.prod(torch.stack(terms) ** exponents, dim=0).mean(1)


def pair_msssim(
    first: torch.Tensor, second: torch.Tensor, device: str = "cpu", convention: str = "torchmetrics"
) -> torch.Tensor:
    """MS-SSIM of each pair (first[i], second[i]) of uint8 NCHW images, with :func:`msssim_settings`.

    Parameters
    ----------
    first, second : torch.Tensor
        uint8 (P, C, H, W) images of the same shape (one call: chunk large sets yourself).
    device : str
        Where the maths runs.
    convention : {"torchmetrics", "pytorch_msssim"}
        Whose definition (see the module docstring): torchmetrics' function itself, or
        :func:`msssim_valid`.

    Returns
    -------
    torch.Tensor
        (P,) float64 values in [0, 1] (both clip negative per-scale terms at 0).
    """
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as msssim

    check_convention(convention)
    kernel, betas = msssim_settings(*first.shape[-2:])
    a, b = (images.to(device).float() / 255 for images in (first, second))
    if convention == "pytorch_msssim":
        return msssim_valid(a, b, kernel, betas).to("cpu", torch.float64)
    values = msssim(
        a, b, kernel_size=kernel, sigma=1.5 * kernel / 11, betas=betas, data_range=1.0, reduction="none"
    )
    return values.to("cpu", torch.float64)


def draw_pairs(n: int, num_pairs: int, random_state: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Indices of ``num_pairs`` random pairs of distinct items among ``n``.

    Disjoint pairs (independent values) when ``n >= 2 * num_pairs``; otherwise each pair is
    drawn at random (two distinct items), so pairs share items.

    Returns
    -------
    first, second : numpy.ndarray
    disjoint : bool
    """
    rng = np.random.default_rng(random_state)
    if n >= 2 * num_pairs:
        order = rng.permutation(n)[: 2 * num_pairs]
        return order[0::2], order[1::2], True
    first = rng.integers(0, n, num_pairs)
    second = (first + rng.integers(1, n, num_pairs)) % n  # offset in [1, n): never the same item
    return first, second, False


def _indexed_msssim(
    images: torch.Tensor, first: np.ndarray, second: np.ndarray, device: str, convention: str
) -> torch.Tensor:
    """MS-SSIM of pairs (images[first[i]], images[second[i]]), gathering a chunk at a time."""
    step = max(1, 2**22 // images[0].numel())  # ~4M pixels per side: bounded memory for 256x256 sets
    parts = [
        pair_msssim(images[first[i : i + step]], images[second[i : i + step]], device, convention)
        for i in range(0, len(first), step)
    ]
    return torch.cat(parts)


def _set_msssim(source, role: str, context: MetricContext) -> tuple[torch.Tensor, int, dict, list[str]]:
    """Per-pair values of one source, the number of images read, per-class means and warnings."""
    if source is None:
        raise GenEvalError(f"MS-SSIM needs the {role} source itself, not only its features")
    kind = get_kind(source.data_kind)
    if "images" not in kind.provides:
        raise GenEvalError(f"MS-SSIM needs images; the {role} source {source.spec} holds {kind.plural}")
    pairs = int(context.option("ms_ssim_pairs", 1000))
    if pairs < 1:
        raise GenEvalError(f"ms_ssim_pairs must be at least 1, got {pairs}")
    n = min(len(source), 2 * pairs)  # never more than 2 x pairs images: large sets stay on disk
    if n < 2:
        raise GenEvalError(f"MS-SSIM needs at least 2 {role} images; {source.spec} has {len(source)}")
    batch = source.head(n)
    images = batch.data
    first, second, disjoint = draw_pairs(n, pairs, context.random_state)
    convention = check_convention(context.option("ms_ssim_convention", "torchmetrics"))
    values = _indexed_msssim(images, first, second, context.device, convention)
    warnings = (
        [] if disjoint else [f"{role}: {pairs} pairs from {n} images share images; interval optimistic"]
    )
    per_class: dict[str, float] = {}
    labels = batch.labels
    if context.option("ms_ssim_per_class", False) and labels is not None:
        if labels.ndim != 1:
            warnings.append(f"{role}: labels are not class indices; no per-class MS-SSIM")
        else:
            class_pairs = int(context.option("ms_ssim_class_pairs", 100))
            for label in np.unique(labels):
                members = np.flatnonzero(labels == label)
                if len(members) >= 2:
                    a, b, _ = draw_pairs(len(members), class_pairs, context.random_state)
                    values_c = _indexed_msssim(images, members[a], members[b], context.device, convention)
                    per_class[str(label.item())] = float(values_c.mean())
    if labels is not None and labels.ndim == 1 and len(np.unique(labels)) == 1 and len(source) > n:
        # Only the first n images are read: a source sorted by class would be judged on one class.
        warnings.append(
            f"{role}: the first {n} images all have one label; if sorted by class, MS-SSIM is inflated"
        )
    return values, n, per_class, warnings


def ms_ssim(
    generated: dict[str, torch.Tensor], reference: dict[str, torch.Tensor], context: MetricContext
) -> dict[str, Result]:
    """Mean MS-SSIM of random pairs of generated images, and of reference images.

    Parameters
    ----------
    generated, reference : dict of str to torch.Tensor
        Unused: the images are read from ``context.generated_source`` / ``reference_source``.
    context : MetricContext
        Options ``ms_ssim_pairs`` (1000), ``ms_ssim_per_class`` (False), ``ms_ssim_class_pairs``
        (100), ``ms_ssim_convention`` ("torchmetrics" or "pytorch_msssim", see the module
        docstring); seed and bootstrap settings.

    Returns
    -------
    dict
        ``{"ms_ssim": Result, "ms_ssim_reference": Result}``, direction "lower" (more diverse), but
        read the generated value against the reference's (see the module docstring).
        ``details["convention"]`` names the convention, ``details["convention_description"]``
        says in one line what it means: show it next to the number.
    """
    convention = check_convention(context.option("ms_ssim_convention", "torchmetrics"))
    gen_values, n_gen, gen_classes, warnings = _set_msssim(context.generated_source, "generated", context)
    ref_values, n_ref, ref_classes, ref_warnings = _set_msssim(context.reference_source, "reference", context)
    gen_shape, ref_shape = context.generated_source.sample_shape, context.reference_source.sample_shape
    if gen_shape != ref_shape:
        warnings.append(
            f"image shapes differ ({gen_shape} vs {ref_shape}): the two values are not comparable"
        )
    results = {}
    for name, values, classes, shape, notes in (
        ("ms_ssim", gen_values, gen_classes, gen_shape, warnings),
        ("ms_ssim_reference", ref_values, ref_classes, ref_shape, ref_warnings),
    ):
        kernel, betas = msssim_settings(*shape[-2:])
        interval = None
        if context.num_resamples > 0:
            interval = mean_interval(values, context.num_resamples, context.random_state, context.confidence)
        details = {
            "pairs": len(values),
            "kernel_size": kernel,
            "sigma": 1.5 * kernel / 11,
            "betas": list(betas),
            "convention": convention,
            "convention_description": CONVENTIONS[convention],
        }
        if classes:
            details["per_class"] = classes
        results[name] = Result(
            name=name,
            value=float(values.mean()),
            direction="lower",
            num_generated=n_gen,
            num_reference=n_ref,
            interval=interval,
            interval_covers=None
            if interval is None
            else f"the mean MS-SSIM of two independent {'generated' if name == 'ms_ssim' else 'reference'} images at this image size ({len(values):,} pairs resampled; a mean of pairs is unbiased at any number of pairs)",
            warnings=notes,
            details=details,
        )
    results["ms_ssim"].details["difference_from_reference"] = float(gen_values.mean() - ref_values.mean())
    return results
