"""Reference statistics in and out: formats round-trip, FID from statistics, the pickle allow-list, provenance."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from typer.testing import CliRunner

from gen_eval import evaluate
from gen_eval.cli import app
from gen_eval.errors import GenEvalError
from gen_eval.sources.statistics import ReferenceStatistics, read_statistics, write_statistics

runner = CliRunner()
COMMON = {"features": "identity", "cache_dir": None, "num_resamples": 20, "seed": 3}


def _random_statistics(dim: int = 6, seed: int = 0, spatial: int = 0) -> ReferenceStatistics:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(dim, dim))
    b = rng.normal(size=(spatial, spatial))
    extra = {"mu_s": rng.normal(size=spatial) * 1e2, "sigma_s": b @ b.T} if spatial else {}
    return ReferenceStatistics(
        rng.normal(size=dim) * 1e3, a @ a.T + 1e-3 * np.eye(dim), 1234, "identity", "identity-v1", extra=extra
    )


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """A vector reference and generated set (.npz), and the reference's statistics in every format."""
    root = tmp_path_factory.mktemp("stats")
    rng = np.random.default_rng(0)
    np.savez(root / "ref.npz", rng.normal(size=(500, 6)).astype(np.float32))
    np.savez(root / "gen.npz", (rng.normal(size=(300, 6)) * 1.3 + 0.2).astype(np.float32))
    files = {
        "gen-eval": root / "ref_gen_eval.npz",
        "pytorch-fid": root / "ref_pt.npz",
        "edm2": root / "ref.pkl",
    }
    for format, path in files.items():
        args = ["stats", str(root / "ref.npz"), "--format", format, "--out", str(path), "--no-cache", "-q"]
        done = runner.invoke(app, args)
        assert done.exit_code == 0, done.output
    return root, files


@pytest.mark.parametrize(
    "format, name", [("gen-eval", "s.npz"), ("pytorch-fid", "s.npz"), ("adm", "s.npz"), ("edm2", "s.pkl")]
)
def test_statistics_round_trip_through_every_format(tmp_path, format, name):
    stats = _random_statistics(spatial=5)
    write_statistics(stats, tmp_path / name, format)
    back = read_statistics(tmp_path / name)
    assert back.format == format
    np.testing.assert_allclose(back.mu, stats.mu, rtol=1e-12, atol=0)
    np.testing.assert_allclose(back.sigma, stats.sigma, rtol=1e-12, atol=0)
    # ADM's spatial statistics (sFID): its own format and gen-eval's keep them; the others have no room.
    assert set(back.extra) == ({"mu_s", "sigma_s"} if format in ("adm", "gen-eval") else set())
    for key, value in back.extra.items():
        np.testing.assert_allclose(value, stats.extra[key], rtol=1e-12, atol=0)
    recorded = format in ("gen-eval", "edm2")  # pytorch-fid's and ADM's files have no room for provenance
    assert (back.extractor, back.weights_sha256, back.count) == (
        ("identity", "identity-v1", 1234) if recorded else (None, None, None)
    )
    assert [p.name for p in tmp_path.iterdir()] == [name]  # written atomically: no temporary file left


def test_statistics_convert_between_formats_to_1e_12(tmp_path):
    # gen-eval -> adm -> gen-eval -> edm2 -> pytorch-fid: what each format holds survives every hop.
    stats = _random_statistics(dim=9, seed=4, spatial=7)
    path = tmp_path / "start.npz"
    write_statistics(stats, path, "gen-eval")
    for format, name in [
        ("adm", "a.npz"),
        ("gen-eval", "g.npz"),
        ("edm2", "e.pkl"),
        ("pytorch-fid", "p.npz"),
    ]:
        back = read_statistics(path)
        path = tmp_path / name
        write_statistics(back, path, format)
        if format in ("adm", "gen-eval"):
            np.testing.assert_allclose(
                read_statistics(path).extra["sigma_s"], stats.extra["sigma_s"], rtol=1e-12
            )
    final = read_statistics(path)
    np.testing.assert_allclose(final.mu, stats.mu, rtol=1e-12, atol=0)
    np.testing.assert_allclose(final.sigma, stats.sigma, rtol=1e-12, atol=0)


