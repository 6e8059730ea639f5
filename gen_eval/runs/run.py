"""Run directories: written atomically, checksummed, loadable by every later command.

Layout::

    RUN/
      manifest.json        versions, sources and hashes, extractor and weights hash, options,
                           and the SHA-256 of every other file (verified by load_run)
      metrics.json         {"metrics": {name: Result.to_dict()}, "collapse": verdict, findings and
                           every detector's numbers (see gen_eval.collapse)}
      features.safetensors generated-set features (+ labels), checksummed
      samples.png          a grid of generated samples (or a scatter for 2-D data)
      classes.png          labelled generated images only: a row of samples per class, beside the
                           reference's samples of that class (gen_eval.runs.classes)
      collapse/            the collapse verdict's figures (plotly JSON) and evidence images (PNG)

The whole directory is assembled under a temporary sibling name and renamed into place
in one step, so a killed process leaves either no run or a complete one, never a
half-written file that a later command would read.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gen_eval.errors import GenEvalError, StorageError
from gen_eval.metrics.result import Result
from gen_eval.schemas import to_json

if TYPE_CHECKING:
    import torch

RUN_FORMAT = "gen-eval-run-v1"
MANIFEST = "manifest.json"
METRICS = "metrics.json"
FEATURES = "features.safetensors"
SAMPLES = "samples.png"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_run(
    out: Path,
    manifest: dict[str, Any],
    metrics: dict[str, Result],
    features: dict[str, torch.Tensor],
    samples_png: bytes,
    overwrite: bool = False,
    collapse: dict[str, Any] | None = None,
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """Write a complete run to ``out`` atomically and return its path.

    ``collapse`` (the collapse report as a dict) goes into ``metrics.json``; ``extra_files`` maps
    relative paths (``collapse/ndb.json``) to bytes. Every file is listed with its checksum.

    Raises
    ------
    GenEvalError
        If ``out`` exists and ``overwrite`` is false, or the folder cannot be written.
    """
    from gen_eval.features.cache import write_tensors

    out = Path(out)
    if out.exists() and not overwrite:
        raise GenEvalError(f"{out}: already exists; pass --overwrite to replace it or choose another --out")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _remove_debris(out)
        staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes it private; a run is meant to be shared
    except OSError as exc:
        raise StorageError(
            f"{out.parent}: cannot create the run folder there ({exc.strerror}); choose --out"
        ) from exc
    try:
        write_tensors(staging / FEATURES, features, {"kind": "generated-features"})
        _write_bytes(staging / SAMPLES, samples_png)
        metrics_doc: dict[str, Any] = {
            "format": RUN_FORMAT,
            "metrics": {name: r.to_dict() for name, r in metrics.items()},
        }
        if collapse is not None:
            metrics_doc["collapse"] = collapse
        _write_bytes(staging / METRICS, to_json(metrics_doc).encode())
        for relative, data in (extra_files or {}).items():
            target = staging / relative
            if Path(relative).is_absolute() or ".." in Path(relative).parts:
                raise ValueError(f"run file {relative!r} must be a relative path inside the run")
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_bytes(target, data)
        names = [FEATURES, SAMPLES, METRICS, *sorted(extra_files or {})]
        files = {name: _sha256(staging / name) for name in names}
        full_manifest = {"format": RUN_FORMAT, **manifest, "files": files}
        _write_bytes(staging / MANIFEST, to_json(full_manifest).encode())
        _swap_into(staging, out)
    except OSError as exc:
        raise StorageError(f"{out}: writing the run failed ({exc.strerror}); nothing was written") from exc
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return out


def _remove_debris(out: Path) -> None:
    """Delete staging and retired folders of ``out`` left by a writer that was killed mid-write.

    They are hidden (``.NAME.tmp-*``, ``.NAME.old-*``) and never read; a new write of the same
    run would otherwise leave them piling up. Two writers of one run at once is not supported.
    """
    for stale in [*out.parent.glob(f".{out.name}.tmp-*"), *out.parent.glob(f".{out.name}.old-*")]:
        shutil.rmtree(stale, ignore_errors=True)


def _swap_into(staging: Path, out: Path) -> None:
    """Put the complete folder ``staging`` at ``out``; a reader sees the old run or the new one."""
    if out.exists():
        retired = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
        os.replace(out, retired / "run")
        os.replace(staging, out)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staging, out)


def add_run_files(run_dir: str | Path, files: dict[str, bytes], replace_prefix: str | None = None) -> Path:
    """Add (or replace) files in an existing run, with checksums, without ever half-updating it.

    The run is verified, copied to a staging folder next to it (hard links where the file system
    allows), the files are written and the manifest re-checksummed there, and the folder is
    swapped in: a crash leaves the old run intact. ``replace_prefix`` (e.g. ``"latent/"``)
    drops the run's earlier files under that prefix first, so stale results do not linger.

    Raises
    ------
    GenEvalError
        If the run is invalid, a path leaves the run, or the folder cannot be written.
    """
    run = load_run(run_dir)
    out = run.path
    for relative in files:
        if Path(relative).is_absolute() or ".." in Path(relative).parts or relative == MANIFEST:
            raise GenEvalError(
                f"run file {relative!r} must be a relative path inside the run (not the manifest)"
            )
    manifest = dict(run.manifest)
    checksums = {
        name: digest
        for name, digest in manifest.get("files", {}).items()
        if replace_prefix is None or not name.startswith(replace_prefix)
    }
    try:
        staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
        os.chmod(staging, 0o777 & ~_umask())
    except OSError as exc:
        raise GenEvalError(f"{out.parent}: cannot write next to the run ({exc.strerror})") from exc
    try:
        # Every file comes along (report.html too), except what is being replaced.
        kept = [path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file()]
        kept.remove(MANIFEST)
        for name in kept:
            if replace_prefix is not None and name.startswith(replace_prefix):
                continue
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(out / name, target)
            except OSError:
                shutil.copy2(out / name, target)
        for relative, data in files.items():
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                target.unlink()  # a hard link: writing through it would change the old run too
            _write_bytes(target, data)
            checksums[relative] = _sha256(target)
        manifest["files"] = checksums
        _write_bytes(staging / MANIFEST, to_json(manifest).encode())
        _swap_into(staging, out)
    except OSError as exc:
        raise GenEvalError(f"{out}: adding files failed ({exc.strerror}); the run is unchanged") from exc
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return out


@dataclass
class Run:
    """A run loaded from disk (checksums verified)."""

    path: Path
    manifest: dict[str, Any]
    metrics: dict[str, Result]
    collapse: dict[str, Any] | None = None  # verdict, findings and detector numbers, when checked

    def features(self) -> dict[str, torch.Tensor]:
        """The generated-set features saved with the run (verified against their checksum)."""
        from gen_eval.features.cache import read_tensors

        try:
            tensors, _ = read_tensors(self.path / FEATURES)
        except ValueError as exc:
            raise GenEvalError(f"{self.path / FEATURES}: {exc}; re-run the evaluation") from exc
        return tensors


def load_run(path: str | Path) -> Run:
    """Load and verify a run directory written by :func:`write_run`."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise GenEvalError(
            f"{path}: not a gen-eval run (no {MANIFEST}); point at a folder written by evaluate"
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GenEvalError(f"{manifest_path}: unreadable JSON ({exc}); re-run the evaluation") from exc
    if manifest.get("format") != RUN_FORMAT:
        raise GenEvalError(f"{path}: run format {manifest.get('format')!r} is not {RUN_FORMAT!r}; re-run it")
    for name, expected in manifest.get("files", {}).items():
        if not (path / name).is_file() or _sha256(path / name) != expected:
            raise GenEvalError(f"{path / name}: missing or fails its checksum; re-run the evaluation")
    metrics_doc = json.loads((path / METRICS).read_text())
    metrics = {name: Result.from_dict(data) for name, data in metrics_doc["metrics"].items()}
    return Run(path, manifest, metrics, metrics_doc.get("collapse"))
