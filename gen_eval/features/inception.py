"""InceptionV3 features computed by torch-fidelity's own network (FID, KID, PRC and IS inputs).

The weights are never downloaded here: they are looked up locally (see
:func:`resolve_inception_weights`) and checked to be plain tensor data before use.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import torch
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3, FeatureExtractorInceptionV3

from gen_eval.errors import GenEvalError
from gen_eval.features.base import FeatureExtractor, file_sha256
from gen_eval.features.inception_input import (
    DEFAULT_RESIZE_MODE,
    PREPROCESSING,
    RESIZE_MODES,
    SPATIAL_NOTE,
    check_resize_mode,
    network_input,
    run_network,
    spatial_features,
)

INCEPTION_WEIGHTS_URL: str = URL_INCEPTION_V3
#: The name torch-fidelity's download gives the file in the torch hub cache.
INCEPTION_WEIGHTS_FILENAME: str = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_WEIGHTS_ENV: str = "GEN_EVAL_INCEPTION_WEIGHTS"
#: Torch hub names files ``name-<first 8 hex of sha256>.ext``; other weights give incomparable FIDs.
OFFICIAL_SHA256_PREFIX: str = "6726825d"

# Our names -> torch-fidelity's. Its FID/KID/PRC use "2048", its IS "logits_unbiased". Requesting
# "logits" together with "logits_unbiased" makes it compute logits as mm + bias instead of one addmm
# (differs by ~2e-7 relative from asking for "logits" alone).
_FIDELITY_NAMES = {"features": "2048", "logits": "logits", "logits_unbiased": "logits_unbiased"}
_SHA256_CACHE: dict[tuple[str, int, int], str] = {}


def hub_cache_weights_path() -> Path:
    """Where torch-fidelity's own download would have put the weights (honours ``TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_FILENAME


def _missing_message() -> str:
    return (
        f"InceptionV3 weights not found: download {INCEPTION_WEIGHTS_FILENAME} on a connected machine from "
        f"{INCEPTION_WEIGHTS_URL}, then pass --inception-weights PATH, set {INCEPTION_WEIGHTS_ENV}=PATH, "
        f"or copy it to {hub_cache_weights_path()}; or, without downloading anything, use "
        "--features digits (8x8 digit images) or --features identity (pixels or vectors as given)"
    )


def resolve_inception_weights(weights_path: str | os.PathLike[str] | None = None) -> Path:
    """Find the InceptionV3 weights file without downloading anything.

    Parameters
    ----------
    weights_path : str or path-like, optional
        Explicit file (the CLI's ``--inception-weights``). Beats everything else.

    Returns
    -------
    Path
        The first of: ``weights_path``, ``$GEN_EVAL_INCEPTION_WEIGHTS``, the torch hub cache file.

    Raises
    ------
    GenEvalError
        If an explicitly named file is missing (we do not fall back silently past a typo),
        or if no candidate exists.
    """
    env_value = os.environ.get(INCEPTION_WEIGHTS_ENV, "").strip()
    for source, value in (("--inception-weights", weights_path), (INCEPTION_WEIGHTS_ENV, env_value)):
        if value is None or str(value) == "":
            continue
        path = Path(value).expanduser()
        if not path.is_file():
            problem = "is a directory, not a file" if path.is_dir() else "does not exist"
            raise GenEvalError(
                f"{source}={path}: {problem}; point it at {INCEPTION_WEIGHTS_FILENAME} "
                f"(download from {INCEPTION_WEIGHTS_URL})"
            )
        return path
    cached = hub_cache_weights_path()
    if cached.is_file():
        return cached
    raise GenEvalError(_missing_message())


@cache
def _reference_shapes() -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes of torch-fidelity's network, built on the meta device.

    Given no path it would download, so it gets an in-memory empty state dict and loads non-strictly.
    """

    class _Skeleton(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):  # type: ignore[override]
            return super().load_state_dict(state_dict, strict=False, assign=assign)

    empty = io.BytesIO()
    torch.save({}, empty)
    empty.seek(0)
    with torch.device("meta"):
        skeleton = _Skeleton("inception-v3-compat", ["2048"], feature_extractor_weights_path=empty)
    return {key: tuple(value.shape) for key, value in skeleton.state_dict().items()}


def _short_reason(exc: BaseException) -> str:
    """First sentence of torch's load error, preferring the 'Unsupported global' line.

    Cut before torch's own advice, which suggests allow-listing the offending global.
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
    picked = next((line for line in lines if "Unsupported" in line), lines[0])
    return picked.split(". ")[0][:160]


