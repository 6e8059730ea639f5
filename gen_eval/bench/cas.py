"""The CAS rows of ``gen-eval bench paired``: seconds for the classification accuracy score.

The issue's target is "CAS in under a minute" for 5,000 labelled 28x28 images. The generated set
here is real: the 4,000 ``mnist:train`` digits and the first 1,000 of them again, shifted one
pixel right (5,000 labelled images, none from the test split), saved as a labelled ``.npz`` and
read as a submission would be; the reference is ``mnist:test``. The metric trains two classifiers
(on these 5,000 images, and ``cas_real`` on ``mnist:train``), both for the default budget of
20,000 images seen, on one CPU thread (what :func:`~gen_eval.nets.small_cnn.train_classifier`
uses on the CPU), so the times need one core; no cache, so both are trained.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} / {five:.1f}"


def labelled_set(folder: Path) -> Path:
    """The benchmark's 5,000 labelled images as ``samples`` + ``labels`` in an ``.npz``."""
    from gen_eval.datasets.mnist import load_mnist_split

    images, labels = load_mnist_split("train")
    shifted = np.zeros_like(images[:1000])
    shifted[..., 1:] = images[:1000, ..., :-1]
    path = folder / "labelled.npz"
    np.savez(path, samples=np.concatenate([images, shifted]), labels=np.concatenate([labels, labels[:1000]]))
    return path


def run_cas_benchmark(seed: int = 0) -> dict[str, Any]:
    """Time the ``cas`` metric on 5,000 labelled images against ``mnist:test``.

    Returns
    -------
    dict
        ``seconds`` (the whole metric: reading, both classifiers, testing), the load average
        before and after, the CPU seconds of this process, each classifier's training seconds,
        and the values (``cas``, ``cas_real``, ``gap``).
    """
    import time

    from gen_eval.metrics import get_metric
    from gen_eval.metrics.base import MetricContext
    from gen_eval.sources import open_source

    with tempfile.TemporaryDirectory() as folder:
        generated = open_source(str(labelled_set(Path(folder))))
        context = MetricContext(
            random_state=seed,
            generated_source=generated,
            reference_source=open_source("mnist:test"),
            num_resamples=100,
        )
        before = _load()
        started, cpu = time.perf_counter(), time.process_time()
        results = get_metric("cas")({}, {}, context)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    details = results["cas"].details
    return {
        "images": len(generated),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "load": (before, _load()),
        "generated_train_seconds": details["train_seconds"],
        "real_train_seconds": details.get("real_seconds"),
        "budget": details["budget_images_seen"],
        "cas": results["cas"].value,
        "cas_interval": results["cas"].interval,
        "cas_real": results["cas_real"].value,
        "gap": details["gap"],
        "gap_interval": details["gap_interval"],
    }


def cas_markdown(summary: dict[str, Any]) -> list[str]:
    """The report's CAS section (markdown lines)."""
    low, high = summary["cas_interval"]
    gap_low, gap_high = summary["gap_interval"]
    return [
        "",
        f"## CAS: seconds for {summary['images']:,} labelled 28x28 images",
        "",
        "`cas` against `mnist:test`: the generated set is the 4,000 `mnist:train` digits plus the first 1,000 "
        "shifted by one pixel (real images, requested labels = true labels); two classifiers trained, each "
        f"for {summary['budget']:,} images seen on one CPU thread (the metric's own setting); no cache.",
        "",
        "| step | seconds | load before | load after |",
        "| --- | ---: | ---: | ---: |",
        f"| classifier on the 5,000 labelled images | {summary['generated_train_seconds']:.1f} | | |",
        f"| classifier on `mnist:train` (`cas_real`) | {summary['real_train_seconds']:.1f} | | |",
        f"| **cas, whole metric** (CPU seconds of the process: {summary['cpu_seconds']:.1f}) "
        f"| **{summary['seconds']:.1f}** | {summary['load'][0]} | {summary['load'][1]} |",
        "",
        f"Values: cas {summary['cas']:.3f} (Wilson 95%: {low:.3f} to {high:.3f}), cas_real {summary['cas_real']:.3f}, "
        f"gap {summary['gap']:+.3f} (paired bootstrap 95%: {gap_low:+.3f} to {gap_high:+.3f}).",
        "",
        "The metric computes on one thread, so on a quiet machine its wall time is about its CPU seconds; "
        "on a busy one the wall time is longer by the share of a core the other work leaves it (the load "
        "average says how busy it was).",
        "",
    ]
