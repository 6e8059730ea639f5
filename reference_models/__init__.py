"""Bundled reference generators, one short file per model family, with shipped checkpoints.

``load_model("vae")`` returns a trained model from ``checkpoints/``; ``gen-eval evaluate ref:vae``
scores one; ``gen-eval models`` lists them; ``gen-eval train NAME`` retrains one reproducibly.
Every model follows the protocol in :mod:`reference_models.protocol`.
"""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from reference_models.common import CHECKPOINT_DIR


@dataclass(frozen=True)
class ModelEntry:
    """One bundled model: which file builds it, on which data, with which settings.

    ``faulty`` is None for a working model, or says what was deliberately broken (the
    mode-collapse detectors are tested on these).
    """

    name: str
    module: str
    dataset: str
    family: str
    description: str
    config: dict[str, Any] = field(default_factory=dict)
    faulty: str | None = None

    @property
    def checkpoint(self) -> Path:
        return CHECKPOINT_DIR / f"{self.name}.safetensors"


_ENTRIES = [
    ModelEntry("baseline", "reference_models.baseline", "digits", "baseline",
               "independent per-pixel categorical: the trivial baseline every model must beat"),
    ModelEntry("gmm", "reference_models.gmm", "digits", "classic",
               "Gaussian mixture (scikit-learn) on logit-transformed dequantised pixels"),
    ModelEntry("pixelcnn", "reference_models.pixelcnn", "digits", "autoregressive",
               "gated PixelCNN over the 17 grey levels"),
    ModelEntry("vae", "reference_models.vae", "digits", "vae", "convolutional VAE", {"beta": 1.0}),
    ModelEntry("beta_vae", "reference_models.vae", "digits", "vae", "beta-VAE (beta = 4)", {"beta": 4.0}),
    ModelEntry("beta_vae_shapes", "reference_models.vae", "shapes", "vae",
               "beta-VAE on the shapes data, for disentanglement", {"beta": 4.0}),
    ModelEntry("vae_shapes", "reference_models.vae", "shapes", "vae",
               "plain VAE (beta = 1) on the shapes data: the disentanglement baseline", {"beta": 1.0}),
    ModelEntry("realnvp", "reference_models.realnvp", "digits", "flow",
               "RealNVP: affine couplings with uniform dequantisation"),
    ModelEntry("dcgan", "reference_models.gan", "digits", "gan", "DCGAN, non-saturating loss",
               {"loss": "nonsaturating"}),
    ModelEntry("wgan_gp", "reference_models.gan", "digits", "gan", "WGAN with gradient penalty",
               {"loss": "wgan_gp"}),
    ModelEntry("dcgan_ring8", "reference_models.gan", "ring8", "gan", "MLP GAN, non-saturating loss",
               {"loss": "nonsaturating"}),
    ModelEntry("wgan_gp_ring8", "reference_models.gan", "ring8", "gan", "MLP WGAN-GP", {"loss": "wgan_gp"}),
    ModelEntry("dcgan_grid25", "reference_models.gan", "grid25", "gan", "MLP GAN, non-saturating loss",
               {"loss": "nonsaturating"}),
    ModelEntry("wgan_gp_grid25", "reference_models.gan", "grid25", "gan", "MLP WGAN-GP", {"loss": "wgan_gp"}),
    ModelEntry("ddpm", "reference_models.ddpm", "digits", "diffusion", "DDPM with a small U-Net"),
    ModelEntry("rbm", "reference_models.rbm", "digits", "boltzmann",
               "RBM, 16 hidden units, categorical pixels: exact log-likelihood", {"hidden": 16}),
    ModelEntry("rbm_large", "reference_models.rbm", "digits", "boltzmann",
               "RBM, 64 hidden units: log Z by AIS", {"hidden": 64, "epochs": 60}),
    ModelEntry("collapsed_ring8", "reference_models.gan", "ring8", "gan",
               "FAULTY: GAN trained on only 5 of the 8 modes", {"loss": "nonsaturating",
               "keep_labels": [0, 1, 2, 3, 4]}, faulty="covers only 5 of the 8 ring modes (0-4)"),
    ModelEntry("collapsed_digits", "reference_models.gan", "digits", "gan",
               "FAULTY: GAN trained on only 3 of the 10 classes", {"loss": "nonsaturating",
               "keep_labels": [0, 1, 7]}, faulty="produces almost only digits 0, 1 and 7 (92% of samples)"),
    ModelEntry("pointcloud_ae", "reference_models.pointcloud_ae", "shapes3d", "autoencoder",
               "point-cloud autoencoder (PointNet encoder, folding decoder, Chamfer loss), GMM on its codes"),
    ModelEntry("pointcloud_flow", "reference_models.pointcloud_flow", "shapes3d", "flow",
               "PointFlow-style: affine-coupling flow over 3-D points given a shape code, GMM on the codes"),
    ModelEntry("collapsed_shapes3d", "reference_models.pointcloud_ae", "shapes3d", "autoencoder",
               "FAULTY: the point-cloud autoencoder, its GMM fitted without cubes and tori",
               {"gmm_skip_labels": [1, 4], "autoencoder_from": "pointcloud_ae"},
               faulty="never produces cubes or tori (shapes3d classes 1 and 4)"),
    ModelEntry("naive_bayes_names", "reference_models.naive_bayes_text", "census_names", "classic",
               "naive Bayes: a length, then independent characters, given the sex label"),
    ModelEntry("bigram_names", "reference_models.ngram", "census_names", "classic",
               "character bigram, Lidstone-smoothed, given the sex label", {"order": 2}),
    ModelEntry("trigram_names", "reference_models.ngram", "census_names", "classic",
               "character trigram, Lidstone-smoothed, given the sex label", {"order": 3}),
    ModelEntry("hmm_names", "reference_models.hmm_text", "census_names", "classic",
               "hidden Markov model (hmmlearn's EM), categorical emissions, one per sex label",
               {"states": [12], "iterations": 15}),
    ModelEntry("char_rnn_names", "reference_models.char_rnn", "census_names", "autoregressive",
               "character-level GRU given the sex label"),
    ModelEntry("transformer_names", "reference_models.tiny_transformer", "census_names", "autoregressive",
               "tiny decoder-only transformer (2 layers, width 64) given the sex label"),
    ModelEntry("collapsed_names", "reference_models.text_faulty", "census_names", "memoriser",
               "FAULTY: 99% one of the 15 commonest training names per sex, 1% a unigram model",
               {"memory": "most_common", "size": 15},
               faulty="99% of samples are one of 30 names (the 15 commonest training names per sex)"),
    ModelEntry("copier_names", "reference_models.text_faulty", "census_names", "memoriser",
               "FAULTY: 99% a distinct training name drawn uniformly, 1% a unigram model",
               {"memory": "distinct"}, faulty="99% of samples are copies of training names"),
    ModelEntry("trigram_hmm_language", "reference_models.ngram", "hmm_language", "classic",
               "character trigram, Lidstone-smoothed, on the synthetic HMM language", {"order": 3}),
    ModelEntry("hmm_hmm_language", "reference_models.hmm_text", "hmm_language", "classic",
               "hidden Markov model (hmmlearn's EM) on the HMM language: the true model's family",
               {"states": [4, 6]}),
    ModelEntry("char_rnn_hmm_language", "reference_models.char_rnn", "hmm_language", "autoregressive",
               "character-level GRU on the HMM language", {"hidden": 64, "embedding": 16}),
    # Class-conditional image models (issue 23): sample(n, generator, labels=...), num_classes = 10.
    ModelEntry("cvae", "reference_models.cvae", "mnist", "vae",
               "conditional VAE: one-hot label into encoder and decoder, discretised-logistic pixels"),
    ModelEntry("cgan", "reference_models.cgan", "mnist", "gan",
               "conditional DCGAN: one-hot label into the generator, projection discriminator"),
    ModelEntry("cgan_ignores_label", "reference_models.cgan", "mnist", "gan",
               "FAULTY: the conditional DCGAN trained and sampled with its label dropped",
               {"ignore_label": True},
               faulty="ignores its label: samples are any digit whatever class is requested"),
    # Non-learned baselines of the paired tasks (issue 23): reference_models/paired_baselines.py.
    ModelEntry("nearest_sr4", "reference_models.paired_baselines", "mnist", "baseline",
               "nearest-neighbour 4x up-sampling (each pixel over its 4x4 block)",
               {"method": "nearest", "task": "sr4"}),
    ModelEntry("bicubic_sr4", "reference_models.paired_baselines", "mnist", "baseline",
               "bicubic 4x up-sampling (PIL, a = -0.5), back-projected onto the area-mean degradation",
               {"method": "bicubic", "task": "sr4"}),
    ModelEntry("mean_inpaint", "reference_models.paired_baselines", "mnist", "baseline",
               "the masked centre filled with the mean training digit", {"method": "mean_fill", "task": "inpaint"}),
    ModelEntry("dilate_edges", "reference_models.paired_baselines", "mnist", "baseline",
               "the Canny edge map dilated (disk of radius 1): the edges as the digit",
               {"method": "dilate", "task": "edges"}),
    # Paired image-to-image models (issue 23): translate(inputs) of a task:NAME, no sample().
    ModelEntry("unet_sr4", "reference_models.unet", "mnist", "paired",
               "U-Net, L1 loss, 4x super-resolution (the SRResNet analogue)", {"task": "sr4"}),
    ModelEntry("pix2pix_sr4", "reference_models.unet", "mnist", "paired",
               "U-Net + PatchGAN (pix2pix / SRGAN analogue), from unet_sr4, 4x super-resolution",
               {"task": "sr4", "loss": "l1+patchgan", "init_from": "unet_sr4", "steps": 1000}),
    ModelEntry("unet_edges", "reference_models.unet", "mnist", "paired",
               "U-Net, L1 loss, Canny edges -> digit", {"task": "edges", "steps": 2000}),
    ModelEntry("pix2pix_edges", "reference_models.unet", "mnist", "paired",
               "U-Net + PatchGAN (pix2pix), from unet_edges, Canny edges -> digit",
               {"task": "edges", "loss": "l1+patchgan", "init_from": "unet_edges", "steps": 1000}),
    ModelEntry("unet_inpaint", "reference_models.unet", "mnist", "paired",
               "U-Net, L1 loss, centre 14x14 inpainting", {"task": "inpaint", "steps": 2000}),
    ModelEntry("pix2pix_inpaint", "reference_models.unet", "mnist", "paired",
               "U-Net + PatchGAN (pix2pix), from unet_inpaint, centre 14x14 inpainting",
               {"task": "inpaint", "loss": "l1+patchgan", "init_from": "unet_inpaint", "steps": 1000}),
    # Unpaired translation (issue 23): translate (8x8 -> 28x28) and translate_back, no sample().
    ModelEntry("cyclegan_digits2mnist", "reference_models.cyclegan", "digits", "translation",
               "CycleGAN-style: digits (8x8) <-> mnist (28x28), cycle + least-squares adversarial losses"),
    ModelEntry("cyclegan_mnist2digits", "reference_models.cyclegan", "digits", "translation",
               "the same CycleGAN the other way: mnist (28x28) -> digits (8x8)", {"direction": "mnist2digits"}),
]  # fmt: skip
MODELS: dict[str, ModelEntry] = {entry.name: entry for entry in _ENTRIES}


