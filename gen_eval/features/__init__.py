"""Feature extractors: a registry mapping names to one module each, and the kinds each accepts."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

from gen_eval.errors import GenEvalError
from gen_eval.kinds import Registry, get_kind

if TYPE_CHECKING:
    from gen_eval.features.base import FeatureExtractor
    from gen_eval.sources import Source


@dataclass(frozen=True)
class ExtractorEntry:
    """Where an extractor lives and which data kinds it reads.

    Attributes
    ----------
    target : str or type
        ``"module:Class"`` (imported on first use, so listing names stays cheap) or the class.
    kinds : tuple of str
        Data kinds whose batches it accepts (``gen-eval evaluate`` refuses other pairings).
    """

    target: str | type
    kinds: tuple[str, ...]


EXTRACTORS: Registry[ExtractorEntry] = Registry("feature extractor")
for _name, _entry in {
    "inception": ExtractorEntry("gen_eval.features.inception:InceptionExtractor", ("image",)),
    "digits": ExtractorEntry("gen_eval.features.digits:DigitsExtractor", ("image",)),
    "mnist": ExtractorEntry("gen_eval.features.mnist:MnistExtractor", ("image",)),
    "stacked_digits": ExtractorEntry("gen_eval.features.stacked_digits:StackedDigitsExtractor", ("image",)),
    # The modern encoders (issue 25): weights from --weights, an env var or the torch hub cache.
    "dinov2-vit-s14": ExtractorEntry("gen_eval.features.dinov2:DinoV2Extractor", ("image",)),
    "dinov2-vit-b14": ExtractorEntry("gen_eval.features.dinov2:DinoV2BaseExtractor", ("image",)),
    "dinov2-vit-l14": ExtractorEntry("gen_eval.features.dinov2:DinoV2LargeExtractor", ("image",)),
    "dinov2-vit-g14": ExtractorEntry("gen_eval.features.dinov2:DinoV2GiantExtractor", ("image",)),
    "clip-vit-b32": ExtractorEntry("gen_eval.features.clip:ClipExtractor", ("image",)),
    "clip-vit-b16": ExtractorEntry("gen_eval.features.clip:ClipB16Extractor", ("image",)),
    "clip-vit-l14": ExtractorEntry("gen_eval.features.clip:ClipL14Extractor", ("image",)),
    "clip-vit-l14-336": ExtractorEntry("gen_eval.features.clip:ClipL14At336Extractor", ("image",)),
    # Identity flattens images to their pixels too (a baseline, and PPL's float features).
    "identity": ExtractorEntry("gen_eval.features.identity:IdentityExtractor", ("image", "vector")),
    "pointnet-shapes3d": ExtractorEntry("gen_eval.features.pointnet:PointNetExtractor", ("pointcloud",)),
    "char-ngrams": ExtractorEntry("gen_eval.features.char_ngrams:CharNgramExtractor", ("text",)),
    "char-names": ExtractorEntry("gen_eval.features.char_names:CharNamesExtractor", ("text",)),
}.items():
    EXTRACTORS.register(_name, _entry)

# Embedded datasets read best through their own network (``--features auto`` against them).
DATASET_EXTRACTORS = {"digits": "digits", "stacked_digits": "stacked_digits", "shapes3d": "pointnet-shapes3d"}
DATASET_EXTRACTORS["census_names"] = "char-names"  # a character CNN trained on its names
DATASET_EXTRACTORS["mnist"] = "mnist"  # a small CNN trained on its 28x28 train split (issue 23)


def extractor_names() -> list[str]:
    """Names accepted by ``--features``."""
    return EXTRACTORS.names()


def extractor_kinds(name: str) -> tuple[str, ...]:
    """The data kinds extractor ``name`` accepts."""
    return _entry(name).kinds


def _entry(name: str) -> ExtractorEntry:
    entry = EXTRACTORS.find(name)
    if entry is None:
        raise GenEvalError(
            f"unknown feature extractor {name!r}: choose one of {', '.join(EXTRACTORS.names())}"
        )
    return entry


def extractor_class(name: str) -> type[FeatureExtractor]:
    """The extractor class registered under ``name``."""
    target = _entry(name).target
    if isinstance(target, type):
        return target
    module_name, class_name = target.split(":")
    return getattr(import_module(module_name), class_name)


RESIZE_MODE_HELP = (
    "How images reach the network's input size (default: the extractor's own). Inception: legacy-tf "
    "(its default: torch-fidelity's TF 1.x bilinear), clean (clean-fid: PIL bicubic in float) or "
    "legacy-pytorch (pytorch-fid: bilinear, 2x-1 scaling); DINOv2/CLIP encoders: bicubic (their "
    "default: antialiased torch bicubic, EDM2's FD_DINOv2) or legacy-tf (torch-fidelity's extractors)."
)


def known_resize_modes() -> tuple[str, ...]:
    """Every ``--resize-mode`` some extractor offers (checked before any source is opened)."""
    from gen_eval.features.encoders import RESIZE_MODES as ENCODER_MODES
    from gen_eval.features.inception_input import RESIZE_MODES as INCEPTION_MODES

    return tuple(dict.fromkeys(INCEPTION_MODES + ENCODER_MODES))


def check_resize_mode_name(mode: str | None) -> None:
    """A one-line error unless ``mode`` is None or a resize convention some extractor offers."""
    if mode is not None and mode not in known_resize_modes():
        raise GenEvalError(f"--resize-mode {mode!r}: choose from {', '.join(known_resize_modes())}")


def resize_mode_options(name: str, mode: str | None) -> dict[str, Any]:
    """The constructor option that sets extractor ``name``'s resize convention to ``mode``.

    Parameters
    ----------
    name : str
        The extractor.
    mode : str or None
        What ``--resize-mode`` asked for; None keeps the extractor's default.

    Returns
    -------
    dict
        ``{}`` or ``{"resize_mode": mode}``.

    Raises
    ------
    GenEvalError
        When the extractor has no resize conventions, or not this one.
    """
    if mode is None:
        return {}
    offered = getattr(extractor_class(name), "resize_modes", ())
    if not offered:
        raise GenEvalError(
            f"--resize-mode {mode}: --features {name} has no resize conventions (Inception and the "
            "DINOv2/CLIP encoders have); drop it"
        )
    if mode not in offered:
        raise GenEvalError(f"--resize-mode {mode} is not one of --features {name}'s: {', '.join(offered)}")
    return {"resize_mode": mode}


def create_extractor(name: str, device: Any = "cpu", **options: Any) -> FeatureExtractor:
    """Instantiate extractor ``name`` on ``device``; ``options`` go to its constructor."""
    return extractor_class(name)(device=device, **options)


def choose_extractor(generated: Source, reference: Source) -> str:
    """The extractor ``--features auto`` picks.

    The reference's embedded dataset's own network when it has one that reads this kind
    (``digits`` against ``digits:test``), else the kind's default (identity for vectors,
    inception for images). Sets of two kinds get the first extractor that reads both.
    """
    kind = get_kind(generated.data_kind)
    dataset = _reference_dataset(reference)
    if reference.data_kind != kind.name:
        both = {kind.name, reference.data_kind}
        return next((name for name, e in EXTRACTORS.items() if both <= set(e.kinds)), kind.default_extractor)
    preferred = DATASET_EXTRACTORS.get(dataset or "")
    if preferred is not None and kind.name in extractor_kinds(preferred):
        return preferred
    return kind.default_extractor


def _reference_dataset(reference: Source) -> str | None:
    """The embedded dataset behind a reference: ``mnist`` for ``mnist:test`` and for ``task:sr4``."""
    if reference.kind == "dataset":
        return reference.spec.split(":")[0]
    task = getattr(reference, "task", None)
    if reference.kind == "task" and isinstance(task, str):
        from gen_eval.datasets.tasks import get_task

        return get_task(task).dataset
    return None


def extractor_status(**options: Any) -> list[dict[str, Any]]:
    """One row per extractor: name, description, input kind, and whether its weights are available."""
    rows = []
    for name in EXTRACTORS.names():
        cls = extractor_class(name)
        available, detail = cls.availability(**options)
        rows.append(
            {
                "name": name,
                "input": cls.input_kind,
                "description": cls.description,
                "available": available,
                "detail": detail,
            }
        )
    return rows