def load_inception_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Load a weights file as data only and check it fits torch-fidelity's InceptionV3.

    Parameters
    ----------
    path : str or path-like
        The weights file.

    Returns
    -------
    dict of str to Tensor
        The state dict, on the CPU.

    Raises
    ------
    GenEvalError
        If the file is not a plain tensor state dict (pickled code, other objects, corrupt or
        truncated), or its keys or shapes differ from torch-fidelity's network.
    """
    redownload = f"download it again from {INCEPTION_WEIGHTS_URL}"
    try:
        # weights_only=True: the unpickler resolves only allow-listed globals (tensor rebuilders,
        # storages, OrderedDict, ...), so a file carrying code is refused instead of run.
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise GenEvalError(
            f"InceptionV3 weights {path}: not a plain tensor state dict, refused to load it "
            f"({type(exc).__name__}: {_short_reason(exc)}); {redownload}"
        ) from exc
    if not isinstance(loaded, Mapping) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in loaded.items()
    ):
        raise GenEvalError(
            f"InceptionV3 weights {path}: not a plain tensor state dict "
            f"(got a {type(loaded).__name__} of other objects); {redownload}"
        )
    expected = _reference_shapes()
    # Old-format files may lack BatchNorm's num_batches_tracked; load_state_dict fills it in.
    problems = {
        "missing": [k for k in expected if k not in loaded and not k.endswith("num_batches_tracked")],
        "unexpected": [k for k in loaded if k not in expected],
        "wrong-shape": [k for k in expected if k in loaded and tuple(loaded[k].shape) != expected[k]],
    }
    if any(problems.values()):
        details = "; ".join(f"{kind} {len(keys)} (e.g. {keys[0]})" for kind, keys in problems.items() if keys)
        raise GenEvalError(
            f"InceptionV3 weights {path}: state dict does not match torch-fidelity's InceptionV3 "
            f"({details}); {redownload}"
        )
    return dict(loaded)


def weights_file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a weights file, cached per (resolved path, size, mtime) so 91 MB is hashed once."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    key = (str(resolved), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA256_CACHE:
        _SHA256_CACHE[key] = file_sha256(resolved)
    return _SHA256_CACHE[key]


class InceptionExtractor(FeatureExtractor):
    """torch-fidelity's InceptionV3 (``FeatureExtractorInceptionV3``), run on our batches.

    Parameters
    ----------
    device : str or torch.device
        Where the network runs.
    weights_path : str or path-like, optional
        Explicit weights file; see :func:`resolve_inception_weights` for the fallbacks.
    channels_last : bool
        Run the network and its input in ``torch.channels_last`` memory format (faster on
        some GPUs; results agree to about 1e-4 relative, not bit for bit).
    resize_mode : {"legacy-tf", "clean", "legacy-pytorch"}
        Whose resize and scaling brings images to the network (torch-fidelity's, clean-fid's,
        pytorch-fid's; :mod:`gen_eval.features.inception_input`); part of :attr:`preprocessing`,
        so of the manifest and the feature cache's key.
    spatial : bool
        Also return ``"spatial"``: ADM's 2023-d ``mixed_6/conv`` features that sFID reads. Off by
        default: the pool-feature path then runs exactly as before (no hook, no extra output).
    """

    name = "inception"
    input_kind = "image"
    feature_names = ("features", "logits", "logits_unbiased")
    description = "InceptionV3 (TF 2015-12-05 weights, torch-fidelity): 2048-d pool features, 1008 logits"
    _CHANNELS = (
        "uint8 NCHW; 1-channel images repeated to 3 channels (as PIL grey->RGB), 3-channel used as is; "
    )
    preprocessing = _CHANNELS + PREPROCESSING[DEFAULT_RESIZE_MODE]
    # The --resize-mode conventions this extractor offers (the first is its default).
    resize_modes: tuple[str, ...] = RESIZE_MODES

    def __init__(
        self,
        device: str | torch.device = "cpu",
        weights_path: str | os.PathLike[str] | None = None,
        channels_last: bool = False,
        resize_mode: str = DEFAULT_RESIZE_MODE,
        spatial: bool = False,
    ) -> None:
        super().__init__(device)
        self.resize_mode = check_resize_mode(resize_mode)
        self.spatial = spatial
        self.weights_path = resolve_inception_weights(weights_path)
        state_dict = load_inception_state_dict(self.weights_path)
        self.weights_sha256 = weights_file_sha256(self.weights_path)
        # torch-fidelity unpickles its weights with weights_only=False. A file that loaded under
        # weights_only=True references only allow-listed globals, so unpickling those same bytes
        # again cannot execute code. We go one step further and never hand it the user's file at
        # all: it gets our own re-serialisation of the tensors that passed the gate, which also
        # closes the window where the file could be swapped between the two loads, and copes with
        # CUDA-saved files (torch-fidelity passes no map_location).
        buffer = io.BytesIO()
        torch.save(state_dict, buffer)
        del state_dict
        buffer.seek(0)
        try:
            model = FeatureExtractorInceptionV3(
                "inception-v3-compat",
                [_FIDELITY_NAMES[name] for name in self.feature_names],
                feature_extractor_weights_path=buffer,
            )
        except (RuntimeError, ValueError) as exc:
            raise GenEvalError(
                f"InceptionV3 weights {self.weights_path}: torch-fidelity could not load them "
                f"({_short_reason(exc)}); download again from {INCEPTION_WEIGHTS_URL}"
            ) from exc
        self.channels_last = channels_last
        # The preprocessing text is part of the cache key: every choice that changes a feature
        # (resize mode, memory layout: ~2e-6 relative) or adds one (spatial) goes into it.
        parts = [self._CHANNELS + PREPROCESSING[self.resize_mode]]
        if channels_last:
            parts.append("network run in channels_last memory format")
        if spatial:
            parts.append(SPATIAL_NOTE)
            self.feature_names = (*InceptionExtractor.feature_names, "spatial")
        self.preprocessing = "; ".join(parts)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.to(self.device, memory_format=memory_format)
        self._captured: list[torch.Tensor] = []
        if spatial:
            # A hook on the block the forward pass runs anyway: no second pass, nothing when off.
            self.model.Mixed_6d.branch1x1.register_forward_hook(
                lambda _module, _inputs, output: self._captured.append(spatial_features(output))
            )

    @property
    def weights_fingerprint(self) -> str:
        """SHA-256 of the weights file."""
        return self.weights_sha256

    @property
    def is_official_weights(self) -> bool:
        """Whether the file's SHA-256 has the official prefix; FIDs from other weights are not comparable."""
        return self.weights_sha256.startswith(OFFICIAL_SHA256_PREFIX)

    @classmethod
    def availability(
        cls, weights_path: str | os.PathLike[str] | None = None, **_: object
    ) -> tuple[bool, str]:
        """Whether a weights file is found (without reading it).

        Parameters
        ----------
        weights_path : str or path-like, optional
            Explicit weights file, as for the constructor.

        Returns
        -------
        tuple of (bool, str)
            ``(True, path)`` or ``(False, one-line message saying how to get the weights)``.
        """
        try:
            return True, str(resolve_inception_weights(weights_path))
        except GenEvalError as exc:
            return False, str(exc)

    def extract(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features of uint8 NCHW images with 1 or 3 channels; see :attr:`preprocessing`."""
        if batch.dtype != torch.uint8 or batch.dim() != 4 or batch.shape[1] not in (1, 3):
            raise GenEvalError(
                f"inception features: images must be uint8 (N, 1 or 3, H, W), got {batch.dtype} "
                f"{tuple(batch.shape)}; convert them to 8-bit grey or RGB (drop alpha) first"
            )
        if batch.shape[1] == 1:
            batch = batch.repeat(1, 3, 1, 1)
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self._captured.clear()
        if self.resize_mode == DEFAULT_RESIZE_MODE:
            # torch-fidelity's own forward, resize included: bit for bit what it computes.
            outputs = self.model(batch.contiguous(memory_format=memory_format))
        else:
            x = network_input(batch, self.resize_mode).contiguous(memory_format=memory_format)
            outputs = run_network(self.model, x)
        named = dict(zip(InceptionExtractor.feature_names, outputs, strict=True))
        if self.spatial:
            named["spatial"] = self._captured.pop()
        return {name: named[name].to(torch.float32) for name in self.feature_names}
