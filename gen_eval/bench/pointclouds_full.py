"""``gen-eval bench pointclouds --full``: the PointFlow protocol with Chamfer distance at full size, measured.

The issue's target: MMD/COV/1-NNA with CD on 1,000 x 1,000 clouds of 2,048 points on 2 CPU
cores, against the cost of the distance computations themselves. The steps of
:func:`gen_eval.metrics.pointclouds.pointflow_cd` run one by one here (reading the clouds, the
cross matrix, the two within-set triangles, the statistics with their bootstrap), each timed in
wall-clock and process CPU seconds, so the total and the distances' share come from one run
rather than two. The result is its own section of ``reports/pointclouds.md``, spliced into the
file in place (the quick default run keeps it); it is rewritten after every step, so a run that
is stopped still leaves what it measured.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SECTION = "## Full size: MMD / COV / 1-NNA with Chamfer distance, measured"
CHUNK = 50  # generated clouds per call: the section is rewritten after each (progress a stop keeps)


def splice_section(text: str, section: list[str]) -> str:
    """``text`` (a Markdown report) with its :data:`SECTION` replaced by ``section``, or appended."""
    lines = text.splitlines()
    if SECTION in lines:
        start = lines.index(SECTION)
        end = next((k for k in range(start + 1, len(lines)) if lines[k].startswith("## ")), len(lines))
        lines = lines[:start] + section + lines[end:]
    else:
        lines = [*lines, "", *section] if lines else section
    return "\n".join(lines).rstrip("\n") + "\n"


def existing_section(path: Path) -> list[str]:
    """The :data:`SECTION` lines of the report at ``path`` (empty when it has none), to keep on rewrite."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    if SECTION not in lines:
        return []
    start = lines.index(SECTION)
    end = next((k for k in range(start + 1, len(lines)) if lines[k].startswith("## ")), len(lines))
    return lines[start:end]


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f} (1 / 5 / 15 min)"


def _step(steps: list[dict[str, Any]], name: str, action: Callable[[], Any]) -> Any:
    wall, cpu = time.perf_counter(), time.process_time()
    value = action()
    steps.append(
        {
            "step": name,
            "wall_seconds": time.perf_counter() - wall,
            "cpu_seconds": time.process_time() - cpu,
            "load_after": _load(),
        }
    )
    return value


def _section(summary: dict[str, Any]) -> list[str]:
    from gen_eval.bench.common import markdown_table

    steps = summary["steps"]
    rows = [
        [s["step"], f"{s['wall_seconds']:,.1f}", f"{s['cpu_seconds']:,.1f}", s["load_after"]] for s in steps
    ]
    distances = [s for s in steps if s["step"].startswith("CD ")]
    wall = sum(s["wall_seconds"] for s in steps)
    cpu = sum(s["cpu_seconds"] for s in steps)
    d_wall = sum(s["wall_seconds"] for s in distances)
    d_cpu = sum(s["cpu_seconds"] for s in distances)
    pairs = summary["pairs_done"]
    done = summary["finished"]
    lines = [
        SECTION,
        "",
        f"`gen-eval --threads {summary['threads']} bench pointclouds --full --clouds {summary['clouds']}"
        f" --points {summary['points']}`, run under `nice -n {summary['nice']}`, started"
        f" {summary['started']}: {summary['clouds']:,} x {summary['clouds']:,} shapes3d clouds of"
        f" {summary['points']:,} points (the test split against an independent draw, the validation split),"
        f" Chamfer path `{summary['path']}` on {summary['device']}, {summary['threads']} torch threads,"
        f" {summary['resamples']} bootstrap resamples. The steps of `pointflow_cd` run one by one and are"
        " timed each: wall-clock seconds, and the CPU seconds of this process (all its threads).",
        f"Load average before: {summary['load_before']}. The machine has 2 cores shared with other work;"
        " the load after each step says how busy it was.",
        "",
        markdown_table(["step", "wall (s)", "CPU (s)", "load average after"], rows),
        "",
    ]
    if not done:
        partial = summary.get("partial") or {"wall_seconds": 0.0, "cpu_seconds": 0.0, "text": "-"}
        seen_wall, seen_cpu = d_wall + partial["wall_seconds"], d_cpu + partial["cpu_seconds"]
        lines.append(
            f"**Stopped or still running** (last written {time.strftime('%H:%M UTC', time.gmtime())}):"
            f" {pairs:,} of {summary['pairs_total']:,} distance pairs done; now {partial['text']}."
        )
        if pairs:
            lines.append(
                f"Measured so far at this size: {seen_wall / pairs * 1000:.2f} ms wall and"
                f" {seen_cpu / pairs * 1000:.2f} ms CPU per pair; all {summary['pairs_total']:,} pairs at"
                f" that rate: {seen_wall / pairs * summary['pairs_total'] / 60:,.0f} min wall."
            )
    else:
        lines += [
            f"Whole metric: {wall:,.0f} s wall ({wall / 60:.1f} min), {cpu:,.0f} s CPU. The three distance"
            f" matrices ({pairs:,} pairs): {d_wall:,.0f} s wall ({d_wall / wall:.1%} of the whole),"
            f" {d_cpu:,.0f} s CPU; {d_wall / pairs * 1000:.2f} ms wall and {d_cpu / pairs * 1000:.2f} ms"
            " CPU per pair of clouds. Everything else (reading, statistics, bootstrap) is"
            f" {wall - d_wall:,.0f} s.",
            "",
            markdown_table(
                ["result", "value", "95% interval"],
                [
                    [name, f"{value:.4g}", f"({low:.4g}, {high:.4g})" if low is not None else "-"]
                    for name, (value, low, high) in summary["values"].items()
                ],
            ),
            "",
            "Intervals: both sets' clouds resampled, distances fixed (they cover the sampling variation",
            "of the two finite sets at this size, not the points within a cloud).",
        ]
    return [*lines, ""]


