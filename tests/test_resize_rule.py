"""One size rule for every command: the same images give the same FID, and every resize is stated."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import gen_eval
from gen_eval import GenEvalError
from gen_eval.bench.hostile import digits, write_pngs
from gen_eval.cli import app
from gen_eval.schemas import validator
from gen_eval.sources.resize import resize_images

FAST = {"num_resamples": 0, "collapse": False, "features": "digits"}


def _upscaled(start: int, stop: int, size: int = 32) -> np.ndarray:
    """Digits test images enlarged with PIL nearest (uint8 N, 1, size, size)."""
    images = digits(start, stop)
    return np.stack(
        [np.asarray(Image.fromarray(i[0]).resize((size, size), Image.NEAREST))[None] for i in images]
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A submissions folder holding one submission of 60 32x32 PNGs."""
    root = tmp_path_factory.mktemp("subs")
    write_pngs(root / "big32", _upscaled(0, 60))
    return root


def test_evaluate_and_score_give_the_same_fid_and_record_the_resize(folder, tmp_path, one_thread):
    cache = tmp_path / "cache"
    run = gen_eval.evaluate(folder / "big32", "digits:test", cache_dir=cache, **FAST)
    warning = f"{folder / 'big32'}: resized 60 images 32x32 -> 8x8 (bicubic) for the digits extractor"
    assert warning in run.warnings and warning in run.manifest["warnings"]
    resized = run.manifest["generated"]["resized"]
    assert resized == {
        "count": 60,
        "from": [32, 32],
        "to": [8, 8],
        "method": "bicubic",
        "reason": "for the digits extractor",
    }
    assert run.manifest["reference"]["resized"] is None  # digits:test is 8x8 already
    assert run.manifest["options"]["resize_method"] == "bicubic"

    # Independent reference: resize with PIL by hand and score the 8x8 array, no rule involved.
    by_hand = np.stack(
        [np.asarray(Image.fromarray(i[0]).resize((8, 8), Image.BICUBIC)) for i in _upscaled(0, 60)]
    )
    np.save(tmp_path / "by_hand.npy", by_hand)
    manual = gen_eval.evaluate(tmp_path / "by_hand.npy", "digits:test", cache_dir=cache, **FAST)
    assert manual.manifest["generated"]["resized"] is None and not manual.warnings
    assert run.metrics["fid"].value == pytest.approx(manual.metrics["fid"].value, rel=1e-6)
    explicit = gen_eval.evaluate(folder / "big32", "digits:test", cache_dir=cache, resize=8, **FAST)
    assert explicit.metrics["fid"].value == pytest.approx(manual.metrics["fid"].value, rel=1e-6)

    scored = gen_eval.score(
        folder, "digits:test", features="digits", num_resamples=0, out=tmp_path / "out", cache_dir=cache
    )
    (row,) = scored.rows
    assert row.status == "scored", row.error
    assert row.value("fid") == pytest.approx(run.metrics["fid"].value, rel=1e-6)
    assert any("resized 60 images 32x32 -> 8x8 (bicubic)" in w for w in row.warnings)
    manifest = json.loads((tmp_path / "out" / row.run_dir / "manifest.json").read_text())
    assert manifest["generated"]["resized"] == resized
    checker = validator("run-manifest")
    assert not list(checker.iter_errors(manifest))
    manifest["generated"]["resized"]["method"] = "lanczos"  # the schema knows the field
    assert list(checker.iter_errors(manifest))


def test_the_method_is_the_users_choice_and_refuse_refuses(folder, tmp_path, one_thread):
    cache = tmp_path / "cache"
    results = {
        method: gen_eval.evaluate(
            folder / "big32", "digits:test", cache_dir=cache, resize_method=method, **FAST
        )
        for method in ("bicubic", "bilinear", "nearest", "area")
    }
    assert results["nearest"].manifest["generated"]["resized"]["method"] == "nearest"
    fids = {method: r.metrics["fid"].value for method, r in results.items()}
    # Nearest and area both invert a nearest 4x enlargement exactly: the original 8x8 images'
    # FID; the smooth filters give other values, each its own (the method is really applied).
    np.save(tmp_path / "orig.npy", digits(0, 60))
    original = gen_eval.evaluate(tmp_path / "orig.npy", "digits:test", cache_dir=cache, **FAST)
    assert fids["area"] == pytest.approx(original.metrics["fid"].value, rel=1e-6)
    assert fids["nearest"] == pytest.approx(original.metrics["fid"].value, rel=1e-6)
    assert len({round(fids[m], 4) for m in ("bicubic", "bilinear", "area")}) == 3, fids
    with pytest.raises(GenEvalError, match=r"images are 32x32 but 8x8 are needed for the digits extractor"):
        gen_eval.evaluate(folder / "big32", "digits:test", resize_method="refuse", cache_dir=cache, **FAST)
    with pytest.raises(GenEvalError, match="--resize-method 'lanczos': choose one of bicubic"):
        gen_eval.evaluate(folder / "big32", "digits:test", resize_method="lanczos", cache_dir=cache, **FAST)


