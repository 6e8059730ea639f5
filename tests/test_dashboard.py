"""The Streamlit dashboard: data loading, every page under AppTest, and the app in a real browser."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import dashboards
import gen_eval
from dashboards import RUNS_ENV
from dashboards.data import find_runs, leaderboard_frame, root_problem

PAGES = Path(dashboards.__file__).parent / "views"
GOOD_RUNS = 3


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three good runs (two digits models, one with latent results; a ring8 model), one run with a
    corrupted file and one from an older format."""
    from gen_eval.latent.analyse import analyse_latent, save_latent
    from reference_models import load_model

    root = tmp_path_factory.mktemp("dashboard") / "runs"
    cache = tmp_path_factory.mktemp("dashboard-cache")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        common = {"num_resamples": 20, "cache_dir": cache}
        gen_eval.evaluate("ref:dcgan", "digits:test", out=root / "dcgan", num_samples=300, **common)
        gen_eval.evaluate(
            "ref:collapsed_digits", "digits:test", out=root / "collapsed", num_samples=300, **common
        )
        gen_eval.evaluate(
            "ref:collapsed_ring8",
            "ring8:test",
            out=root / "ring8",
            num_samples=500,
            num_reference=500,
            **common,
        )
        analysis = analyse_latent(
            load_model("dcgan"), name="dcgan", analyses=["traversal", "embedding", "ppl"], ppl_samples=100
        )
        save_latent(str(root / "dcgan"), analysis)
    finally:
        torch.set_num_threads(threads)
    shutil.copytree(root / "dcgan", root / "corrupt")
    (root / "corrupt" / "metrics.json").write_text("{}")
    shutil.copytree(root / "ring8", root / "old")
    manifest = json.loads((root / "old" / "manifest.json").read_text())
    (root / "old" / "manifest.json").write_text(json.dumps({**manifest, "format": "gen-eval-run-v0"}))
    (root / ".staging-tmp").mkdir()  # hidden folders (a run being written) are skipped
    shutil.copy(root / "dcgan" / "manifest.json", root / ".staging-tmp" / "manifest.json")
    return root


def test_find_runs_loads_good_runs_and_explains_broken_ones(runs_dir: Path) -> None:
    runs = {info.name: info for info in find_runs(runs_dir)}
    assert sorted(runs) == ["collapsed", "corrupt", "dcgan", "old", "ring8"]
    assert "checksum" in runs["corrupt"].error
    assert "older gen-eval" in runs["old"].error
    good = [info for info in runs.values() if info.ok]
    frame = leaderboard_frame(good)
    assert len(frame) == GOOD_RUNS
    row = frame.set_index("run").loc["dcgan"]
    assert row["family"] == "gan" and row["reference"] == "digits:test" and row["features"] == "digits"
    assert row["FID 95% CI"] and row["FID"] == pytest.approx(runs["dcgan"].metrics["fid"]["value"])
    assert frame.set_index("run").loc["collapsed", "collapse"] == "collapse"
    assert runs["dcgan"].latent["analyses"]["traversal"]["ranking"] == "decoder_sensitivity"


def test_root_problems_are_sentences(tmp_path: Path) -> None:
    assert "does not exist" in root_problem(tmp_path / "missing")
    assert root_problem(tmp_path) is None and find_runs(tmp_path) == []


