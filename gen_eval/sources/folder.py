"""A folder of images (png, jpg, webp, bmp), searched recursively, in sorted order.

A first pass reads every file once: it hashes the bytes (the cache key), reads each
header for size and colour mode, refuses files that are not images, image bombs and
links leaving the folder, and decides one conversion for the whole set (grey images
stay one channel only when every image is grey). The second pass decodes in a small
thread pool, batch by batch, so memory holds one batch at a time.

Class folders (dgm-eval's layout, issue 23): when the folder holds two or more subfolders named by
plain numbers, ``DIR/0/*.png``, ``DIR/1/*.png``, ..., each image is labelled with its folder's
number (``num_classes``: the largest + 1), searched recursively below it. Beside class folders,
an image or a subfolder of another name is an error (it has no class); ``007/`` or EDM's seed
shards ``000000/`` are not numbers in this sense, so such folders stay unlabelled, as does a
folder with a single numbered subfolder. Files are read in sorted path order (``0/``, ``1/``,
``10/``, ``2/``...), so ``--num-samples N`` keeps the first N in that order, class by class.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gen_eval.errors import GenEvalError
from gen_eval.sources.base import Batch, Source

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
# PIL picks a decoder from the bytes, not the suffix: without this list a "sample.png" holding
# PostScript would be handed to Ghostscript (EPS plugin) when decoded, i.e. run as a program.
PIL_FORMATS = ("PNG", "JPEG", "WEBP", "BMP")
# Larger than any image a generative model is evaluated at (8192 x 8192), far below what
# would exhaust memory; PIL's own default only warns below twice its limit.
MAX_IMAGE_PIXELS = 8192 * 8192
# Said of animated images in the notes (``gen-eval score`` shows notes holding it as warnings).
FIRST_FRAME = "only the first frame is used"
_GREY_MODES = {"1", "L", "LA"}
_COLOUR_MODES = {"RGB", "RGBA", "P", "PA", "CMYK", "YCbCr", "RGBX"}


def _open_image(data: bytes, path: Path, max_pixels: int = MAX_IMAGE_PIXELS):  # -> PIL.Image.Image
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=PIL_FORMATS)
            width, height = image.size
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise GenEvalError(
                f"{path}: declared size is too large to be a sample (image bomb?); remove it"
            ) from exc
        except Exception as exc:  # PIL raises many types for bad files
            raise GenEvalError(
                f"{path}: not a readable image ({type(exc).__name__}); remove or re-export it"
            ) from exc
    if width * height > max_pixels:
        raise GenEvalError(
            f"{path}: declared size {width}x{height} exceeds {max_pixels} pixels (image bomb?); remove it"
        )
    return image


@dataclass
class FolderSource(Source):
    """Images found under a folder."""

    kind = "folder"
    root: Path = field(default=Path())
    limit: int | None = None
    resize: int | None = None
    resize_method: str = "bicubic"  # how ``resize`` resizes (gen_eval.sources.resize)
    max_pixels: int = MAX_IMAGE_PIXELS  # per image, read from the header before anything is decoded

    def __post_init__(self) -> None:
        if self.resize is not None:
            from gen_eval.sources.resize import check_method

            if check_method(self.resize_method) == "refuse":
                raise GenEvalError(
                    f"--resize {self.resize} with --resize-method refuse: choose a method "
                    "(bicubic, bilinear, area, nearest) or drop --resize"
                )
        self.root = Path(self.root)
        self.files = self._list_files()
        self._labels = self._class_labels()
        if self.limit is not None:
            self.files = self.files[: self.limit]
            if self._labels is not None:
                from gen_eval.sources.labels import dropped_classes_note

                note = dropped_classes_note(self._labels, self.limit)
                self.notes += [note] if note else []
                self._labels = self._labels[: self.limit]
        self._count = len(self.files)
        self._scan()
        if self._labels is not None:  # cached features of the unlabelled reading lack labels: new key
            self._fingerprint = hashlib.sha256(f"{self._fingerprint}:classes".encode()).hexdigest()

    def _list_files(self) -> list[Path]:
        if not self.root.is_dir():
            raise GenEvalError(f"{self.root}: not a folder")
        root = self.root.resolve()
        files = []
        for path in sorted(self.root.rglob("*"), key=lambda p: p.relative_to(self.root).as_posix()):
            if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
                continue
            if not path.resolve().is_relative_to(root):
                raise GenEvalError(f"{path}: a link pointing outside {self.root}; remove it")
            files.append(path)
        if not files:
            raise GenEvalError(
                f"{self.root}: no images ({', '.join(s[1:] for s in IMAGE_SUFFIXES)}) found; "
                "point at the folder that holds the samples"
            )
        return files

    def _class_labels(self) -> np.ndarray | None:
        """One class per file when the images lie in class folders ``0/ 1/ ...``; None otherwise."""
        from gen_eval.sources.labels import class_of

        parts = [path.relative_to(self.root).parts for path in self.files]
        folders = sorted({p[0] for p in parts if len(p) > 1})
        numbered = [name for name in folders if class_of(name) is not None]
        if len(numbered) < 2:
            return None
        shown = ", ".join(f"{name}/" for name in sorted(numbered, key=int)[:3])
        shown += ", ..." if len(numbered) > 3 else ""
        for name in folders:
            if class_of(name) is None:
                raise GenEvalError(
                    f"{self.root / name}: a folder beside the class folders {shown} of {self.root}; "
                    "its images have no class: move them into a class folder or out of it"
                )
        loose = [path for path, p in zip(self.files, parts, strict=True) if len(p) == 1]
        if loose:
            raise GenEvalError(
                f"{loose[0]}: an image beside the class folders {shown} of {self.root}; "
                "move it into its class folder or out of the folder"
            )
        labels = np.array([class_of(p[0]) for p in parts], dtype=np.int64)
        self.num_classes = int(labels.max()) + 1
        self.notes.append(
            f"labelled by class folders: {len(numbered)} folders, {self.num_classes} classes (largest + 1)"
        )
        return labels

    def _scan(self) -> None:
        # The method enters the key only when it is not the historical bicubic, so existing
        # cached features of bicubic --resize runs stay valid.
        method = () if self.resize is None or self.resize_method == "bicubic" else (self.resize_method,)
        digest = hashlib.sha256(repr(("folder-v1", self.resize, *method)).encode())
        modes: Counter[str] = Counter()
        first_size: tuple[int, int] | None = None
        animated: list[Path] = []
        for path in self.files:
            data = path.read_bytes()
            if not data:
                raise GenEvalError(f"{path}: empty file (0 bytes); remove it or re-export the sample")
            digest.update(path.relative_to(self.root).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(data).digest())
            image = _open_image(data, path, self.max_pixels)
            if image.mode not in _GREY_MODES | _COLOUR_MODES:
                raise GenEvalError(
                    f"{path}: colour mode {image.mode} is not supported; save 8-bit grey or RGB"
                )
            modes[image.mode] += 1
            if getattr(image, "is_animated", False):  # animated WebP or PNG: decoding gives frame 0
                animated.append(path)
            if first_size is None:
                first_size = image.size
            elif image.size != first_size and self.resize is None:
                raise GenEvalError(
                    f"{path}: is {image.size[0]}x{image.size[1]} but {self.files[0]} is "
                    f"{first_size[0]}x{first_size[1]}; pass --resize SIZE to resize all images"
                )
        if animated:
            self.notes.append(
                f"{len(animated)} animated image(s) (e.g. {animated[0].relative_to(self.root).as_posix()}): "
                f"{FIRST_FRAME}; save one still image per sample"
            )
        self._fingerprint = digest.hexdigest()
        grey = all(mode in _GREY_MODES for mode in modes)
        self._target_mode = "L" if grey else "RGB"
        assert first_size is not None
        width, height = (self.resize, self.resize) if self.resize else first_size
        self.sample_shape = (1 if grey else 3, height, width)
        for mode, count in sorted(modes.items()):
            if mode not in (self._target_mode,):
                self.notes.append(f"{count} {mode} image(s) converted to {self._target_mode} ({_how(mode)})")
        if self.resize:
            self.notes.append(
                f"resized to {self.resize}x{self.resize} with PIL {self.resize_method} (--resize)"
            )

    def _decode(self, path: Path) -> np.ndarray:
        from gen_eval.sources.resize import resize_image

        image = _open_image(path.read_bytes(), path, self.max_pixels)
        try:
            image = image.convert(self._target_mode)
            if self.resize:
                image = resize_image(image, (self.resize, self.resize), self.resize_method)
            array = np.asarray(image, dtype=np.uint8)
        except Exception as exc:
            raise GenEvalError(f"{path}: cannot decode ({exc}); the file is truncated or corrupt") from exc
        if array.shape[:2] != self.sample_shape[1:]:
            raise GenEvalError(
                f"{path}: decoded size {array.shape[:2]} differs from its header; re-export it"
            )
        return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)

    def batches(self, batch_size: int) -> Iterator[Batch]:
        import torch

        # PIL releases the GIL while decoding, so threads overlap decoding with the model.
        with ThreadPoolExecutor(max_workers=4) as pool:
            for start in range(0, len(self.files), batch_size):
                arrays = list(pool.map(self._decode, self.files[start : start + batch_size]))
                labels = None if self._labels is None else self._labels[start : start + len(arrays)]
                yield Batch(torch.from_numpy(np.stack(arrays)), labels)


def _how(mode: str) -> str:
    return {
        "RGBA": "alpha dropped",
        "PA": "palette expanded, alpha dropped",
        "P": "palette expanded",
        "L": "grey channel repeated",
        "1": "1-bit expanded to 0/255",
        "LA": "alpha dropped",
        "CMYK": "PIL's CMYK conversion",
    }.get(mode, "PIL conversion")
