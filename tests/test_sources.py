"""Every source kind yields the same images as the same tensor; every bad input has its own error."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gen_eval import GenEvalError
from gen_eval.sources import open_source


def _all(source, batch_size: int = 7) -> torch.Tensor:
    return torch.cat([batch.data for batch in source.batches(batch_size)])


@pytest.fixture
def rgb_images() -> np.ndarray:
    """Twelve 9x11 RGB images, uint8 NHWC, all values used."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(12, 9, 11, 3), dtype=np.uint8)


def _write_pngs(folder: Path, images: np.ndarray, prefix: str = "img") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image.squeeze()).save(folder / f"{prefix}_{i:03d}.png")


def test_folder_npz_npy_and_generator_round_trip_to_the_same_tensor(tmp_path, rgb_images):
    expected = torch.from_numpy(rgb_images.transpose(0, 3, 1, 2).copy())
    _write_pngs(tmp_path / "pngs", rgb_images)
    np.savez(tmp_path / "s.npz", arr_0=rgb_images)
    np.savez_compressed(tmp_path / "c.npz", samples=rgb_images)
    np.save(tmp_path / "nchw.npy", rgb_images.transpose(0, 3, 1, 2))
    np.save(tmp_path / "unit.npy", rgb_images.astype(np.float32) / 255)
    np.save(tmp_path / "signed.npy", rgb_images.astype(np.float64) / 127.5 - 1)
    generator_file = tmp_path / "gen.py"
    np.save(tmp_path / "gen_data.npy", rgb_images)
    generator_file.write_text(
        "import numpy as np, torch\n"
        "class M:\n"
        "    def __init__(self):\n"
        f"        self.x = torch.from_numpy(np.load({str(tmp_path / 'gen_data.npy')!r})).permute(0, 3, 1, 2)\n"
        "        self.i = 0\n"
        "    def sample(self, n, generator=None):\n"
        "        out = self.x[self.i:self.i + n].float() / 255\n"
        "        self.i = (self.i + n) % len(self.x)\n"
        "        return out\n"
        "def make():\n    return M()\n"
    )
    specs = {
        "folder": (str(tmp_path / "pngs"), {}),
        "npz": (str(tmp_path / "s.npz"), {}),
        "npz-compressed-key": (str(tmp_path / "c.npz"), {"key": "samples"}),
        "npy-nchw": (str(tmp_path / "nchw.npy"), {}),
        "npy-float01": (str(tmp_path / "unit.npy"), {}),
        "npy-float-signed": (str(tmp_path / "signed.npy"), {}),
    }
    for name, (spec, options) in specs.items():
        source = open_source(spec, **options)
        assert source.data_kind == "image" and len(source) == 12, name
        assert torch.equal(_all(source), expected), name
    # The generator is probed once at open (1 sample), then restarted; feed it from a fresh model
    # (in-process, so the test can reset the model's counter; the sandbox is tested on its own).
    source = open_source(f"{generator_file}:make", num_samples=12, trust_code=True, sandbox=False)
    source.model.i = 0
    assert torch.equal(_all(source), expected)
    assert source.notes == ["float [0,1] samples -> uint8 via round(x * 255)"]


def test_conversions_are_recorded(tmp_path, rgb_images):
    np.save(tmp_path / "signed.npy", rgb_images.astype(np.float32) / 127.5 - 1)
    notes = open_source(str(tmp_path / "signed.npy")).notes
    assert any("[-1,1]" in note and "127.5" in note for note in notes)
    rgba = np.concatenate([rgb_images, np.full((12, 9, 11, 1), 255, np.uint8)], axis=3)
    np.save(tmp_path / "rgba.npy", rgba)
    source = open_source(str(tmp_path / "rgba.npy"))
    assert source.sample_shape == (3, 9, 11) and any("alpha" in n for n in source.notes)
    assert torch.equal(_all(source), torch.from_numpy(rgb_images.transpose(0, 3, 1, 2).copy()))


