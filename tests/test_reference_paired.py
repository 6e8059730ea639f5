"""Paired and translation reference models (issue 23): reference_models/unet.py and cyclegan.py.

The shipped checkpoints are checked for the protocol (shapes, dtypes, determinism), the L1 U-Net
against the bicubic baseline in PSNR (scikit-image's, an independent implementation), and tiny
fits for a checkpoint that loads back to the same outputs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gen_eval.datasets.tasks import get_task
from reference_models import load_model


def _psnr(outputs: np.ndarray, targets: np.ndarray) -> float:
    """Mean per-image PSNR (dB, data range 255) by scikit-image."""
    from skimage.metrics import peak_signal_noise_ratio

    return float(
        np.mean(
            [peak_signal_noise_ratio(t, o, data_range=255) for o, t in zip(outputs, targets, strict=True)]
        )
    )


@pytest.mark.parametrize(
    "name", ["unet_sr4", "pix2pix_sr4", "unet_edges", "pix2pix_edges", "unet_inpaint", "pix2pix_inpaint"]
)
def test_paired_model_protocol_shapes_and_determinism(name: str) -> None:
    model = load_model(name)
    task = get_task(model.task)
    inputs, _, _ = task.read("test", 0, 20)
    a = model.translate(torch.from_numpy(inputs), generator=torch.Generator().manual_seed(0))
    b = model.translate(torch.from_numpy(inputs), generator=torch.Generator().manual_seed(1))
    assert a.dtype == torch.uint8 and tuple(a.shape) == (20, *task.target_shape)
    assert torch.equal(a, b)  # deterministic: the generator is accepted and unused
    assert not hasattr(model, "sample") and model.dataset == "mnist"


@pytest.mark.parametrize(
    ("trained", "baseline"),
    [("unet_sr4", "bicubic_sr4"), ("unet_edges", "dilate_edges"), ("unet_inpaint", "mean_inpaint")],
)
def test_l1_unet_beats_the_baseline_in_psnr_on_the_test_split(trained: str, baseline: str) -> None:
    model = load_model(trained)
    inputs, targets, _ = get_task(model.task).read("test", 0, 300)
    ours = model.translate(torch.from_numpy(inputs)).numpy()
    theirs = load_model(baseline).translate(torch.from_numpy(inputs)).numpy()
    assert _psnr(ours, targets) > _psnr(theirs, targets) + 2.0  # measured 3-15 dB apart: see CHANGELOG


def test_cyclegan_protocol_and_level_grid() -> None:
    from gen_eval.datasets import get_dataset
    from gen_eval.sources.translation import is_translation_model

    model = load_model("cyclegan_digits2mnist")
    assert is_translation_model(model) and model.task == "digits2mnist"
    digits, _ = get_dataset("digits").read("test", 0, 16)
    out = model.translate(torch.from_numpy(digits))
    assert out.dtype == torch.uint8 and tuple(out.shape) == (16, 1, 28, 28)
    back = model.translate_back(out)
    assert back.dtype == torch.uint8 and tuple(back.shape) == (16, 1, 8, 8)
    levels = np.round(np.arange(17) * 255 / 16)  # the digits data's 17 grey levels
    assert np.isin(back.numpy(), levels).all()
    with pytest.raises(ValueError, match="8, 8"):
        model.translate(out)


def test_ref_source_of_the_cyclegan_is_a_translation_source() -> None:
    from gen_eval.sources.reference import open_reference_source
    from gen_eval.sources.translation import TranslationModelSource

    source = open_reference_source("ref:cyclegan_digits2mnist", 50, 0)
    assert isinstance(source, TranslationModelSource) and len(source) == 50
    batch = next(iter(source.batches(50)))
    assert tuple(batch.data.shape) == (50, 1, 28, 28) and tuple(batch.inputs.shape) == (50, 1, 8, 8)


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("unet_sr4", {"channels": 4, "steps": 4, "batch_size": 8, "eval_every": 2}),
        (
            "pix2pix_edges",
            {"channels": 4, "disc_channels": 4, "steps": 3, "batch_size": 8, "init_from": None},
        ),
        ("cyclegan_digits2mnist", {"channels": 2, "disc_channels": 4, "steps": 3, "batch_size": 8}),
    ],
)
def test_a_tiny_fit_saves_a_loadable_checkpoint(name: str, overrides: dict, tmp_path) -> None:
    from reference_models.train import train_model

    trained, config = train_model(name, directory=tmp_path, show_progress=False, overrides=overrides)
    loaded = load_model(name, directory=tmp_path)
    if name.startswith("cyclegan"):
        x = torch.from_numpy(np.full((3, 1, 8, 8), 128, dtype=np.uint8))
    else:
        x = torch.from_numpy(get_task(trained.task).read("test", 0, 3)[0])
    assert torch.equal(trained.translate(x), loaded.translate(x))
    assert config["summary"]["steps"] == overrides["steps"]


def test_mnist2digits_is_the_same_weights_the_other_way_on_every_class() -> None:
    from gen_eval.sources.reference import open_reference_source

    forward, backward = load_model("cyclegan_digits2mnist"), load_model("cyclegan_mnist2digits")
    assert backward.task == "mnist2digits"
    source = open_reference_source("ref:cyclegan_mnist2digits", 100, 0)
    batch = next(iter(source.batches(100)))
    assert tuple(batch.data.shape) == (100, 1, 8, 8) and tuple(batch.inputs.shape) == (100, 1, 28, 28)
    assert set(batch.labels.tolist()) == set(range(10))  # evenly spaced: mnist's split is class-sorted
    assert torch.equal(batch.data, forward.translate_back(batch.inputs))
    assert torch.equal(backward.translate_back(batch.data), forward.translate(batch.data))
