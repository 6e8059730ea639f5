"""Paired image-to-image tasks (issue 23): the tasks, paired sources, metrics and baselines."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from gen_eval.datasets.tasks import MASK_BOX, get_task, task_names


def test_task_names_and_shapes():
    assert task_names() == ["sr4", "inpaint", "edges"]
    for name in task_names():
        task = get_task(name)
        inputs, targets, labels = task.read("test", 0, 20)
        assert inputs.dtype == np.uint8 and targets.dtype == np.uint8 and labels.dtype == np.int64
        assert inputs.shape[1:] == task.input_shape and targets.shape[1:] == task.target_shape
        assert len(inputs) == len(targets) == len(labels) == 20
        assert task.size("test") == 1000
    with pytest.raises(KeyError):
        get_task("sr8")


def test_split_order_is_balanced_and_real():
    from gen_eval.datasets.mnist import load_mnist_split

    _, targets, labels = get_task("sr4").read("test")
    assert list(labels[:10]) == list(range(10))
    assert np.bincount(labels[:50]).tolist() == [5] * 10
    images, real_labels = load_mnist_split("test")
    # The same images, only reordered.
    assert sorted(map(bytes, targets)) == sorted(map(bytes, images))
    assert np.bincount(labels).tolist() == np.bincount(real_labels).tolist()


def test_sr4_area_mean_against_skimage():
    from skimage.transform import downscale_local_mean

    task = get_task("sr4")
    constant = torch.full((3, 1, 28, 28), 77, dtype=torch.uint8)
    assert torch.equal(task.degrade(constant), torch.full((3, 1, 7, 7), 77, dtype=torch.uint8))
    _, targets, _ = task.read("test", 0, 50)
    expected = downscale_local_mean(targets.astype(np.float64), (1, 1, 4, 4))
    got = task.degrade(torch.from_numpy(targets)).numpy().astype(np.float64)
    # Rounded half up: within half a grey level of scikit-image's exact mean, never further.
    assert np.abs(got - expected).max() <= 0.5
    assert np.array_equal(got, np.floor(expected + 0.5))


def test_inpaint_masks_exactly_the_centre():
    task = get_task("inpaint")
    ones = torch.full((2, 1, 28, 28), 200, dtype=torch.uint8)
    masked = task.degrade(ones)
    start, stop = MASK_BOX
    assert (masked[:, :, start:stop, start:stop] == 0).all()
    assert masked.sum().item() == 200 * 2 * (28 * 28 - 14 * 14)
    assert (~task.known(28, 28)).sum().item() == 14 * 14


def test_edges_are_canny():
    from skimage.feature import canny

    task = get_task("edges")
    inputs, targets, _ = task.read("test", 0, 5)
    for edge, target in zip(inputs, targets, strict=True):
        assert np.array_equal(edge[0] == 255, canny(target[0], sigma=1.0))
        assert set(np.unique(edge)) <= {0, 255}
    blank = torch.zeros((1, 1, 28, 28), dtype=torch.uint8)
    assert task.degrade(blank).sum().item() == 0


@pytest.mark.parametrize("name", ["sr4", "inpaint", "edges"])
def test_consistency_of_targets_is_zero_and_of_noise_is_not(name):
    task = get_task(name)
    inputs, targets, _ = task.read("test", 0, 30)
    inputs_t, targets_t = torch.from_numpy(inputs), torch.from_numpy(targets)
    assert np.array_equal(task.consistency(targets_t, inputs_t), np.zeros(30))
    noise = torch.randint(
        0, 256, targets_t.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    assert (task.consistency(noise, inputs_t) > 1).all()


def test_consistency_rmse_by_hand():
    task = get_task("inpaint")
    target = torch.zeros((1, 1, 28, 28), dtype=torch.uint8)
    output = target.clone()
    output[0, 0, 0, 0] = 30  # outside the mask: counts
    output[0, 0, 14, 14] = 250  # inside the mask: does not
    known = 28 * 28 - 14 * 14
    assert task.consistency(output, task.degrade(target))[0] == pytest.approx(
        np.sqrt(30**2 / known), rel=1e-12
    )


# ---------------------------------------------------------------------------------- sources, metrics
def _context(source, resamples=50):
    from gen_eval.metrics.base import MetricContext

    return MetricContext(generated_source=source, num_resamples=resamples, random_state=0)


def _save(path, **arrays):
    np.savez(path, **arrays)
    return path


def _noisy(targets, scale, seed=0):
    rng = np.random.default_rng(seed)
    return np.clip(targets.astype(np.int64) + rng.integers(-scale, scale + 1, targets.shape), 0, 255).astype(
        np.uint8
    )


def test_psnr_and_ssim_equal_scikit_image_and_torchmetrics(tmp_path):
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    from torchmetrics.functional.image import peak_signal_noise_ratio as tm_psnr
    from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

    from gen_eval.metrics.paired import psnr, ssim
    from gen_eval.sources import open_source

    inputs, targets, _ = get_task("sr4").read("test", 0, 40)
    outputs = _noisy(targets, 40)
    source = open_source(_save(tmp_path / "p.npz", outputs=outputs, inputs=inputs, targets=targets))
    assert source.task_name == "sr4"  # recognised from inputs == degrade(targets)
    got_psnr = psnr({}, {}, _context(source))["psnr"]
    got_ssim = ssim({}, {}, _context(source))["ssim"]
    want_psnr = np.mean(
        [peak_signal_noise_ratio(t[0], o[0], data_range=255) for o, t in zip(outputs, targets, strict=True)]
    )
    want_ssim = np.mean(
        [
            structural_similarity(
                t[0], o[0], data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
            )
            for o, t in zip(outputs, targets, strict=True)
        ]
    )
    assert got_psnr.value == pytest.approx(want_psnr, rel=1e-12)
    assert got_ssim.value == pytest.approx(want_ssim, rel=1e-12)
    low, high = got_psnr.interval
    assert low < got_psnr.value < high and got_psnr.interval_covers
    # A second peer: torchmetrics, per image then averaged (its SSIM pads where scikit-image crops).
    out_t, tgt_t = torch.from_numpy(outputs).double(), torch.from_numpy(targets).double()
    peer_psnr = tm_psnr(out_t, tgt_t, data_range=255.0, reduction="none", dim=(1, 2, 3)).mean()
    assert got_psnr.value == pytest.approx(float(peer_psnr), rel=1e-6)  # torchmetrics works in float32
    # torchmetrics' SSIM map agrees everywhere scikit-image's does: inside the 5-pixel border its
    # 11x11 window does not overhang (its scalar also averages the reflect-padded border).
    _, maps = tm_ssim(out_t, tgt_t, data_range=255.0, gaussian_kernel=True, sigma=1.5, return_full_image=True)
    peer_ssim = maps[:, :, 5:-5, 5:-5].mean(dim=(1, 2, 3)).mean()
    assert got_ssim.value == pytest.approx(float(peer_ssim), rel=1e-9)


def test_identical_outputs_give_ssim_one_and_marked_psnr(tmp_path):
    from gen_eval.metrics.paired import PSNR_CAP, psnr, ssim
    from gen_eval.sources import open_source

    source = open_source("task:inpaint", num_samples=30)  # outputs are the targets themselves
    result = psnr({}, {}, _context(source))["psnr"]
    assert result.value == PSNR_CAP and np.isfinite(result.value)
    assert result.details["capped"] and result.details["identical_pairs"] == 30
    assert "capped: identical" in result.warnings[0]
    assert ssim({}, {}, _context(source))["ssim"].value == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("name", ["bicubic_sr4", "nearest_sr4", "mean_inpaint"])
def test_baselines_are_exactly_consistent(name):
    from gen_eval.metrics.paired import consistency
    from gen_eval.sources import open_source

    source = open_source(f"ref:{name}", num_samples=100)
    result = consistency({}, {}, _context(source))["consistency"]
    assert result.value == 0.0 and result.details["exactly_consistent"] == 100
    pairs = source.pairs()
    assert not np.array_equal(pairs.outputs, pairs.targets)  # not trivially the truth


def test_bicubic_is_bicubic_before_projection():
    from PIL import Image

    from reference_models import load_model
    from reference_models.paired_baselines import _pil_bicubic, back_project_sr4

    inputs, _, _ = get_task("sr4").read("test", 0, 20)
    plain = _pil_bicubic(torch.from_numpy(inputs), (28, 28))  # PIL's float bicubic
    first = np.asarray(Image.fromarray(inputs[0, 0]).resize((28, 28), Image.Resampling.BICUBIC))
    # The same kernel as PIL's uint8 bicubic, which rounds its fixed-point weights (up to a few levels apart).
    assert np.abs(np.clip(np.rint(plain[0, 0]), 0, 255) - first).mean() < 0.5
    out = load_model("bicubic_sr4").translate(torch.from_numpy(inputs)).numpy().astype(float)
    near = load_model("nearest_sr4").translate(torch.from_numpy(inputs)).numpy().astype(float)
    # Both are exactly consistent; the projected bicubic stays nearer plain bicubic than nearest does
    # (it shifts each 4x4 block, then clips bicubic's overshoot below 0 and above 255).
    assert np.abs(out - plain).mean() < 0.8 * np.abs(near - plain).mean()
    # Exact even where clipping at 0/255 interferes: random up-sampled images, random inputs.
    rng = np.random.default_rng(1)
    lows = rng.integers(0, 256, (50, 1, 7, 7)).astype(np.uint8)
    projected = back_project_sr4(rng.uniform(-80, 335, (50, 1, 28, 28)), lows)
    assert torch.equal(get_task("sr4").degrade(torch.from_numpy(projected)), torch.from_numpy(lows))


def test_several_outputs_per_input_and_diversity(tmp_path):
    from gen_eval.evaluation_setup import available_inputs
    from gen_eval.metrics.paired import output_diversity, psnr
    from gen_eval.sources import open_source

    inputs, targets, _ = get_task("sr4").read("test", 0, 10)
    outputs = np.stack([_noisy(targets, 30, seed) for seed in range(3)], axis=1)  # (10, 3, 1, 28, 28)
    source = open_source(_save(tmp_path / "k.npz", outputs=outputs, inputs=inputs, targets=targets))
    assert len(source) == 30 and source.outputs_per_input == 3
    assert {"pairs", "pairs_task", "pairs_multi"} <= available_inputs(source, ("features",))
    batch = next(source.batches(7))
    # Row i*K + j: output j of input i, beside copies of input i and target i.
    assert torch.equal(batch.targets[4], torch.from_numpy(targets[1])) and torch.equal(
        batch.inputs[5], torch.from_numpy(inputs[1])
    )
    grouped = outputs.reshape(10, 3, -1).astype(float)
    want = np.mean(
        [
            np.mean([np.sqrt(((g[a] - g[b]) ** 2).mean()) for a, b in ((0, 1), (0, 2), (1, 2))])
            for g in grouped
        ]
    )
    result = output_diversity({}, {}, _context(source))["output_diversity"]
    assert result.value == pytest.approx(want, rel=1e-12) and result.value > 5
    assert result.num_reference == 10  # the interval resamples inputs, not rows
    same = np.repeat(targets[:, None], 3, axis=1)
    copies = open_source(_save(tmp_path / "same.npz", outputs=same, inputs=inputs, targets=targets))
    assert output_diversity({}, {}, _context(copies))["output_diversity"].value == 0.0
    assert psnr({}, {}, _context(copies))["psnr"].details["identical_pairs"] == 30
    single = open_source("task:sr4", num_samples=5)
    assert "pairs_multi" not in available_inputs(single, ("features",))


def test_npz_with_a_task_name_answers_the_test_split(tmp_path):
    from gen_eval.sources import open_source

    inputs, targets, labels = get_task("edges").read("test")
    source = open_source(_save(tmp_path / "t.npz", outputs=targets, task=np.array("edges")), num_samples=20)
    pairs = source.pairs()
    assert len(source) == 20 and source.task_name == "edges"
    assert np.array_equal(pairs.inputs, inputs[:20]) and np.array_equal(pairs.labels, labels[:20])


def _folder(root, part, images, names):
    from PIL import Image

    (root / part).mkdir(parents=True)
    for image, name in zip(images, names, strict=True):
        Image.fromarray(image[0]).save(root / part / f"{name}.png")


def test_paired_folder(tmp_path):
    from gen_eval.sources import open_source

    inputs, targets, _ = get_task("inpaint").read("test", 0, 6)
    names = [f"{i:03d}" for i in range(6)]
    _folder(tmp_path / "run", "outputs", targets, names)
    _folder(tmp_path / "run", "targets", targets, names)
    _folder(tmp_path / "run", "inputs", inputs, names)
    source = open_source(str(tmp_path / "run"))
    assert source.paired and len(source) == 6 and source.task_name == "inpaint"
    assert np.array_equal(source.pairs().outputs, targets)


def test_paired_errors_name_the_file(tmp_path):
    from gen_eval.errors import GenEvalError
    from gen_eval.sources import open_source

    inputs, targets, _ = get_task("sr4").read("test", 0, 8)
    cases = {
        "count.npz": (dict(outputs=targets[:5], inputs=inputs, targets=targets), "5 outputs"),
        "inputs.npz": (dict(outputs=targets, inputs=inputs[:6], targets=targets), "6 inputs but 8 targets"),
        "shape.npz": (dict(outputs=inputs, inputs=inputs, targets=targets), "outputs are 1x7x7"),
        "half.npz": (dict(outputs=targets, targets=targets), "no inputs"),
        "bare.npz": (dict(outputs=targets), "without inputs/targets or a task"),
        "task.npz": (dict(outputs=targets, task=np.array("sr8")), "task is"),
        "tasklen.npz": (dict(outputs=targets, task=np.array("sr4")), "whose test split has 1,000"),
        "order.npz": (
            dict(outputs=targets, inputs=inputs[::-1], targets=targets, task=np.array("sr4")),
            "misaligned",
        ),
        "labels.npz": (
            dict(outputs=targets, inputs=inputs, targets=targets, labels=np.arange(3)),
            "3 labels",
        ),
    }
    for name, (arrays, expected) in cases.items():
        path = _save(tmp_path / name, **arrays)
        with pytest.raises(GenEvalError) as info:
            open_source(str(path))
        message = str(info.value)
        assert name in message and expected in message and "\n" not in message, message
    _folder(tmp_path / "f", "outputs", targets, [f"{i}" for i in range(8)])
    _folder(tmp_path / "f", "targets", targets[:7], [f"{i}" for i in range(7)])
    with pytest.raises(GenEvalError, match=r"f: outputs/ \(8 files\) and targets/ \(7\).*not in targets/: 7"):
        open_source(str(tmp_path / "f"))
    with pytest.raises(GenEvalError, match="task:sr5: no task 'sr5'"):
        open_source("task:sr5")
    with pytest.raises(GenEvalError, match="not 'val'"):
        open_source("task:sr4:val")


def test_evaluate_cli_end_to_end(tmp_path):
    import json

    from typer.testing import CliRunner

    from gen_eval.cli import app

    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        "evaluate ref:bicubic_sr4 --reference task:sr4 --features identity --num-samples 60 "
        f"--num-resamples 20 --no-collapse --metrics psnr,ssim,consistency,fid --out {out}".split(),
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    by_name = {m["name"]: m for m in (metrics.values() if isinstance(metrics, dict) else metrics)}
    assert by_name["consistency"]["value"] == 0.0
    assert 10 < by_name["psnr"]["value"] < 30 and 0 < by_name["ssim"]["value"] < 1
    assert by_name["fid"]["value"] > 0
    assert (out / "triplets.png").read_bytes().startswith(b"\x89PNG")
    manifest = json.loads((out / "manifest.json").read_text())
    assert "paired" in json.dumps(manifest)
    bad = CliRunner().invoke(app, ["evaluate", "task:sr9", "--reference", "task:sr4", "--no-save"])
    assert bad.exit_code != 0 and "task:sr9: no task" in bad.output and "Traceback" not in bad.output


def test_triplets_picture_of_several_outputs(tmp_path):
    from PIL import Image

    from gen_eval.runs.triplets import FILE, triplet_files
    from gen_eval.sources import open_source

    inputs, targets, _ = get_task("sr4").read("test", 0, 3)
    outputs = np.stack([targets] * 6, axis=1)
    files = triplet_files(
        open_source(_save(tmp_path / "six.npz", outputs=outputs, inputs=inputs, targets=targets))
    )
    picture = Image.open(io.BytesIO(files[FILE]))
    # 3 rows of input + 4 of the 6 outputs + target, each at least 48 px: wider than 6 cells.
    assert picture.width > 6 * 48 and picture.height > 3 * 48
    assert triplet_files(open_source("mnist:test", num_samples=5)) == {}


def test_lpips_falls_back_to_a_named_feature_distance(tmp_path, monkeypatch):
    from gen_eval.features import create_extractor
    from gen_eval.perceptual.pairs import feature_distance, lpips
    from gen_eval.sources import open_source

    monkeypatch.delenv("GEN_EVAL_VGG16_WEIGHTS", raising=False)
    monkeypatch.delenv("GEN_EVAL_LPIPS_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # no cached VGG weights
    source = open_source("ref:nearest_sr4", num_samples=40)
    results = lpips({}, {}, _context(source))
    assert list(results) == ["feature_distance"]  # never reported under LPIPS's name
    result = results["feature_distance"]
    assert "LPIPS not run" in result.warnings[0] and "vgg16-397923af.pth" in result.warnings[0]
    assert result.details["network"] == "mnist network"
    pairs = source.pairs()
    extractor = create_extractor("mnist")
    with torch.no_grad():
        out = extractor.extract(torch.from_numpy(pairs.outputs))["features"].double()
        tgt = extractor.extract(torch.from_numpy(pairs.targets))["features"].double()
    want = np.linalg.norm((out - tgt).numpy(), axis=1).mean()
    assert result.value == pytest.approx(want, rel=1e-9)
    same = feature_distance({}, {}, _context(open_source("task:sr4", num_samples=10)))["feature_distance"]
    assert same.value == 0.0 and not same.warnings


def test_lpips_runs_with_weights_on_disk_and_equals_the_network_per_pair(tmp_path, monkeypatch):
    """The LPIPS path, with random but informative VGG-16 and lin weights this test makes (nothing
    is downloaded): the metric is named lpips and equals the network's mean over the pairs."""
    from torchvision.models import vgg16

    from gen_eval.features import lpips as lpips_module
    from gen_eval.perceptual.pairs import lpips
    from gen_eval.sources import open_source

    torch.manual_seed(0)
    vgg = vgg16(weights=None)
    for module in vgg.features:
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight)
            torch.nn.init.normal_(module.bias, std=0.1)
    vgg_path, lin_path = tmp_path / "vgg16-397923af.pth", tmp_path / "lin.pth"
    torch.save(vgg.state_dict(), vgg_path)
    torch.save(
        {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate(lpips_module._CHANNELS)},
        lin_path,
    )
    monkeypatch.setenv("GEN_EVAL_VGG16_WEIGHTS", str(vgg_path))
    monkeypatch.setenv("GEN_EVAL_LPIPS_WEIGHTS", str(lin_path))
    source = open_source("ref:nearest_sr4", num_samples=12)
    results = lpips({}, {}, _context(source, resamples=20))
    assert list(results) == ["lpips"] and results["lpips"].interval is not None
    pairs = source.pairs()
    network = lpips_module.LPIPS.from_files(vgg_path, lin_path)
    with torch.no_grad():
        want = network(
            torch.from_numpy(pairs.outputs).float() / 255, torch.from_numpy(pairs.targets).float() / 255
        )
    assert results["lpips"].value == pytest.approx(float(want.double().mean()), rel=1e-6)
    assert results["lpips"].value > 0
    same = lpips({}, {}, _context(open_source("task:sr4", num_samples=6), resamples=0))["lpips"]
    assert same.value == pytest.approx(0.0, abs=1e-6)  # targets against themselves
