"""The per-run HTML report (gen_eval/report/run_report.py) and ``gen-eval report``, in text and in a browser."""

from __future__ import annotations

import base64
import html
import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import gen_eval
from gen_eval.cli import app
from gen_eval.report.manifest import reproduce_command
from gen_eval.report.run_report import run_report_html, write_report

# Every plot drawn by plotly.js: the inlined library ran and each figure rendered its SVG.
ALL_PLOTS_DRAWN = (
    "[...document.querySelectorAll('.plotly-graph-div')]"
    ".every(d => d.classList.contains('js-plotly-plot') && d.querySelector('.main-svg'))"
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def _run(root: Path, cache: Path, name: str, source: str, reference: str, **options) -> Path:
    out = root / name
    gen_eval.evaluate(source, reference, out=out, num_resamples=20, cache_dir=cache, **options)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> dict[str, Path]:

    root = tmp_path_factory.mktemp("runs")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small networks on a busy machine: extra threads only spin-wait
    try:
        return {
            "collapsed_digits": _run(
                root, cache, "collapsed_digits", "ref:collapsed_digits", "digits:test", num_samples=400
            ),
            "dcgan": _run(root, cache, "dcgan", "ref:dcgan", "digits:test", num_samples=300, collapse=False),
            # 1,000 reference points keep the k-NN metrics quick; the eight modes are still all there.
            "ring8": _run(
                root,
                cache,
                "ring8",
                "ref:collapsed_ring8",
                "ring8:test",
                num_samples=1000,
                num_reference=1000,
            ),
        }
    finally:
        torch.set_num_threads(threads)


def _figure_files(run: Path) -> list[Path]:
    return sorted((run / "collapse").glob("*.json"))


def _is_image_grid(path: Path) -> bool:
    return all(trace.get("type") == "image" for trace in json.loads(path.read_text())["data"])


def test_digits_report_shows_metrics_verdict_figures_samples_and_manifest(runs: dict[str, Path]) -> None:
    run_dir = runs["collapsed_digits"]
    target = write_report(run_dir)
    assert target == run_dir / "report.html"
    page = target.read_text(encoding="utf-8")
    run = gen_eval.load_run(run_dir)  # still verifies: report.html is not a checksummed file
    assert "report.html" not in run.manifest["files"]

    # Metrics: every value and interval as printed, with direction, sizes, kind and warnings.
    for name, result in run.metrics.items():
        assert f"{result.value:.4f}" in page, name
        assert f"{result.interval[0]:.4f} – {result.interval[1]:.4f}" in page, name
    assert "<th class=''>95% interval</th>" in page and "↓ lower" in page and "↑ higher" in page
    assert "estimate" in page and f"{run.metrics['fid'].num_generated:,}" in page
    assert html.escape(run.metrics["kid"].warnings[0]) in page  # KID's subset size was clipped

    # Verdict and every finding, with the skipped detectors.
    assert html.escape(run.collapse["verdict"]) in page and "7 of 10 classes missing" in page
    for finding in run.collapse["findings"]:
        assert html.escape(finding["message"]) in page
    assert "Not run: modes" in page

    # Figures: the metrics chart plus each collapse data figure is interactive; image grids are
    # embedded PNGs, one row per caption; plotly.js is inlined exactly once.
    figures = _figure_files(run_dir)
    data_figures = [p for p in figures if not _is_image_grid(p)]
    assert {p.stem for p in data_figures} >= {"classes", "ndb", "birthday"}
    assert page.count('class="plotly-graph-div"') == 1 + len(data_figures)
    assert page.count("Plotly.newPlot") == 1 + len(data_figures)
    assert len(re.findall(r"\* plotly\.js v\d", page)) == 1
    assert "bin 4 over-filled" in page or "over-filled:" in page  # NDB evidence captions
    assert page.count("class='evidence'") >= 4

    # The sample grid, embedded byte for byte.
    assert base64.b64encode((run_dir / "samples.png").read_bytes()).decode() in page

    # Manifest: versions, hashes of sources, extractor weights and files, options, timings, raw JSON.
    manifest = run.manifest
    for value in (
        manifest["generated"]["fingerprint"],
        manifest["reference"]["fingerprint"],
        manifest["training_set"]["fingerprint"],
        manifest["extractor"]["weights_sha256"],
        manifest["files"]["metrics.json"],
        manifest["versions"]["torch"],
        "collapse_check",
        "manifest.json (raw)",
    ):
        assert value in page, value
    assert html.escape(reproduce_command(manifest, multiline=True)) in page

    # Self-contained: nothing fetched from the network.
    assert not re.search(r"<script[^>]+src=", page)
    markup = re.sub(r"<script[^>]*>.*?</script>", "", page, flags=re.S)  # plotly.js quotes URLs
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", markup)


def test_ring8_report_has_the_mode_scatter_and_point_caption(runs: dict[str, Path]) -> None:
    page = run_report_html(gen_eval.load_run(runs["ring8"]))
    assert "3 of 8 modes missing (5, 6, 7)" in page
    assert "Known modes: 5 of 8 covered" in page  # the modes figure, its title as a heading
    assert "generated points (blue) over the first 1,000 reference points (grey)" in page
    assert "Not run: classes" in page


def test_report_without_collapse_and_without_intervals(runs: dict[str, Path], tmp_path: Path) -> None:
    page = run_report_html(gen_eval.load_run(runs["dcgan"]))
    assert "The collapse check was not run" in page
    assert "--no-collapse" in page  # and the reproduce command says so
    assert page.count('class="plotly-graph-div"') == 1  # the metrics chart alone
    assert "id='latent'" not in page


def test_latent_figures_and_unlisted_files_are_shown_and_flagged(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    import plotly.graph_objects as go

    run_dir = tmp_path / "run"
    shutil.copytree(runs["collapsed_digits"], run_dir)
    (run_dir / "latent").mkdir()
    figure = go.Figure(go.Scatter(x=[0, 1], y=[1, 0]), layout={"title": "Interpolation smoothness"})
    (run_dir / "latent" / "interpolation.json").write_text(figure.to_json())
    (run_dir / "latent" / "traversal.png").write_bytes((run_dir / "samples.png").read_bytes())
    (run_dir / "latent" / "broken.json").write_text("{not json")

    page = write_report(run_dir, tmp_path / "elsewhere" / "page.html").read_text()
    assert "<h2 id='latent'>Latent space</h2>" in page and "Interpolation smoothness" in page
    assert "latent/traversal.png: not covered by the run's checksums" in page
    assert "latent/broken: cannot be shown" in page  # a damaged figure costs only itself
    data_figures = [p for p in _figure_files(run_dir) if not _is_image_grid(p)]
    assert page.count('class="plotly-graph-div"') == 2 + len(data_figures)
    gen_eval.load_run(run_dir)


def test_reproduce_command_recomputes_the_same_numbers(
    runs: dict[str, Path], cache: Path, tmp_path: Path
) -> None:
    run = gen_eval.load_run(runs["collapsed_digits"])
    args = shlex.split(reproduce_command(run.manifest))
    assert args[:2] == ["gen-eval", "evaluate"]
    again = tmp_path / "again"
    result = CliRunner().invoke(app, [*args[1:], "--out", str(again), "--cache-dir", str(cache), "-q"])
    assert result.exit_code == 0, result.output
    assert gen_eval.load_run(again).metrics == run.metrics
    assert gen_eval.load_run(again).collapse == run.collapse


def test_cli_report(runs: dict[str, Path], tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "one.html"
    result = runner.invoke(app, ["report", str(runs["ring8"]), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"report written to {out}"
    assert out.read_text().startswith("<!doctype html>")

    copies = [shutil.copytree(runs[name], tmp_path / name) for name in ("ring8", "dcgan")]
    result = runner.invoke(app, ["report", *map(str, copies)])
    assert result.exit_code == 0, result.output
    assert all(
        (copy / "report.html").is_file() and str(copy / "report.html") in result.output for copy in copies
    )

    result = runner.invoke(app, ["report", *map(str, copies), "--out", str(out)])
    assert result.exit_code == 2 and "--out names one file but 2 runs were given" in result.output

    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["report", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "not a gen-eval run" in result.output
    result = runner.invoke(app, ["report", str(tmp_path / "empty"), str(copies[0])])
    assert result.exit_code == 2 and f"report written to {copies[0] / 'report.html'}" in result.output


def test_report_opens_in_a_browser_without_errors(
    headless_browser, runs: dict[str, Path], artifacts_dir: Path
) -> None:
    for name in ("collapsed_digits", "ring8"):
        page = write_report(runs[name])
        visit = headless_browser.open(
            page,
            wait_for=".metrics table",
            wait_until=ALL_PLOTS_DRAWN,
            screenshot=artifacts_dir / f"report_{name}.png",
            expressions=[
                "document.querySelectorAll('.metrics tbody tr').length",
                "document.querySelectorAll('.js-plotly-plot').length",
                "[...document.images].every(i => i.complete && i.naturalWidth > 0)",
            ],
        )
        assert visit.errors == [], visit.errors
        assert visit.external_requests == []
        assert visit.title.startswith(
            f"ref:{'collapsed_digits' if name != 'ring8' else 'collapsed_ring8'} vs"
        )
        rows, plots, images_loaded = visit.values
        assert rows == len(gen_eval.load_run(runs[name]).metrics) and plots >= 3 and images_loaded
        assert visit.screenshot is not None and visit.screenshot.stat().st_size > 10_000


def test_report_fits_a_narrow_laptop_window(
    headless_browser, runs: dict[str, Path], artifacts_dir: Path
) -> None:
    visit = headless_browser.open(
        write_report(runs["collapsed_digits"]),
        wait_until=ALL_PLOTS_DRAWN,
        width=900,
        screenshot=artifacts_dir / "report_collapsed_digits_900px.png",
        expressions=["document.documentElement.scrollWidth - window.innerWidth"],
    )
    assert visit.errors == []
    assert visit.values[0] <= 0, f"the page scrolls sideways by {visit.values[0]} px at 900 px"