def model_names() -> list[str]:
    """Names of the bundled models, in registry order."""
    return list(MODELS)


def get_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``; ``KeyError`` with the known names if there is none."""
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"no reference model {name!r}; bundled: {', '.join(MODELS)}") from None


def resolve_model(name: str, dataset: str | None = None) -> str:
    """The registry name for model ``name`` trained on ``dataset`` (``dcgan`` + ``ring8`` -> ``dcgan_ring8``)."""
    entry = get_entry(name)
    if dataset is None or entry.dataset == dataset:
        return name
    if f"{name}_{dataset}" in MODELS:
        return f"{name}_{dataset}"
    trained_on = sorted({e.dataset for n, e in MODELS.items() if n == name or n.startswith(f"{name}_")})
    raise KeyError(f"{name} is not bundled for dataset {dataset!r}; it is for {', '.join(trained_on)}")


def full_config(entry: ModelEntry) -> dict[str, Any]:
    """The module's defaults updated with the entry's overrides."""
    module = importlib.import_module(entry.module)
    config = dict(module.DEFAULTS)
    config.update(entry.config)
    return config


@cache
def checkpoint_hash(name: str) -> str:
    """SHA-256 of the shipped weights file (part of the feature cache key of ``ref:NAME``)."""
    return hashlib.sha256(get_entry(name).checkpoint.read_bytes()).hexdigest()


def load_model(name: str, directory: Path | None = None) -> Any:
    """Build model ``name`` and load its shipped (or retrained, from ``directory``) weights.

    Returns the model in eval mode with ``name``, ``family``, ``dataset`` and ``faulty`` set.
    """
    from reference_models.common import load_state, read_config

    entry = get_entry(name)
    directory = directory or CHECKPOINT_DIR
    if not (directory / f"{name}.safetensors").is_file():
        raise FileNotFoundError(
            f"no checkpoint for reference model {name!r} in {directory}; train it with gen-eval train {name}"
        )
    saved = read_config(name, directory)
    module = importlib.import_module(entry.module)
    model = module.build(saved["hyperparameters"], saved["dataset"])
    model.load_state_dict(load_state(name, directory), strict=True)
    model.eval()
    model.name, model.family, model.dataset, model.faulty = name, entry.family, entry.dataset, entry.faulty
    return model