def test_adm_reference_batch_is_read_and_written(tmp_path):
    stats = _random_statistics()
    rng = np.random.default_rng(1)
    spatial = rng.normal(size=(4, 4))
    images = rng.integers(0, 256, size=(3, 8, 8, 3), dtype=np.uint8)
    np.savez(
        tmp_path / "VIRTUAL_batch.npz",
        arr_0=images,
        mu=stats.mu,
        sigma=stats.sigma,
        mu_s=spatial[0],
        sigma_s=spatial,
    )
    back = read_statistics(tmp_path / "VIRTUAL_batch.npz")
    assert back.format == "adm" and back.extractor is None
    np.testing.assert_allclose(back.mu, stats.mu, rtol=1e-12, atol=0)
    np.testing.assert_allclose(back.sigma, stats.sigma, rtol=1e-12, atol=0)
    np.testing.assert_allclose(back.extra["sigma_s"], spatial, rtol=1e-12, atol=0)
    # Written back with its images (arr_0, NHWC uint8): the keys and arrays of ADM's batch.
    write_statistics(back, tmp_path / "again.npz", "adm", images=images)
    with np.load(tmp_path / "again.npz", allow_pickle=False) as written:
        assert sorted(written.files) == ["arr_0", "mu", "mu_s", "sigma", "sigma_s"]
        np.testing.assert_array_equal(written["arr_0"], images)
    # No spatial statistics (not from Inception): ADM's format cannot be written, and nothing is.
    with pytest.raises(GenEvalError, match=r"--format adm holds Inception's spatial statistics .* none"):
        write_statistics(_random_statistics(), tmp_path / "out.npz", "adm")
    with pytest.raises(GenEvalError, match="only --format adm stores the images"):
        write_statistics(back, tmp_path / "out.npz", "gen-eval", images=images)
    assert not (tmp_path / "out.npz").exists()
    # A malformed spatial pair is one line naming the file and the array.
    np.savez(tmp_path / "bad.npz", mu=stats.mu, sigma=stats.sigma, mu_s=np.zeros(3), sigma_s=np.eye(4))
    with pytest.raises(GenEvalError, match=r"bad.npz: 'mu_s' must be a numeric \(D,\) vector"):
        read_statistics(tmp_path / "bad.npz")


def test_the_peers_loaders_read_what_gen_eval_writes(sets):
    from pytorch_fid.fid_score import compute_statistics_of_path

    _, files = sets
    mine = read_statistics(files["gen-eval"])
    for format in ("gen-eval", "pytorch-fid"):  # the gen-eval format's extra keys do not bother pytorch-fid
        mu, sigma = compute_statistics_of_path(str(files[format]), None, 1, 6, "cpu")
        np.testing.assert_array_equal(mu, mine.mu)
        np.testing.assert_array_equal(sigma, mine.sigma)
    with open(files["edm2"], "rb") as stream:  # EDM2's load_stats: a plain pickle.load (of our own file)
        ref = pickle.load(stream)
    np.testing.assert_array_equal(ref["identity"]["mu"], mine.mu)
    assert ref["num_images"] == 500
    with zipfile.ZipFile(files["pytorch-fid"]) as archive:
        assert sorted(archive.namelist()) == ["mu.npy", "sigma.npy"]


