"""On-disk feature cache, keyed by what the features depend on, verified on every read.

Key = SHA-256 of (source content hash, extractor name, weights hash, preprocessing,
format version). Each entry is one safetensors file whose metadata carries a SHA-256 of
the tensor bytes: a truncated or corrupted file fails the check, is deleted and rebuilt,
never trusted. Writes go to a temporary file renamed into place, so a killed process
leaves either the old state or a complete entry.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

FORMAT = "gen-eval-features-v1"
log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$GEN_EVAL_CACHE``, else ``$XDG_CACHE_HOME/gen-eval``, else ``~/.cache/gen-eval``."""
    if env := os.environ.get("GEN_EVAL_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gen-eval"


def tensors_checksum(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over names, shapes, dtypes and bytes of ``tensors`` in sorted-name order."""
    import torch

    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].contiguous()
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.view(-1).view(dtype=torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Atomically write ``tensors`` to ``path`` as safetensors with a checksum in the metadata."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {**metadata, "format": FORMAT, "checksum": tensors_checksum(tensors)}
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        try:
            save_file({k: v.contiguous() for k, v in tensors.items()}, tmp, metadata=meta)
        except Exception as exc:  # safetensors reports a full disk as SafetensorError, not OSError
            raise _as_os_error(exc) from exc
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes it private; give it ordinary file permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _as_os_error(exc: Exception) -> OSError:
    """An OSError with the errno that safetensors' message carries ("... (os error 28)")."""
    if isinstance(exc, OSError):
        return exc
    found = re.search(r"os error (\d+)", str(exc))
    code = int(found.group(1)) if found else errno.EIO
    return OSError(code, os.strerror(code))


def read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read tensors written by :func:`write_tensors`; raise ``ValueError`` if they fail the checksum."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for bad headers and sizes
        raise ValueError(f"unreadable ({exc})") from exc
    if metadata.get("format") != FORMAT:
        raise ValueError(f"format {metadata.get('format')!r}, expected {FORMAT!r}")
    if tensors_checksum(tensors) != metadata.get("checksum"):
        raise ValueError("checksum mismatch (corrupted)")
    return tensors, metadata


class FeatureCache:
    """Features of sources on disk; ``root=None`` disables caching."""

    def __init__(self, root: str | Path | None) -> None:
        self.root = Path(root) if root is not None else None
        self.warnings: list[str] = []  # writes the disk refused, one line each

    @staticmethod
    def key(source_fingerprint: str, extractor: dict[str, object]) -> str:
        """Cache key of a source's features under an extractor's ``describe()``."""
        payload = json.dumps(
            [
                FORMAT,
                source_fingerprint,
                extractor["name"],
                extractor["weights_sha256"],
                extractor["preprocessing"],
            ]
        )
        return hashlib.sha256(payload.encode()).hexdigest()

    def path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / key[:2] / f"{key}.safetensors"

    def load(self, key: str) -> dict[str, torch.Tensor] | None:
        """Cached features, or None when absent, disabled, or failing verification (then deleted)."""
        if self.root is None or not self.path(key).exists():
            return None
        try:
            tensors, _ = read_tensors(self.path(key))
        except ValueError as exc:
            log.warning("feature cache entry %s is %s; rebuilding it", self.path(key), exc)
            with contextlib.suppress(OSError):  # a read-only cache: recomputed, never trusted
                self.path(key).unlink(missing_ok=True)
            return None
        return tensors

    def store(self, key: str, features: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
        """Cache ``features``; a write the disk refuses (read-only, full) leaves a warning, not an error.

        The features are already computed, so the evaluation goes on; the entry is simply not there
        next time. The temporary file is removed, so the cache holds complete entries only.
        """
        if self.root is None:
            return
        try:
            write_tensors(self.path(key), features, metadata)
        except OSError as exc:
            warning = (
                f"feature cache {self.root}: not written ({exc.strerror or exc}); features will be "
                "recomputed next time (free space, or point --cache-dir / $GEN_EVAL_CACHE at a writable folder)"
            )
            if warning not in self.warnings:  # evaluate shows these with the run's warnings
                self.warnings.append(warning)
