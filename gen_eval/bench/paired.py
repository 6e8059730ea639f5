"""``gen-eval bench paired``: seconds for every paired metric on 10,000 pairs of 28x28 digits.

Written to ``reports/paired.md``. The pairs: the 5,000 ``mnist`` digits (``task:sr4``'s ``all``
split) as targets, their 7x7 ``sr4`` inputs, and two outputs per input, the ``bicubic_sr4`` and
``nearest_sr4`` baselines' (so 10,000 output/target pairs, and 5,000 inputs with two outputs each
for ``output_diversity``), saved as one paired ``.npz`` and read as a submission would be. Each
metric is timed alone, as ``evaluate`` calls it, with its bootstrap (``num_resamples``
replicates over inputs). ``lpips`` runs LPIPS-VGG when its weights are on disk and otherwise
``feature_distance`` on the ``mnist`` network: the report says which. A last section times the
classification accuracy score on 5,000 labelled images (:mod:`gen_eval.bench.cas`).

The machine is shared: the report states the torch threads and the load average before and
after each measurement.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

METRICS = ("psnr", "ssim", "lpips", "consistency", "output_diversity")


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} / {five:.1f}"


def _pairs_file(folder: Path) -> Path:
    """The benchmark's paired ``.npz``: 5,000 targets, their sr4 inputs, bicubic and nearest outputs."""
    import torch

    from gen_eval.datasets.tasks import get_task
    from reference_models import load_model

    inputs, targets, labels = get_task("sr4").read("all")
    low = torch.from_numpy(inputs)
    outputs = np.stack(
        [load_model(name).translate(low).numpy() for name in ("bicubic_sr4", "nearest_sr4")], axis=1
    )
    path = folder / "pairs.npz"
    np.savez(path, outputs=outputs, inputs=inputs, targets=targets, labels=labels, task=np.array("sr4"))
    return path


def run_paired_benchmark(out: Path, num_resamples: int = 100) -> dict[str, Any]:
    """Time every paired metric on 10,000 pairs; write the markdown report to ``out``."""
    import torch

    from gen_eval.bench.common import timed
    from gen_eval.metrics import get_metric
    from gen_eval.metrics.base import MetricContext
    from gen_eval.progress import progress_task
    from gen_eval.sources import open_source

    rows: list[dict[str, Any]] = []
    values: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        before = _load()
        with timed() as t:
            path = _pairs_file(Path(folder))
        rows.append(
            {
                "step": "baseline outputs (bicubic + nearest, 5,000 inputs each)",
                "seconds": t["seconds"],
                "load": (before, _load()),
            }
        )
        before = _load()
        with timed() as t:
            source = open_source(str(path))
        rows.append(
            {
                "step": "open the paired .npz (read, check, recognise nothing: task given)",
                "seconds": t["seconds"],
                "load": (before, _load()),
            }
        )
        context = MetricContext(num_resamples=num_resamples, generated_source=source, extractor="mnist")
        with progress_task("paired metrics", len(METRICS), True) as bar:
            for name in METRICS:
                before = _load()
                with timed() as t:
                    results = get_metric(name)({}, {}, context)
                shown = ", ".join(results)
                rows.append(
                    {"step": f"{name} (gave {shown})", "seconds": t["seconds"], "load": (before, _load())}
                )
                values.update({key: float(result.value) for key, result in results.items()})
                bar.advance(1)
    summary = {
        "pairs": len(source),
        "inputs": source.pairs().num_inputs,
        "threads": torch.get_num_threads(),
        "num_resamples": num_resamples,
        "rows": rows,
        "values": values,
        "metric_seconds": sum(r["seconds"] for r in rows[2:]),
    }
    from gen_eval.bench.cas import run_cas_benchmark

    summary["cas"] = run_cas_benchmark()  # the other speed target: its own section
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(_markdown(summary))
    return summary


def _markdown(summary: dict[str, Any]) -> str:
    import platform

    import torch

    lines = [
        f"# Paired metrics: seconds on {summary['pairs']:,} pairs of 28x28 images",
        "",
        "Written by `gen-eval bench paired`. Targets: the 5,000 `mnist` digits; inputs: their `sr4` "
        "degradation (7x7 area means); outputs: the `bicubic_sr4` and `nearest_sr4` baselines' for every "
        f"input, so {summary['pairs']:,} output/target pairs and {summary['inputs']:,} inputs with two "
        f"outputs each. Torch threads: {summary['threads']}; bootstrap: {summary['num_resamples']} "
        f"resamples over inputs per metric. {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, torch {torch.__version__}.",
        "",
        "The machine is shared with other work: the load average (1 min / 5 min) before and after each "
        "step says how busy it was; on a busy machine every number here is slower than on a quiet one.",
        "",
        "| step | seconds | load before | load after |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in summary["rows"]:
        lines.append(f"| {row['step']} | {row['seconds']:.2f} | {row['load'][0]} | {row['load'][1]} |")
    lines += [
        f"| **every paired metric** | **{summary['metric_seconds']:.1f}** | | |",
        "",
        "Values (the two baselines pooled, so not either baseline's score): "
        + ", ".join(f"{k} {v:.4g}" for k, v in summary["values"].items()),
        "",
    ]
    if "cas" in summary:
        from gen_eval.bench.cas import cas_markdown

        lines += cas_markdown(summary["cas"])
    return "\n".join(lines)
