"""What the modern encoders (DINOv2, CLIP) share: finding weights, loading them as data, preprocessing.

Weights are never downloaded. Each variant names one file (:class:`WeightsFile`), found like
Inception's: an explicit path (``--weights``), an environment variable, or the file a peer's own
download leaves in the torch hub cache. The missing-file error names the file, the address to
fetch it from on a connected machine, and where to put it. Files load with
``torch.load(weights_only=True)`` (or as safetensors), so a file carrying code is refused.

Preprocessing (:func:`preprocess`) turns uint8 NCHW images into the network's input: grey
repeated to RGB, resized to the network's square input, normalised with the encoder's published
mean and standard deviation. Two resize conventions, each recorded in the manifest:

- ``bicubic`` (default): ``F.interpolate(x, mode="bicubic", antialias=True)`` on values in [0, 255],
  then ``x / 255`` and ``(x - mean) / std``: EDM2's FD_DINOv2 detector (its ``torch`` resize mode),
  the practical form of dgm-eval's PIL bicubic and of the encoders' own published transforms
  (bicubic resize; on square images their centre crop keeps everything).
- ``legacy-tf``: torch-fidelity 0.4's extractors: its TensorFlow-1.x-compatible bilinear resize
  (``align_corners=False``), then ``normalize(x, 255 * mean, 255 * std)``; for parity with it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from gen_eval.errors import GenEvalError
from gen_eval.features.base import FeatureExtractor
from gen_eval.features.inception import weights_file_sha256

RESIZE_MODES = ("bicubic", "legacy-tf")
DEFAULT_RESIZE_MODE = "bicubic"


@contextmanager
def one_torch_thread(restore: int) -> Iterator[None]:
    """torch on one intra-op thread inside the block (threads of our own share the work), then ``restore``."""
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(restore)


@dataclass(frozen=True)
class WeightsFile:
    """One variant's official weights file and where gen-eval looks for it.

    Attributes
    ----------
    filename : str
        The file's name in the torch hub cache (``<hub>/checkpoints/<filename>``), where the peer
        tools' own download puts it.
    url : str
        Where to fetch it on a connected machine.
    env : str
        The environment variable that may point at it.
    """

    filename: str
    url: str
    env: str

    def hub_cache_path(self) -> Path:
        """Where a download through torch hub put the file (honours ``TORCH_HOME``)."""
        return Path(torch.hub.get_dir()) / "checkpoints" / self.filename

    def missing_message(self, what: str) -> str:
        """The one-line error when no file is found."""
        return (
            f"{what} weights not found: download {self.filename} on a connected machine from {self.url}, "
            f"then pass --weights PATH, set {self.env}=PATH, or copy it to {self.hub_cache_path()}"
        )

    def resolve(self, what: str, path: str | os.PathLike[str] | None = None) -> Path:
        """The weights file: ``path``, else ``$env``, else the torch hub cache file.

        Raises
        ------
        GenEvalError
            An explicitly named file that is missing (never a silent fallback past a typo), or
            no file at all.
        """
        env_value = os.environ.get(self.env, "").strip()
        for source, value in (("--weights", path), (self.env, env_value)):
            if value is None or str(value) == "":
                continue
            candidate = Path(value).expanduser()
            if not candidate.is_file():
                problem = "is a directory, not a file" if candidate.is_dir() else "does not exist"
                raise GenEvalError(
                    f"{source}={candidate}: {problem}; point it at {self.filename} (download from {self.url})"
                )
            return candidate
        cached = self.hub_cache_path()
        if cached.is_file():
            return cached
        raise GenEvalError(self.missing_message(what))


def _short_reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
    picked = next((line for line in lines if "Unsupported" in line), lines[0])
    return picked.split(". ")[0][:160]


def load_tensor_file(path: Path, what: str, url: str) -> dict[str, torch.Tensor]:
    """A flat ``{name: tensor}`` from a ``.safetensors`` file or a ``torch.save``d state dict.

    ``torch.load`` runs with ``weights_only=True``: its unpickler resolves only tensor
    rebuilders and plain containers, so a file that names any other callable is refused before
    anything is called. TorchScript archives (CLIP's official files) are read elsewhere
    (:mod:`gen_eval.features.torchscript_weights`).

    Raises
    ------
    GenEvalError
        One line naming the file, why it was refused, and where to fetch a good copy.
    """
    again = f"download it again from {url}"
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            loaded: Any = load_file(str(path), device="cpu")
        else:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise GenEvalError(
            f"{what} weights {path}: not a plain tensor state dict, refused to load it "
            f"({type(exc).__name__}: {_short_reason(exc)}); {again}"
        ) from exc
    for key in ("model", "state_dict"):  # training checkpoints nest the weights
        if isinstance(loaded, Mapping) and isinstance(loaded.get(key), Mapping):
            loaded = loaded[key]
    if not isinstance(loaded, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items()
    ):
        raise GenEvalError(
            f"{what} weights {path}: not a plain tensor state dict (got a {type(loaded).__name__} "
            f"of other objects); {again}"
        )
    return dict(loaded)


def check_state_dict(
    loaded: Mapping[str, torch.Tensor],
    expected: Mapping[str, tuple[int, ...]],
    path: Path,
    what: str,
    url: str,
) -> None:
    """Refuse a state dict whose keys or shapes differ from the network's, in one line."""
    problems = {
        "missing": [k for k in expected if k not in loaded],
        "unexpected": [k for k in loaded if k not in expected],
        "wrong-shape": [k for k in expected if k in loaded and tuple(loaded[k].shape) != tuple(expected[k])],
    }
    if any(problems.values()):
        details = "; ".join(f"{kind} {len(keys)} (e.g. {keys[0]})" for kind, keys in problems.items() if keys)
        raise GenEvalError(
            f"{what} weights {path}: do not match the {what} network ({details}); "
            f"is it another variant's file? download the right one from {url}"
        )


def tf_bilinear(x: torch.Tensor, size: int) -> torch.Tensor:
    """torch-fidelity's TensorFlow-1.x bilinear resize (its own function, reused as is)."""
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    return interpolate_bilinear_2d_like_tensorflow1x(x, size=(size, size), align_corners=False)


def preprocess(
    batch: torch.Tensor,
    size: int,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    resize_mode: str = DEFAULT_RESIZE_MODE,
) -> torch.Tensor:
    """uint8 (N, 1 or 3, H, W) images -> the float32 (N, 3, size, size) network input.

    See the module docstring for the two conventions.
    """
    if batch.shape[1] == 1:
        batch = batch.expand(-1, 3, -1, -1)
    x = batch.to(torch.float32)

    def column(values: tuple[float, ...], scale: float = 1.0) -> torch.Tensor:
        # Scaled in Python floats, then rounded once to float32, as torchvision's normalize does.
        return torch.tensor([scale * v for v in values], dtype=torch.float32, device=x.device).view(
            1, 3, 1, 1
        )

    if resize_mode == "legacy-tf":
        if x.shape[-2:] != (size, size):
            x = tf_bilinear(x, size)
        # torchvision's normalize, as torch-fidelity calls it: (x - 255 mean) / (255 std).
        return (x - column(mean, 255)) / column(std, 255)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    return (x / 255 - column(mean)) / column(std)


def preprocessing_text(size: int, mean: tuple[float, ...], std: tuple[float, ...], resize_mode: str) -> str:
    """What a manifest records about :func:`preprocess` with these settings."""
    if resize_mode == "legacy-tf":
        resize = (
            f"resized to {size}x{size} with torch-fidelity's TensorFlow-1.x-compatible bilinear "
            "(align_corners=False) in float32 (--resize-mode legacy-tf); then (x - 255 mean) / (255 std)"
        )
    else:
        resize = (
            f"resized to {size}x{size} with torch bicubic, antialias=True, in float32 on [0, 255] "
            "(EDM2's FD_DINOv2 convention); then x / 255, (x - mean) / std"
        )
    return (
        "uint8 NCHW; 1-channel images repeated to RGB; "
        f"{resize}, mean {tuple(round(m, 8) for m in mean)}, std {tuple(round(s, 8) for s in std)}"
    )


class EncoderExtractor(FeatureExtractor):
    """An image encoder with official weights in one file: the shared half of DINOv2 and CLIP.

    Subclasses set :attr:`weights_files` (variant name -> :class:`WeightsFile`), ``image_size``,
    ``mean``, ``std``, ``what`` and implement :meth:`_build` (weights path -> network ready to
    call on preprocessed input) and :meth:`_forward`.

    Parameters
    ----------
    device : str or torch.device
        Where the network runs (``auto`` is resolved by the caller: CUDA when present).
    weights_path : str or path-like, optional
        The weights file; else the environment variable, else the torch hub cache.
    resize_mode : {"bicubic", "legacy-tf"}
        The resize convention (:func:`preprocess`).
    fast : bool
        Run gen-eval's fused forward (:mod:`gen_eval.features.vit_fast`); False runs the
        library module's own forward (slower, for checking).
    """

    weights_files: ClassVar[dict[str, WeightsFile]] = {}
    image_size: ClassVar[int] = 224
    mean: ClassVar[tuple[float, float, float]] = (0.485, 0.456, 0.406)
    std: ClassVar[tuple[float, float, float]] = (0.229, 0.224, 0.225)
    what: ClassVar[str] = ""
    # The --resize-mode conventions this extractor offers (the first is its default).
    resize_modes: ClassVar[tuple[str, ...]] = RESIZE_MODES

    def __init__(
        self,
        device: str | torch.device = "cpu",
        weights_path: str | os.PathLike[str] | None = None,
        resize_mode: str = DEFAULT_RESIZE_MODE,
        fast: bool = True,
    ) -> None:
        super().__init__(device)
        if resize_mode not in RESIZE_MODES:
            raise GenEvalError(f"--resize-mode {resize_mode!r}: choose one of {', '.join(RESIZE_MODES)}")
        self.resize_mode = resize_mode
        self.fast = fast
        self.weights_path = self.weights_file().resolve(self.what, weights_path)
        self.weights_sha256 = weights_file_sha256(self.weights_path)
        self._build(self.weights_path)
        forward = "gen-eval's fused forward" if fast else "the library module's own forward"
        self.preprocessing = (
            f"{preprocessing_text(self.image_size, self.mean, self.std, resize_mode)}; network: {forward}"
        )

    @classmethod
    def weights_file(cls) -> WeightsFile:
        """This variant's :class:`WeightsFile`."""
        return cls.weights_files[cls.name]

    @classmethod
    def availability(cls, **_: object) -> tuple[bool, str]:
        """Whether the weights file is found (env var or hub cache, without reading it): where, or how to get it.

        Options meant for other extractors (``gen-eval features --inception-weights``) are ignored.
        """
        spec = cls.weights_file()
        try:
            return True, str(spec.resolve(cls.what))
        except GenEvalError:
            return (
                False,
                f"get {spec.filename} from {spec.url}; set {spec.env} or copy it to {spec.hub_cache_path()}",
            )

    @property
    def weights_fingerprint(self) -> str:
        """SHA-256 of the weights file."""
        return self.weights_sha256

    @cached_property
    def _check_message(self) -> str:
        return (
            f"{self.name} features: images must be uint8 (N, 1 or 3, H, W); "
            "convert them to 8-bit grey or RGB (drop alpha) first"
        )

    def extract(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Embeddings of uint8 NCHW images; see :attr:`preprocessing`."""
        if batch.dtype != torch.uint8 or batch.dim() != 4 or batch.shape[1] not in (1, 3):
            raise GenEvalError(f"{self._check_message}, got {batch.dtype} {tuple(batch.shape)}")
        threads = torch.get_num_threads()
        if not self.fast or self.device.type != "cpu" or threads < 2 or len(batch) < 2:
            return {"features": self._embed(batch)}
        # On the CPU the batch is cut into one part per thread, each run on one torch thread.
        # torch's own threads meet at a barrier after every op; in this forward (98 products,
        # 24 attentions, 50 layer norms per batch) the waiting cost 23% more CPU time for the
        # same DINOv2 ViT-S/14 features on 2 cores (measured; `gen-eval bench features`). Each
        # image's features do not depend on its batch-mates, so the result is the same.
        parts = batch.tensor_split(min(threads, len(batch)))
        with one_torch_thread(threads), ThreadPoolExecutor(len(parts)) as pool:
            features = list(pool.map(self._embed, parts))
        return {"features": torch.cat(features)}

    def _embed(self, batch: torch.Tensor) -> torch.Tensor:
        """Preprocessing and the network on one part of a batch: (n, dim) float32."""
        x = preprocess(batch, self.image_size, self.mean, self.std, self.resize_mode)
        return self._forward(x).to(torch.float32)

    def _build(self, path: Path) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError
