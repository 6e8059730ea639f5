"""Latent analysers: interpolation, smoothness, PPL, traversals, arithmetic, embeddings (planted cases)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gen_eval.errors import GenEvalError
from gen_eval.latent import embed as embed_module
from gen_eval.latent.interpolate import interpolate, lerp, path_smoothness, slerp
from gen_eval.latent.ppl import filtered_mean, perceptual_path_length, squared_feature_distance
from gen_eval.latent.traverse import latent_arithmetic, rank_dimensions, traversal_grid


class VectorModel:
    """decode(z) = f(z) as float vectors: enough for paths, PPL and rankings."""

    def __init__(self, fn, latent_dim: int) -> None:
        self.fn, self.latent_dim = fn, latent_dim

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.fn(z.float())


def _raw(samples: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(samples, dtype=torch.float64).reshape(len(samples), -1)


def test_slerp_keeps_the_norm_and_hits_the_end_points():
    g = torch.Generator().manual_seed(0)
    z0, z1 = (
        torch.randn(16, generator=g, dtype=torch.float64),
        torch.randn(16, generator=g, dtype=torch.float64),
    )
    z1 = z1 * z0.norm() / z1.norm()
    path = interpolate(z0, z1, 9, "slerp")
    assert torch.allclose(path[0], z0) and torch.allclose(path[-1], z1)
    assert torch.allclose(path.norm(dim=1), z0.norm().expand(9))
    # Equal angular steps: consecutive points equally far apart (lerp would not keep the norm).
    steps = (path[1:] - path[:-1]).norm(dim=1)
    assert torch.allclose(steps, steps[0].expand(8))
    assert not torch.allclose(interpolate(z0, z1, 9, "lerp").norm(dim=1), z0.norm().expand(9))
    assert torch.allclose(lerp(z0, z1, 0.5), (z0 + z1) / 2)
    assert torch.allclose(
        slerp(z0, 2 * z0, torch.tensor([[0.5]]))[0], 1.5 * z0
    )  # parallel: falls back to lerp


def test_slerp_takes_one_t_per_row():
    g = torch.Generator().manual_seed(1)
    z0, z1 = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    t = torch.rand(5, 1, generator=g)
    rows = slerp(z0, z1, t)
    for i in range(5):
        assert torch.allclose(rows[i], slerp(z0[i], z1[i], float(t[i])), atol=1e-6)


def test_smoothness_flags_a_jump_and_passes_a_linear_decoder():
    w = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    linear = VectorModel(lambda z: z @ w.T, 3)
    even = path_smoothness(linear, _raw, num_pairs=20, steps=11, method="lerp")
    assert np.allclose(even.ratio, 1.0, atol=1e-5)
    # A decoder with a cliff at z0 = 0: paths that cross it do all their moving in one step.
    cliff = VectorModel(lambda z: torch.where(z[:, :1] > 0, 10.0, -10.0).expand(-1, 4) + 1e-3 * z[:, :1], 3)
    jumpy = path_smoothness(cliff, _raw, num_pairs=40, steps=11, method="lerp", random_state=3)
    crossing = jumpy.ratio > 5
    assert crossing.sum() >= 10  # about half the paths cross z0 = 0
    assert np.allclose(jumpy.ratio[crossing], 10.0, rtol=0.01)  # all change in 1 of 10 steps
    assert jumpy.summary()["step_ratio_max"] == pytest.approx(10.0, rel=0.01)


def test_mid_path_distance_uses_the_reference():
    linear = VectorModel(lambda z: z, 2)
    ref = torch.randn(500, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    result = path_smoothness(linear, _raw, num_pairs=30, steps=9, method="lerp", reference_features=ref)
    # Lerp midpoints of two N(0, I) draws lie closer to the origin, where the data is dense.
    assert result.summary()["mid_to_end_distance_ratio"] < 1.0
    assert result.mid_distance.shape == (30,)


def test_ppl_of_a_linear_decoder_equals_its_closed_form():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(6, 4, generator=g, dtype=torch.float64)
    linear = VectorModel(lambda z: z.double() @ w.T, 4)
    distance = squared_feature_distance(lambda x: x)
    result = perceptual_path_length(linear.decode, 4, distance, num_samples=400, space="w", random_state=5)
    # lerp: G(t + eps) - G(t) = eps W (z1 - z0), so d = |W (z1 - z0)|^2 for every t; redraw the same z.
    gen = torch.Generator().manual_seed(5)
    expected = []
    for _ in range(0, 400, 250):
        n = min(250, 400 - len(expected))
        z0 = torch.randn(n, 4, generator=gen, dtype=torch.float64)
        z1 = torch.randn(n, 4, generator=gen, dtype=torch.float64)
        torch.rand(n, 1, generator=gen, dtype=torch.float64)
        expected.extend(((z1.float().double() - z0.float().double()) @ w.T).square().sum(1).tolist())
    expected = np.array(expected)
    # float32 latents: the 1e-4 step carries ~1e-3 relative error per sample.
    assert np.allclose(result.distances, expected, rtol=2e-2)
    assert result.value == pytest.approx(filtered_mean(expected)[0], rel=5e-3)
    # E |W (z1 - z0)|^2 = 2 tr(W^T W); the 1%/99% filter trims a little of the upper tail.
    assert result.value == pytest.approx(2 * float((w * w).sum()), rel=0.15)


def test_ppl_end_sampling_and_filtering():
    values = np.concatenate([np.ones(98), [1e9, -1e9]])
    mean, kept = filtered_mean(values)
    assert mean == 1.0 and kept.sum() == 98
    quadratic = VectorModel(lambda z: z.double() ** 2, 3)
    distance = squared_feature_distance(lambda x: x)
    end = perceptual_path_length(quadratic.decode, 3, distance, num_samples=200, sampling="end", space="w")
    full = perceptual_path_length(quadratic.decode, 3, distance, num_samples=200, sampling="full", space="w")
    assert end.value != pytest.approx(full.value, rel=0.05)
    with pytest.raises(GenEvalError, match="floats"):
        perceptual_path_length(
            lambda z: torch.zeros(len(z), 1, 2, 2, dtype=torch.uint8), 3, distance, num_samples=100
        )


def test_ranking_finds_the_dimensions_that_matter():
    def decode(z):
        return torch.stack([3 * z[:, 2], z[:, 5], 0.01 * z[:, 0]], dim=1)

    ranking = rank_dimensions(VectorModel(decode, 8))
    assert ranking.method == "decoder_sensitivity"
    assert ranking.top(3) == [2, 5, 0]

    class Encoder(VectorModel):
        def encode(self, x):
            return torch.stack(
                [x[:, 0, 0, 0].float() * 0, x[:, 0, 0, 1].float(), x[:, 0, 0, 0].float() * 0.1], 1
            )

    images = torch.randint(
        0, 255, (50, 1, 2, 2), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    ranking = rank_dimensions(Encoder(decode, 3), images=images)
    assert ranking.method == "encoder_variance" and ranking.top(3) == [1, 2, 0]


class PixelModel:
    """An exact linear autoencoder on 1 x 2 x 2 images: z = pixels / 255, decode = z * 255."""

    latent_dim = 4

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), -1).float() / 255

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (z.clamp(0, 1)).reshape(len(z), 1, 2, 2)


def test_traversal_grid_sets_one_dimension_per_row():
    grid = traversal_grid(PixelModel(), [3, 1], values=[0.0, 0.5, 1.0], z=torch.full((4,), 0.2))
    assert grid.shape == (2, 3, 1, 2, 2)
    flat = grid.reshape(2, 3, 4).astype(int)
    assert flat[0, :, 3].tolist() == [0, 128, 255] and (flat[0, :, :3] == 51).all()
    assert flat[1, :, 1].tolist() == [0, 128, 255] and (flat[1, :, [0, 2, 3]] == 51).all()
    with pytest.raises(GenEvalError, match="out of range"):
        traversal_grid(PixelModel(), [4])


def test_latent_arithmetic_moves_by_the_class_mean_difference():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(20, 60, (10, 1, 2, 2), dtype=torch.uint8, generator=g)
    b = a.clone()
    b[:, 0, 0, 0] += 100  # class 1 = class 0 with a brighter corner
    images, labels = torch.cat([a, b]), np.array([0] * 10 + [1] * 10)
    grid, shift = latent_arithmetic(PixelModel(), images, labels, 0, 1, num_examples=4)
    assert grid.shape == (3, 4, 1, 2, 2)
    assert torch.allclose(shift, torch.tensor([100 / 255, 0, 0, 0]), atol=1e-6)
    assert np.array_equal(grid[0], a[:4].numpy()) and np.array_equal(grid[1], a[:4].numpy())
    assert np.array_equal(grid[2], b[:4].numpy())
    with pytest.raises(GenEvalError, match="class 7"):
        latent_arithmetic(PixelModel(), images, labels, 0, 7)


def test_pca_embedding_matches_scikit_learn_and_is_cached(tmp_path, monkeypatch):
    from sklearn.decomposition import PCA

    points = np.random.default_rng(0).normal(size=(60, 5)).astype(np.float32)
    coords = embed_module.embed(points, "pca", cache_dir=tmp_path)
    assert np.allclose(coords, PCA(2, random_state=0).fit_transform(points), atol=1e-5)
    calls = []
    monkeypatch.setattr(embed_module, "_compute", lambda *a: calls.append(a) or np.zeros((60, 2)))
    again = embed_module.embed(points, "pca", cache_dir=tmp_path)
    assert calls == [] and np.array_equal(again, coords)  # a cache hit: nothing recomputed
    embed_module.embed(points, "pca", random_state=1, cache_dir=tmp_path)
    assert len(calls) == 1  # another key: computed
    with pytest.raises(GenEvalError, match="method"):
        embed_module.embed(points, "mds")


def test_tsne_and_umap_are_reproducible():
    points = np.random.default_rng(1).normal(size=(40, 6)).astype(np.float32)
    first = embed_module.embed(points, "tsne", random_state=3)
    assert first.shape == (40, 2) and np.array_equal(
        first, embed_module.embed(points, "tsne", random_state=3)
    )
    umap = embed_module.embed(points, "umap", random_state=3)
    assert umap.shape == (40, 2) and np.isfinite(umap).all()
    assert np.allclose(umap, embed_module.embed(points, "umap", random_state=3))


def test_interpolation_rejects_bad_arguments():
    z = torch.zeros(3)
    with pytest.raises(GenEvalError, match="at least 2"):
        interpolate(z, z, 1)
    with pytest.raises(GenEvalError, match="lerp"):
        interpolate(z, z, 3, "cubic")
    assert math.isfinite(float(slerp(z, z, 0.5).sum()))  # zero vectors: no NaN