def test_folder_mixes_grey_and_rgb_explicitly(tmp_path, rgb_images):
    _write_pngs(tmp_path / "mix", rgb_images[:3])
    grey = rgb_images[3, :, :, 0]
    Image.fromarray(grey).save(tmp_path / "mix" / "z_grey.png")
    source = open_source(str(tmp_path / "mix"))
    assert source.sample_shape == (3, 9, 11)
    assert any("1 L image(s) converted to RGB" in note for note in source.notes)
    last = _all(source)[-1]
    assert all(torch.equal(last[c], torch.from_numpy(grey)) for c in range(3))


def test_folder_is_recursive_sorted_and_limited(tmp_path, rgb_images):
    _write_pngs(tmp_path / "root" / "b", rgb_images[6:], prefix="x")
    _write_pngs(tmp_path / "root" / "a", rgb_images[:6], prefix="y")
    source = open_source(str(tmp_path / "root"), num_samples=8)
    assert len(source) == 8
    assert torch.equal(_all(source), torch.from_numpy(rgb_images[:8].transpose(0, 3, 1, 2).copy()))


def test_datasets_are_sources_with_labels():
    source = open_source("digits:test")
    batch = next(source.batches(400))
    assert batch.data.shape == (360, 1, 8, 8) and batch.data.dtype == torch.uint8
    assert batch.labels is not None and len(batch.labels) == 360
    ring = open_source("ring8", num_samples=100)
    assert ring.data_kind == "vector" and next(ring.batches(1000)).data.shape == (100, 2)
    assert open_source("digits:train").fingerprint != open_source("digits:test").fingerprint


def test_vectors_from_npy(tmp_path):
    points = np.random.default_rng(1).normal(size=(50, 2)).astype(np.float64)
    np.save(tmp_path / "p.npy", points)
    source = open_source(str(tmp_path / "p.npy"))
    assert source.data_kind == "vector"
    assert torch.allclose(_all(source), torch.from_numpy(points.astype(np.float32)))