def run_full_protocol(
    out: Path,
    *,
    clouds: int = 1000,
    points: int = 2048,
    device: str = "cpu",
    method: str = "auto",
    resamples: int = 100,
) -> dict[str, Any]:
    """Run MMD/COV/1-NNA-CD at ``clouds`` x ``clouds``, timing each step; splice the section into ``out``.

    Parameters
    ----------
    out : Path
        The report (reports/pointclouds.md); only its full-size section is (re)written.
    clouds : int
        Clouds per set (the issue's 1,000).
    points : int
        Points per cloud (2,048 as PointFlow).
    device : str
        Where the Chamfer products run.
    method : str
        The Chamfer path (:data:`gen_eval.metrics.pointclouds_distances.CHAMFER_METHODS`).
    resamples : int
        Bootstrap resamples.

    Returns
    -------
    dict
        Every number of the section.
    """
    import torch

    from gen_eval.metrics.base import MetricContext
    from gen_eval.metrics.pointclouds import protocol_results, read_clouds
    from gen_eval.metrics.pointclouds_distances import chamfer_pairs, chamfer_path
    from gen_eval.sources import open_source

    summary: dict[str, Any] = {
        "clouds": clouds,
        "points": points,
        "device": device,
        "path": chamfer_path(device, method),
        "threads": torch.get_num_threads(),
        "nice": os.nice(0),
        "resamples": resamples,
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_before": _load(),
        "steps": [],
        "pairs_done": 0,
        "pairs_total": clouds * clouds + clouds * (clouds - 1),
        "finished": False,
        "values": {},
    }
    steps = summary["steps"]

    def write() -> None:
        text = out.read_text(encoding="utf-8") if out.exists() else ""
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(splice_section(text, _section(summary)), encoding="utf-8")

    def read() -> tuple[torch.Tensor, torch.Tensor]:
        gen = open_source(f"shapes3d:test:{points}", num_samples=clouds)
        ref = open_source(f"shapes3d:validation:{points}", num_samples=clouds)
        return read_clouds(gen, "generated"), read_clouds(ref, "reference")

    gen, ref = _step(steps, "read the clouds (shapes3d, generated procedurally)", read)
    write()
    options = {"device": device, "method": method}

    def matrix(name: str, first: torch.Tensor, second: torch.Tensor | None) -> torch.Tensor:
        # Row blocks of CHUNK clouds; for a triangle, each block's own triangle and the block to
        # its right, so exactly the pairs of one symmetric chamfer_pairs call are computed.
        n, m = len(first), len(second if second is not None else first)
        out = torch.zeros(n, m, dtype=torch.float64)
        wall, cpu = time.perf_counter(), time.process_time()
        for i0 in range(0, n, CHUNK):
            i1 = min(n, i0 + CHUNK)
            if second is None:
                out[i0:i1, i0:i1] = chamfer_pairs(first[i0:i1], first[i0:i1], symmetric=True, **options)
                out[i0:i1, i1:] = chamfer_pairs(first[i0:i1], first[i1:], **options)
                summary["pairs_done"] += (i1 - i0) * (i1 - i0 - 1) // 2 + (i1 - i0) * (n - i1)
            else:
                out[i0:i1] = chamfer_pairs(first[i0:i1], second, **options)
                summary["pairs_done"] += (i1 - i0) * m
            summary["partial"] = {
                "wall_seconds": time.perf_counter() - wall,
                "cpu_seconds": time.process_time() - cpu,
                "text": f"{name}, {i1:,} of {n:,} rows",
            }
            write()
        summary["partial"] = None
        if second is None:
            upper = torch.triu(out, diagonal=1)
            out = upper + upper.T
        return out

    gr = _step(steps, "CD generated x reference", lambda: matrix("the cross matrix", gen, ref))
    gg = _step(steps, "CD generated (upper triangle)", lambda: matrix("the generated triangle", gen, None))
    rr = _step(steps, "CD reference (upper triangle)", lambda: matrix("the reference triangle", ref, None))
    write()
    context = MetricContext(device=device, num_resamples=resamples)
    results = _step(
        steps,
        "MMD, COV, 1-NNA and their bootstrap",
        lambda: protocol_results("cd", gg, gr, rr, context, {}),
    )
    summary["values"] = {
        name: (r.value, *(r.interval if r.interval else (None, None))) for name, r in results.items()
    }
    summary["finished"] = True
    summary["load_after"] = _load()
    write()
    return summary