def _page(name: str, runs: Path, monkeypatch: pytest.MonkeyPatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv(RUNS_ENV, str(runs))
    monkeypatch.setattr(sys, "argv", ["app"])
    # AppTest runs the page as sys.modules["__main__"] and leaves it there; a later test that
    # spawns processes (multiprocessing re-runs __main__ in the child) would run the page.
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])
    app = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=120).run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def test_leaderboard_page(runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit

    heights: list[object] = []
    real_dataframe = streamlit.dataframe

    def spy(*args, **kwargs):
        heights.append(kwargs.get("height", "auto"))
        return real_dataframe(*args, **kwargs)

    monkeypatch.setattr(streamlit, "dataframe", spy)
    app = _page("leaderboard", runs_dir, monkeypatch)
    table = app.dataframe[0].value
    assert sorted(table["run"]) == ["collapsed", "dcgan", "ring8"]
    assert list(table["FID"]) == sorted(table["FID"])  # sorted by FID, best first
    # Every row (Streamlit's "auto" height shows ten) and every metric column in view; the
    # intervals and long identifiers behind a toggle. Two references here: the column is shown.
    assert heights == ["content"]
    metrics = ["FID", "KID", "IS", "precision", "recall", "density", "coverage"]
    assert list(table.columns) == ["run", "family", "reference", "collapse", *metrics]
    app.toggle[0].set_value(True).run()
    wide = list(app.dataframe[0].value.columns)
    assert {"model", "features", "FID 95% CI", "coverage 95% CI"} <= set(wide)
    app.toggle[0].set_value(False).run()
    assert len(app.multiselect) == 2 and len(app.get("plotly_chart")) == 1
    warnings = " ".join(w.value for w in app.warning)
    assert "corrupt" in warnings and "older gen-eval" in warnings
    app.multiselect[0].set_value(["ring8:test"]).run()
    assert list(app.dataframe[0].value["run"]) == ["ring8"]


def test_run_page(runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = _page("run", runs_dir, monkeypatch)
    app.selectbox[0].set_value("collapsed").run()
    metrics = app.dataframe[0].value
    assert {"FID at N=300", "precision", "recall", "density", "coverage"} <= set(metrics["metric"])
    captions = " ".join(caption.value for caption in app.caption)
    assert "**FID at N=300** interval: FID at this sample size (300 generated" in captions
    assert "classes missing" in app.error[0].value  # the collapse verdict
    assert len(app.get("plotly_chart")) == 2  # precision/recall/density/coverage and classes
    assert len(app.get("image")) == 1 and app.expander[-1].label == "Manifest"  # samples; manifest


def test_compare_page_starts_with_the_best_and_worst_comparable_runs(
    runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = [info for info in find_runs(runs_dir) if info.ok]
    digits = sorted(
        (info.metrics["fid"]["value"], info.name) for info in runs if info.reference == "digits:test"
    )
    assert len(digits) == 2  # ring8 is against another reference: never paired with these
    app = _page("compare", runs_dir, monkeypatch)
    assert app.multiselect[0].value == [digits[0][1], digits[-1][1]]  # best first, as baseline A
    assert app.multiselect[0].value != sorted(info.name for info in runs)[:2]  # not the first names


def test_default_pair_without_a_shared_metric_takes_the_two_most_recent() -> None:
    from dashboards.data import RunInfo, default_pair

    def run(name: str, created: str, metrics: dict) -> RunInfo:
        manifest = {"created": created, "reference": {"spec": "r"}, "extractor": {"name": "f"}}
        return RunInfo(Path(name), name, manifest=manifest, metrics=metrics)

    fid = {"fid": {"value": 1.0, "direction": "lower"}}
    runs = [run("a", "2026-01-03", {}), run("b", "2026-01-01", fid), run("c", "2026-01-02", {})]
    assert default_pair(runs) == ["c", "a"]  # older first
    higher = {"value": 0.5, "direction": "higher"}
    runs = [run("a", "1", {"is": {**higher, "value": 0.2}}), run("b", "2", {"is": higher})]
    assert default_pair(runs) == ["b", "a"]  # a higher-is-better metric: the highest is best
    assert default_pair(runs[:1]) == ["a"]


def test_app_runs_from_a_checkout_with_nothing_installed(tmp_path: Path) -> None:
    """`streamlit run dashboards/app.py` puts only dashboards/ on sys.path: app.py finds its own copy.

    `-S` skips site-packages' .pth files, so neither the editable install nor an installed copy can
    supply `dashboards` or `gen_eval`; only streamlit and the other libraries come from PYTHONPATH.
    """
    import sysconfig

    app = Path(dashboards.__file__).parent / "app.py"
    code = (
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({str(app)!r}, default_timeout=120).run()\n"
        "assert not at.exception, [e.message for e in at.exception]\n"
        "import dashboards, gen_eval\n"
        "print(dashboards.__file__, gen_eval.__file__, at.info[0].value)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    env[RUNS_ENV] = str(tmp_path / "nothing")
    done = subprocess.run(
        [sys.executable, "-S", "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    checkout = str(app.parent.parent)
    assert done.stdout.startswith(checkout) and f" {checkout}" in done.stdout  # this copy, and its gen_eval
    assert "does not exist" in done.stdout


def test_dashboard_command_hides_the_deploy_button() -> None:
    from streamlit import config

    from gen_eval.cli.dashboard import streamlit_command

    command = streamlit_command(Path("runs"), 8501)
    option = command[command.index("--client.toolbarMode") + 1]
    assert option == "viewer" and config.get_option("client.toolbarMode") in ("auto", "viewer")


def test_compare_page_and_its_refusal(runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = _page("compare", runs_dir, monkeypatch)
    app.multiselect[0].set_value(["dcgan", "collapsed"]).run()
    assert not app.exception
    rows = app.dataframe[0].value
    assert "fid" in set(rows["metric"]) and set(rows["verdict"]) <= {
        "better",
        "worse",
        "no significant difference",
        "not tested",
    }
    assert len(app.get("plotly_chart")) >= 2
    app.multiselect[0].set_value(["dcgan", "ring8"]).run()
    assert app.error and "reference" in app.error[0].value  # refused like the CLI
    app.checkbox[0].check().run()
    assert not app.error and not app.exception


def test_collapse_page(runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = _page("collapse", runs_dir, monkeypatch)
    app.selectbox[0].set_value("ring8").run()
    assert "mode" in (app.error[0].value if app.error else app.warning[0].value).lower()
    assert (
        app.dataframe and len(app.get("plotly_chart")) >= 2
    )  # findings; the scatter with the modes and more


def test_latent_page(runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = _page("latent", runs_dir, monkeypatch)
    assert set(app.selectbox[0].options) == {"collapsed", "dcgan", "ring8"}  # the three GAN runs
    app.selectbox[0].set_value("dcgan").run()
    summary = app.dataframe[0].value
    assert "most active" in set(summary["analysis"])
    assert len(app.tabs) == 5 and len(app.get("plotly_chart")) >= 1
    assert len(app.slider) >= 5  # steps + one per traversed dimension
    app.slider[1].set_value(2.0).run()  # move a traversal slider: decoded live
    assert not app.exception


def test_missing_or_empty_folder_gives_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = _page("leaderboard", tmp_path / "nothing", monkeypatch)
    assert "does not exist" in app.info[0].value
    app = _page("latent", tmp_path, monkeypatch)
    assert "No complete runs" in app.info[0].value


@pytest.mark.timeout(180)
def test_dashboard_in_a_real_browser(runs_dir: Path, headless_browser, artifacts_dir: Path) -> None:
    from gen_eval.cli.dashboard import free_port

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gen_eval", "dashboard", str(runs_dir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert f"http://127.0.0.1:{port}" in server.stdout.readline()  # the URL is printed first
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                import urllib.request

                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        # The data grid draws on a canvas and fills its accessible cells a moment after the frame
        # appears (CI once read them empty), so wait for the run names themselves.
        expected_runs = ["dcgan", "collapsed", "ring8"]
        cell_texts = "[...document.querySelectorAll('[role=\"gridcell\"]')].map(e => e.innerText)"
        ready = (
            f"{expected_runs}.every(name => {cell_texts}.includes(name)) && "
            "document.querySelectorAll('.js-plotly-plot .main-svg').length >= 1"
        )
        visit = headless_browser.open(
            f"http://127.0.0.1:{port}/",
            wait_until=ready,
            screenshot=artifacts_dir / "dashboard-leaderboard.png",
            timeout_s=90,
            expressions=[
                "document.querySelectorAll('[data-testid=\"stException\"]').length",
                cell_texts,
                "[...document.querySelectorAll('button')].map(b => b.innerText).join('|')",
            ],
        )
        exceptions, cells, buttons = visit.values
        assert exceptions == 0
        assert set(expected_runs) <= set(cells)
        assert "Deploy" not in buttons  # client.toolbarMode = viewer
        assert not [e for e in visit.errors if "404" not in e]  # Streamlit answers 404 for its health probes
        assert all(url.startswith(f"http://127.0.0.1:{port}") for url in visit.external_requests)
    finally:
        server.terminate()
        server.wait(timeout=20)
