"""Point-cloud sources (arrays, folders of .ply/.xyz/.npy), their one-line errors, and evaluate end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from plyfile import PlyData, PlyElement

import gen_eval
from gen_eval.errors import GenEvalError
from gen_eval.features import EXTRACTORS, ExtractorEntry
from gen_eval.features.base import FeatureExtractor
from gen_eval.sources import open_source


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()  # the CPU is shared: one thread avoids barrier waits under load
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_generators_returning_clouds_are_read_as_point_clouds():
    from gen_eval.sources.python import canonical_samples

    clouds, kind, note = canonical_samples(np.zeros((2, 16, 3)), "m", 2)
    assert kind == "pointcloud" and clouds.dtype == np.float32 and note is None
    with pytest.raises(GenEvalError, match="NaN or inf"):
        canonical_samples(np.full((2, 16, 3), np.inf, np.float32), "m", 2)


def _clouds(n: int = 4, p: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, p, 3)).astype(np.float32)


def _write_ply(path, cloud: np.ndarray, text: bool) -> None:
    vertex = np.array([tuple(point) for point in cloud], dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
    PlyData([PlyElement.describe(vertex, "vertex")], text=text, byte_order="<").write(str(path))


def test_array_files_and_folders_read_the_same_clouds(tmp_path):
    clouds = _clouds()
    np.savez(tmp_path / "clouds.npz", clouds=clouds)
    np.save(tmp_path / "clouds.npy", clouds.astype(np.float64))
    from_npz = open_source(str(tmp_path / "clouds.npz"))
    assert from_npz.data_kind == "pointcloud" and from_npz.sample_shape == (32, 3) and len(from_npz) == 4
    assert np.array_equal(from_npz.head(4).data.numpy(), clouds)
    assert np.array_equal(open_source(str(tmp_path / "clouds.npy")).head(4).data.numpy(), clouds)
    folder = tmp_path / "folder"
    folder.mkdir()
    _write_ply(folder / "2.ply", clouds[0], text=True)  # ASCII
    _write_ply(folder / "10.ply", clouds[1], text=False)  # binary little-endian
    np.savetxt(
        folder / "11.xyz", np.c_[clouds[2], np.ones(32)], header="x y z intensity"
    )  # 4th column ignored
    np.save(folder / "12.npy", clouds[3])
    source = open_source(str(folder))
    assert source.data_kind == "pointcloud" and source.kind == "folder"
    assert np.allclose(source.head(4).data.numpy(), clouds, atol=1e-6)  # name order: 2, 10, 11, 12
    assert open_source(str(folder), num_samples=2).head(9).data.shape == (2, 32, 3)
    assert source.fingerprint != from_npz.fingerprint or np.array_equal(source._data, clouds)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda d: np.save(d / "c.npy", np.full((3, 20, 3), np.nan, np.float32)),
            r"c\.npy: cloud 0 has NaN or inf",
        ),
        (
            lambda d: np.save(d / "c.npy", np.zeros((3, 20, 2), np.float32)),
            r"c\.npy: point clouds must be an \(N, P, 3\)",
        ),
        (
            lambda d: np.save(d / "c.npy", np.zeros((3, 4, 3), np.float32)),
            r"c\.npy: clouds of 4 points; at least 8",
        ),
    ],
)
def test_bad_arrays_are_one_line_errors_naming_the_file(tmp_path, make, message):
    make(tmp_path)
    with pytest.raises(GenEvalError, match=message) as error:
        open_source(str(tmp_path / "c.npy"))
    assert "\n" not in str(error.value)


def test_bad_folders_are_one_line_errors_naming_the_file(tmp_path):
    clouds = _clouds(3, 20)
    ragged = tmp_path / "ragged"
    ragged.mkdir()
    np.save(ragged / "a.npy", clouds[0])
    np.save(ragged / "b.npy", clouds[1][:12])
    with pytest.raises(
        GenEvalError, match=r"different point counts \(.*b\.npy: 12, .*a\.npy: 20\); .*--resample-points N"
    ):
        open_source(str(ragged))
    fixed = open_source(str(ragged), resample_points=16)
    assert fixed.sample_shape == (16, 3) and "2 of 2 clouds resampled to 16 points" in fixed.notes[0]
    # The subset keeps real points: every resampled point is one of the cloud's own.
    kept = fixed.head(2).data.numpy()
    assert all(any(np.allclose(point, c) for c in clouds[0]) for point in kept[0])
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.xyz").write_text("0 0 0\n1 nan 0\n" + "0 1 2\n" * 10)
    with pytest.raises(GenEvalError, match=r"a\.xyz: NaN or inf coordinates"):
        open_source(str(bad))
    (bad / "a.xyz").write_text("0 0\n" * 10)
    with pytest.raises(GenEvalError, match=r"a\.xyz: an \.xyz cloud needs three numbers per line"):
        open_source(str(bad))
    (bad / "a.xyz").unlink()
    np.save(bad / "w.npy", np.zeros((20, 4), np.float32))
    with pytest.raises(
        GenEvalError, match=r"w\.npy: a cloud file must hold \(P, 3\) points, got shape \(20, 4\)"
    ):
        open_source(str(bad))
    (bad / "w.npy").unlink()
    _write_ply(bad / "few.ply", clouds[0][:5], text=True)
    with pytest.raises(GenEvalError, match=r"few\.ply: a cloud of 5 points; at least 8"):
        open_source(str(bad))
    (bad / "few.ply").write_bytes(b"ply\nformat ascii 1.0\nelement face 0\nend_header\n")
    with pytest.raises(GenEvalError, match=r"few\.ply: a \.ply point cloud needs a vertex element"):
        open_source(str(bad))


class CloudMoments(FeatureExtractor):
    """Test extractor: centroid, sorted covariance eigenvalues and mean radius of each cloud."""

    name, input_kind, description = "cloud_moments", "pointcloud", "test-only moments"
    preprocessing = "float32"
    weights_fingerprint = "cloud-moments-v1"

    def extract(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        centred = batch - batch.mean(1, keepdim=True)
        cov = centred.transpose(1, 2) @ centred / batch.shape[1]
        return {
            "features": torch.cat(
                [batch.mean(1), torch.linalg.eigvalsh(cov), centred.norm(dim=2).mean(1, keepdim=True)], 1
            )
        }


def test_evaluate_end_to_end_with_a_run_directory(tmp_path):
    from gen_eval.datasets import shapes3d

    clouds = shapes3d.read("test", 0, 40, points=64, random_state=3)[0]
    np.savez(tmp_path / "gen.npz", clouds)
    with EXTRACTORS.registered("cloud_moments", ExtractorEntry(CloudMoments, ("pointcloud",))):
        result = gen_eval.evaluate(
            str(tmp_path / "gen.npz"),
            "shapes3d:validation:64",
            features="cloud_moments",
            num_reference=40,
            num_resamples=10,
            out=tmp_path / "run",
            cache_dir=None,
            device="cpu",
        )
        run = gen_eval.load_run(tmp_path / "run")
    assert {"mmd_cd", "cov_cd", "1nna_cd", "jsd", "fid"} <= set(result.metrics)
    assert "mmd_emd" not in result.metrics  # EMD is asked for, never default (slow)
    assert result.manifest["generated"]["data_kind"] == "pointcloud"
    assert 0.2 < result.metrics["1nna_cd"].value < 0.8  # two draws of one distribution
    assert run.metrics["cov_cd"].value == result.metrics["cov_cd"].value
    assert (tmp_path / "run" / "samples.png").read_bytes().startswith(b"\x89PNG")
    stored = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert isinstance(json.dumps(stored), str)
    # The run keeps its first clouds; the report and the compare page show them in 3-D.
    from gen_eval.comparison.compare import compare
    from gen_eval.comparison.html import comparison_html
    from gen_eval.report.pointclouds import read_run_clouds
    from gen_eval.report.run_report import write_report

    kept = read_run_clouds(tmp_path / "run")
    assert np.array_equal(kept["generated"], clouds[:16]) and kept["reference"].shape == (16, 64, 3)
    page = write_report(tmp_path / "run").read_text()
    assert '"name":"generated #3"' in page and '"name":"reference #3"' in page  # 4 of each, in 3-D
    assert '"name":"generated #4"' not in page and '"type":"scatter3d"' in page
    html = comparison_html(compare([tmp_path / "run", tmp_path / "run"], num_resamples=0))
    assert "Point clouds in 3-D" in html and '"type":"scatter3d"' in html


def test_score_grades_point_cloud_submissions_and_names_a_bad_one(tmp_path):
    from gen_eval.datasets import shapes3d
    from gen_eval.grading.score import score

    submissions = tmp_path / "submissions"
    (submissions / "alice").mkdir(parents=True)
    np.savez(
        submissions / "alice" / "samples.npz", shapes3d.read("test", 0, 24, points=32, random_state=5)[0]
    )
    bob = submissions / "bob" / "samples"
    bob.mkdir(parents=True)
    for index, cloud in enumerate(shapes3d.read("test", 0, 24, points=32, random_state=6)[0]):
        _write_ply(bob / f"{index}.ply", cloud, text=index % 2 == 0)
    broken = shapes3d.read("test", 0, 24, points=32, random_state=7)[0]
    broken[3, 5] = np.nan
    np.save(submissions / "carol.npy", broken)
    with EXTRACTORS.registered("cloud_moments", ExtractorEntry(CloudMoments, ("pointcloud",))):
        result = score(
            submissions,
            "shapes3d:validation:32",
            features="cloud_moments",
            out=tmp_path / "graded",
            num_resamples=0,
            rank_by="1nna_cd",
            device="cpu",
        )
    rows = {row.name: row for row in result.rows}
    assert rows["alice"].error is None and rows["bob"].error is None
    assert "1nna_cd" in rows["alice"].metrics and rows["bob"].num_samples == 24
    assert rows["carol"].error is not None and "cloud 3 has NaN or inf" in rows["carol"].error


def test_grey_image_arrays_stay_images(tmp_path):
    np.save(tmp_path / "grey.npy", np.random.default_rng(0).random((5, 8, 8)).astype(np.float32))
    assert open_source(str(tmp_path / "grey.npy")).data_kind == "image"  # (N, H, W) grey, as before
