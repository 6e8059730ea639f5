"""Variational autoencoder (Kingma & Welling, 2014) and beta-VAE (Higgins et al., 2017).

An encoder maps an image x to a diagonal Gaussian q(z|x) = N(mu(x), diag sigma(x)^2), a decoder
maps a latent z to a distribution p(x|z) over images, and the prior is p(z) = N(0, I). The
decoder is DISCRETE (a 17-way categorical per pixel on digits, a Bernoulli per pixel on shapes),
so both bounds below bound the probability of the grey levels themselves, log P(x):

    ELBO(x)   = E_q[log p(x|z)] - KL(q(z|x) || p(z))                          <= log P(x)
    IWAE_K(x) = E[log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x)], z_k ~ q(z|x)     (Burda et al., 2016)

IWAE_1 is the ELBO and IWAE_K rises towards log P(x) as K grows; ``log_prob`` is IWAE_100.
Training maximises E_q[log p(x|z)] - beta * KL. beta = 1 is the plain VAE; beta > 1 presses
q(z|x) towards the factorised prior, giving up reconstruction for latents that tend to follow
separate factors of variation (the shapes model is there for the disentanglement analyses).

The architecture follows the data: an MLP for 8x8 digits, and for 64x64 shapes the small conv
net of Burgess et al. (2018, "Understanding disentangling in beta-VAE") with 10 latents.
Hyperparameters that differ between the two are given as {"digits": ..., "shapes": ...}.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn
from torch.nn import functional as F

from reference_models.common import (
    EarlyStopping,
    TrainingData,
    TrainLog,
    from_level_indices,
    minibatches,
    to_level_indices,
)

DEFAULTS = {
    "beta": 1.0,  # weight of the KL term in the training loss (the registry sets it per model)
    "latent_dim": {"digits": 16, "shapes": 10},
    "hidden": {"digits": 256, "shapes": 256},  # width of the MLP layers
    "channels": 16,  # conv channels (shapes only; 32 is 2.5x slower and learnt no more in our budget)
    "epochs": {"digits": 1000, "shapes": 15},  # an upper limit on digits, where early stopping ends it
    "batch_size": 64,
    "lr": {"digits": 3e-4, "shapes": 1e-3},  # digits: slower is better before it overfits
    "patience": 30,  # epochs without a better validation loss before stopping
    "summary_iwae_items": 200,  # validation images scored with IWAE_100 for the summary
}
LEVELS = {"digits": 17, "shapes": 2}
LOG_2PI = math.log(2 * math.pi)


def per_dataset(hparams: dict, key: str, dataset: str):
    """hparams[key], or its entry for ``dataset`` when it is given per dataset."""
    value = hparams[key]
    return value[dataset] if isinstance(value, dict) else value


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
    return nn.Sequential(*layers)


class VAE(nn.Module):
    """A VAE: Gaussian encoder, and a decoder giving each pixel a categorical over ``levels`` grey levels
    (a Bernoulli when there are two).

    ``sample`` and ``decode`` return the decoder's MODE, each pixel's most likely level given z, as
    uint8 images: drawing each pixel independently given z adds noise that z does not explain, and
    the mean image is a blur of the uncertain levels. On digits the mode scores far better (FID
    22 at 1,000 samples, against 64 for a draw and 97 for the mean). The likelihood bounds use the full p(x|z).
    """

    likelihood = "iwae"

    def __init__(self, dataset: str, latent_dim: int, hidden: int, channels: int):
        super().__init__()
        self.levels, self.latent_dim = LEVELS[dataset], latent_dim
        self.shape = (1, 8, 8) if dataset == "digits" else (1, 64, 64)
        pixels = math.prod(self.shape)
        # A Bernoulli needs one logit per pixel, a categorical one per level.
        self.outputs = 1 if self.levels == 2 else self.levels
        if dataset == "digits":
            self.encoder = mlp([pixels, hidden, hidden, 2 * latent_dim])
            self.decoder = mlp([latent_dim, hidden, hidden, pixels * self.outputs])
        else:
            c = channels
            # Four stride-2 4x4 convolutions take 64x64 down to 4x4, and transposed ones back up.
            self.encoder = nn.Sequential(
                nn.Conv2d(1, c, 4, 2, 1), nn.ReLU(), nn.Conv2d(c, c, 4, 2, 1), nn.ReLU(),
                nn.Conv2d(c, c, 4, 2, 1), nn.ReLU(), nn.Conv2d(c, c, 4, 2, 1), nn.ReLU(),
                nn.Flatten(), mlp([c * 16, hidden, hidden, 2 * latent_dim]),
            )  # fmt: skip
            self.decoder = nn.Sequential(
                mlp([latent_dim, hidden, hidden, c * 16]), nn.ReLU(), nn.Unflatten(1, (c, 4, 4)),
                nn.ConvTranspose2d(c, c, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(c, c, 4, 2, 1), nn.ReLU(),
                nn.ConvTranspose2d(c, c, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(c, 1, 4, 2, 1),
            )  # fmt: skip

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ------------------------------------------------------------------------------ the two networks
    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x) for uint8 images x."""
        k = to_level_indices(x.to(self.device), self.levels).to(torch.float32)
        inputs = 2 * k / (self.levels - 1) - 1  # in [-1, 1]
        if isinstance(self.encoder[0], nn.Linear):  # the MLP takes flat vectors
            inputs = inputs.reshape(len(x), -1)
        mean, log_var = self.encoder(inputs).chunk(2, dim=1)
        return mean, log_var.clamp(-12, 8)  # keeps exp() finite early in training

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) in nats, float64, for images x (N, ...) and latents z (N, latent_dim)."""
        logits = self.decoder(z).reshape(len(z), -1, self.outputs)
        k = to_level_indices(x.to(self.device), self.levels).reshape(len(x), -1)
        if self.outputs == 1:  # Bernoulli: log p = -BCE(logit, k)
            per_pixel = -F.binary_cross_entropy_with_logits(logits[..., 0], k.float(), reduction="none")
        else:
            per_pixel = torch.gather(logits.log_softmax(-1), -1, k.unsqueeze(-1))[..., 0]
        return per_pixel.to(torch.float64).sum(1)  # float64 sum: thousands of pixels on shapes

    def log_likelihood_given_latent(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) in nats (float64) per row: the protocol's name for :meth:`log_likelihood`.

        Differentiable in z, which annealed importance sampling (``gen-eval likelihood``) needs.
        """
        return self.log_likelihood(x, z.to(self.device, torch.float32))

    @torch.no_grad()
    def log_likelihood_and_grad_given_latent(
        self, x: torch.Tensor, z: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """log p(x|z) (float64) per row and its gradient in z (float32), for AIS's leapfrog steps.

        For the MLP decoder with a categorical output the gradient is written out by hand:
        d log p / d logits = onehot(x) - softmax(logits), then back through the linear layers
        (``g @ W``) and the ReLUs (zero where the unit was off). It does the same matrix products
        as autograd, without building and walking a graph per call, which on a network this
        small is a fifth of the time. Other decoders (conv, Bernoulli) fall back to autograd.

        Parameters
        ----------
        x : torch.Tensor
            uint8 images (N, ...).
        z : torch.Tensor
            Latents (N, latent_dim).

        Returns
        -------
        (torch.Tensor, torch.Tensor)
            log p(x|z) in nats (N,), float64, and d log p(x|z) / dz (N, latent_dim), float32.
        """
        layers = list(self.decoder)
        z = z.to(self.device, torch.float32)
        if self.outputs == 1 or not all(isinstance(m, (nn.Linear, nn.ReLU)) for m in layers):
            with torch.enable_grad():
                z = z.detach().requires_grad_(True)
                value = self.log_likelihood(x, z)
                (grad,) = torch.autograd.grad(value.sum(), z)
            return value.detach(), grad
        h, relu_outputs = z, []
        for layer in layers:
            h = F.linear(h, layer.weight, layer.bias) if isinstance(layer, nn.Linear) else h.clamp_min_(0)
            if isinstance(layer, nn.ReLU):
                relu_outputs.append(h)
        log_p = h.reshape(len(z), -1, self.outputs).log_softmax(-1)
        k = to_level_indices(x.to(self.device), self.levels).reshape(len(x), -1, 1)
        value = torch.gather(log_p, -1, k)[..., 0].to(torch.float64).sum(1)
        g = log_p.exp_().neg_().scatter_add_(-1, k, torch.ones_like(k, dtype=log_p.dtype))  # onehot - softmax
        g = g.reshape(len(z), -1)
        for layer in reversed(layers):
            if isinstance(layer, nn.Linear):
                g = g @ layer.weight
            else:  # ReLU: no gradient where the unit's output is 0 (autograd's convention)
                g = g.masked_fill_(relu_outputs.pop() <= 0, 0)
        return value, g

    @torch.no_grad()
    def sample_given_latent(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One draw x ~ p(x|z) per latent, uint8 (N, 1, H, W): every pixel drawn from its categorical."""
        logits = self.decoder(z.to(self.device, torch.float32)).reshape(len(z), -1, self.outputs)
        if self.outputs == 1:
            probs = torch.stack([1 - torch.sigmoid(logits[..., 0]), torch.sigmoid(logits[..., 0])], -1)
        else:
            probs = logits.softmax(-1)
        k = torch.multinomial(probs.reshape(-1, probs.shape[-1]).cpu(), 1, generator=generator)
        return from_level_indices(k.reshape(len(z), *self.shape), self.levels)

    # ------------------------------------------------------------------------------- bounds on log P(x)
    def _noise(self, shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
        return torch.randn(shape, generator=generator).to(self.device)  # CPU draws: same on any device

    def elbo_terms(
        self, x: torch.Tensor, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One-sample reconstruction term E_q[log p(x|z)] and the exact KL, per example (nats)."""
        mean, log_var = self.posterior(x)
        z = mean + (0.5 * log_var).exp() * self._noise(mean.shape, generator)
        kl = 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var).to(torch.float64).sum(1)
        return self.log_likelihood(x, z), kl

    @torch.no_grad()
    def elbo(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """ELBO in nats per example (float64): a lower bound on log P(x), estimated with one z each."""
        reconstruction, kl = self.elbo_terms(x, generator)
        return (reconstruction - kl).cpu()

    @torch.no_grad()
    def iwae(self, x: torch.Tensor, k: int = 100, generator: torch.Generator | None = None) -> torch.Tensor:
        """IWAE bound with ``k`` importance samples, nats per example (float64); tighter than the ELBO."""
        out = []
        for part in x.split(max(1, 4096 // k)):  # at most ~4096 decoder passes at once
            mean, log_var = self.posterior(part)
            eps = self._noise((k, *mean.shape), generator)
            z = mean + (0.5 * log_var).exp() * eps  # (k, N, latent_dim)
            log_q = -0.5 * (eps.pow(2) + log_var + LOG_2PI).to(torch.float64).sum(-1)
            log_prior = -0.5 * (z.pow(2) + LOG_2PI).to(torch.float64).sum(-1)
            log_lik = self.log_likelihood(part.repeat(k, *[1] * (part.dim() - 1)), z.reshape(-1, z.shape[-1]))
            log_w = log_lik.reshape(k, len(part)) + log_prior - log_q
            out.append(torch.logsumexp(log_w, 0) - math.log(k))
        return torch.cat(out).cpu()

    def log_prob(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """IWAE_100 lower bound on log P(x) of uint8 images, nats per example (float64)."""
        return self.iwae(x, 100, generator)

    # ---------------------------------------------------------------------------------- latent space
    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior means (N, latent_dim) of uint8 images x."""
        return self.posterior(x)[0].cpu()

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's most likely image for each latent: uint8 (N, 1, H, W) on the data's grid."""
        logits = self.decoder(z.to(self.device, torch.float32)).reshape(len(z), -1, self.outputs)
        k = (logits[..., 0] > 0).long() if self.outputs == 1 else logits.argmax(-1)
        return from_level_indices(k.reshape(len(z), *self.shape).cpu(), self.levels)

    @torch.no_grad()
    def decode_float(self, z: torch.Tensor) -> torch.Tensor:
        """E[x | z] as floats in [0, 1] (N, 1, H, W): smooth in z, unlike :meth:`decode`'s modes.

        Perceptual path length needs this: a step of 1e-4 in z rarely changes a pixel's mode.
        """
        logits = self.decoder(z.to(self.device, torch.float32)).reshape(len(z), -1, self.outputs)
        if self.outputs == 1:
            mean = torch.sigmoid(logits[..., 0])
        else:
            grid = torch.arange(self.outputs, device=logits.device, dtype=torch.float32)
            mean = (logits.softmax(-1) * grid).sum(-1) / (self.levels - 1)
        return mean.reshape(len(z), *self.shape).cpu()

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images decoded from z ~ N(0, I): each pixel's most likely level given z (uint8)."""
        return self.decode(torch.randn(n, self.latent_dim, generator=generator))

    @torch.no_grad()
    def kl_per_dimension(self, x: torch.Tensor) -> torch.Tensor:
        """KL(q(z_j|x) || N(0, 1)) per latent dimension, averaged over x (float64, nats).

        Dimensions with KL near 0 are inactive: q ignores x there and the decoder ignores them.
        """
        mean, log_var = self.posterior(x)
        return (0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var)).to(torch.float64).mean(0).cpu()


def build(hparams: dict, dataset: str) -> VAE:
    def pick(key: str):
        return per_dataset(hparams, key, dataset)

    return VAE(dataset, pick("latent_dim"), pick("hidden"), pick("channels"))


def bits_per_dim(nats: torch.Tensor, x: torch.Tensor) -> float:
    return float(-nats.mean() / (x[0].numel() * math.log(2)))


def evaluate(model: VAE, x: torch.Tensor, beta: float) -> tuple[float, float]:
    """Validation loss (the beta-weighted training objective, nats) and ELBO in bits/dim.

    The same z noise at every check (a fixed seed) so that checks differ only by the weights.
    """
    generator = torch.Generator().manual_seed(0)
    model.eval()
    with torch.no_grad():
        terms = [model.elbo_terms(part, generator) for part in x.split(500)]
    reconstruction, kl = (torch.cat(t) for t in zip(*terms, strict=True))
    loss = float((beta * kl - reconstruction).mean())
    return loss, bits_per_dim(reconstruction - kl, x)


def fit(hparams: dict, data: TrainingData, *, generator: torch.Generator, log: TrainLog) -> tuple[VAE, dict]:
    model = build(hparams, data.dataset)
    beta, epochs = hparams["beta"], per_dataset(hparams, "epochs", data.dataset)
    optimiser = torch.optim.Adam(model.parameters(), lr=per_dataset(hparams, "lr", data.dataset))
    stopper = EarlyStopping(model, hparams["patience"])
    log.begin(epochs)
    for epoch in range(1, epochs + 1):
        model.train()
        losses = []
        for idx in minibatches(len(data.train), hparams["batch_size"], generator):
            reconstruction, kl = model.elbo_terms(data.train[idx], generator)
            loss = (beta * kl - reconstruction).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        val_loss, val_bpd = evaluate(model, data.val, beta)
        log.record(epoch, loss=sum(losses) / len(losses), val_loss=val_loss, val_elbo_bits_per_dim=val_bpd)
        log.step(epoch)
        if stopper.check(val_loss, epoch):
            break
    stopper.restore()
    model.eval()
    val_loss, val_bpd = evaluate(model, data.val, beta)
    some = data.val[: hparams["summary_iwae_items"]]
    val_iwae = bits_per_dim(model.iwae(some, 100, torch.Generator().manual_seed(0)), some)
    active = int((model.kl_per_dimension(data.val) > 0.01).sum())
    summary = {
        "best_epoch": stopper.best_step,
        "epochs_run": epoch,
        "val_loss": round(val_loss, 3),
        "val_elbo_bits_per_dim": round(val_bpd, 4),
        "val_iwae100_bits_per_dim": round(val_iwae, 4),
        "val_iwae_items": len(some),
        "active_latents": active,
    }
    return model, summary
