"""``gen-eval collapse``: is this model dropping modes, and which? (registered by ``gen_eval.cli.main``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gen_eval.cli.common import UnsafeNoIsolation, _guard, app
from gen_eval.options import parse_option_pairs
from gen_eval.schemas import to_json
from gen_eval.sources.resize import RESIZE_METHOD_HELP

COLLAPSE_EXAMPLES = """
[bold]Examples[/bold]

  gen-eval collapse ref:collapsed_ring8 --reference ring8:test
  gen-eval collapse ref:collapsed_digits --reference digits:test --html collapse.html
  gen-eval collapse samples.npz --reference real/ --train train_images/ -o ndb_bins=50
"""


@app.command(epilog=COLLAPSE_EXAMPLES)
def collapse(
    source: Annotated[
        str, typer.Argument(help="Samples: folder, .npz/.npy, file.py:factory, ref:NAME, dataset.")
    ],
    reference: Annotated[str, typer.Option("--reference", "-r", help="Reference set.")] = "digits:test",
    train: Annotated[
        str | None,
        typer.Option(help="Training set for the memorisation check (default: the reference's train split)."),
    ] = None,
    features: Annotated[str, typer.Option(help="Feature extractor or auto.")] = "auto",
    num_samples: Annotated[int | None, typer.Option(help="Use the first N samples (or draw N).")] = None,
    num_reference: Annotated[int | None, typer.Option(help="Use the first N reference samples.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for sampling and every detector.")] = 0,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            "-o",
            help="Detector option KEY=VALUE, e.g. ndb_bins=50, birthday_batch_sizes=8,16,32.",
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    trust_code: Annotated[bool, typer.Option(help="Allow running a Python generator file.")] = False,
    unsafe_no_isolation: UnsafeNoIsolation = False,
    inception_weights: Annotated[Path | None, typer.Option(help="Local Inception-v3 weights (.pth).")] = None,
    resize_method: Annotated[str, typer.Option(help=RESIZE_METHOD_HELP)] = "bicubic",
    out: Annotated[
        Path | None, typer.Option(help="Also write a run directory here (with the figures).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out directory.")] = False,
    html: Annotated[
        Path | None, typer.Option(help="Write a self-contained HTML page with the figures.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Check SOURCE for mode collapse and memorisation against a reference, with the evidence.

    Runs known-mode coverage (2-D mixtures, labelled vectors), stacked-digit modes, class
    histograms, NDB, the birthday-paradox test, the Vendi score, a memorisation check against the
    training set, and coverage / MS-SSIM, and prints one verdict with each finding behind it.
    """

    def body() -> None:
        from gen_eval.evaluation import evaluate
        from gen_eval.report.text import print_collapse

        result = evaluate(
            source,
            reference,
            features=features,
            metrics="collapse",
            num_samples=num_samples,
            num_reference=num_reference,
            device=device,
            seed=seed,
            num_resamples=0,
            metric_options=parse_option_pairs(option or []),
            out=out,
            overwrite=overwrite,
            trust_code=trust_code,
            unsafe_no_isolation=unsafe_no_isolation,
            inception_weights=inception_weights,
            resize_method=resize_method,
            collapse=True,
            train=train or "auto",
            show_progress=not quiet and not as_json,
        )
        report = result.collapse
        assert report is not None
        if html is not None:
            _write_html(html, result)
        if as_json:
            payload = {"collapse": report.to_dict(), "run_dir": str(result.run_dir or "")}
            typer.echo(to_json({**payload, "warnings": result.warnings}))
            return
        typer.echo(f"{source} vs {reference} ({result.manifest['extractor']['name']} features)")
        print_collapse(report)
        for warning in result.warnings:  # fewer samples than asked for, images resized
            typer.secho(f"warning: {warning}", fg=typer.colors.YELLOW)
        if result.run_dir is not None:
            typer.echo(f"run written to {result.run_dir}")
        if html is not None:
            typer.echo(f"figures written to {html}")

    _guard(body)


def _write_html(path: Path, result) -> None:  # result: Evaluation
    from gen_eval.collapse.outputs import collapse_html
    from gen_eval.errors import GenEvalError

    figures = result.collapse_figures()
    title = f"Mode collapse: {result.manifest['generated']['spec']} vs {result.manifest['reference']['spec']}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(collapse_html(result.collapse, figures, title), encoding="utf-8")
    except OSError as exc:
        raise GenEvalError(
            f"{path}: cannot write the HTML page ({exc.strerror}); choose another --html"
        ) from exc
