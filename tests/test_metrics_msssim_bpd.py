"""MS-SSIM diversity and bits/dim against closed forms, torchmetrics' defaults and numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gen_eval.datasets.digits import GREY_LEVELS, load_digits_split, to_grey_levels
from gen_eval.errors import GenEvalError
from gen_eval.metrics import get_metric
from gen_eval.metrics.base import MetricContext
from gen_eval.metrics.likelihood import FactorisedCategorical, UniformModel, parzen_bits_per_dim
from gen_eval.metrics.ms_ssim import WANG_BETAS, draw_pairs, msssim_settings, pair_msssim
from gen_eval.sources import open_source
from gen_eval.sources.python import GeneratorSource


def _source(model, count: int = 400) -> GeneratorSource:
    return GeneratorSource(spec="test-model", model=model, count=count, seed=0)


def _context(generated, reference, **options) -> MetricContext:
    return MetricContext(
        num_resamples=50, generated_source=generated, reference_source=reference, options=options
    )


class Repeated:
    """One fixed image plus uniform noise of +-``noise`` (in [0, 1] units): a collapsed generator."""

    def __init__(self, image: np.ndarray, noise: float = 0.02):
        self.image, self.noise = torch.from_numpy(image).double() / 255, noise

    def sample(self, n, generator=None):
        jitter = (
            torch.rand((n, *self.image.shape), generator=generator, dtype=torch.float64) * 2 - 1
        ) * self.noise
        return (self.image + jitter).clamp(0, 1)


class Noise:
    def __init__(self, shape=(1, 64, 64)):
        self.shape = shape

    def sample(self, n, generator=None):
        return torch.randint(0, 256, (n, *self.shape), generator=generator, dtype=torch.uint8)


class Vectors:
    def sample(self, n, generator=None):
        return torch.rand((n, 2), generator=generator)


# ---------------------------------------------------------------- MS-SSIM


def test_msssim_of_identical_pairs_is_one():
    images = _source(Noise((3, 32, 32)), 20).head(20).data
    assert torch.allclose(pair_msssim(images, images.clone()), torch.ones(20, dtype=torch.float64), atol=1e-5)
    # Through the metric: a source whose every sample is the same image.
    same = _source(Repeated(load_digits_split("test")[0][3], noise=0.0), 50)
    results = get_metric("ms_ssim")({}, {}, _context(same, open_source("digits:test"), ms_ssim_pairs=20))
    assert results["ms_ssim"].value == pytest.approx(1.0, abs=1e-5)


def test_msssim_of_independent_noise_is_near_zero():
    results = get_metric("ms_ssim")({}, {}, _context(_source(Noise()), _source(Noise()), ms_ssim_pairs=200))
    # Independent noise has ~0 structure; relu-clipped small per-scale terms leave a few hundredths.
    assert results["ms_ssim"].value < 0.1
    assert results["ms_ssim_reference"].value < 0.1


def test_collapsed_set_scores_far_above_digits_test():
    collapsed = _source(Repeated(load_digits_split("train")[0][0]), 400)
    context = _context(collapsed, open_source("digits:test"), ms_ssim_pairs=300, ms_ssim_per_class=True)
    results = get_metric("ms_ssim")({}, {}, context)
    gen, ref = results["ms_ssim"], results["ms_ssim_reference"]
    assert gen.value > 0.95 and ref.value < 0.5
    assert gen.value - ref.value > 0.5
    assert gen.interval[0] <= gen.value <= gen.interval[1]
    assert gen.direction == ref.direction == "lower"
    assert (gen.num_generated, gen.num_reference) == (400, 360)  # min(count, 2 x pairs) images read
    assert set(ref.details["per_class"]) == {str(c) for c in range(10)}
    # Within a class, digits look more alike than across classes.
    assert min(ref.details["per_class"].values()) > ref.value
    assert "per_class" not in gen.details  # a generator source has no labels


@pytest.mark.parametrize(("n", "pairs"), [(2, 50), (7, 100), (360, 1000), (2000, 1000)])
def test_pairs_are_always_two_distinct_images(n, pairs):
    first, second, disjoint = draw_pairs(n, pairs, random_state=0)
    assert len(first) == len(second) == pairs
    assert (first != second).all() and first.min() >= 0 and max(first.max(), second.max()) < n
    assert disjoint == (n >= 2 * pairs)
    if disjoint:  # no image in two pairs: the pair values are independent
        assert len(np.unique(np.concatenate([first, second]))) == 2 * pairs


def test_msssim_is_seeded():
    digits = open_source("digits:test")

    def run(seed: int) -> float:
        context = MetricContext(
            random_state=seed, num_resamples=0, generated_source=digits, reference_source=digits
        )
        context.options["ms_ssim_pairs"] = 100
        return get_metric("ms_ssim")({}, {}, context)["ms_ssim"].value

    assert run(0) == run(0) != run(1)


@pytest.mark.parametrize("size", [8, 12, 16, 24, 32, 48, 64, 100, 128, 160, 256])
def test_settings_are_valid_for_every_size_and_accepted_by_torchmetrics(size):
    kernel, betas = msssim_settings(size, size)
    assert kernel % 2 == 1 and 3 <= kernel <= 11
    assert 1 <= len(betas) <= 5 and sum(betas) == pytest.approx(1.0, abs=2e-4)
    assert betas == WANG_BETAS or betas == pytest.approx(
        np.array(WANG_BETAS[: len(betas)]) / sum(WANG_BETAS[: len(betas)])
    )
    assert size >> (len(betas) - 1) >= kernel  # every scale at least as large as the window
    images = torch.randint(0, 256, (2, 1, size, size), dtype=torch.uint8)
    values = pair_msssim(images, images.flip(0))
    assert torch.isfinite(values).all() and ((values >= 0) & (values <= 1)).all()


def test_settings_table():
    table = {
        size: (kernel, len(betas))
        for size in (8, 16, 32, 64, 128, 256)
        for kernel, betas in [msssim_settings(size, size)]
    }
    assert table == {8: (7, 1), 16: (7, 2), 32: (7, 3), 64: (7, 4), 128: (7, 5), 256: (11, 5)}
    assert msssim_settings(3, 3) == (3, (1.0,))
    assert msssim_settings(8, 256) == msssim_settings(8, 8)  # the short side decides


@pytest.mark.parametrize("shape", [(2, 2), (1, 64), (64, 2)])
def test_settings_reject_images_too_small_for_one_scale(shape):
    with pytest.raises(GenEvalError, match="at least 3x3"):
        msssim_settings(*shape)


def test_8px_single_scale_equals_an_independent_ssim_with_a_7px_window():
    from scipy.ndimage import gaussian_filter

    images = load_digits_split("test")[0][:40].astype(np.float64) / 255
    a, b = images[:20, 0], images[20:, 0]
    sigma = 1.5 * 7 / 11
    # Torchmetrics pads by reflection without repeating the edge (scipy's "mirror"), window radius 3.
    blur = lambda z: gaussian_filter(z, sigma, mode="mirror", truncate=3 / sigma, axes=(1, 2))  # noqa: E731
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = np.maximum(blur(a * a) - mu_a**2, 0), np.maximum(blur(b * b) - mu_b**2, 0)
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    ssim_map = (2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    expected = np.maximum(ssim_map.mean(axis=(1, 2)), 0)
    ours = pair_msssim(*(torch.from_numpy(load_digits_split("test")[0][i : i + 20]) for i in (0, 20)))
    assert ours.numpy() == pytest.approx(expected, abs=1e-5)


def test_256px_uses_torchmetrics_standard_five_scales_exactly():
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

    assert msssim_settings(256, 256) == (11, WANG_BETAS)
    generator = torch.Generator().manual_seed(0)
    base = torch.rand((3, 3, 256, 256), generator=generator)
    smooth = torch.nn.functional.avg_pool2d(base, 9, stride=1, padding=4)  # structure at several scales
    other = (smooth * 0.8 + 0.2 * torch.rand(smooth.shape, generator=generator)).clamp(0, 1)
    a, b = (torch.round(t * 255).to(torch.uint8) for t in (smooth, other))
    expected = multiscale_structural_similarity_index_measure(
        a / 255, b / 255, data_range=1.0, reduction="none"
    )
    ours = pair_msssim(a, b)
    assert 0.2 < float(expected.min()) < 0.99  # a discriminating pair, not a trivial 0 or 1
    assert torch.allclose(ours, expected.double(), rtol=1e-6, atol=0)


def _smooth_pairs(
    size: int, channels: int, count: int = 4, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 pairs with structure at several scales: independent (first half), alike (second half)."""
    generator = torch.Generator().manual_seed(seed)
    base = torch.rand((2 * count, channels, size, size), generator=generator)
    smooth = torch.nn.functional.avg_pool2d(base, 9, stride=1, padding=4)
    a, b = smooth[:count], smooth[count:]
    b = torch.cat([b[: count // 2], (0.7 * a + 0.3 * b)[count // 2 :]])
    return tuple(torch.round(t * 255).to(torch.uint8) for t in (a, b))


@pytest.mark.parametrize(
    ("size", "channels", "scales", "kernel"),
    [(256, 3, 5, 11), (256, 1, 5, 11), (150, 3, 5, 9), (128, 3, 5, 7), (131, 3, 4, 7), (100, 2, 2, 5)],
)
def test_pytorch_msssim_convention_matches_pytorch_msssim(size, channels, scales, kernel):
    # Peer library on the same inputs. Odd sizes (150, 131) exercise its zero-padded
    # downsampling; fewer scales at sizes it accepts stand in for the small-image settings its
    # ms_ssim refuses (<= (kernel - 1) * 16 px). Both run in float32: tolerance 1e-6 absolute.
    pytorch_msssim = pytest.importorskip("pytorch_msssim")
    from gen_eval.metrics.ms_ssim import msssim_valid

    first, second = _smooth_pairs(size, channels)
    betas = tuple(b / sum(WANG_BETAS[:scales]) for b in WANG_BETAS[:scales])
    if scales == 5:  # the settings gen-eval itself uses at these sizes
        betas = WANG_BETAS
        assert msssim_settings(size, size) == (kernel, WANG_BETAS)
        ours = pair_msssim(first, second, convention="pytorch_msssim")
    else:
        ours = msssim_valid(first.float() / 255, second.float() / 255, kernel, betas).double()
    theirs = pytorch_msssim.ms_ssim(
        first.float() / 255,
        second.float() / 255,
        data_range=1.0,
        size_average=False,
        win_size=kernel,
        win_sigma=1.5 * kernel / 11,
        weights=list(betas),
    )
    assert float(theirs.min()) > 0.2 and float(theirs.max()) < 0.99  # discriminating values
    assert torch.allclose(ours, theirs.double(), rtol=0, atol=1e-6)
    if scales == 5:  # the conventions differ here, so matching one is not matching the other
        assert (pair_msssim(first, second) - ours).abs().max() > 1e-3


def test_pytorch_msssim_convention_at_8px_is_its_nonnegative_ssim():
    pytorch_msssim = pytest.importorskip("pytorch_msssim")
    images = torch.from_numpy(load_digits_split("test")[0][:40])
    first, second = images[:20], images[20:]
    theirs = pytorch_msssim.ssim(
        first.float() / 255,
        second.float() / 255,
        data_range=1.0,
        size_average=False,
        win_size=7,
        win_sigma=1.5 * 7 / 11,
        nonnegative_ssim=True,
    )
    ours = pair_msssim(first, second, convention="pytorch_msssim")
    assert torch.allclose(ours, theirs.double(), rtol=0, atol=1e-6)
    # Valid filtering keeps 2 x 2 of the 8 x 8 windows, mostly on the stroke; torchmetrics
    # averages all 64, blank reflected background (SSIM 1) included: far higher on digits.
    assert float(pair_msssim(first, second).mean()) > float(ours.mean()) + 0.05


def test_msssim_records_its_convention_and_refuses_unknown_ones():
    digits = open_source("digits:test")
    results = get_metric("ms_ssim")({}, {}, _context(digits, digits, ms_ssim_pairs=50))
    default = results["ms_ssim"]
    assert default.details["convention"] == "torchmetrics"
    assert "reflection" in default.details["convention_description"]
    other = get_metric("ms_ssim")(
        {}, {}, _context(digits, digits, ms_ssim_pairs=50, ms_ssim_convention="pytorch_msssim")
    )
    assert other["ms_ssim"].details["convention"] == other["ms_ssim_reference"].details["convention"]
    assert other["ms_ssim"].details["convention"] == "pytorch_msssim"
    assert other["ms_ssim"].value < default.value - 0.05  # see the test above
    with pytest.raises(GenEvalError, match="unknown ms_ssim_convention 'skimage'"):
        get_metric("ms_ssim")({}, {}, _context(digits, digits, ms_ssim_convention="skimage"))


def test_msssim_needs_images():
    with pytest.raises(GenEvalError, match="MS-SSIM needs images"):
        get_metric("ms_ssim")({}, {}, _context(_source(Vectors()), open_source("digits:test")))


# ---------------------------------------------------------------- bits/dim


def _bpd(model, reference, **options):
    return get_metric("bpd")({}, {}, _context(_source(model, 10), reference, **options))["bits_per_dim"]


def test_uniform_256_levels_is_exactly_8_bits_on_any_data():
    for reference in (open_source("digits:test"), _source(Noise((3, 16, 16)), 100)):
        result = _bpd(UniformModel(256, reference.sample_shape), reference)
        assert result.value == pytest.approx(8.0, abs=1e-12)
        assert result.kind == "exact" and result.direction == "lower"
        assert result.details["dimensions"] == math.prod(reference.sample_shape)


def test_uniform_17_levels_on_digits_is_log2_17():
    result = _bpd(UniformModel(GREY_LEVELS), open_source("digits:test"), bpd_levels=GREY_LEVELS)
    assert result.value == pytest.approx(math.log2(17), abs=1e-12)
    assert result.details["uniform_bits_per_dim"] == pytest.approx(math.log2(17))
    assert result.num_reference == 360


def test_factorised_categorical_matches_numpy_closed_form():
    train, _ = load_digits_split("train")
    test, _ = load_digits_split("test")
    alpha = 0.5
    model = FactorisedCategorical.fit(train, levels=GREY_LEVELS, alpha=alpha)
    result = _bpd(model, open_source("digits:test"), bpd_levels=GREY_LEVELS)
    # Independently: cross-entropy of test level counts under smoothed train frequencies.
    k_train = to_grey_levels(train).reshape(len(train), -1)
    k_test = to_grey_levels(test).reshape(len(test), -1)
    dims = k_train.shape[1]
    train_counts = np.stack([np.bincount(k_train[:, d], minlength=17) for d in range(dims)])
    test_counts = np.stack([np.bincount(k_test[:, d], minlength=17) for d in range(dims)])
    probs = (train_counts + alpha) / (len(train) + 17 * alpha)
    expected = -(test_counts * np.log(probs)).sum() / (len(test) * dims * np.log(2))
    assert result.value == pytest.approx(expected, rel=1e-12)
    assert result.value < math.log2(17) - 1  # far better than uniform: corners are always blank
    assert result.kind == "exact"
    assert result.interval[0] <= result.value <= result.interval[1]
    assert result.details["nll_nats_per_example"] == pytest.approx(expected * dims * np.log(2), rel=1e-12)


def test_dequantized_uniform_density_is_exactly_8_bits_and_a_bound():
    result = _bpd(UniformModel(256, (1, 8, 8), likelihood="dequantized"), open_source("digits:test"))
    assert result.value == pytest.approx(8.0, abs=1e-12)
    assert result.kind == "bound"


class NoisyDensity(UniformModel):
    """A dequantised density whose log_prob draws u from the generator it is given."""

    def __init__(self):
        super().__init__(256, (1, 8, 8), likelihood="dequantized")

    def log_prob(self, x, generator=None):
        u = torch.rand(x.shape, generator=generator, dtype=torch.float64)
        return -(u - 0.5).abs().reshape(len(x), -1).sum(dim=1)  # log p(y) of a made-up density


def test_log_prob_gets_a_generator_seeded_by_random_state():
    def run(seed: int) -> float:
        context = _context(_source(NoisyDensity(), 10), open_source("digits:test"))
        context.random_state = seed
        return get_metric("bpd")({}, {}, context)["bits_per_dim"].value

    assert run(0) == run(0) != run(1)
    assert run(0) > 8  # log p(y) < 0 here, so the bound lies above the uniform density's 8 bits


@pytest.mark.parametrize("convention", ["elbo", "iwae"])
def test_elbo_and_iwae_are_bounds(convention):
    model = UniformModel(GREY_LEVELS)
    model.likelihood = convention
    result = _bpd(model, open_source("digits:test"), bpd_levels=GREY_LEVELS)
    assert result.kind == "bound" and result.details["convention"] == convention


def test_sources_without_log_prob_are_refused():
    with pytest.raises(GenEvalError, match="log_prob"):
        _bpd(Noise((1, 8, 8)), open_source("digits:test"))
    with pytest.raises(GenEvalError, match="log_prob"):
        get_metric("bpd")({}, {}, _context(open_source("digits:train"), open_source("digits:test")))


def test_wrong_levels_and_positive_discrete_log_prob_are_refused():
    with pytest.raises(GenEvalError, match="grid"):
        _bpd(UniformModel(16), open_source("digits:test"), bpd_levels=16)
    density = UniformModel(256, likelihood="dequantized")
    density.log_prob = lambda x: torch.full((len(x),), 5.0)  # a density declared as discrete
    density.likelihood = "discrete"
    with pytest.raises(GenEvalError, match="dequantized"):
        _bpd(density, open_source("digits:test"))


def test_parzen_matches_a_direct_numpy_computation():
    rng = np.random.default_rng(0)
    samples, test = rng.random((30, 4)), rng.random((7, 4))
    sigma = 0.2
    sq = ((test[:, None] - samples[None]) ** 2).sum(-1)
    log_p = np.log(np.exp(-sq / (2 * sigma**2)).mean(1)) - 2 * np.log(2 * np.pi * sigma**2)
    expected = -(log_p.mean() - 4 * np.log(256)) / (4 * np.log(2))
    assert parzen_bits_per_dim(torch.tensor(samples), torch.tensor(test), sigma) == pytest.approx(
        expected, rel=1e-10
    )
