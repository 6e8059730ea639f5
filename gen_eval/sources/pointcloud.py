"""Point clouds from files: an (N, P, 3) ``.npz``/``.npy`` array, or a folder of one cloud per file.

A folder holds ``.ply`` (ASCII or binary, read with the ``plyfile`` package: the ``vertex``
element's ``x``, ``y``, ``z``), ``.xyz`` (text, one point per line, the first three numbers;
``#`` comments) or ``.npy`` ((P, 3) arrays) files, read in name order (``2.ply`` before
``10.ply``). Arrays load with ``allow_pickle=False``. Every cloud becomes float32; bad input is a
one-line error naming the file: NaN or inf, a last dimension other than 3, fewer than
:data:`MIN_POINTS` points, or clouds of different sizes unless ``--resample-points N`` asks to
bring each to N points (a seeded random subset without replacement when it has more, and its
points plus random repeats when it has fewer; recorded in the manifest's conversions).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gen_eval.errors import GenEvalError
from gen_eval.sources.base import Batch, Source

CLOUD_SUFFIXES = (".ply", ".xyz", ".npy")
MIN_POINTS = 8  # fewer cannot stand for a surface; CD and EMD on them say little
# Rank-3 float arrays narrower than this are clouds (x, y, z, perhaps with extra columns, which is
# an error to name); wider ones stay (N, H, W) grey images for the array reader.
MAX_LAST_DIMENSION = 6
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def _peek_shapes(path: Path) -> list[tuple[tuple[int, ...], np.dtype]]:
    """(shape, dtype) of every array in an .npy/.npz without reading the data."""
    import zipfile

    def header(handle) -> tuple[tuple[int, ...], np.dtype]:
        version = np.lib.format.read_magic(handle)
        read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in read:
            return (), np.dtype("V1")
        shape, _, dtype = read[version](handle)
        return tuple(shape), dtype

    try:
        if path.suffix.lower() == ".npy":
            with open(path, "rb") as handle:
                return [header(handle)]
        with zipfile.ZipFile(path) as archive:
            shapes = []
            for name in archive.namelist():
                if name.endswith(".npy"):
                    with archive.open(name) as handle:
                        shapes.append(header(handle))
            return shapes
    except (OSError, ValueError, zipfile.BadZipFile):
        return []  # not ours to judge: the array reader says what is wrong with it


def is_cloud_array(path: Path) -> bool:
    """Whether ``path`` is an .npy/.npz holding a float (N, P, C) array with C <= 6: clouds, or
    clouds with a wrong last dimension (named as such). Wider ones are (N, H, W) grey images."""
    if path.suffix.lower() not in (".npy", ".npz") or not path.is_file():
        return False
    return any(
        len(shape) == 3 and shape[-1] <= MAX_LAST_DIMENSION and np.issubdtype(dtype, np.floating)
        for shape, dtype in _peek_shapes(path)
    )


def _cloud_files(root: Path) -> list[Path]:
    return [
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in CLOUD_SUFFIXES and not p.name.startswith(".")
    ]


def is_cloud_folder(path: Path) -> bool:
    """Whether ``path`` is a folder of point-cloud files and no images."""
    if not path.is_dir():
        return False
    if any(p.suffix.lower() in _IMAGE_SUFFIXES for p in path.rglob("*")):
        return False
    return bool(_cloud_files(path))


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def read_ply(path: Path) -> np.ndarray:
    """The x, y, z of a .ply file's vertices, float64 (P, 3)."""
    from plyfile import PlyData

    try:
        data = PlyData.read(str(path))
        vertex = data["vertex"]
        return np.stack([np.asarray(vertex[axis], dtype=np.float64) for axis in ("x", "y", "z")], axis=1)
    except KeyError as error:
        raise GenEvalError(
            f"{path}: a .ply point cloud needs a vertex element with x, y and z ({error})"
        ) from None
    except Exception as error:  # plyfile raises its own and struct/ValueError types on bad input
        raise GenEvalError(f"{path}: not a readable .ply file ({type(error).__name__}: {error})") from None


