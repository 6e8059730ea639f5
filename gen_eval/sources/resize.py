"""The one rule for images whose size differs from what the feature extractor reads.

A feature extractor either reads a fixed size (``input_size``: the digits nets read 8x8) or
any size (Inception resizes to 299x299 itself, as the FID protocol defines; ``identity``
flattens pixels). The size every set is brought to before extraction is then:

* the extractor's ``input_size`` when it declares one;
* otherwise the reference's size, so that both sets enter the extractor at the same size
  (for Inception a generated set at another resolution would otherwise differ from the
  reference by its resolution; for ``identity`` the feature dimensions would not match).

Sets of another size are resized with one method, chosen by ``--resize-method`` (default
``bicubic``) and stated in the output and the manifest every time; ``refuse`` makes a size
mismatch an error instead. ``evaluate``, ``score``, ``compare`` and the dashboard all extract
through :func:`gen_eval.features.extract.extract_features`, which applies this rule, so the
same images give the same features everywhere.

Why bicubic by default: PIL's bicubic widens its filter when it shrinks (it is antialiased),
it is what ``--resize`` has always used, and it is the resize that clean-fid (Parmar et al.,
"On Aliased Resizing and Surprising Subtleties in GAN Evaluation", CVPR 2022) found free of
the aliasing that makes FID depend on the library.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gen_eval.errors import GenEvalError
from gen_eval.sources.base import Batch, Source

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image as PILImage

RESIZE_METHODS = ("bicubic", "bilinear", "area", "nearest", "refuse")
DEFAULT_RESIZE_METHOD = "bicubic"
RESIZE_METHOD_HELP = (
    "Images of another size than the extractor reads (else than the reference): resize them with "
    "bicubic (default), bilinear, area or nearest, stated in the output and manifest; or refuse."
)


def check_method(method: str) -> str:
    """Return ``method`` if it is one of :data:`RESIZE_METHODS`, else raise a one-line error."""
    if method not in RESIZE_METHODS:
        raise GenEvalError(f"--resize-method {method!r}: choose one of {', '.join(RESIZE_METHODS)}")
    return method


def resize_image(image: PILImage.Image, size: tuple[int, int], method: str) -> PILImage.Image:
    """Resize a PIL image to ``size`` = (height, width) with ``method`` (not ``refuse``).

    Parameters
    ----------
    image : PIL.Image.Image
        Grey (``L``) or ``RGB`` image; PIL resizes each channel on its own.
    size : tuple of int
        Target (height, width).
    method : str
        ``bicubic``, ``bilinear`` (both antialiased when shrinking), ``area`` (box average)
        or ``nearest``.

    Returns
    -------
    PIL.Image.Image
    """
    from PIL import Image

    filters = {
        "bicubic": Image.BICUBIC,
        "bilinear": Image.BILINEAR,
        "area": Image.BOX,
        "nearest": Image.NEAREST,
    }
    if method not in filters:
        raise GenEvalError(f"--resize-method {method!r} cannot resize; choose one of {', '.join(filters)}")
    height, width = size
    return image if image.size == (width, height) else image.resize((width, height), filters[method])


def resize_images(images: np.ndarray, size: tuple[int, int], method: str) -> np.ndarray:
    """Resize uint8 (N, C, H, W) images to (N, C, *size); C is 1 or 3 (channels kept apart).

    Parameters
    ----------
    images : numpy.ndarray
        uint8 NCHW images.
    size : tuple of int
        Target (height, width).
    method : str
        As for :func:`resize_image`.

    Returns
    -------
    numpy.ndarray
        uint8 (N, C, height, width).
    """
    import numpy as np
    from PIL import Image

    out = np.empty((len(images), images.shape[1], *size), dtype=np.uint8)
    for i, image in enumerate(images):
        # One grey image per channel: identical to PIL's per-band RGB resize, and it also
        # covers channel counts PIL has no mode for.
        for c, channel in enumerate(image):
            out[i, c] = np.asarray(resize_image(Image.fromarray(channel, "L"), size, method))
    return out


def target_size(extractor: Any, reference: Source) -> tuple[int, int] | None:
    """The (height, width) images are brought to before ``extractor``; None for vectors.

    Parameters
    ----------
    extractor : FeatureExtractor
        Its ``input_size`` wins when it declares one.
    reference : Source
        Otherwise its image size is the target.

    Returns
    -------
    tuple of int or None
    """
    size = getattr(extractor, "input_size", None)
    if size is not None:
        return tuple(size)  # type: ignore[return-value]
    if reference.data_kind != "image":
        return None
    return tuple(reference.sample_shape[1:])  # type: ignore[return-value]


def _size_text(size: tuple[int, ...]) -> str:
    return f"{size[1]}x{size[0]}"  # width x height, as image sizes are usually written


def resize_warning(spec: str, resized: dict[str, Any]) -> str:
    """``"x/: resized 300 images 32x32 -> 8x8 (bicubic) for the digits extractor"``.

    Parameters
    ----------
    spec : str
        The source.
    resized : dict
        A manifest's ``resized`` field (:meth:`ResizePlan.to_dict`).

    Returns
    -------
    str
    """
    return (
        f"{spec}: resized {resized['count']:,} images {_size_text(resized['from'])} -> "
        f"{_size_text(resized['to'])} ({resized['method']}) {resized['reason']}"
    )


@dataclass
class ResizePlan:
    """What the rule does to one source: resize ``count`` images ``source_size`` -> ``size``."""

    spec: str
    count: int
    source_size: tuple[int, int]
    size: tuple[int, int]
    method: str
    reason: str  # "for the digits extractor" or "to match the reference digits:test"

    def warning(self) -> str:
        """One line for the output: what was resized, how, and why."""
        return resize_warning(self.spec, self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The manifest's ``resized`` field (sizes as [height, width])."""
        return {
            "count": self.count,
            "from": list(self.source_size),
            "to": list(self.size),
            "method": self.method,
            "reason": self.reason,
        }


