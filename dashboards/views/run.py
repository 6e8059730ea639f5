"""One run: samples, metrics with intervals, precision/recall/density/coverage, classes, manifest."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboards.data import human_table
from dashboards.widgets import (
    choose_run,
    interval_notes,
    load_human,
    load_runs,
    metric_name,
    show_stored_figure,
)
from gen_eval.human import CHANCE_NOTE
from gen_eval.human.results import INTERVAL_NOTE
from gen_eval.metrics.result import better_label
from gen_eval.report.manifest import reference_statistics_note
from gen_eval.report.pointclouds import cloud_figure, read_run_clouds

st.title("Run")
info = choose_run(load_runs())
st.caption(f"{info.model} vs {info.reference} · {info.features} features · {info.path}")
statistics = reference_statistics_note(info.manifest)  # the reference was a mean and covariance
if statistics is not None:
    st.info(statistics)
for warning in info.manifest.get("warnings", []):  # about the whole run: images resized, fewer samples
    st.warning(warning)
if info.collapse:
    status = info.collapse.get("status", "")
    show = st.success if status == "ok" else (st.warning if status == "warning" else st.error)
    show(f"Mode collapse: {info.verdict}")

samples, numbers = st.columns([1, 2])
with samples:
    st.subheader("Samples")
    st.image(str(info.path / "samples.png"), width="stretch")
with numbers:
    st.subheader("Metrics")
    rows = [
        {
            "metric": metric_name(name, r),
            "value": r["value"],
            "95% interval": ""
            if not r.get("interval")
            else f"{r['interval'][0]:.4g} – {r['interval'][1]:.4g}",
            "better": better_label(name, r["direction"]) if r.get("direction") else "",
            "kind": r.get("kind", ""),
            "n generated / reference": f"{r.get('num_generated', '')} / {r.get('num_reference') or '–'}",
            "warnings": "; ".join(r.get("warnings", [])),
        }
        for name, r in info.metrics.items()
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    for note in interval_notes(info.metrics):  # what each interval covers (FID's: at this N)
        st.caption(note)

if (info.path / "text" / "generated.json").is_file():  # text runs keep their strings
    from dashboards.text_views import show_text_run

    st.subheader("Strings")
    show_text_run(info.path, "run")

clouds = read_run_clouds(info.path)  # runs of point clouds keep their first clouds
if clouds:
    st.subheader("Point clouds in 3-D")
    st.plotly_chart(cloud_figure(clouds, title="drag to turn, scroll to zoom"), width="stretch", key="clouds")

from gen_eval.report import conditional_paired as cp  # noqa: E402

if (
    any(k in info.metrics for k, _, _ in cp.PER_CLASS)
    or (info.path / cp.CLASSES_PICTURE).is_file()
    or (info.manifest.get("generated", {}).get("paired") or (info.path / cp.TRIPLETS_PICTURE).is_file())
):  # issue 23: labelled runs show their classes, paired runs their triplets and the plane
    from gen_eval.report.plane import plane_figure
    from gen_eval.runs.run import load_run

    loaded = load_run(info.path)
    if cp.is_paired(loaded):
        st.subheader("Pairs: inputs, outputs, targets")
        if (info.path / cp.TRIPLETS_PICTURE).is_file():
            st.image(str(info.path / cp.TRIPLETS_PICTURE), width="stretch")
        points = cp.plane_points(loaded)
        if points is not None:
            st.plotly_chart(plane_figure(points), width="stretch", key="plane")
            st.caption("This run (star) beside the bundled models of its task: PSNR up, FID left is better.")
    if cp.has_classes(loaded):
        st.subheader("Classes")
        if (info.path / cp.CLASSES_PICTURE).is_file():
            st.image(str(info.path / cp.CLASSES_PICTURE), width="stretch")
        columns, rows = cp.per_class_table(loaded)
        if rows:
            st.dataframe(pd.DataFrame(rows, columns=columns), hide_index=True, width="stretch")
            st.caption(cp.PER_CLASS_NOTE)

human = load_human().get(info.name)
if human is not None:
    st.subheader("Human judgement")
    st.dataframe(
        human_table([human]).drop(columns="run"),
        hide_index=True,
        width="stretch",
        column_config={
            c: st.column_config.NumberColumn(c, format="percent")
            for c in ("error rate", "fakes judged real", "reals judged fake")
        },
    )
    st.caption(f"Study {human.study_id} ({human.mode} mode): {INTERVAL_NOTE}. {CHANCE_NOTE}")

prdc = [m for m in ("precision", "recall", "density", "coverage") if m in info.metrics]
if prdc:
    st.subheader("Precision, recall, density, coverage")
    values = [info.metrics[m]["value"] for m in prdc]
    intervals = [info.metrics[m].get("interval") or [v, v] for m, v in zip(prdc, values, strict=True)]
    figure = go.Figure(
        go.Bar(
            x=prdc,
            y=values,
            error_y={
                "type": "data",
                "array": [hi - v for (_, hi), v in zip(intervals, values, strict=True)],
                "arrayminus": [v - lo for (lo, _), v in zip(intervals, values, strict=True)],
            },
        )
    )
    figure.add_hline(y=1.0, line_dash="dot", annotation_text="1 = matches the reference")
    figure.update_layout(height=340, yaxis_title="value", margin={"t": 30})
    st.plotly_chart(figure, width="stretch")

realism = info.metrics.get("realism")
if realism:  # the realism metric ran: its two ends, as image grids or (other kinds) indices
    from gen_eval.runs.realism_grids import FOLDER, GRIDS

    st.subheader("Most and least realistic samples")
    details = realism.get("details", {})
    scores = details.get("per_sample") or []
    for column, (key, title) in zip(st.columns(len(GRIDS)), GRIDS.items(), strict=True):
        indices = [int(i) for i in details.get(key, [])]
        listed = {
            "generated sample": indices,
            "realism": [scores[i] if i < len(scores) else None for i in indices],
        }
        grid = info.path / FOLDER / f"{key}.png"
        with column:
            st.markdown(f"**{title}**")
            if grid.is_file():
                st.image(str(grid), width="stretch")
                st.caption(
                    ", ".join(
                        f"#{i}: {v:.3g}" for i, v in zip(*listed.values(), strict=True) if v is not None
                    )
                )
            else:
                st.dataframe(pd.DataFrame(listed), hide_index=True, width="stretch")
    st.caption(
        "Realism (Kynkäänniemi et al. 2019): at least 1 inside a reference k-NN ball (the half with the "
        f"largest radii dropped); median {realism['value']:.4g}."
    )

classes = info.path / "collapse" / "classes.json"
if classes.is_file():
    st.subheader("Classes: generated vs reference")
    show_stored_figure(classes, None)

with st.expander("Manifest"):
    st.json(info.manifest, expanded=1)
