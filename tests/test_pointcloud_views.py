"""The dashboard's run and compare pages show a point-cloud run's clouds in 3-D."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_pointcloud_sources import CloudMoments

import dashboards
import gen_eval
from gen_eval.features import EXTRACTORS, ExtractorEntry


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gen_eval.datasets import shapes3d

    root = tmp_path_factory.mktemp("pointcloud-runs")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with EXTRACTORS.registered("cloud_moments", ExtractorEntry(CloudMoments, ("pointcloud",))):
            for name, state in (("first", 1), ("second", 2)):
                path = root / f"{name}.npy"
                np.save(path, shapes3d.read("test", 0, 20, points=48, random_state=state)[0])
                gen_eval.evaluate(
                    str(path),
                    "shapes3d:validation:48",
                    features="cloud_moments",
                    num_reference=20,
                    num_resamples=0,
                    collapse=False,
                    out=root / "runs" / name,
                    cache_dir=root / "cache",  # compare reads the reference's features from it
                    device="cpu",
                )
    finally:
        torch.set_num_threads(threads)
    return root / "runs"


def _page(name: str, runs: Path, monkeypatch: pytest.MonkeyPatch):
    from streamlit.testing.v1 import AppTest

    from dashboards import RUNS_ENV

    monkeypatch.setenv(RUNS_ENV, str(runs))
    monkeypatch.setenv("GEN_EVAL_CACHE", str(runs.parent / "cache"))
    monkeypatch.setattr(sys, "argv", ["app"])
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])
    app = AppTest.from_file(
        str(Path(dashboards.__file__).parent / "views" / f"{name}.py"), default_timeout=120
    )
    app = app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def test_run_and_compare_pages_show_clouds_in_3d(runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(EXTRACTORS._entries, "cloud_moments", ExtractorEntry(CloudMoments, ("pointcloud",)))
    run = _page("run", runs, monkeypatch)
    assert "Point clouds in 3-D" in [header.value for header in run.subheader]
    charts = [chart.proto.spec for chart in run.get("plotly_chart")]
    assert any('"scatter3d"' in spec for spec in charts)
    compare = _page("compare", runs, monkeypatch)
    assert "Point clouds in 3-D" in [header.value for header in compare.subheader]