def read_xyz(path: Path) -> np.ndarray:
    """A text cloud: one point per line, its first three numbers; ``#`` lines are comments."""
    try:
        rows = np.loadtxt(path, comments="#", ndmin=2, usecols=(0, 1, 2), dtype=np.float64)
    except (ValueError, IndexError) as error:
        raise GenEvalError(f"{path}: an .xyz cloud needs three numbers per line ({error})") from None
    return rows


def read_cloud_file(path: Path) -> np.ndarray:
    """One cloud (P, 3) from a .ply, .xyz or .npy file (float64; checked by the caller)."""
    suffix = path.suffix.lower()
    if suffix == ".ply":
        return read_ply(path)
    if suffix == ".xyz":
        return read_xyz(path)
    try:
        cloud = np.load(path, allow_pickle=False)
    except ValueError as error:
        raise GenEvalError(f"{path}: not a plain numeric .npy array ({error})") from None
    if cloud.ndim != 2 or cloud.shape[1] != 3:
        raise GenEvalError(f"{path}: a cloud file must hold (P, 3) points, got shape {cloud.shape}")
    return cloud


def check_cloud(cloud: np.ndarray, name: str) -> None:
    """A one-line error naming ``name`` for a cloud that is not finite (P, 3) with enough points."""
    if not np.issubdtype(cloud.dtype, np.number):
        raise GenEvalError(f"{name}: point coordinates must be numbers, got {cloud.dtype}")
    if cloud.ndim != 2 or cloud.shape[-1] != 3:
        raise GenEvalError(f"{name}: points must have 3 coordinates (x, y, z), got shape {cloud.shape}")
    if len(cloud) < MIN_POINTS:
        raise GenEvalError(f"{name}: a cloud of {len(cloud)} points; at least {MIN_POINTS} are needed")
    if not np.isfinite(cloud).all():
        raise GenEvalError(f"{name}: NaN or inf coordinates; remove or fix those points")


