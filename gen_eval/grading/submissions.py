"""Students' submissions for ``gen-eval score``: finding them, unpacking them safely, opening their samples.

Layout of SUBMISSIONS_DIR (entries are taken in sorted name order)::

    SUBMISSIONS_DIR/
      alice/                 a folder: the submission "alice"
        submission.toml      optional metadata (below)
        samples.npz          the samples: samples.npz or samples.npy if present, else the one
                             .npz/.npy anywhere in the folder, else the images (png, jpg, webp,
                             bmp) under samples/ if that folder exists, else every image in it;
                             point clouds: an (N, P, 3) float array, or samples/ holding one
                             .ply/.xyz/.npy cloud per file; text: samples.txt or
                             samples.jsonl, else the one .jsonl in it (one sample per line)
      bob.zip                an archive: the submission "bob"; the same layout at its root or
      carol.tar.gz           inside its one top-level folder (.zip, .tar, .tar.gz, .tgz,
                             .tar.bz2, .tar.xz)
      dave.npz               a bare array file: the submission "dave" (no metadata); likewise
      erin.jsonl             a bare .jsonl text file (a bare .txt is taken for a note)

Names starting with ``.`` or ``_`` are not graded and are listed as ignored with that reason, as are
other files. A top-level entry that is a symbolic link is refused (its files are another
submission's, or from outside), and so is a submission holding a folder that is a link
(:mod:`gen_eval.grading.contents`, which also counts samples against ``Limits.max_samples``).
Finding the entries lives in :mod:`gen_eval.grading.discovery` (``Entry`` and ``discover`` are
re-exported here). An ``.npz``
holds the samples as ``arr_0`` (``np.savez(path, samples)``), as ``samples`` or as its only array.
Arrays are NHWC/NCHW/NHW images (uint8, or floats in [0, 1], [-1, 1] or [0, 255]) or (N, D)
float vectors, as for ``gen-eval evaluate``.

``submission.toml`` (who made it, its model family, the numbers it claims) is read as data, never
executed, by :mod:`gen_eval.grading.metadata`.

Safety. Nothing submitted is unpickled or run: arrays are read with their header checked and
object arrays refused; images are decoded only as PNG, JPEG, WebP or BMP (whatever their suffix
says), with their declared size checked first; TOML is parsed by ``tomllib``. Archives are listed
before anything is written: absolute paths, ``..``, links, device files, encrypted members, more
than ``Limits.max_members`` files, more than ``Limits.max_bytes`` unpacked or a member compressed
more than ``Limits.max_ratio`` to 1 refuse the whole submission. Members are then copied into a
fresh temporary folder (never outside it, counting the bytes actually written), which is deleted
when the submission is done (the unpacking itself lives in :mod:`gen_eval.grading.archives`).
"""

from __future__ import annotations

import hashlib
import math
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from gen_eval.errors import GenEvalError, StorageError
from gen_eval.grading.archives import Limits, clean_text, unpack_tar, unpack_zip
from gen_eval.grading.contents import declared_count, refuse_linked_folders, refuse_or_warn, unread_files
from gen_eval.grading.discovery import ARRAY_SUFFIXES, TEXT_SUFFIXES, Entry, discover  # noqa: F401 (discover: re-exported)
from gen_eval.grading.metadata import METADATA, Metadata, read_metadata
from gen_eval.kinds import get_kind
from gen_eval.sources.base import Source
from gen_eval.sources.folder import IMAGE_SUFFIXES


@dataclass
class Prepared:
    """A submission ready to open: where its samples are and what its metadata says."""

    entry: Entry
    samples: Path  # an array file or a folder of images
    label: str  # the samples' path as the grader sees it (inside the archive for archives)
    metadata: Metadata
    warnings: list[str] = field(default_factory=list)  # files left out (GIFs, archives inside)


# Formats whose loading can execute code: refused by name, never opened.
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt")


# -- one submission ---------------------------------------------------------------------------------
def _inside(path: Path, root: Path, label: str) -> Path:
    if not path.resolve().is_relative_to(root.resolve()):
        raise GenEvalError(f"{label}: a link pointing outside the submission; remove it")
    return path