def test_fid_against_statistics_equals_fid_against_the_samples_and_pytorch_fid(sets):
    from pytorch_fid.fid_score import calculate_frechet_distance

    root, files = sets
    from_samples = evaluate(
        root / "gen.npz", root / "ref.npz", metrics=["fid", "fd_inf"], collapse=False, **COMMON
    )
    gen = np.load(root / "gen.npz")["arr_0"].astype(np.float64)
    ref = read_statistics(files["gen-eval"])
    by_pytorch_fid = calculate_frechet_distance(gen.mean(0), np.cov(gen, rowvar=False), ref.mu, ref.sigma)
    for path in files.values():
        stated = "identity" if path == files["pytorch-fid"] else None
        against = evaluate(
            root / "gen.npz", path, metrics=["fid", "fd_inf"], reference_features=stated, **COMMON
        )
        fid, expected = against.metrics["fid"], from_samples.metrics["fid"]
        assert fid.value == pytest.approx(expected.value, rel=1e-10)
        assert fid.value == pytest.approx(by_pytorch_fid, rel=1e-8)
        # The interval resamples the generated set with the reference fixed: the same draws either way.
        np.testing.assert_allclose(fid.interval, expected.interval, rtol=1e-10)
        assert "reference fixed" in fid.interval_covers and "statistics" in fid.interval_covers
        assert against.metrics["fd_inf"].value == pytest.approx(
            from_samples.metrics["fd_inf"].value, rel=1e-8
        )
    assert fid.value > 0.05  # the sets differ: equal values are not two zeros


def test_metrics_that_need_samples_say_so(sets):
    root, files = sets
    result = evaluate(root / "gen.npz", files["gen-eval"], **COMMON)
    assert list(result.metrics) == ["fid"]
    for metric in ("kid", "precision_recall", "density_coverage"):
        lines = [w for w in result.warnings if w.startswith(f"{metric}:")]
        assert len(lines) == 1 and "needs reference samples" in lines[0] and "statistics" in lines[0]
    assert any(w.startswith("collapse check: not run") for w in result.warnings)
    with pytest.raises(GenEvalError, match="metric kid needs reference samples"):
        evaluate(root / "gen.npz", files["gen-eval"], metrics=["fid", "kid"], **COMMON)


def test_provenance_recorded_stated_and_mismatched(sets, tmp_path):
    root, files = sets
    recorded = evaluate(root / "gen.npz", files["edm2"], metrics=["fid"], out=tmp_path / "run", **COMMON)
    assert recorded.manifest["reference_statistics"]["provenance"] == "recorded in the file"
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["reference"]["format"] == "edm2" and manifest["reference"]["kind"] == "statistics"
    with pytest.raises(GenEvalError, match=r"do not record their extractor.*--reference-features"):
        evaluate(root / "gen.npz", files["pytorch-fid"], **COMMON)
    stated = evaluate(root / "gen.npz", files["pytorch-fid"], reference_features="identity", **COMMON)
    assert stated.manifest["reference_statistics"] == {
        "extractor": "identity",
        "weights_sha256": None,
        "provenance": "stated by the user",
    }
    # Statistics from another extractor than the run's: refused, naming both.
    with pytest.raises(GenEvalError, match=r"statistics from extractor identity .* extracts with digits"):
        evaluate(root / "gen.npz", files["gen-eval"], **{**COMMON, "features": "digits"})
    with pytest.raises(GenEvalError, match="from identity weights deadbeef"):
        evaluate(root / "gen.npz", files["pytorch-fid"], reference_features="identity@deadbeef", **COMMON)
    with pytest.raises(
        GenEvalError, match="records extractor identity, but --reference-features says inception"
    ):
        evaluate(root / "gen.npz", files["gen-eval"], reference_features="inception", **COMMON)


def _crafted_pickle(marker, call: str = "system") -> bytes:
    """A pickle whose loading runs a shell command (os.system) that creates ``marker``."""

    class Payload:
        def __reduce__(self):
            return (getattr(os, call), (f"touch {marker}",))

    return pickle.dumps({"fid": {"mu": np.zeros(2), "sigma": np.eye(2)}, "x": Payload()}, protocol=4)