def plan_resize(
    source: Source, extractor: Any, size: tuple[int, int] | None, method: str, reason: str | None = None
) -> ResizePlan | None:
    """The resize ``source`` needs before ``extractor``, None if none, or a one-line error for ``refuse``.

    Parameters
    ----------
    source : Source
        The set to extract.
    extractor : FeatureExtractor
        Names the reason when ``size`` is its input size.
    size : tuple of int, optional
        Target (height, width), from :func:`target_size`; None: no resize.
    method : str
        One of :data:`RESIZE_METHODS`.
    reason : str, optional
        Why this size (default: the extractor's input size).

    Returns
    -------
    ResizePlan or None
    """
    check_method(method)
    if size is None or source.data_kind != "image" or tuple(source.sample_shape[1:]) == tuple(size):
        return None
    own = tuple(source.sample_shape[1:])
    reason = reason or f"for the {extractor.name} extractor"
    if method == "refuse":
        raise GenEvalError(size_refusal(source.spec, own, size, reason))  # type: ignore[arg-type]
    return ResizePlan(source.spec, len(source), own, tuple(size), method, reason)  # type: ignore[arg-type]


def size_refusal(spec: str, own: tuple[int, int], size: tuple[int, int], reason: str) -> str:
    """The one-line error of ``--resize-method refuse``."""
    return (
        f"{spec}: images are {_size_text(own)} but {_size_text(size)} are needed {reason} and "
        "--resize-method is refuse; submit images of that size or choose a method "
        "(bicubic, bilinear, area, nearest)"
    )


@dataclass
class ResizedSource(Source):
    """Another source's images, resized batch by batch as a :class:`ResizePlan` says.

    It keeps the inner source's kind, labels and attributes (a generator's ``model``); its
    fingerprint covers the size and method, so cached features of other sizes never mix.
    """

    inner: Source = field(default=None)  # type: ignore[assignment]
    plan: ResizePlan = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.kind = self.inner.kind  # type: ignore[misc]
        self.data_kind = self.inner.data_kind
        self.sample_shape = (self.inner.sample_shape[0], *self.plan.size)
        self.num_classes = self.inner.num_classes  # a field here, so __getattr__ would not forward it
        self._count = len(self.inner)
        self.notes = [*self.inner.notes, self.plan.warning()]
        inner = self.inner.fingerprint
        if inner is not None:
            key = repr(("resized-v1", inner, self.plan.size, self.plan.method))
            self._fingerprint = hashlib.sha256(key.encode()).hexdigest()

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes this class lacks (a generator's model, a dataset's info).
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def batches(self, batch_size: int) -> Iterator[Batch]:
        import torch

        for batch in self.inner.batches(batch_size):
            images = resize_images(batch.data.numpy(), self.plan.size, self.plan.method)
            yield Batch(torch.from_numpy(images), batch.labels)


def fit_source(source: Source, plan: ResizePlan | None) -> Source:
    """``source`` itself when ``plan`` is None, else its resized view."""
    return source if plan is None else ResizedSource(spec=source.spec, inner=source, plan=plan)