def _find_samples(root: Path, label: str) -> Path:
    """The samples of a submission folder (see the module docstring for the order of preference)."""
    for name in ("samples.npz", "samples.npy", "samples.txt", "samples.jsonl"):
        if (root / name).is_file():
            return _inside(root / name, root, label)
    from gen_eval.sources.pointcloud import is_cloud_folder

    if (root / "samples").is_dir() and is_cloud_folder(root / "samples"):  # one point cloud per file
        return _inside(root / "samples", root, label)
    arrays = sorted(
        path
        for path in root.rglob("*")
        if path.suffix.lower() in ARRAY_SUFFIXES
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )
    if len(arrays) > 1:
        names = ", ".join(path.relative_to(root).as_posix() for path in arrays[:5])
        raise GenEvalError(f"{label}: holds {len(arrays)} arrays ({names}); keep one, or name it samples.npz")
    if arrays:
        return _inside(arrays[0], root, label)
    folder = root / "samples" if (root / "samples").is_dir() else root
    if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.rglob("*")):
        texts = sorted(p for p in root.rglob("*.jsonl") if p.is_file())  # a .txt may be a README
        if len(texts) == 1:
            return _inside(texts[0], root, label)
        pickles = sorted(p for p in root.rglob("*") if p.suffix.lower() in PICKLE_SUFFIXES and p.is_file())
        if pickles:
            raise GenEvalError(
                f"{label}/{pickles[0].relative_to(root).as_posix()}: a pickle (.pt/.pth/.pkl), which can run "
                "code when loaded, so it is never opened; submit samples as .npz/.npy arrays or PNG images"
            )
    return folder


