"""``gen-eval evaluate``: score one source against a reference and write a run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gen_eval.cli.common import UnsafeNoIsolation, _guard, app
from gen_eval.features import RESIZE_MODE_HELP
from gen_eval.options import parse_option_pairs
from gen_eval.schemas import to_json
from gen_eval.sources.resize import RESIZE_METHOD_HELP

EVALUATE_EXAMPLES = """
[bold]Examples[/bold]

  gen-eval evaluate digits:train --reference digits:test
  gen-eval evaluate samples.npz --reference real_images/ --features inception --inception-weights pt_inception.pth
  gen-eval evaluate my_gan.py:make_model --trust-code --num-samples 2000 --reference digits:test
  gen-eval evaluate ring8:test --reference ring8 --json
  gen-eval evaluate samples/ --reference cifar10_train_stats.npz --reference-features inception
  gen-eval evaluate samples/ --reference train_images/ --features dinov2-vit-l14 --weights dinov2_vitl14_pretrain.pth
  gen-eval evaluate samples/ -r digits:test --metrics fid,kid,fd_inf -o kid_subset_size=500 --num-resamples 200
"""


@app.command(epilog=EVALUATE_EXAMPLES)
def evaluate(
    source: Annotated[
        str, typer.Argument(help="Samples: folder, .npz/.npy, file.py:factory, or dataset[:split].")
    ],
    reference: Annotated[
        str, typer.Option("--reference", "-r", help="Reference set (same forms).")
    ] = "digits:test",
    reference_features: Annotated[
        str | None,
        typer.Option(
            help="NAME[@SHA256]: the extractor a statistics file that does not record it was made with "
            "(pytorch-fid, clean-fid, ADM .npz); the manifest records it as stated by you."
        ),
    ] = None,
    features: Annotated[
        str, typer.Option(help="Feature extractor (see `gen-eval features`) or auto.")
    ] = "auto",
    metrics: Annotated[
        str, typer.Option(help="Comma-separated metric names (see `gen-eval metrics`), or auto.")
    ] = "auto",
    num_samples: Annotated[int | None, typer.Option(help="Use the first N samples (or draw N).")] = None,
    num_reference: Annotated[int | None, typer.Option(help="Use the first N reference samples.")] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Samples per forward pass (auto by default).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed for generators, subsets and bootstrap resamples.")] = 0,
    num_resamples: Annotated[
        int, typer.Option(help="Bootstrap resamples for 95% intervals (0: none).")
    ] = 100,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            "-o",
            help="Metric or detector option KEY=VALUE, e.g. kid_subset_size=500 (see gen-eval metrics); "
            "unknown keys and mistyped values are refused.",
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Run directory (default: runs/<time>-<source>).")] = None,
    no_save: Annotated[bool, typer.Option("--no-save", help="Print results without writing a run.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out directory.")] = False,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Feature cache (default: $GEN_EVAL_CACHE or ~/.cache/gen-eval).")
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Neither read nor write cached features.")
    ] = False,
    trust_code: Annotated[bool, typer.Option(help="Allow running a Python generator file.")] = False,
    sandbox: Annotated[
        bool,
        typer.Option(
            help="Run that file in a separate process with time and memory limits "
            "(GEN_EVAL_SANDBOX_TIME_S, GEN_EVAL_SANDBOX_MEMORY_MB); --no-sandbox imports it here."
        ),
    ] = True,
    unsafe_no_isolation: UnsafeNoIsolation = False,
    inception_weights: Annotated[Path | None, typer.Option(help="Local Inception-v3 weights (.pth).")] = None,
    weights: Annotated[
        Path | None,
        typer.Option(
            help="Weights file of a dinov2-* or clip-* extractor (else its env var or the torch hub cache)."
        ),
    ] = None,
    channels_last: Annotated[
        bool | None,
        typer.Option(
            "--channels-last/--no-channels-last",
            help="Inception in channels-last layout (default: on for CPU, ~1.6x faster, features within 2e-6).",
            show_default=False,
        ),
    ] = None,
    resize: Annotated[
        int | None, typer.Option(help="Resize folder images to SIZE x SIZE (with --resize-method).")
    ] = None,
    resize_method: Annotated[str, typer.Option(help=RESIZE_METHOD_HELP)] = "bicubic",
    resize_mode: Annotated[str | None, typer.Option(help=RESIZE_MODE_HELP)] = None,
    key: Annotated[str | None, typer.Option(help="Array name inside an .npz (default arr_0).")] = None,
    value_range: Annotated[str, typer.Option(help="Float arrays: auto, 0,1, -1,1 or 0,255.")] = "auto",
    resample_points: Annotated[
        int | None,
        typer.Option(help="Point clouds: bring every cloud to N points (needed when their sizes differ)."),
    ] = None,
    no_collapse: Annotated[
        bool, typer.Option("--no-collapse", help="Skip the mode-collapse detectors (on by default).")
    ] = False,
    train: Annotated[
        str | None,
        typer.Option(help="Training set for the memorisation check (default: the reference's train split)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Score SOURCE against a reference and write a run directory (with a mode-collapse verdict)."""

    def body() -> None:
        from gen_eval.evaluation import default_run_dir
        from gen_eval.evaluation import evaluate as run_evaluate
        from gen_eval.report.text import print_evaluation

        target = None if no_save else (out or default_run_dir(source))
        result = run_evaluate(
            source,
            reference,
            features=features,
            metrics="auto" if metrics == "auto" else [m.strip() for m in metrics.split(",") if m.strip()],
            num_samples=num_samples,
            num_reference=num_reference,
            batch_size=batch_size,
            device=device,
            seed=seed,
            num_resamples=num_resamples,
            metric_options=parse_option_pairs(option or []),
            out=target,
            overwrite=overwrite,
            cache_dir=None if no_cache else (cache_dir or True),
            trust_code=trust_code,
            sandbox=sandbox,
            unsafe_no_isolation=unsafe_no_isolation,
            inception_weights=inception_weights,
            weights=weights,
            channels_last=channels_last,
            resize=resize,
            resize_method=resize_method,
            resize_mode=resize_mode,
            key=key,
            value_range=value_range,
            resample_points=resample_points,
            collapse=not no_collapse,
            train=train or "auto",
            show_progress=not quiet and not as_json,
            reference_features=reference_features,
        )
        if as_json:
            typer.echo(to_json(result.to_dict()))
        else:
            print_evaluation(result)

    _guard(body)
