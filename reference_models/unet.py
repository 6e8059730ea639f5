"""Paired image-to-image models on the mnist tasks: an L1 U-Net and a U-Net with a PatchGAN.

The two rows of the super-resolution table the decks print (Ledig et al., 2017), made small:

* ``loss="l1"``: a U-Net (Ronneberger et al., 2015) trained on the pixel L1 distance to the
  target: the SRResNet analogue (which used MSE; L1 is pix2pix's reconstruction term). It
  predicts the conditional median per pixel, so it is blurry where the input is ambiguous and
  scores the best PSNR.
* ``loss="l1+patchgan"``: the same U-Net trained against a PatchGAN discriminator as in pix2pix
  (Isola et al., 2017): ``L = BCE(D(x, G(x)), real) + lambda * L1``. The discriminator sees the
  (upsampled) input and a candidate output side by side and returns a 7x7 grid of real/fake
  logits, each seeing an 18x18 window (three convs: 4x4/2, 4x4/2, 3x3/1). As SRGAN does with
  SRResNet, the generator starts from the trained L1 U-Net (``init_from``) and is fine-tuned
  adversarially with ``lambda = 10`` on pixels in [0, 1]. pix2pix uses 100 on pixels in [-1, 1];
  here 100 left the discriminator at chance (see ``DEFAULTS``), so one smaller value was tried.

Inputs are uint8 (N, 1, h, w) from ``gen_eval.datasets.tasks`` (``sr4``: 7x7 area means,
``inpaint``: the centre masked, ``edges``: an edge map); an input smaller than 28x28 is first
brought to 28x28 with bicubic interpolation (``torch.nn.functional.interpolate``,
``align_corners=False``, clamped to [0, 1]), the usual SR front end, so one U-Net serves all
three tasks. Outputs are uint8 (N, 1, 28, 28). Both models are deterministic: pix2pix's dropout
noise is known to be ignored by its generator (Isola et al., 2017, sec. 3.1), so ``translate``
takes a ``generator`` for the protocol and does not use it.

A model provides ``task`` (the task name) and ``translate(inputs, generator=None)`` (the paired
model protocol of issue 23); it has no ``sample``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from reference_models.common import EarlyStopping, TrainingData, TrainLog, minibatches, to_unit

SIZE = 28
DEFAULTS = {
    "task": "sr4",
    "loss": "l1",  # or "l1+patchgan"
    "channels": 8,  # U-Net width at 28x28 (16 at 14x14 and 7x7): 18 k weights, ~0.05 s a step on one thread
    "disc_channels": 32,
    # GAN mode's lambda. pix2pix's 100 left the discriminator at chance (loss 0.69) through 1,000
    # fine-tuning steps of pix2pix_sr4: the result was the L1 U-Net trained longer (test PSNR
    # 20.51 dB vs 20.38, FID 4.2 vs 7.9). 10 gives the adversarial term a say.
    "l1_weight": 10.0,
    "init_from": None,  # GAN mode: a trained L1 U-Net's registry name to start from (SRGAN's practice)
    "steps": 3000,
    "batch_size": 32,
    "lr": 1e-3,  # L1 mode; GAN mode uses ``gan_lr`` for both networks
    "gan_lr": 1e-4,  # SRGAN's fine-tuning rate
    "betas": [0.5, 0.999],  # pix2pix's Adam betas
    "eval_every": 250,
    "patience": 100,  # validation checks without improvement before stopping
    "threads": 1,
}


# ------------------------------------------------------------------------------------------- networks
def _block(inputs: int, outputs: int) -> nn.Sequential:
    """Two 3x3 convs with BatchNorm and ReLU: one U-Net stage."""
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(),
        nn.Conv2d(outputs, outputs, 3, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(),
    )


class UNet(nn.Module):
    """28x28 -> 14x14 -> 7x7 and back, with skip connections; one grey channel in [0, 1] out."""

    def __init__(self, channels: int = 16):
        super().__init__()
        c = channels
        self.enc1, self.enc2, self.bottom = _block(1, c), _block(c, 2 * c), _block(2 * c, 2 * c)
        self.dec2, self.dec1 = _block(4 * c, 2 * c), _block(3 * c, c)
        self.out = nn.Conv2d(c, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)  # 28x28
        e2 = self.enc2(F.max_pool2d(e1, 2))  # 14x14
        b = self.bottom(F.max_pool2d(e2, 2))  # 7x7
        d2 = self.dec2(torch.cat([F.interpolate(b, scale_factor=2.0), e2], 1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, scale_factor=2.0), e1], 1))
        return torch.sigmoid(self.out(d1))


def patch_discriminator(channels: int = 32) -> nn.Sequential:
    """PatchGAN on (input, output) pairs: 28x28x2 -> a 7x7 grid of logits, 18x18 receptive field each."""
    c = channels
    return nn.Sequential(
        nn.Conv2d(2, c, 4, stride=2, padding=1),  # 14x14
        nn.LeakyReLU(0.2),
        nn.Conv2d(c, 2 * c, 4, stride=2, padding=1),  # 7x7
        nn.BatchNorm2d(2 * c),
        nn.LeakyReLU(0.2),
        nn.Conv2d(2 * c, 1, 3, padding=1),
    )


def prepare_inputs(inputs: torch.Tensor) -> torch.Tensor:
    """uint8 task inputs (N, 1, h, w) -> float (N, 1, 28, 28) in [0, 1], bicubic when h, w < 28."""
    x = to_unit(inputs)
    if x.shape[-2:] != (SIZE, SIZE):
        x = F.interpolate(x, size=(SIZE, SIZE), mode="bicubic", align_corners=False).clamp(0.0, 1.0)
    return x


class PairedUNet(nn.Module):
    """A trained U-Net with the paired protocol: ``task`` and ``translate``."""

    def __init__(self, task: str, channels: int):
        super().__init__()
        self.task = task
        self.net = UNet(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    @torch.no_grad()
    def translate(
        self, inputs: torch.Tensor, generator: torch.Generator | None = None, batch_size: int = 512
    ) -> torch.Tensor:
        """Task inputs, uint8 (N, 1, h, w) -> outputs, uint8 (N, 1, 28, 28).

        Parameters
        ----------
        inputs : torch.Tensor
            uint8 inputs as the task's ``degrade`` makes them.
        generator : torch.Generator, optional
            Unused: the model is deterministic (see the module docstring).
        batch_size : int
            Inputs per forward pass.
        """
        del generator
        was_training = self.training
        self.eval()
        try:
            parts = [
                self.net(prepare_inputs(inputs[i : i + batch_size]))
                for i in range(0, len(inputs), batch_size)
            ]
        finally:
            self.train(was_training)
        if not parts:
            return torch.zeros((0, 1, SIZE, SIZE), dtype=torch.uint8)
        return torch.round(torch.cat(parts) * 255.0).to(torch.uint8)


# ------------------------------------------------------------------------------------------- training
def build(hparams: dict, dataset: str) -> PairedUNet:
    """An untrained model for ``hparams`` (the registry's config); ``dataset`` is ``mnist``."""
    del dataset
    return PairedUNet(str(hparams["task"]), int(hparams["channels"]))


def _psnr(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Mean PSNR (dB, data range 1) over images, for validation only (the metric is scikit-image's)."""
    mse = ((prediction - target) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return float((10.0 * torch.log10(1.0 / mse)).mean())


def fit(
    hparams: dict, data: TrainingData, *, generator: torch.Generator, log: TrainLog
) -> tuple[PairedUNet, dict]:
    """Train on (task inputs, mnist targets) of the train split; validate on the held-out 10%.

    L1 mode keeps the weights with the lowest validation L1; GAN mode keeps the last iterate
    (choosing by validation L1 would pick the least adversarial snapshot).
    """
    from gen_eval.datasets.tasks import get_task

    task = get_task(str(hparams["task"]))
    model = build(hparams, data.dataset)
    x_train, y_train = prepare_inputs(task.degrade(data.train)), to_unit(data.train)
    x_val, y_val = prepare_inputs(task.degrade(data.val)), to_unit(data.val)
    adversarial = hparams["loss"] == "l1+patchgan"
    if hparams["loss"] not in ("l1", "l1+patchgan"):
        raise ValueError(f"unknown loss {hparams['loss']!r}; expected 'l1' or 'l1+patchgan'")
    if adversarial and hparams.get("init_from"):
        from reference_models import load_model

        model.load_state_dict(load_model(str(hparams["init_from"])).state_dict())
    lr = hparams["gan_lr"] if adversarial else hparams["lr"]
    betas = tuple(hparams["betas"])
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=betas)
    disc = patch_discriminator(int(hparams["disc_channels"])) if adversarial else None
    opt_d = torch.optim.Adam(disc.parameters(), lr=lr, betas=betas) if disc is not None else None
    bce = nn.BCEWithLogitsLoss()
    stopper = EarlyStopping(model, patience=int(hparams["patience"]))
    steps, batch_size = int(hparams["steps"]), int(hparams["batch_size"])
    log.begin(steps)
    step, stop = 0, False
    while step < steps and not stop:
        for idx in minibatches(len(x_train), batch_size, generator):
            model.train()
            x, y = x_train[idx], y_train[idx]
            fake = model(x)
            l1 = (fake - y).abs().mean()
            loss, values = l1, {"l1": float(l1.detach())}
            if disc is not None:
                real_logits = disc(torch.cat([x, y], 1))
                fake_logits = disc(torch.cat([x, fake.detach()], 1))
                loss_d = 0.5 * (
                    bce(real_logits, torch.ones_like(real_logits))
                    + bce(fake_logits, torch.zeros_like(fake_logits))
                )
                opt_d.zero_grad()
                loss_d.backward()
                opt_d.step()
                g_logits = disc(torch.cat([x, fake], 1))
                loss_adv = bce(g_logits, torch.ones_like(g_logits))
                loss = loss_adv + float(hparams["l1_weight"]) * l1
                values.update(d=float(loss_d.detach()), adv=float(loss_adv.detach()))
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            log.step(step)
            if step % int(hparams["eval_every"]) == 0 or step == steps:
                model.eval()
                with torch.no_grad():
                    pred = model(x_val)
                val_l1 = float((pred - y_val).abs().mean())
                log.record(step, **values, val_l1=val_l1, val_psnr=_psnr(pred, y_val))
                if not adversarial:
                    stop = stopper.check(val_l1, step)
            if step >= steps or stop:
                break
    if not adversarial:
        stopper.restore()
    model.eval()
    with torch.no_grad():
        pred = model(x_val)
    summary = {
        "steps": step,
        "val_l1": float((pred - y_val).abs().mean()),
        "val_psnr_db": _psnr(pred, y_val),
        "kept": "best validation L1" if not adversarial else "last iterate",
        "best_step": stopper.best_step if not adversarial else step,
    }
    if not math.isfinite(summary["val_l1"]):
        raise RuntimeError("training diverged: non-finite validation L1")
    return model, summary
