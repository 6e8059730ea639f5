"""Conditional VAE (Sohn, Lee & Yan, 2015; Kingma et al., 2014's M2 with the label observed) on mnist.

The plain VAE (``vae.py``) models p(x) through a latent z. Here both networks also see the class
label y as a one-hot vector:

    encoder q(z | x, y) = N(mu(x, y), diag sigma(x, y)^2)
    decoder p(x | z, y), prior p(z) = N(0, I) (independent of y)

so z is free to hold what the label does not say (slant, thickness, style) and the decoder draws
the requested digit from any z. ``sample(n, labels=...)`` is therefore class-obedient by
construction: the label is an input, not something the model must learn to keep.

The decoder is DISCRETE over the 256 grey levels of 8-bit images: a discretised logistic per
pixel (Salimans et al., 2017, PixelCNN++, one component). A categorical over 256 levels, as
``vae.py`` uses over digits' 17, would need 784 x 256 outputs; the logistic needs two per pixel
(a location and a log-scale), and its edge bins take the tails, which suits MNIST's many pure
black and white pixels. Like ``vae.py``, every bound below is on the probability of the grey
levels themselves, in nats:

    ELBO(x | y)   = E_q[log p(x | z, y)] - KL(q(z | x, y) || p(z))                 <= log P(x | y)
    IWAE_K(x | y) = E[log (1/K) sum_k p(x | z_k, y) p(z_k) / q(z_k | x, y)]           (Burda et al.)

``log_prob(x, labels=y)`` is IWAE_100 of log P(x | y). Without labels (what an unconditional
likelihood metric asks) it bounds the MARGINAL log P(x) = log sum_y p(y) P(x | y), p(y) = 1/10:
importance sampling over (y, z) with 10 draws of z per class (100 decoder passes, as the plain VAE
spends), whose log-mean is a lower bound in expectation by Jensen's inequality.

The encoder is an MLP (784 + 10 -> 256 -> 256 -> 2 x 4); the decoder maps (z, y) through an MLP to
a 32 x 7 x 7 map and two transposed convolutions to 28x28 location and log-scale maps (an MLP
decoder, ``channels: 0``, with the same 4 latents and width 512 scored FID 153 against 95 and
conditional accuracy 0.75 against 0.82). It trains in a few CPU minutes on mnist's 3,600 training images.

The methods that need the label are named for it (``encode_given_label(x, labels)``,
``decode_given_label(z, labels)``, ``decode_float_given_label``, ``elbo_given_label``,
``iwae_given_label``; ``log_likelihood(x, z, labels)``): a CVAE's z means nothing without its y.
The protocol's label-free ``encode``/``decode``/``elbo``/``iwae``/``log_likelihood_given_latent``
are deliberately absent, so gen-eval's unconditional tools (latent analyses, AIS over z) say the
model has none rather than silently fixing or cycling a class; ``gen-eval likelihood`` and
``bits_per_dim`` use ``log_prob`` (the marginal bound).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from reference_models.common import EarlyStopping, TrainingData, TrainLog, minibatches
from reference_models.vae import LOG_2PI, bits_per_dim, mlp

DEFAULTS = {
    # Few latents: with 16 (8), z also learns the class and a prior draw overrules the label:
    # conditional accuracy 0.51 (0.60); with 4, 0.81 (mnist net, 1,000 samples; see the CHANGELOG).
    "latent_dim": 4,
    "hidden": 256,  # width of the MLP layers (512: 6 MB of weights, no better: FID 95, accuracy 0.82)
    "channels": 32,  # transposed-conv decoder width (7x7 -> 14x14 -> 28x28); 0: an MLP decoder
    "epochs": 300,  # an upper limit: early stopping on the validation loss ends it
    "batch_size": 64,
    "lr": 1e-3,
    "patience": 15,  # epochs without a better validation loss before stopping
    "summary_iwae_items": 200,  # validation images scored with IWAE_100 for the summary
}
NUM_CLASSES = 10
LEVELS = 256
SHAPE = (1, 28, 28)
MIN_LOG_SCALE = -7.0  # on the [-1, 1] scale a bin is 2/255 wide; exp(-7) is far narrower


# ------------------------------------------------------------------------- the discretised logistic
def _log_sigmoid_difference(upper: torch.Tensor, lower: torch.Tensor) -> torch.Tensor:
    """log(sigmoid(upper) - sigmoid(lower)) for upper > lower, accurate in both tails.

    In the right tail both sigmoids are near 1 and their difference cancels; sigmoid(a) -
    sigmoid(b) = sigmoid(-b) - sigmoid(-a), so that side is computed mirrored.
    """
    mirror = (upper + lower) > 0
    a = torch.where(mirror, -lower, upper)
    b = torch.where(mirror, -upper, lower)
    log_a, log_b = F.logsigmoid(a), F.logsigmoid(b)
    # log(e^la - e^lb) = la + log(1 - e^(lb - la)); -expm1 keeps precision when the two are close.
    return log_a + torch.log(-torch.expm1(log_b - log_a).clamp_max(-1e-30))


def discretised_logistic_log_prob(
    k: torch.Tensor, loc: torch.Tensor, log_scale: torch.Tensor
) -> torch.Tensor:
    """log P(level k) per pixel, k in 0..255 (int64), for a logistic on the [-1, 1] scale.

    Level k sits at c = 2k/255 - 1 with the bin [c - 1/255, c + 1/255]; level 0 also takes
    everything below, level 255 everything above, so the 256 probabilities sum to one.
    """
    centre = 2 * k.to(loc.dtype) / (LEVELS - 1) - 1
    inv_scale = torch.exp(-log_scale)
    upper = (centre + 1 / (LEVELS - 1) - loc) * inv_scale
    lower = (centre - 1 / (LEVELS - 1) - loc) * inv_scale
    interior = _log_sigmoid_difference(upper, lower)
    return torch.where(
        k == 0, F.logsigmoid(upper), torch.where(k == LEVELS - 1, F.logsigmoid(-lower), interior)
    )


def discretised_logistic_mode(loc: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """The most likely level per pixel (int64).

    The logistic density is unimodal, so among interior bins (all the same width) the one holding
    the location is the likeliest; the edge bins also hold a tail and are compared separately.
    """
    nearest = torch.round((loc + 1) * (LEVELS - 1) / 2).clamp(0, LEVELS - 1).to(torch.int64)
    candidates = torch.stack([torch.zeros_like(nearest), nearest, torch.full_like(nearest, LEVELS - 1)])
    log_p = discretised_logistic_log_prob(
        candidates, loc.expand_as(candidates), log_scale.expand_as(candidates)
    )
    return torch.gather(candidates, 0, log_p.argmax(0, keepdim=True))[0]


# ----------------------------------------------------------------------------------------- the model
class CVAE(nn.Module):
    """A conditional VAE over uint8 (N, 1, 28, 28) images and labels 0..9.

    ``sample`` and ``decode_given_label`` return the decoder's MODE, each pixel's most likely level given
    (z, y), as ``vae.py`` does: a per-pixel draw adds noise that z does not explain.
    """

    likelihood = "iwae"
    levels = LEVELS
    num_classes = NUM_CLASSES

    def __init__(self, latent_dim: int, hidden: int, channels: int = 0):
        super().__init__()
        self.latent_dim = latent_dim
        pixels = math.prod(SHAPE)
        self.encoder = mlp([pixels + NUM_CLASSES, hidden, hidden, 2 * latent_dim])
        if channels == 0:
            self.decoder = mlp([latent_dim + NUM_CLASSES, hidden, hidden, 2 * pixels])
        else:
            c = channels
            self.decoder = nn.Sequential(
                mlp([latent_dim + NUM_CLASSES, hidden, c * 7 * 7]), nn.ReLU(), nn.Unflatten(1, (c, 7, 7)),
                nn.ConvTranspose2d(c, c, 4, 2, 1), nn.ReLU(),  # 7x7 -> 14x14
                nn.ConvTranspose2d(c, 2, 4, 2, 1), nn.Flatten(),  # 28x28: location and log-scale maps
            )  # fmt: skip

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _one_hot(self, labels: torch.Tensor, n: int) -> torch.Tensor:
        labels = torch.as_tensor(labels, dtype=torch.int64).to(self.device)
        if labels.shape != (n,) or bool(((labels < 0) | (labels >= NUM_CLASSES)).any()):
            raise ValueError(f"labels must be {n} class indices in 0..{NUM_CLASSES - 1}")
        return F.one_hot(labels, NUM_CLASSES).to(torch.float32)

    # ------------------------------------------------------------------------------ the two networks
    def posterior(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | x, y) for uint8 images x."""
        pixels = x.to(self.device, torch.float32).reshape(len(x), -1) * (2 / 255) - 1  # in [-1, 1]
        mean, log_var = self.encoder(torch.cat([pixels, self._one_hot(labels, len(x))], 1)).chunk(2, dim=1)
        return mean, log_var.clamp(-12, 8)  # keeps exp() finite early in training

    def decoder_parameters(self, z: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Location and log-scale (N, 784) of each pixel's logistic, on the [-1, 1] scale."""
        z = z.to(self.device, torch.float32)
        loc, log_scale = self.decoder(torch.cat([z, self._one_hot(labels, len(z))], 1)).chunk(2, dim=1)
        return loc, log_scale.clamp_min(MIN_LOG_SCALE)

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """log p(x | z, y) in nats, float64, per row. Differentiable in z."""
        loc, log_scale = self.decoder_parameters(z, labels)
        k = x.to(self.device).reshape(len(x), -1).to(torch.int64)
        return discretised_logistic_log_prob(k, loc, log_scale).to(torch.float64).sum(1)

    # ------------------------------------------------------------------------------- bounds on log P
    def _noise(self, shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
        return torch.randn(shape, generator=generator).to(self.device)  # CPU draws: same on any device

    def elbo_terms(
        self, x: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One-sample reconstruction term E_q[log p(x | z, y)] and the exact KL, per example (nats)."""
        mean, log_var = self.posterior(x, labels)
        z = mean + (0.5 * log_var).exp() * self._noise(mean.shape, generator)
        kl = 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var).to(torch.float64).sum(1)
        return self.log_likelihood(x, z, labels), kl

    @torch.no_grad()
    def elbo_given_label(
        self, x: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """ELBO of log P(x | y), nats per example (float64), one z each."""
        reconstruction, kl = self.elbo_terms(x, labels, generator)
        return (reconstruction - kl).cpu()

    @torch.no_grad()
    def _log_weights(
        self, x: torch.Tensor, labels: torch.Tensor, k: int, generator: torch.Generator | None
    ) -> torch.Tensor:
        """log p(x | z, y) p(z) / q(z | x, y) for ``k`` draws z ~ q(z | x, y): (k, N), float64."""
        mean, log_var = self.posterior(x, labels)
        eps = self._noise((k, *mean.shape), generator)
        z = mean + (0.5 * log_var).exp() * eps  # (k, N, latent_dim)
        log_q = -0.5 * (eps.pow(2) + log_var + LOG_2PI).to(torch.float64).sum(-1)
        log_prior = -0.5 * (z.pow(2) + LOG_2PI).to(torch.float64).sum(-1)
        log_lik = self.log_likelihood(x.repeat(k, 1, 1, 1), z.reshape(-1, z.shape[-1]), labels.repeat(k))
        return log_lik.reshape(k, len(x)) + log_prior - log_q

    @torch.no_grad()
    def iwae_given_label(
        self, x: torch.Tensor, labels: torch.Tensor, k: int = 100, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """IWAE_k bound on log P(x | y), nats per example (float64)."""
        labels = torch.as_tensor(labels, dtype=torch.int64)
        out = []
        for part, part_labels in zip(
            x.split(max(1, 4096 // k)), labels.split(max(1, 4096 // k)), strict=True
        ):
            out.append(torch.logsumexp(self._log_weights(part, part_labels, k, generator), 0) - math.log(k))
        return torch.cat(out).cpu()

    @torch.no_grad()
    def log_prob(
        self, x: torch.Tensor, generator: torch.Generator | None = None, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """A lower bound (in expectation) on log P(x | y), or on log P(x) without labels; nats (float64).

        With ``labels``: IWAE_100. Without: 10 draws of z per class, weighted by p(y) = 1/10
        (see the module docstring), the same 100 decoder passes per image.
        """
        if labels is not None:
            return self.iwae_given_label(x, labels, 100, generator)
        per_class, out = 10, []
        for part in x.split(max(1, 4096 // (per_class * NUM_CLASSES))):
            weights = [
                self._log_weights(part, torch.full((len(part),), y), per_class, generator)
                for y in range(NUM_CLASSES)
            ]
            # log of the mean over all 100 (y, z) draws of p(y) p(x | z, y) p(z) / (q(y) q(z | x, y)), q(y) = p(y)
            out.append(torch.logsumexp(torch.cat(weights), 0) - math.log(per_class * NUM_CLASSES))
        return torch.cat(out).cpu()

    # ------------------------------------------------------------------------------ latents and samples
    @torch.no_grad()
    def encode_given_label(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Posterior means (N, latent_dim) of uint8 images x given their labels."""
        return self.posterior(x, labels)[0].cpu()

    @torch.no_grad()
    def decode_given_label(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The decoder's most likely image for each (z, y): uint8 (N, 1, 28, 28)."""
        loc, log_scale = self.decoder_parameters(z, labels)
        return discretised_logistic_mode(loc, log_scale).reshape(len(z), *SHAPE).to(torch.uint8).cpu()

    @torch.no_grad()
    def decode_float_given_label(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Each pixel's logistic location mapped to [0, 1] (N, 1, 28, 28): smooth in z, unlike the mode."""
        loc, _ = self.decoder_parameters(z, labels)
        return ((loc.clamp(-1, 1) + 1) / 2).reshape(len(z), *SHAPE).cpu()

    @torch.no_grad()
    def sample_given_latent_and_label(
        self, z: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """One draw x ~ p(x | z, y) per latent, uint8: loc + scale * logit(u), rounded to a level."""
        loc, log_scale = self.decoder_parameters(z, labels)
        u = torch.rand(loc.shape, generator=generator).clamp(1e-6, 1 - 1e-6).to(loc.device)
        y = loc + log_scale.exp() * (torch.log(u) - torch.log1p(-u))
        k = torch.round((y + 1) * (LEVELS - 1) / 2).clamp(0, LEVELS - 1)
        return k.reshape(len(z), *SHAPE).to(torch.uint8).cpu()

    def sample(
        self, n: int, generator: torch.Generator | None = None, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``n`` images of the requested classes (uint8 (n, 1, 28, 28)), decoded from z ~ N(0, I).

        ``labels`` is an int64 tensor (n,); None draws the classes uniformly from ``generator``
        (before z, so a given generator state gives the same images either way it is asked).
        """
        if labels is None:
            labels = torch.randint(NUM_CLASSES, (n,), generator=generator)
        return self.decode_given_label(torch.randn(n, self.latent_dim, generator=generator), labels)


def build(hparams: dict, dataset: str) -> CVAE:
    if dataset != "mnist":
        raise ValueError(f"the conditional VAE is built for mnist, not {dataset!r}")
    return CVAE(hparams["latent_dim"], hparams["hidden"], hparams.get("channels", 0))


# ------------------------------------------------------------------------------------------ training
def evaluate(model: CVAE, x: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Validation loss (negative ELBO, nats) and the ELBO in bits/dim, with fixed z noise."""
    generator = torch.Generator().manual_seed(0)
    model.eval()
    with torch.no_grad():
        terms = [
            model.elbo_terms(a, b, generator) for a, b in zip(x.split(500), labels.split(500), strict=True)
        ]
    reconstruction, kl = (torch.cat(t) for t in zip(*terms, strict=True))
    return float((kl - reconstruction).mean()), bits_per_dim(reconstruction - kl, x)


def fit(hparams: dict, data: TrainingData, *, generator: torch.Generator, log: TrainLog) -> tuple[CVAE, dict]:
    model = build(hparams, data.dataset)
    optimiser = torch.optim.Adam(model.parameters(), lr=hparams["lr"])
    stopper = EarlyStopping(model, hparams["patience"])
    epochs = hparams["epochs"]
    log.begin(epochs)
    for epoch in range(1, epochs + 1):
        model.train()
        losses = []
        for idx in minibatches(len(data.train), hparams["batch_size"], generator):
            reconstruction, kl = model.elbo_terms(data.train[idx], data.train_labels[idx], generator)
            loss = (kl - reconstruction).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        val_loss, val_bpd = evaluate(model, data.val, data.val_labels)
        log.record(epoch, loss=sum(losses) / len(losses), val_loss=val_loss, val_elbo_bits_per_dim=val_bpd)
        log.step(epoch)
        if stopper.check(val_loss, epoch):
            break
    stopper.restore()
    model.eval()
    val_loss, val_bpd = evaluate(model, data.val, data.val_labels)
    some, some_labels = (
        data.val[: hparams["summary_iwae_items"]],
        data.val_labels[: hparams["summary_iwae_items"]],
    )
    seed = torch.Generator().manual_seed(0)
    summary = {
        "best_epoch": stopper.best_step,
        "epochs_run": epoch,
        "val_loss": round(val_loss, 3),
        "val_elbo_bits_per_dim": round(val_bpd, 4),
        "val_iwae100_bits_per_dim": round(
            bits_per_dim(model.iwae_given_label(some, some_labels, 100, seed), some), 4
        ),
        "val_marginal_bits_per_dim": round(bits_per_dim(model.log_prob(some, seed), some), 4),
        "val_iwae_items": len(some),
    }
    return model, summary
