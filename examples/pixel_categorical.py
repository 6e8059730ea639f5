"""A student's model in 20 lines: every pixel an independent categorical over digits' 17 grey levels.

gen-eval evaluate examples/pixel_categorical.py:make_model --trust-code --num-samples 1000 --reference digits:test
"""

import torch

from gen_eval.datasets.digits import load_digits_split


class PixelCategorical:
    family, dataset, likelihood, levels = "baseline", "digits", "discrete", 17

    def __init__(self) -> None:
        images, _ = load_digits_split("train")  # uint8 (1437, 1, 8, 8), level k stored as round(k * 255 / 16)
        k = (torch.from_numpy(images).long() * 16 + 127) // 255
        counts = torch.nn.functional.one_hot(k, 17).sum(0) + 1.0  # (1, 8, 8, 17), add-one smoothing
        self.log_p = (counts / counts.sum(-1, keepdim=True)).log()

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        k = torch.multinomial(self.log_p.exp().view(-1, 17), n, replacement=True, generator=generator).T
        return (k.reshape(n, 1, 8, 8) * 255 / 16).round().to(torch.uint8)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:  # nats per image, exact (discrete)
        k = (x.long() * 16 + 127) // 255
        return self.log_p.expand(len(x), -1, -1, -1, -1).gather(-1, k[..., None]).sum((1, 2, 3, 4))


def make_model() -> PixelCategorical:
    return PixelCategorical()