def resample(cloud: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` points of ``cloud``: a random subset, or all of them plus random repeats."""
    if len(cloud) == count:
        return cloud
    if len(cloud) > count:
        return cloud[np.sort(rng.choice(len(cloud), count, replace=False))]
    return np.concatenate([cloud, cloud[rng.integers(0, len(cloud), count - len(cloud))]])


def stack_clouds(
    clouds: list[np.ndarray], names: list[str], where: str, resample_points: int | None, seed: int
) -> tuple[np.ndarray, str | None]:
    """One float32 (N, P, 3) array from checked clouds, resampled when asked; and the conversion note."""
    for cloud, name in zip(clouds, names, strict=True):
        check_cloud(cloud, name)
    counts = sorted({len(c) for c in clouds})
    if resample_points is None:
        if len(counts) > 1:
            first = next(n for c, n in zip(clouds, names, strict=True) if len(c) == counts[0])
            last = next(n for c, n in zip(clouds, names, strict=True) if len(c) == counts[-1])
            raise GenEvalError(
                f"{where}: clouds have different point counts ({first}: {counts[0]}, {last}: {counts[-1]}); "
                "bring them to one count (gen-eval evaluate --resample-points N)"
            )
        return np.stack(clouds).astype(np.float32), None
    if resample_points < MIN_POINTS:
        raise GenEvalError(f"--resample-points must be at least {MIN_POINTS}, got {resample_points}")
    rng = np.random.default_rng(seed)
    stacked = np.stack([resample(c, resample_points, rng) for c in clouds]).astype(np.float32)
    changed = sum(len(c) != resample_points for c in clouds)
    note = (
        f"{changed} of {len(clouds)} clouds resampled to {resample_points} points (random subset or repeats, seed {seed})"
        if changed
        else None
    )
    return stacked, note


@dataclass
class PointCloudSource(Source):
    """Point clouds from an (N, P, 3) array file or a folder of cloud files, held in memory."""

    kind = "array"
    path: Path = field(default=Path())
    key: str | None = None
    limit: int | None = None
    resample_points: int | None = None
    seed: int = 0
    max_bytes: int | None = None  # refuse more decoded data than this before reading it (gen-eval score)

    def __post_init__(self) -> None:
        self._check_size()
        if self.path.is_dir():
            self.kind = "folder"  # type: ignore[misc]  # the manifest says what was read
            data, note = self._read_folder()
        else:
            data, note = self._read_array()
        self._data = data
        if note:
            self.notes.append(note)
        self.data_kind, self.sample_shape, self._count = "pointcloud", tuple(data.shape[1:]), len(data)
        digest = hashlib.sha256(f"pointcloud:{data.shape}".encode())
        digest.update(np.ascontiguousarray(data).tobytes())
        self._fingerprint = digest.hexdigest()

    def _check_size(self) -> None:
        if self.max_bytes is None:
            return
        if self.path.is_dir():
            size = sum(p.stat().st_size for p in _cloud_files(self.path))  # text only shrinks when parsed
        else:
            size = max(
                (int(np.prod(shape)) * dtype.itemsize for shape, dtype in _peek_shapes(self.path)), default=0
            )
        if size > self.max_bytes:
            raise GenEvalError(
                f"{self.spec}: {size:,} bytes of point clouds, over the limit of {self.max_bytes:,}; submit fewer clouds"
            )

    def _read_array(self) -> tuple[np.ndarray, str | None]:
        try:
            loaded = np.load(self.path, allow_pickle=False)
        except ValueError as error:
            raise GenEvalError(f"{self.spec}: not a plain numeric array file ({error})") from None
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                names = list(loaded.files)
                key = self.key or ("arr_0" if "arr_0" in names else names[0] if len(names) == 1 else None)
                if key is None or key not in names:
                    raise GenEvalError(
                        f"{self.spec}: which array? it holds {', '.join(names)}; name one with --key"
                    )
                array = loaded[key]
        else:
            array = loaded
        if array.ndim != 3 or array.shape[-1] != 3:
            raise GenEvalError(
                f"{self.spec}: point clouds must be an (N, P, 3) array, got shape {array.shape}"
            )
        if len(array) == 0:
            raise GenEvalError(f"{self.spec}: holds no clouds")
        array = array[: self.limit]
        if array.shape[1] < MIN_POINTS:
            raise GenEvalError(
                f"{self.spec}: clouds of {array.shape[1]} points; at least {MIN_POINTS} are needed"
            )
        if not np.issubdtype(array.dtype, np.floating):
            raise GenEvalError(f"{self.spec}: point coordinates must be floats, got {array.dtype}")
        bad = np.flatnonzero(~np.isfinite(array).all(axis=(1, 2)))
        if len(bad):
            raise GenEvalError(
                f"{self.spec}: cloud {int(bad[0])} has NaN or inf coordinates; remove or fix it"
            )
        return stack_clouds(
            list(array),
            [f"{self.spec}[{i}]" for i in range(len(array))],
            self.spec,
            self.resample_points,
            self.seed,
        )

    def _read_folder(self) -> tuple[np.ndarray, str | None]:
        files = sorted(_cloud_files(self.path), key=_natural_key)[: self.limit]
        if not files:
            raise GenEvalError(f"{self.spec}: no {', '.join(CLOUD_SUFFIXES)} files in this folder")
        from gen_eval.progress import progress_task

        clouds = []
        with progress_task(f"reading {self.spec}", len(files), len(files) > 500) as bar:
            for path in files:
                clouds.append(read_cloud_file(path))
                bar.advance(1)
        return stack_clouds(clouds, [str(p) for p in files], self.spec, self.resample_points, self.seed)

    def batches(self, batch_size: int) -> Iterator[Batch]:
        import torch

        for start in range(0, self._count, batch_size):
            yield Batch(torch.from_numpy(self._data[start : start + batch_size].copy()))
