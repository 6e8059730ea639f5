"""Shared pieces of the benchmark and parity commands: fixtures on disk, timing, markdown."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np


def write_png_folder(images: np.ndarray, folder: Path) -> Path:
    """Write uint8 NCHW ``images`` as numbered PNGs into ``folder``."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images):
        Image.fromarray(image.transpose(1, 2, 0).squeeze()).save(folder / f"{index:05d}.png")
    return folder


def own_peak_mb() -> float:
    """Peak resident memory of this process's own address space, in MB.

    The kernel's high-water mark (``VmHWM``, reset by exec). ``ru_maxrss`` is not what it seems
    for a child process: Linux carries it over from the parent that forked it, so a small task
    started by a large benchmark process would report the parent's size. Falls back to it where
    ``/proc`` is missing.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# Runs ``python -m MODULE ARGS`` or ``python -c CODE`` and writes its own peak (own_peak_mb) to a
# file at exit: argv is [peak file, "-m" or "-c", module or code, args...].
PEAK_WRAPPER = (
    "import atexit, runpy, sys\n"
    "from gen_eval.bench.common import own_peak_mb\n"
    "peak_file, mode, target = sys.argv[1:4]\n"
    "atexit.register(lambda: open(peak_file, 'w').write(str(own_peak_mb())))\n"
    "sys.argv = [target, *sys.argv[4:]]\n"
    "if mode == '-m':\n"
    "    runpy.run_module(target, run_name='__main__', alter_sys=True)\n"
    "else:\n"
    "    exec(compile(target, '<benchmark>', 'exec'), {'__name__': '__main__'})\n"
)


@contextmanager
def timed() -> Iterator[dict[str, float]]:
    """``with timed() as t: ...`` then ``t["seconds"]``."""
    record: dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield record
    finally:
        record["seconds"] = time.perf_counter() - start


def best_of(repeats: int, action: Callable[[], Any]) -> float:
    """Fastest wall time of ``repeats`` runs of ``action`` (noise on shared machines only adds time)."""
    times = []
    for _ in range(repeats):
        with timed() as t:
            action()
        times.append(t["seconds"])
    return min(times)


def environment_lines() -> list[str]:
    """Markdown bullet lines describing where the numbers were measured."""
    import torch

    from gen_eval import __version__

    # Ours from the package itself: the distribution is gen-eval-toolkit, and "gen-eval" on the
    # package index is an unrelated project that must not be reported in its place.
    versions = [f"gen-eval {__version__}"]
    for package in (
        "torch",
        "torch-fidelity",
        "torchmetrics",
        "pytorch-fid",
        "prdc",
        "pytorch-msssim",
        "scipy",
        "numpy",
    ):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU only"
    return [
        f"- measured {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} on {platform.machine()}, "
        f"{torch.get_num_threads()} torch threads, {device}",
        f"- {', '.join(versions)}, Python {platform.python_version()}",
    ]


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def relative_difference(ours: float, theirs: float) -> float:
    """|ours - theirs| / max(|theirs|, 1e-12)."""
    return abs(ours - theirs) / max(abs(theirs), 1e-12)