def _bomb_png(path: Path, width: int, height: int) -> None:
    """A tiny PNG whose header declares width x height pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def _bad_inputs(tmp_path: Path, images: np.ndarray) -> dict[str, tuple[str, dict, str]]:
    """name -> (spec, options, expected fragment of the one-line error)."""
    cases: dict[str, tuple[str, dict, str]] = {}
    (tmp_path / "empty").mkdir()
    cases["empty folder"] = (str(tmp_path / "empty"), {}, "no images")

    _write_pngs(tmp_path / "corrupt", images[:3])
    (tmp_path / "corrupt" / "img_001.png").write_bytes(b"not a png at all")
    cases["corrupt image"] = (str(tmp_path / "corrupt"), {}, "img_001.png: not a readable image")

    _write_pngs(tmp_path / "zero", images[:2])
    (tmp_path / "zero" / "img_000.png").write_bytes(b"")
    cases["zero-byte file"] = (str(tmp_path / "zero"), {}, "img_000.png: empty file")

    _write_pngs(tmp_path / "mixed", images[:2])
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(tmp_path / "mixed" / "img_002.png")
    cases["mixed sizes"] = (str(tmp_path / "mixed"), {}, "--resize")

    _write_pngs(tmp_path / "bomb", images[:1])
    _bomb_png(tmp_path / "bomb" / "img_999.png", 100_000, 100_000)
    cases["image bomb"] = (str(tmp_path / "bomb"), {}, "image bomb")

    _write_pngs(tmp_path / "escape", images[:1])
    _write_pngs(tmp_path / "outside", images[1:2])
    os.symlink(tmp_path / "outside" / "img_000.png", tmp_path / "escape" / "link.png")
    cases["symlink out of folder"] = (str(tmp_path / "escape"), {}, "outside")

    nan = images.astype(np.float32) / 255
    nan[4, 0, 0, 0] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    cases["NaN"] = (str(tmp_path / "nan.npy"), {}, "sample 4 contains NaN")

    np.save(tmp_path / "range.npy", images.astype(np.float32) * 3)
    cases["out of range"] = (str(tmp_path / "range.npy"), {}, "outside every supported range")

    np.save(tmp_path / "rank5.npy", np.zeros((2, 3, 4, 5, 6), np.uint8))
    cases["wrong rank"] = (str(tmp_path / "rank5.npy"), {}, "rank 5")

    np.save(tmp_path / "chan.npy", np.zeros((2, 7, 7, 7), np.uint8))
    cases["no channel axis"] = (str(tmp_path / "chan.npy"), {}, "channel axis")

    np.savez(tmp_path / "obj.npz", arr_0=np.array([{"a": 1}, None], dtype=object))
    cases["pickle in npz"] = (str(tmp_path / "obj.npz"), {}, "object array")

    np.savez(tmp_path / "two.npz", a=images, b=images)
    cases["ambiguous npz"] = (str(tmp_path / "two.npz"), {}, "--key")
    cases["missing key"] = (str(tmp_path / "two.npz"), {"key": "c"}, "no array 'c'")

    np.save(tmp_path / "trunc.npy", images)
    data = (tmp_path / "trunc.npy").read_bytes()
    (tmp_path / "trunc.npy").write_bytes(data[: len(data) // 2])
    cases["truncated npy"] = (str(tmp_path / "trunc.npy"), {}, "truncated")

    (tmp_path / "notzip.npz").write_bytes(b"garbage")
    cases["not a zip"] = (str(tmp_path / "notzip.npz"), {}, "not a readable .npz")

    (tmp_path / "gen.py").write_text("def make():\n    raise SystemExit('should never run')\n")
    cases["code without trust"] = (f"{tmp_path / 'gen.py'}:make", {"num_samples": 4}, "--trust-code")

    (tmp_path / "bad_range.py").write_text(
        "import torch\nclass M:\n    def sample(self, n, generator=None):\n"
        "        return torch.randn(n, 3, 4, 4, generator=generator)\n"
        "def make():\n    return M()\n"
    )
    cases["generator out of range"] = (
        f"{tmp_path / 'bad_range.py'}:make",
        {"num_samples": 4, "trust_code": True},
        "(x + 1) / 2",
    )
    cases["unknown dataset"] = ("digitz", {}, "not an embedded dataset")
    cases["unknown split"] = ("digits:valid", {}, "has splits")
    Image.fromarray(images[0]).save(tmp_path / "single.png")
    cases["single image file"] = (str(tmp_path / "single.png"), {}, "not a sample set")
    return cases


def test_each_bad_input_gets_its_own_one_line_error(tmp_path, rgb_images):
    for name, (spec, options, fragment) in _bad_inputs(tmp_path, rgb_images).items():
        with pytest.raises(GenEvalError) as caught:
            source = open_source(spec, **options)
            _all(source)  # errors found while decoding count too
        message = str(caught.value)
        assert fragment in message, f"{name}: {message}"
        assert "\n" not in message, name


def test_truncated_png_is_reported_when_decoded(tmp_path, rgb_images):
    _write_pngs(tmp_path / "t", rgb_images[:3])
    target = tmp_path / "t" / "img_002.png"
    target.write_bytes(target.read_bytes()[:60])
    with pytest.raises(GenEvalError, match=r"img_002\.png"):
        _all(open_source(str(tmp_path / "t")))


def test_value_range_override(tmp_path):
    dark = np.full((4, 3, 3, 1), 0.5, np.float32)  # a [0, 255] image set that happens to be very dark
    np.save(tmp_path / "dark.npy", dark)
    assert int(_all(open_source(str(tmp_path / "dark.npy"))).max()) == 128
    assert int(_all(open_source(str(tmp_path / "dark.npy"), value_range="0,255")).max()) == 0
