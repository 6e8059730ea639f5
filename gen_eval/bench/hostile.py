"""A corpus of students' submissions, good, broken and hostile, each with the error it must get.

Built deterministically in a few hundred kilobytes (no committed blobs): ``build_submissions``
returns submission name -> expected error fragment (None: must be scored). Used by
``tests/test_score.py`` and by ``gen-eval bench robustness`` (``reports/robustness.md``). The
``canary`` case is a pickle whose loading would create :data:`CANARY` next to the corpus: the file
must never appear.
"""

from __future__ import annotations

import io
import stat
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from gen_eval.bench.hostile_files import digits, png_bytes, write_pngs


def bomb_png(width: int, height: int) -> bytes:
    """A PNG of a few dozen bytes whose header declares ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def forged_npy(shape: tuple[int, ...]) -> bytes:
    """An .npy header declaring ``shape`` (uint8) followed by 64 bytes."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "|u1", "fortran_order": False, "shape": shape})
    return buffer.getvalue() + bytes(64)


def write_zip(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> None:
    """A zip with ``members`` (names kept verbatim, ``..`` and absolute ones included) and symlinks."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)


def write_tar(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None, **pax: str) -> None:
    """A tar (gzip-compressed when ``path`` ends in .gz) with ``members``, symlinks and pax headers."""
    with tarfile.open(path, "w:gz" if path.name.endswith(".gz") else "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.pax_headers = len(data), dict(pax)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)


CLAIMS_TOML = """\
student = "<script>alert(1)</script> Ada"
family = "=HYPERLINK(\\"http://x\\")"
unexpected = 3
[claimed]
fid = 1000.0
precision = 1.0
sharpness = 2.5
"""


CANARY = "CANARY-pickle-was-executed"


class _Canary:
    """Unpickling calls ``open(path, "w")``: a submitted ``.pt`` that would run code if loaded unsafely."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def canary_pt(path: Path) -> bytes:
    """A torch-style pickle whose loading (``torch.load(weights_only=False)``) creates ``path``."""
    import pickle

    return pickle.dumps({"samples": _Canary(str(path))}, protocol=2)


def jpeg_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image.squeeze()).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def build_submissions(root: Path, outside: Path) -> dict[str, str | None]:
    """A SUBMISSIONS_DIR with good and bad entries: submission name -> expected error fragment (None: scored).

    ``outside`` is where a successful zip-slip would write (it must stay empty).
    """
    root.mkdir(parents=True)
    expected: dict[str, str | None] = {}
    # -- good: a folder with an .npz and claims; a zip of a folder of PNGs; a tar.gz of float .npy
    (root / "alice").mkdir()
    np.savez(root / "alice" / "samples.npz", digits(0, 100))
    (root / "alice" / "submission.toml").write_text(CLAIMS_TOML)
    expected["alice"] = None
    members = {f"bob/samples/img_{i:03d}.png": png_bytes(image) for i, image in enumerate(digits(100, 160))}
    members["bob/submission.toml"] = b'student = "Bob"\nfamily = "VAE"\n'
    members["__MACOSX/bob/._img_000.png"] = b"\x00\x05\x16\x07 AppleDouble debris"
    write_zip(root / "bob.zip", members)
    expected["bob"] = None
    floats = digits(160, 220).astype(np.float32) / 255
    write_tar(root / "carol.tar.gz", {"samples.npy": npy_bytes(floats)})
    expected["carol"] = None
    # -- bad samples
    write_pngs(root / "corrupt", digits(0, 20))
    # Signature, IHDR and the first 10 bytes of IDAT: the header reads, the pixels do not.
    truncated = (root / "corrupt" / "img_005.png").read_bytes()[:51]
    (root / "corrupt" / "img_005.png").write_bytes(truncated)
    expected["corrupt"] = "corrupt/img_005.png: cannot decode"
    nan = digits(0, 30).astype(np.float32) / 255
    nan[7, 0, 3, 3] = np.nan
    np.savez(root / "nan.npz", nan)
    expected["nan"] = "nan.npz[arr_0]: sample 7 contains NaN"
    write_pngs(root / "tiny", digits(0, 3))
    expected["tiny"] = "only 3 samples; at least 10"
    (root / "empty").mkdir()
    expected["empty"] = "no images"
    write_pngs(root / "mixed", digits(0, 12))
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(root / "mixed" / "img_999.png")
    expected["mixed"] = "--resize"
    # 16x16 images, one truncated: the size rule would resize them, and must not hide the bad file.
    write_pngs(root / "big", np.repeat(np.repeat(digits(0, 20), 2, axis=-1), 2, axis=-2))
    (root / "big" / "img_007.png").write_bytes((root / "big" / "img_007.png").read_bytes()[:51])
    expected["big"] = "big/img_007.png: cannot decode"
    (root / "twoarrays").mkdir()
    np.save(root / "twoarrays" / "a.npy", digits(0, 20))
    np.save(root / "twoarrays" / "b.npy", digits(20, 40))
    expected["twoarrays"] = "holds 2 arrays"
    # -- hostile
    (root / "pickle").mkdir()
    np.savez(root / "pickle" / "samples.npz", np.array([{"run": "os.system"}, None], dtype=object))
    expected["pickle"] = "object array"
    write_pngs(root / "bomb", digits(0, 12))
    (root / "bomb" / "img_100.png").write_bytes(bomb_png(100_000, 100_000))
    expected["bomb"] = "image bomb"
    write_pngs(root / "large", digits(0, 12))
    (root / "large" / "img_100.png").write_bytes(bomb_png(5000, 5000))  # under PIL's limit, over the grader's
    expected["large"] = "exceeds 16777216 pixels"
    write_pngs(root / "eps", digits(0, 12))
    (root / "eps" / "img_003.png").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n")
    expected["eps"] = "eps/img_003.png: not a readable image"
    write_pngs(root / "linked", digits(0, 12))
    (outside / "secret.png").write_bytes(png_bytes(digits(0, 1)[0]))
    (root / "linked" / "img_100.png").symlink_to(outside / "secret.png")
    expected["linked"] = "a link pointing outside the submission"
    (root / "forged.npy").write_bytes(forged_npy((1, 100_000, 100_000, 3)))
    expected["forged"] = "truncated or forged"
    write_zip(root / "slip.zip", {"samples.npy": npy_bytes(digits(0, 20)), "../../escaped.txt": b"owned"})
    expected["slip"] = "points outside the archive's folder (zip-slip)"
    write_zip(root / "absolute.zip", {str(outside / "absolute.txt"): b"owned"})
    expected["absolute"] = "absolute path (zip-slip)"
    write_zip(root / "link.zip", {"samples.npy": npy_bytes(digits(0, 20))}, links={"evil": str(outside)})
    expected["link"] = "is a symbolic link"
    write_zip(root / "zipbomb.zip", {"samples.npy": bytes(32 << 20)})
    expected["zipbomb"] = "zip bomb"
    write_tar(root / "tarslip.tar", {"../escaped.txt": b"owned"})
    expected["tarslip"] = "zip-slip"
    write_tar(root / "tarlink.tar.gz", {}, links={"samples": "/etc"})
    expected["tarlink"] = "is a link"
    write_tar(root / "tarbomb.tar.gz", {"samples.npy": bytes(32 << 20)})
    expected["tarbomb"] = "archive bomb"
    (root / "twin").mkdir()
    np.save(root / "twin" / "samples.npy", digits(0, 20))
    np.save(root / "twin.npy", digits(0, 20))
    expected["twin"] = "several entries share the name 'twin'"
    # -- more broken input (issue 9's list)
    write_pngs(root / "jpeg", digits(0, 12))
    (root / "jpeg" / "img_050.jpg").write_bytes(jpeg_bytes(digits(0, 1)[0])[:40])  # truncated JPEG
    expected["jpeg"] = "jpeg/img_050.jpg: not a readable image"
    write_pngs(root / "zero", digits(0, 12))
    (root / "zero" / "img_050.png").write_bytes(b"")
    expected["zero"] = "zero/img_050.png: empty file"
    (root / "canary").mkdir()
    (root / "canary" / "samples.pt").write_bytes(canary_pt(root.parent / CANARY))
    expected["canary"] = "canary/samples.pt: a pickle"
    inf = digits(0, 30).astype(np.float32) / 255
    inf[4, 0, 1, 1] = np.inf
    np.save(root / "inf.npy", inf)
    expected["inf"] = "sample 4 contains NaN or inf"
    np.save(root / "huge_values.npy", (digits(0, 30).astype(np.float32) - 100) * 1e6)
    expected["huge_values"] = "outside every supported range"
    np.save(root / "channels.npy", np.repeat(digits(0, 20), 2, axis=1))  # 2 channels: neither grey nor RGB
    expected["channels"] = "channels"
    write_pngs(root / "one", digits(0, 1))
    expected["one"] = "only 1 samples; at least 10"
    unicode_dir = root / "zoë and ñ — 名前"
    unicode_dir.mkdir()
    for i, image in enumerate(digits(220, 260)):
        (unicode_dir / f"image {i:03d} é.png").write_bytes(png_bytes(image))
    expected["zoë and ñ — 名前"] = None
    (root / "notes.txt").write_text("not a submission")
    expected |= _issue18_cases(root)
    from gen_eval.bench.hostile_text import text_cases

    expected |= text_cases(root)  # bad text files (issue 22)
    from gen_eval.bench.hostile_pointclouds import pointcloud_cases

    expected |= pointcloud_cases(root)  # bad point clouds (issue 24)
    from gen_eval.bench.hostile_paired import paired_cases

    expected |= paired_cases(root)  # bad paired submissions (issue 23)
    from gen_eval.bench.hostile_labels import label_cases

    expected |= label_cases(root)  # badly labelled samples (issue 23)
    return expected