def test_without_an_input_size_the_reference_size_is_the_target(tmp_path, one_thread):
    np.save(tmp_path / "ref.npy", digits(0, 40))
    np.save(tmp_path / "gen.npy", _upscaled(40, 80, 16))
    run = gen_eval.evaluate(
        tmp_path / "gen.npy",
        tmp_path / "ref.npy",
        features="identity",
        num_resamples=0,
        collapse=False,
        cache_dir=None,
    )
    assert run.manifest["generated"]["resized"]["reason"] == f"to match the reference {tmp_path / 'ref.npy'}"
    assert run.manifest["generated"]["resized"]["to"] == [8, 8]
    assert run.features["generated"]["features"].shape == (40, 64)


def test_resize_images_matches_pil_per_channel():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 3, 12, 10), dtype=np.uint8)
    out = resize_images(images, (5, 4), "bicubic")
    rgb = Image.fromarray(images[1].transpose(1, 2, 0), "RGB").resize((4, 5), Image.BICUBIC)
    assert out.shape == (2, 3, 5, 4) and np.array_equal(out[1], np.asarray(rgb).transpose(2, 0, 1))


def _broken(root: Path) -> Path:
    """A submission of 16x16 PNGs, one of them truncated after its header."""
    sub = root / "broken"
    write_pngs(sub, _upscaled(0, 20, 16))
    (sub / "img_003.png").write_bytes((sub / "img_003.png").read_bytes()[:51])
    return root


@pytest.mark.parametrize("method", ["bicubic", "refuse"])
def test_a_size_mismatch_does_not_hide_a_truncated_png(tmp_path, method, one_thread):
    root = _broken(tmp_path / "subs")
    result = gen_eval.score(
        root,
        "digits:test",
        features="digits",
        num_resamples=0,
        resize_method=method,
        out=tmp_path / "out",
        cache_dir=tmp_path / "cache",
    )
    (row,) = result.rows
    assert row.status == "error" and "broken/img_003.png: cannot decode" in row.error, row.error
    if method == "refuse":
        assert "images are 16x16 but 8x8 are needed" in row.error


def test_cli_states_the_resize_and_refuses_an_unknown_method(folder, tmp_path):
    runner = CliRunner()
    common = ["evaluate", str(folder / "big32"), "-r", "digits:test", "--features", "digits", "--no-save"]
    common += ["--num-resamples", "0", "--no-collapse", "-q", "--cache-dir", str(tmp_path)]
    done = runner.invoke(app, [*common, "--resize-method", "area"])
    assert done.exit_code == 0, done.output
    assert "resized 60 images 32x32 -> 8x8 (area) for the digits" in " ".join(done.output.split())
    bad = runner.invoke(app, [*common, "--resize-method", "cubic"])
    assert bad.exit_code != 0 and "--resize-method 'cubic': choose one of" in bad.output
    assert "Traceback" not in bad.output and len(bad.output.strip().splitlines()) == 1


def test_compare_replays_the_resize_when_it_re_extracts_the_reference(folder, tmp_path, one_thread):
    from gen_eval.comparison.compare import compare

    # The reference itself is 32x32 (resized to 8x8 for the digits net) with a non-default method:
    # re-extraction must use the run's method, or its cache key differs and compare refuses.
    runs = []
    for name, start in (("a", 100), ("b", 200)):
        np.save(tmp_path / f"{name}.npy", digits(start, start + 60))
        run = gen_eval.evaluate(
            tmp_path / f"{name}.npy",
            folder / "big32",
            out=tmp_path / f"run_{name}",
            resize_method="area",
            cache_dir=tmp_path / "first_cache",
            **FAST,
        )
        assert run.manifest["reference"]["resized"]["method"] == "area"
        runs.append(run.run_dir)
    comparison = compare(runs, num_resamples=5, cache_dir=tmp_path / "empty_cache")
    assert any("re-extracted" in note for note in comparison.notes), comparison.notes
    assert comparison.rows


def test_collapse_command_follows_the_same_rule(folder, tmp_path, one_thread):
    args = ["collapse", str(folder / "big32"), "-r", "digits:test", "--resize-method", "nearest", "--json"]
    done = CliRunner().invoke(app, args, env={"GEN_EVAL_CACHE": str(tmp_path)})
    assert done.exit_code == 0, done.output
    warnings = json.loads(done.output)["warnings"]
    assert any("resized 60 images 32x32 -> 8x8 (nearest) for the digits extractor" in w for w in warnings)