@contextmanager
def prepare(entry: Entry, limits: Limits = Limits()) -> Iterator[Prepared]:
    """Unpack (archives, into a temporary folder deleted afterwards) and locate one submission.

    Every exception raised inside the ``with`` block, or while preparing, comes out as one
    GenEvalError line whose paths are written as the grader sees them (``bob.zip/samples/x.png``
    rather than the temporary folder).

    Parameters
    ----------
    entry : Entry
        The submission.
    limits : Limits
        What unpacking may cost.

    Yields
    ------
    Prepared
    """
    scratch: Path | None = None
    relabel = {str(entry.path): entry.path.name}
    try:
        if entry.error:
            raise GenEvalError(entry.error)
        if entry.kind == "array":
            yield Prepared(entry, entry.path, entry.path.name, Metadata())
            return
        root = entry.path
        if entry.kind in ("zip", "tar"):
            scratch = Path(tempfile.mkdtemp(prefix="gen-eval-submission-"))
            relabel = {str(scratch): entry.path.name, str(scratch.resolve()): entry.path.name}
            (unpack_zip if entry.kind == "zip" else unpack_tar)(entry.path, scratch, limits)
            root = scratch
            while len(children := list(root.iterdir())) == 1 and children[0].is_dir():
                root = children[0]  # the usual "zip of a folder"
        # Before anything is searched: rglob would otherwise walk into a linked folder.
        refuse_linked_folders(root, entry.path.name, entry.path.parent)
        samples = _find_samples(root, entry.path.name)
        metadata = read_metadata(_inside(root / METADATA, root, f"{entry.path.name}/{METADATA}"), limits)
        base = scratch if scratch is not None else entry.path
        label = "/".join([entry.path.name, *samples.relative_to(base).parts])
        found = samples.is_file() or any(p.suffix.lower() in IMAGE_SUFFIXES for p in samples.rglob("*"))
        archived = scratch is not None
        left_out = unread_files(root, base, entry.path.name, archived)
        yield Prepared(entry, samples, label, metadata, refuse_or_warn(left_out, found, archived))
    except StorageError:
        raise  # the grader's own disk: its paths are the grader's, and score stops on it
    except Exception as exc:
        message = (
            str(exc) if isinstance(exc, GenEvalError) else f"internal error ({type(exc).__name__}: {exc})"
        )
        for long, short in sorted(relabel.items(), key=lambda item: -len(item[0])):
            message = message.replace(long, short)
        raise GenEvalError(" ".join(message.split())) from exc
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _sample_files(samples: Path) -> list[Path]:
    if samples.is_file():
        return [samples]
    found = [p for p in samples.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    # Hashing reads every file: a link must not make the grader read something outside the submission.
    return sorted(
        (_inside(p, samples, str(p)) for p in found), key=lambda p: p.relative_to(samples).as_posix()
    )


def fingerprint(prepared: Prepared) -> str:
    """SHA-256 of the samples' bytes and names (not of ``submission.toml``: claims are re-read every time)."""
    digest = hashlib.sha256(b"gen-eval-submission-v1\0" + prepared.label.encode() + b"\0")
    for path in _sample_files(prepared.samples):
        file_digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                file_digest.update(chunk)
        name = path.name if path == prepared.samples else path.relative_to(prepared.samples).as_posix()
        digest.update(name.encode() + b"\0" + file_digest.digest())
    return digest.hexdigest()


def _npz_key(path: Path, label: str) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = [name[:-4] for name in archive.namelist() if name.endswith(".npy")]
    except (zipfile.BadZipFile, OSError) as exc:
        raise GenEvalError(
            f"{label}: not a readable .npz archive ({exc}); re-save it with numpy.savez"
        ) from exc
    if "outputs" in names:  # a paired submission (issue 23): outputs beside inputs/targets or a task
        return "outputs"
    names = [name for name in names if name != "labels"]  # classes beside the samples (issue 23)
    if "arr_0" in names or len(names) <= 1:
        return None  # ArraySource's own choice (and its error for an empty file)
    if "samples" in names:
        return "samples"
    raise GenEvalError(
        f"{label}: holds arrays {', '.join(clean_text(n, 30) for n in names[:5])}; save the samples as arr_0 "
        "(np.savez(path, samples)) or as the only array"
    )


def count_samples(prepared: Prepared) -> int:
    """How many samples a prepared submission holds, from the array header or file names alone."""
    path = prepared.samples
    key = _npz_key(path, prepared.label) if path.is_file() and path.suffix.lower() == ".npz" else None
    return declared_count(path, prepared.label, key)


def open_samples(
    prepared: Prepared,
    *,
    num_samples: int | None = None,
    resize: int | None = None,
    method: str = "bicubic",
    limits: Limits = Limits(),
) -> Source:
    """Open a prepared submission's samples as a Source, within ``limits``.

    Parameters
    ----------
    prepared : Prepared
        From :func:`prepare`.
    num_samples : int, optional
        Keep the first N samples.
    resize : int, optional
        Resize folder images to ``resize`` x ``resize`` with ``method``.
    method : str
        A method of :mod:`gen_eval.sources.resize`.
    limits : Limits
        Byte and pixel limits.

    Returns
    -------
    Source
    """
    from gen_eval.sources.arrays import ArraySource
    from gen_eval.sources.folder import FolderSource
    from gen_eval.sources.paired import PairedFileSource, is_paired_folder, is_paired_npz
    from gen_eval.sources.pointcloud import PointCloudSource, is_cloud_array, is_cloud_folder
    from gen_eval.sources.text import TextFileSource

    path, label = prepared.samples, prepared.label
    source: Source
    if is_paired_npz(path) or is_paired_folder(path):  # outputs with inputs/targets or a task (issue 23)
        if path.is_file() and path.stat().st_size > limits.max_bytes:
            raise GenEvalError(
                f"{label}: {path.stat().st_size:,} bytes, over the limit of {limits.max_bytes:,}; submit fewer samples"
            )
        source = PairedFileSource(spec=label, path=path, limit=num_samples)
    elif is_cloud_array(path) or is_cloud_folder(path):
        key = _npz_key(path, label) if path.suffix.lower() == ".npz" else None
        source = PointCloudSource(
            spec=label, path=path, key=key, limit=num_samples, max_bytes=limits.max_bytes
        )
    elif path.is_file() and path.suffix.lower() in TEXT_SUFFIXES:
        if path.stat().st_size > limits.max_bytes:
            raise GenEvalError(
                f"{label}: {path.stat().st_size:,} bytes, over the limit of {limits.max_bytes:,}; submit fewer samples"
            )
        source = TextFileSource(spec=label, path=path, limit=num_samples)
    elif path.is_file():
        key = _npz_key(path, label) if path.suffix.lower() == ".npz" else None
        source = ArraySource(spec=label, path=path, key=key, limit=num_samples, max_bytes=limits.max_bytes)
    else:
        source = FolderSource(
            spec=label,
            root=path,
            limit=num_samples,
            resize=resize,
            resize_method=method,
            max_pixels=limits.max_image_pixels,
        )
    decoded = len(source) * math.prod(source.sample_shape) * get_kind(source.data_kind).itemsize
    if decoded > limits.max_bytes:
        raise GenEvalError(
            f"{label}: {len(source):,} samples of shape {source.sample_shape} take {decoded:,} bytes decoded, "
            f"over the limit of {limits.max_bytes:,}; submit fewer or smaller samples"
        )
    return source


def check_samples(source: Source, reference: Source, *, num_samples: int | None, min_samples: int) -> None:
    """Refuse samples that would score without meaning: too few, or vectors of another dimension.

    Images of another size follow the size rule (:func:`check_size`).

    Parameters
    ----------
    source, reference : Source
        A submission's samples and the reference.
    num_samples : int, optional
        The count every submission must reach (``--num-samples``).
    min_samples : int
        The fewest samples worth scoring.
    """
    ref = reference
    if num_samples is not None and len(source) < num_samples:
        raise GenEvalError(
            f"{source.spec}: {len(source)} samples, fewer than --num-samples {num_samples} "
            "(every submission is scored on the same number)"
        )
    if len(source) < min_samples:
        raise GenEvalError(
            f"{source.spec}: only {len(source)} samples; at least {min_samples} are needed to score"
        )
    kind = get_kind(source.data_kind)
    # Images of another size follow the size rule; samples of any other kind must match in shape.
    if (
        source.data_kind == ref.data_kind
        and "images" not in kind.provides
        and source.sample_shape != ref.sample_shape
    ):
        mine, theirs = (" x ".join(map(str, s.sample_shape)) for s in (source, ref))
        raise GenEvalError(f"{source.spec}: {kind.plural} of dimension {mine}, the reference's are {theirs}")


def check_size(source: Source, reference: Source, features: str, method: str) -> None:
    """Under ``--resize-method refuse``, refuse images of another size, naming any unreadable file too.

    The size rule of :mod:`gen_eval.sources.resize` resizes otherwise, and the extraction then
    reports a truncated or corrupt file itself. A refusal decodes every image first, so that a
    size mismatch never hides a file that would also fail.

    Parameters
    ----------
    source, reference : Source
        A submission's samples and the reference.
    features : str
        The extractor's name (its input size, if it declares one, is the target).
    method : str
        The resize method.
    """
    from gen_eval.features import extractor_class
    from gen_eval.sources.resize import plan_resize, target_size

    if method != "refuse" or "images" not in get_kind(source.data_kind).provides:
        return
    extractor = extractor_class(features)
    reason = None if extractor.input_size else f"to match the reference {reference.spec}"
    try:
        plan_resize(source, extractor, target_size(extractor, reference), method, reason)
    except GenEvalError as refusal:
        try:
            for _ in source.batches(64):
                pass
        except GenEvalError as unreadable:
            raise GenEvalError(f"{refusal}; also {unreadable}") from None
        raise


def batch_size_for(source: Source) -> int | None:
    """A smaller batch for large samples, so one batch of decoded images stays under ~256 MB."""
    sample_bytes = max(1, math.prod(source.sample_shape))
    return None if sample_bytes <= 256 << 10 else max(1, min(8, (256 << 20) // sample_bytes))