def animated_webp(images: np.ndarray) -> bytes:
    """An animated WebP with one frame per image (lossless)."""
    frames = [Image.fromarray(image.squeeze()) for image in images]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="WEBP", save_all=True, append_images=frames[1:], lossless=True)
    return buffer.getvalue()


def count_bomb_npz(path: Path, count: int, shape: tuple[int, ...] = (8, 8)) -> None:
    """An .npz of ``count`` all-zero uint8 images, written in chunks (16 million take ~4 MB, ~2 s)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": (count, *shape)}
    )
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("arr_0.npy", "w", force_zip64=True) as member,
    ):
        member.write(header.getvalue())
        left, chunk = count * int(np.prod(shape)), bytes(64 << 20)
        while left > 0:
            member.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)


def _issue18_cases(root: Path) -> dict[str, str | None]:
    """Grading reads only what was submitted (issue 18): links, hidden names, files never read, counts.

    ``..dotdot`` and ``_private`` are not submissions: they must be listed as ignored, with the
    reason, and never scored. The images of ``elsewhere`` (outside SUBMISSIONS_DIR) must never be read.
    """
    expected: dict[str, str | None] = {}
    elsewhere = root.parent / "elsewhere"
    write_pngs(elsewhere, digits(300, 340))
    (root / "linkshare").mkdir()
    # Another student's folder of PNGs: followed, it would be scored with that student's images.
    (root / "linkshare" / "samples").symlink_to(Path("..") / "zoë and ñ — 名前", target_is_directory=True)
    expected["linkshare"] = "a folder that is a symbolic link (to another submission, 'zoë and ñ — 名前')"
    (root / "linkout" / "deep").mkdir(parents=True)
    (root / "linkout" / "deep" / "samples").symlink_to(elsewhere, target_is_directory=True)
    expected["linkout"] = "linkout/deep/samples: a folder that is a symbolic link (to outside the submission)"
    (root / "mirror").symlink_to("alice", target_is_directory=True)
    expected["mirror"] = (
        "a symbolic link to the submission 'alice', refused rather than scored as a duplicate"
    )
    for hidden in ("..dotdot", "_private"):
        (root / hidden).mkdir()
        np.save(root / hidden / "samples.npy", digits(0, 40))
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("samples.npy", npy_bytes(digits(0, 40)))
    write_zip(root / "nestedzip.zip", {"samples/inner.zip": inner.getvalue()})
    expected["nestedzip"] = "nestedzip.zip/samples/inner.zip: an archive inside an archive (zip inside a zip)"
    (root / "innerzip").mkdir()
    (root / "innerzip" / "samples.zip").write_bytes(inner.getvalue())
    expected["innerzip"] = "innerzip/samples.zip: an archive inside a submission folder is not unpacked"
    (root / "gif").mkdir()
    for i, image in enumerate(digits(0, 12)):
        Image.fromarray(image.squeeze()).save(root / "gif" / f"img_{i:03d}.gif")
    expected["gif"] = "gif/img_000.gif: GIF images are not read"
    write_pngs(root / "animated", digits(0, 12))
    (root / "animated" / "img_100.webp").write_bytes(animated_webp(digits(12, 15)))
    expected["animated"] = None  # scored, with the warning that only the first frame is used
    count_bomb_npz(root / "count.npz", 100_001)
    expected["count"] = "100,001 samples, over the limit of 50,000 per submission"
    return expected


# Cases whose scoring would grade files the student did not submit (counted as escapes).
READS_ELSEWHERE = ("linked", "linkshare", "linkout", "mirror")
# Entries that are not submissions: listed as ignored with the reason, never scored.
IGNORED_ENTRIES = ("..dotdot", "_private")
