"""``--resize-mode``: Inception's input as torch-fidelity, clean-fid and pytorch-fid make it, on the same weights.

Each peer runs its own preprocessing code on the same uint8 images (``gen_eval.bench.parity_inception``:
torch-fidelity's forward, clean-fid's ``build_resizer`` and loader, pytorch-fid's ``InceptionV3``), and
a network loaded from the same random-but-informative weights file; nothing is downloaded.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from typer.testing import CliRunner

from gen_eval.bench.common import write_png_folder
from gen_eval.bench.inception_weights import make_informative_inception_weights, varied_images
from gen_eval.bench.parity_inception import PEERS, ours, peer_features
from gen_eval.cli import app
from gen_eval.features.cache import FeatureCache
from gen_eval.features.inception import InceptionExtractor
from gen_eval.features.inception_input import RESIZE_MODES

runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One thread: on a busy 2-core machine, two threads spin-waiting cost more than they give."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return make_informative_inception_weights(tmp_path_factory.mktemp("inception") / "informative.pth")


@pytest.fixture(scope="module")
def images():
    """Three non-square images (36 x 30): every resize samples a grid of its own."""
    return varied_images(3, 36, seed=3)[:, :, :, :30].contiguous()


def _relative(a, b) -> float:
    return float(abs(a - b).max() / abs(b).max())


@pytest.mark.parametrize("mode, peer", [(mode, peer) for mode, peers in PEERS.items() for peer in peers])
def test_features_equal_the_peers_own_pipeline(weights, images, mode, peer):
    mine, theirs = ours(images, mode, weights), peer_features(images, mode, peer, weights)
    # clean-fid's legacy_pytorch resizes 0-255 values and divides by 255 afterwards (pytorch-fid divides
    # first), so it differs from pytorch-fid itself by rounding: measured 2.9e-6.
    bound = 1e-5 if (mode, peer) == ("legacy-pytorch", "clean-fid") else 1e-6
    assert _relative(mine["features"], theirs["features"]) <= bound
    assert abs(theirs["features"]).max() > 1  # informative features, not zeros


def test_the_modes_differ_and_each_has_its_own_cache_key(weights, images):
    features = {mode: ours(images, mode, weights)["features"] for mode in RESIZE_MODES}
    for i, first in enumerate(RESIZE_MODES):
        for second in RESIZE_MODES[i + 1 :]:
            assert _relative(features[first], features[second]) > 1e-3, (first, second)
    described = [
        InceptionExtractor(weights_path=weights, resize_mode=mode, spatial=spatial).describe()
        for mode in RESIZE_MODES
        for spatial in (False, True)
    ]
    assert len({FeatureCache.key("same-source", d) for d in described}) == 2 * len(RESIZE_MODES)


def test_the_mode_is_recorded_and_bad_modes_are_one_line_errors(weights, tmp_path):
    gen = write_png_folder(varied_images(4, 32, seed=1).numpy(), tmp_path / "gen")
    ref = write_png_folder(varied_images(5, 32, seed=2).numpy(), tmp_path / "ref")
    common = [str(gen), "--reference", str(ref), "--no-cache", "-q", "--no-collapse", "--num-resamples", "0"]
    inception = ["--features", "inception", "--inception-weights", str(weights), "--metrics", "fid"]
    done = runner.invoke(
        app, ["evaluate", *common, *inception, "--resize-mode", "clean", "--out", str(tmp_path / "run")]
    )
    assert done.exit_code == 0, done.output
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["options"]["resize_mode"] == "clean"
    assert "resize mode clean (clean-fid)" in manifest["extractor"]["preprocessing"]
    for extra, message in [
        (
            [*inception, "--resize-mode", "tf"],
            "--resize-mode 'tf': choose from legacy-tf, clean, legacy-pytorch, bicubic",
        ),
        (
            ["--features", "identity", "--resize-mode", "clean"],
            "--resize-mode clean: --features identity has no resize conventions",
        ),
    ]:
        done = runner.invoke(app, ["evaluate", *common, *extra, "--no-save"])
        assert done.exit_code != 0 and message in done.output and "Traceback" not in done.output
        assert len(done.output.strip().splitlines()) == 1
    # `score` takes the same option and refuses a wrong one once, before any submission is read.
    shutil.copytree(gen, tmp_path / "subs" / "alice")
    done = runner.invoke(
        app,
        ["score", str(tmp_path / "subs"), "-r", str(ref), "--features", "identity", "--resize-mode", "clean"],
    )
    assert done.exit_code != 0 and "--features identity has no resize conventions" in done.output
    assert not (tmp_path / "score-subs").exists() and sorted(
        p.name for p in (tmp_path / "subs").iterdir()
    ) == ["alice"]


def test_grey_images_take_the_same_path_in_every_mode(weights):
    grey = varied_images(2, 20, seed=5).float().mean(1, keepdim=True).round().to(torch.uint8)
    for mode in ("clean", "legacy-pytorch"):
        extractor = InceptionExtractor(weights_path=weights, resize_mode=mode)
        torch.testing.assert_close(
            extractor(grey)["features"], extractor(grey.repeat(1, 3, 1, 1))["features"]
        )


def test_compare_reextracts_a_clean_mode_reference_and_bootstraps_sfid(weights, tmp_path, monkeypatch):
    import shutil

    from gen_eval import compare, evaluate

    ref = write_png_folder(varied_images(5, 32, seed=2).numpy(), tmp_path / "ref")
    options = {
        "features": "inception",
        "inception_weights": weights,
        "metrics": ["sfid"],
        "resize_mode": "clean",
        "num_resamples": 0,
        "collapse": False,
        "cache_dir": tmp_path / "cache",
    }
    for name, seed in (("a", 1), ("b", 3)):
        gen = write_png_folder(varied_images(4, 32, seed=seed).numpy(), tmp_path / f"gen_{name}")
        evaluate(gen, ref, out=tmp_path / name, **options)
    monkeypatch.setenv("GEN_EVAL_INCEPTION_WEIGHTS", str(weights))  # how compare finds them again
    shutil.rmtree(
        tmp_path / "cache"
    )  # the reference must be re-extracted in the run's mode, spatial included
    result = compare(
        [tmp_path / "a", tmp_path / "b"], num_resamples=5, device="cpu", cache_dir=tmp_path / "cache"
    )
    (row,) = result.to_dict()["rows"]
    assert row["metric"] == "sfid" and row["method"] == "bootstrap"
    assert any("re-extracted" in note for note in result.notes)
