"""The bundled GANs (reference_models/gan.py): shipped checkpoints, training smoke tests, mode coverage."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gen_eval.datasets.mixtures import MIXTURES
from reference_models import load_model
from reference_models.train import train_model

DIGIT_MODELS = ["dcgan", "wgan_gp", "collapsed_digits"]
POINT_MODELS = ["dcgan_ring8", "wgan_gp_ring8", "dcgan_grid25", "wgan_gp_grid25", "collapsed_ring8"]
TINY = {"channels": 4, "hidden": 8, "latent_dim": 4, "eval_samples": 100}


def modes_hit(points: torch.Tensor, dataset: str) -> np.ndarray:
    """Samples within 3 std of each mode centre (a mode is covered when its count is > 0)."""
    spec = MIXTURES[dataset]
    dist = np.linalg.norm(points.numpy()[:, None].astype(np.float64) - spec.centres[None], axis=2)
    near = dist.min(1) < 3 * spec.std
    return np.bincount(dist.argmin(1)[near], minlength=spec.num_modes)


def digit_classes(images: torch.Tensor) -> np.ndarray:
    """Class histogram of generated digits, by the digits classifier."""
    from gen_eval.features.digits import load_digits_net

    with torch.no_grad():
        logits = load_digits_net()(images)[1]
    return np.bincount(logits.argmax(1).numpy(), minlength=10)


@pytest.mark.parametrize("name", DIGIT_MODELS + POINT_MODELS)
def test_shipped_checkpoint_samples(name: str) -> None:
    model = load_model(name)
    x = model.sample(50, torch.Generator().manual_seed(0))
    assert x.dtype == torch.float32
    assert torch.isfinite(x).all()
    if name in DIGIT_MODELS:
        assert x.shape == (50, 1, 8, 8)
        assert x.min() >= 0 and x.max() <= 1
        assert x.std() > 0.1  # not a constant image
    else:
        assert x.shape == (50, 2)
        assert x.abs().max() < 10  # the mixtures live in [-4.2, 4.2]^2
    # sample() is seeded by its generator and is decode() of standard normal latents
    again = model.sample(50, torch.Generator().manual_seed(0))
    torch.testing.assert_close(x, again, rtol=0, atol=0)
    z = torch.randn(50, model.latent_dim, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(model.decode(z), x, rtol=0, atol=0)
    # one sample at a time (BatchNorm in eval mode): the same as in a batch
    torch.testing.assert_close(model.decode(z[:1]), x[:1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["dcgan", "wgan_gp", "dcgan_ring8", "wgan_gp_ring8"])
def test_one_step_training_round_trip(name: str, tmp_path) -> None:
    model, config = train_model(name, steps=1, directory=tmp_path, show_progress=False, overrides=TINY)
    assert config["hyperparameters"]["steps"] == 1
    assert config["hyperparameters"]["lr"] is not None  # presets filled in and recorded
    loaded = load_model(name, directory=tmp_path)
    assert loaded.latent_dim == 4
    z = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(loaded.decode(z), model.decode(z), rtol=0, atol=0)
    assert {k.split(".")[0] for k in loaded.state_dict()} == {"generator", "scale"}  # no discriminator


def test_collapsed_ring8_covers_exactly_modes_0_to_4() -> None:
    x = load_model("collapsed_ring8").sample(2000, torch.Generator().manual_seed(0))
    counts = modes_hit(x, "ring8")
    assert (counts[:5] > 0).all(), counts
    assert (counts[5:] == 0).all(), counts
    # and nothing anywhere near modes 5-7: every sample is closest to one of modes 0-4
    nearest = np.linalg.norm(x.numpy()[:, None] - MIXTURES["ring8"].centres[None], axis=2).argmin(1)
    assert (nearest < 5).mean() > 0.99


def test_wgan_gp_ring8_covers_all_modes() -> None:
    counts = modes_hit(load_model("wgan_gp_ring8").sample(2000, torch.Generator().manual_seed(0)), "ring8")
    assert (counts > 0).all(), counts
    assert counts.sum() > 0.5 * 2000  # most samples are sharp (within 3 std of a centre)


@pytest.mark.parametrize("name", ["dcgan", "wgan_gp"])
def test_digit_gans_make_every_class(name: str) -> None:
    counts = digit_classes(load_model(name).sample(1000, torch.Generator().manual_seed(0)))
    assert (counts >= 30).all(), counts  # 100 each would be perfectly balanced


def test_collapsed_digits_makes_only_0_1_7() -> None:
    counts = digit_classes(load_model("collapsed_digits").sample(1000, torch.Generator().manual_seed(0)))
    # 92% at the shipped checkpoint; the rest are 0/1/7 hybrids the classifier calls (mostly) 8.
    # A GAN covering all classes puts about 30% here.
    assert counts[[0, 1, 7]].sum() >= 900, counts
    assert (counts[[0, 1, 7]] >= 150).all(), counts
