"""``gen-eval bench text``: seconds for every sample-based text metric on 10,000 vs 10,000 strings.

Written to ``reports/text.md``. The reference is the first ``count`` names of ``census_names:train``
(a dataset, so the truth and training-set metrics run); the generated set is ``count`` fresh draws
from the census truth with their sex labels (a ``.jsonl`` in a temporary folder, seed 123), so
every metric sees a realistic pair. Features are the bundled ``char-names`` network's, extracted
once and timed on their own; each metric is then timed alone, as ``evaluate`` calls it (with its
bootstrap, ``num_resamples`` replicates). The collapse check on strings is timed too.

The machine is shared: the report states the torch threads (faiss's k-means follows them) and
the load average before and after each measurement.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

# (registry name, what it gives, options): the sample-based metrics a text run computes.
MAUVE_DEFAULTS = {"mauve_kmeans_restarts": 5, "mauve_kmeans_iterations": 500}  # mauve-text's own
METRICS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("text_ngrams", "n-gram JSD n=1..4 and length distance", {}),
    ("text_novelty", "train copies, reference overlap, distinct", {}),
    ("text_truth", "mass coverage, TV to truth, outside truth", {}),
    ("distinct_n", "distinct-1..4", {}),
    ("self_bleu", "self-BLEU on a 200-string subset", {}),
    ("conditional_accuracy", "classifier reads the requested label", {}),
    ("mauve", "MAUVE, mauve's k-means (N/10 clusters, 5 restarts x 500 iterations)", MAUVE_DEFAULTS),
    ("mauve", "MAUVE, gen-eval's default: 1 restart x 100 iterations (mauve's speed advice)", {}),
    ("fid", "Fréchet distance (char-names features)", {}),
    ("kid", "KID", {}),
    ("precision_recall", "k-NN precision/recall", {}),
    ("density_coverage", "density/coverage", {}),
)


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} / {five:.1f}"


def _generated_file(folder: Path, count: int, seed: int = 123) -> Path:
    from gen_eval.datasets.census_names import table

    strings, labels, mass = table()
    draws = np.random.default_rng(seed).choice(len(strings), size=count, p=mass)
    path = folder / "generated.jsonl"
    path.write_text("".join(json.dumps({"text": strings[i], "label": int(labels[i])}) + "\n" for i in draws))
    return path


def run_text_benchmark(out: Path, count: int = 10_000, num_resamples: int = 100) -> dict[str, Any]:
    """Time every sample-based text metric and the collapse check; write the markdown report to ``out``."""
    import torch

    from gen_eval.bench.common import timed
    from gen_eval.collapse.check import check_collapse
    from gen_eval.collapse.from_sources import sample_strings
    from gen_eval.features import create_extractor
    from gen_eval.features.cache import FeatureCache
    from gen_eval.features.extract import extract_features
    from gen_eval.metrics import get_metric
    from gen_eval.metrics.base import MetricContext
    from gen_eval.progress import progress_task
    from gen_eval.sources import open_source

    rows: list[dict[str, Any]] = []
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as folder:
        generated = open_source(str(_generated_file(Path(folder), count)))
        reference = open_source("census_names:train", num_samples=count)
        extractor = create_extractor("char-names")
        before = _load()
        with timed() as t:
            cache = FeatureCache(None)  # nothing cached: the extraction is timed
            gen_features = extract_features(
                generated, extractor, batch_size=1024, cache=cache, show_progress=False
            )
            ref_features = extract_features(
                reference, extractor, batch_size=1024, cache=cache, show_progress=False
            )
        rows.append(
            {"step": "char-names features (both sets)", "seconds": t["seconds"], "load": (before, _load())}
        )
        context = MetricContext(
            num_resamples=num_resamples,
            generated_source=generated,
            reference_source=reference,
            extractor="char-names",
        )
        values: dict[str, float] = {}
        with progress_task("text metrics", len(METRICS) + 1, True) as bar:
            for name, what, options in METRICS:
                context.options = dict(options)
                before = _load()
                with timed() as t:
                    results = get_metric(name)(gen_features.tensors, ref_features.tensors, context)
                rows.append({"step": f"{name}: {what}", "seconds": t["seconds"], "load": (before, _load())})
                suffix = "_mauve_defaults" if options else ""
                values.update({key + suffix: float(r.value) for key, r in results.items()})
                if name == "mauve":
                    values[f"mauve{suffix}_low"], values[f"mauve{suffix}_high"] = results["mauve"].interval
                bar.advance(1)
            before = _load()
            with timed() as t:
                train = open_source("census_names:train")
                strings = (sample_strings(generated), sample_strings(reference), sample_strings(train))
                report = check_collapse(
                    gen_features.tensors, ref_features.tensors, random_state=0, strings=strings
                )
            rows.append(
                {"step": "collapse check on strings", "seconds": t["seconds"], "load": (before, _load())}
            )
            bar.advance(1)
    summary = {
        "count": count,
        "threads": threads,
        "num_resamples": num_resamples,
        "rows": rows,
        "values": values,
        "verdict": report.verdict,
        "total_seconds": sum(r["seconds"] for r in rows),
    }
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(_markdown(summary))
    return summary


def _markdown(summary: dict[str, Any]) -> str:
    import platform

    import torch

    lines = [
        f"# Text metrics: seconds on {summary['count']:,} vs {summary['count']:,} strings",
        "",
        "Written by `gen-eval bench text`. Generated: "
        f"{summary['count']:,} draws from the census_names truth with their labels (seed 123); reference: the "
        f"first {summary['count']:,} names of `census_names:train`; features: the bundled `char-names` network. "
        f"Torch threads: {summary['threads']} (faiss's k-means for MAUVE too); bootstrap: "
        f"{summary['num_resamples']} resamples where a metric has an interval. "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}.",
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
        f"| **total** | **{summary['total_seconds']:.1f}** | | |",
        "",
        f"Collapse verdict on these true draws: {summary['verdict']}.",
        "",
        "Values (true draws against true draws, so near their finite-sample floors): "
        + ", ".join(f"{k} {v:.4g}" for k, v in summary["values"].items()),
        "",
    ]
    return "\n".join(lines)
