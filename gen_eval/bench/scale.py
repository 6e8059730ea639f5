"""``gen-eval bench scale``: torchrun throughput (1 vs 2 processes) and streaming memory peaks.

Each measurement runs in its own process so its peak resident memory is its own:

1. **Scale-out**: ``gen-eval evaluate`` of a PNG folder with Inception-v3 (random but
   informative weights, made offline) as one process with all threads, and as two torchrun
   processes (gloo) with one thread each: the same cores, split two ways.
2. **Streaming**: ``gen-eval evaluate`` of a folder of 50,000 PNGs at 64 x 64 (the digits
   feature network, every default metric and the collapse check): peak RSS stays near that of a
   small folder because images are decoded batch by batch and only features are kept.
3. **k-NN and NDB at 50,000 points** (64-d): precision/recall and NDB alone, peak RSS.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _run(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of ``python -m ...`` or ``python -c ...`` in a fresh process.

    The peak is the process's own (``own_peak_mb``, written by a wrapper at exit), not the
    ``ru_maxrss`` that ``wait4`` reports, which carries over this (larger) parent's size.
    """
    from gen_eval.bench.common import PEAK_WRAPPER

    assert command[0] == sys.executable and command[1] in ("-m", "-c"), command[:2]
    environment = {**os.environ, **(env or {})}
    with tempfile.TemporaryDirectory(prefix="gen-eval-peak-") as folder:
        peak_file = Path(folder) / "peak"
        wrapped = [sys.executable, "-c", PEAK_WRAPPER, str(peak_file), *command[1:]]
        started = time.perf_counter()
        done = subprocess.run(wrapped, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:6])}... failed: {done.stderr.decode()[-500:]}")
        return seconds, float(peak_file.read_text())


def _shapes_pngs(folder: Path, count: int) -> Path:
    from gen_eval.bench.common import write_png_folder
    from gen_eval.datasets import shapes

    rng = np.random.default_rng(0)
    for start in range(0, count, 5000):
        n = min(5000, count - start)
        images = shapes.render_shapes(shapes.sample_factor_indices(n, rng))
        chunk = folder / f"part{start // 5000:02d}"
        write_png_folder(images, chunk)
    return folder


def _scale_rows(root: Path, num_images: int) -> list[list[Any]]:
    from gen_eval.bench.inception_weights import make_informative_inception_weights

    weights = make_informative_inception_weights(root / "inception.pth")
    folder = _shapes_pngs(root / "scale", num_images)
    common = ["evaluate", str(folder), "--reference", str(folder), "--features", "inception"]
    common += [
        "--inception-weights",
        str(weights),
        "--no-cache",
        "--num-resamples",
        "0",
        "--no-collapse",
        "--quiet",
    ]
    common += ["--metrics", "fid"]
    cores = os.cpu_count() or 1
    one, _ = _run([sys.executable, "-m", "gen_eval", *common], {"OMP_NUM_THREADS": str(cores)})
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone", "-m"]
    two, _ = _run([*launcher, "gen_eval", *common], {"OMP_NUM_THREADS": str(max(1, cores // 2))})
    images = 2 * num_images  # generated and reference are both extracted (no cache)
    return [
        [f"1 process, {cores} threads", f"{one:.1f}", f"{images / one:.1f}", "1.00x"],
        [
            f"2 processes (torchrun, gloo), {max(1, cores // 2)} thread(s) each",
            f"{two:.1f}",
            f"{images / two:.1f}",
            f"{one / two:.2f}x",
        ],
    ]


def _memory_rows(root: Path, num_images: int) -> list[list[Any]]:
    rows = []
    small = _shapes_pngs(root / "small", 1000)
    big = _shapes_pngs(root / "big", num_images)
    for label, folder in (("1,000 PNGs", small), (f"{num_images:,} PNGs", big)):
        command = [sys.executable, "-m", "gen_eval", "evaluate", str(folder), "--reference", "digits:test"]
        command += ["--features", "digits", "--no-cache", "--quiet"]
        seconds, peak = _run(command, {"OMP_NUM_THREADS": "2"})
        rows.append(
            [
                f"evaluate a folder of {label} at 64x64 (digits features, all defaults)",
                f"{seconds:.1f}",
                f"{peak:,.0f}",
            ]
        )
    script = (
        "import torch, gen_eval.metrics.precision_recall as pr, gen_eval.collapse.ndb as ndb\n"
        "from gen_eval.metrics.base import MetricContext\n"
        "g = torch.Generator().manual_seed(0)\n"
        "x, y = torch.randn({n}, 64, generator=g), torch.randn({n}, 64, generator=g)\n"
        "{call}\n"
    )
    calls = {
        "precision/recall": "pr.precision_recall({'features': x}, {'features': y}, MetricContext(num_resamples=0))",
        "NDB (100 bins)": "ndb.ndb_test(x.numpy(), y.numpy())",
    }
    for label, call in calls.items():
        code = script.format(n=num_images, call=call)
        seconds, peak = _run([sys.executable, "-c", code], {"OMP_NUM_THREADS": "2"})
        rows.append(
            [f"{label}, {num_images:,} x {num_images:,} points, 64-d", f"{seconds:.1f}", f"{peak:,.0f}"]
        )
    return rows


def run_scale_benchmark(
    out: str | Path = "reports/scale.md", num_images: int = 400, memory_images: int = 50_000
) -> str:
    """Measure and write the report; returns its text."""
    from gen_eval.bench.common import environment_lines, markdown_table

    with tempfile.TemporaryDirectory(prefix="gen-eval-scale-") as folder:
        root = Path(folder)
        scale = _scale_rows(root, num_images)
        memory = _memory_rows(root, memory_images)
    text = "\n".join(
        [
            "# Benchmarks: scale-out and memory",
            "",
            "Regenerate with `gen-eval bench scale` (this file is written by it).",
            "",
            *environment_lines(),
            "",
            f"## torchrun: 1 vs 2 processes, Inception-v3 on {num_images} + {num_images} PNGs (64x64)",
            "",
            "Both use every core of this machine; two processes split the batches (and each reads",
            "every image, see `gen_eval/distributed.py`). Multi-node: run the same command on each node",
            "with `torchrun --nnodes N --node-rank R --nproc-per-node G --rdzv-backend c10d",
            "--rdzv-endpoint HOST:PORT -m gen_eval evaluate ...` and an output folder all nodes share.",
            "",
            markdown_table(["setup", "seconds", "images / s", "speed-up"], scale),
            "",
            "## Peak resident memory (whole process, torch included)",
            "",
            markdown_table(["workload", "seconds", "peak RSS (MB)"], memory),
            "",
        ]
    )
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text, encoding="utf-8")
    return text