def test_a_pickle_that_would_run_code_is_refused_and_nothing_ran(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(_crafted_pickle(marker))
    with pytest.raises(GenEvalError) as refused:
        read_statistics(path)
    message = str(refused.value)
    assert "\n" not in message and str(path) in message and "posix.system" in message
    assert not marker.exists()
    # The planted fault: plain pickle.load of the same bytes does run the command (in a child process).
    control = tmp_path / "control"
    control_pickle = tmp_path / "control.pkl"
    control_pickle.write_bytes(_crafted_pickle(control))
    subprocess.run(
        [sys.executable, "-c", f"import pickle; pickle.load(open({str(control_pickle)!r}, 'rb'))"],
        check=False,
    )
    assert control.exists()
    # The same through the command line: one line, non-zero exit, no traceback, nothing ran.
    done = runner.invoke(app, ["evaluate", str(tmp_path / "x.npz"), "--reference", str(path), "--no-save"])
    assert done.exit_code != 0 and "Traceback" not in done.output and not marker.exists()


class _Encoded:
    """Pickles as _codecs.encode("x", "rot13"): an allowed function called with another codec."""

    def __reduce__(self):
        import _codecs

        return (_codecs.encode, ("x", "rot13"))


@pytest.mark.parametrize(
    "document, protocol, reason",
    [
        ({"fid": {"mu": np.zeros(2, dtype=object), "sigma": np.eye(2)}}, 4, "array of object"),
        ({"fid": {"mu": np.zeros(2), "sigma": np.eye(2)}, "s": {1, 2}}, 4, "holds a set"),  # an opcode
        ({"fid": {"mu": np.zeros(2), "sigma": np.eye(2)}, "s": {1, 2}}, 2, "asks for __builtin__.set"),
        ({1: np.zeros(2)}, 5, "key of type int"),
        (_Encoded(), 2, "_codecs.encode with 'rot13'"),  # an allowed name used otherwise
    ],
)
def test_the_allow_list_accepts_only_plain_data(tmp_path, document, protocol, reason):
    path = tmp_path / "odd.pkl"
    path.write_bytes(pickle.dumps(document, protocol=protocol))
    with pytest.raises(GenEvalError, match=reason):
        read_statistics(path)


def test_statistics_are_not_samples(sets):
    root, files = sets
    with pytest.raises(GenEvalError, match=r"--num-reference: .* cannot be cut"):
        evaluate(root / "gen.npz", files["gen-eval"], num_reference=100, **COMMON)
    with pytest.raises(GenEvalError, match="--reference-features is for a statistics file"):
        evaluate(root / "gen.npz", root / "ref.npz", reference_features="identity", **COMMON)
    with pytest.raises(GenEvalError, match=r"holds reference statistics .* not samples"):
        evaluate(files["gen-eval"], root / "ref.npz", **COMMON)


def test_stats_command_refuses_before_reading_and_leaves_nothing(sets, tmp_path):
    root, files = sets
    for args, message in [
        (["--format", "adm", "--out", str(tmp_path / "a.npz")], "--format adm holds Inception's statistics"),
        (["--adm-images", "--out", str(tmp_path / "a.npz")], "only --format adm stores images"),
        (
            ["--resize-mode", "clean", "--out", str(tmp_path / "a.npz")],
            "--resize-mode clean: --features identity has no resize conventions",
        ),
        (
            ["--resize-mode", "tf", "--out", str(tmp_path / "a.npz")],
            "choose from legacy-tf, clean, legacy-pytorch, bicubic",
        ),
        (["--format", "edm2", "--out", str(tmp_path / "a.npz")], "writes a .pkl file"),
        (
            ["--format", "tf", "--out", str(tmp_path / "a.npz")],
            "choose from gen-eval, pytorch-fid, adm, edm2",
        ),
        (["--out", str(files["gen-eval"])], "exists; pass --overwrite"),
    ]:
        done = runner.invoke(app, ["stats", str(root / "ref.npz"), *args, "--no-cache"])
        assert done.exit_code != 0 and message in done.output and "Traceback" not in done.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_an_edm2_reference_pickle_is_read_at_every_protocol(tmp_path, protocol):
    stats = _random_statistics(dim=5, seed=protocol)
    dino = {"mu": np.ones(3, dtype=np.float32), "sigma": np.eye(3)}
    document = {"num_images": 50000, "fid": {"mu": stats.mu, "sigma": stats.sigma}, "fd_dinov2": dino}
    path = tmp_path / "imagenet-512.pkl"
    path.write_bytes(pickle.dumps(document, protocol=protocol))
    back = read_statistics(path)
    assert (back.format, back.extractor, back.count) == ("edm2", "inception", 50000)
    np.testing.assert_array_equal(back.mu, stats.mu)
    np.testing.assert_array_equal(back.sigma, stats.sigma)


def test_image_statistics_give_fid_and_the_reference_free_inception_score(tmp_path):
    path = tmp_path / "digits_test.npz"
    done = runner.invoke(app, ["stats", "digits:test", "--out", str(path), "--no-cache", "-q"])
    assert done.exit_code == 0, done.output
    options = {"cache_dir": None, "num_resamples": 10, "collapse": False}
    against = evaluate("digits:train", path, out=tmp_path / "run", **options)
    expected = evaluate("digits:train", "digits:test", metrics=["fid", "is"], **options)
    assert list(against.metrics) == ["fid", "is"]  # IS reads the generated logits alone
    for name in ("fid", "is"):
        assert against.metrics[name].value == pytest.approx(expected.metrics[name].value, rel=1e-10)
    assert (tmp_path / "run" / "samples.png").is_file()  # the picture shows the generated side only


def test_runs_scored_against_statistics_compare_and_a_changed_file_is_refused(sets, tmp_path):
    from gen_eval import compare

    root, files = sets
    copy = tmp_path / "ref.npz"
    copy.write_bytes(files["gen-eval"].read_bytes())
    options = {**COMMON, "metrics": ["fid"]}
    evaluate(root / "gen.npz", copy, out=tmp_path / "a", **options)
    evaluate(root / "ref.npz", copy, out=tmp_path / "b", **options)
    (row,) = compare([tmp_path / "a", tmp_path / "b"], num_resamples=10, device="cpu").to_dict()["rows"]
    # The difference's interval comes from resampling both runs' features against the file's statistics.
    assert row["metric"] == "fid" and row["method"] == "bootstrap" and row["interval"][0] < row["difference"]
    stats = read_statistics(copy)
    stats.sigma = stats.sigma * 2
    write_statistics(stats, copy, "gen-eval")
    with pytest.raises(GenEvalError, match="changed since the run"):
        compare([tmp_path / "a", tmp_path / "b"], num_resamples=10, device="cpu")


def test_the_report_and_the_dashboard_say_the_reference_was_statistics(sets, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    import dashboards
    from dashboards import RUNS_ENV
    from gen_eval.report.manifest import reproduce_command
    from gen_eval.report.run_report import run_report_html
    from gen_eval.runs.run import load_run

    root, files = sets
    runs = tmp_path / "runs"
    evaluate(
        root / "gen.npz", files["pytorch-fid"], reference_features="identity", out=runs / "stats", **COMMON
    )
    run = load_run(runs / "stats")
    html = run_report_html(run)
    assert "Reference: statistics, not samples" in html and "identity features (stated by the user)" in html
    assert "--reference-features identity" in reproduce_command(run.manifest)
    evaluate(root / "gen.npz", root / "ref.npz", out=runs / "samples", **COMMON)
    assert "Reference: statistics" not in run_report_html(load_run(runs / "samples"))
    monkeypatch.setenv(RUNS_ENV, str(runs))
    monkeypatch.setattr(sys, "argv", ["app"])
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])  # as tests/test_dashboard.py
    page = os.path.join(os.path.dirname(dashboards.__file__), "views", "run.py")
    app = AppTest.from_file(page, default_timeout=120).run()
    app.selectbox[0].set_value("stats").run()
    assert not app.exception, [e.message for e in app.exception]
    assert any("Reference: statistics, not samples" in info.value for info in app.info)


def test_the_robustness_corpus_of_broken_statistics_files(tmp_path):
    from gen_eval.bench.robustness import Robustness
    from gen_eval.bench.robustness_statistics import statistics_cases

    report = Robustness()
    statistics_cases(report, tmp_path)
    assert len(report.checks) >= 15 and report.tracebacks == 0
    assert [c.case for c in report.checks if not c.ok] == []
    assert not (tmp_path / "statistics" / "pwned").exists()
