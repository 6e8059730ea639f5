"""``gen-eval latent``: interpolations, smoothness, PPL, traversals, arithmetic and embeddings of a model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gen_eval.cli.common import UnsafeNoIsolation, _guard, app
from gen_eval.latent import ANALYSES, DEFAULT_ANALYSES
from gen_eval.schemas import to_json

LATENT_EXAMPLES = """
[bold]Examples[/bold]

  gen-eval latent ref:vae
  gen-eval latent ref:beta_vae_shapes --analyses traversal,embedding --embedding umap
  gen-eval latent ref:beta_vae_shapes --analyses disentanglement,traversal --out runs/beta_vae_shapes
  gen-eval latent ref:dcgan --run runs/demo/dcgan
  gen-eval latent my_vae.py:make_model --trust-code --out runs/my_vae --json
"""


@app.command(epilog=LATENT_EXAMPLES)
def latent(
    model: Annotated[str, typer.Argument(help="ref:NAME, a bundled model name, or file.py:factory.")],
    reference: Annotated[
        str | None, typer.Option("--reference", "-r", help="Real data with labels (default from the model).")
    ] = None,
    features: Annotated[
        str | None, typer.Option(help="Extractor for distances (default: the domain's).")
    ] = None,
    analyses: Annotated[
        str,
        typer.Option(
            help=f"Comma-separated, any of: {', '.join(ANALYSES)}. Default: all but disentanglement "
            "(shapes models only, about 2 minutes).",
            show_default=False,
        ),
    ] = ",".join(DEFAULT_ANALYSES),
    run: Annotated[
        Path | None, typer.Option(help="Add the results to this existing run (its latent/).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Evaluate MODEL into a new run here, then add the results.")
    ] = None,
    num_pairs: Annotated[int, typer.Option(help="Random paths for smoothness.")] = 32,
    steps: Annotated[int, typer.Option(help="Images per interpolation path.")] = 10,
    ppl_samples: Annotated[int, typer.Option(help="Path segments for PPL (1%/99% filtered).")] = 1000,
    top_k: Annotated[int, typer.Option(help="Traverse the k most active dimensions.")] = 5,
    traversal_range: Annotated[float, typer.Option("--range", help="Traverse z_d over [-R, R].")] = 3.0,
    arithmetic: Annotated[
        str | None, typer.Option(help="Classes A,B: move A towards B (default 3,8).")
    ] = None,
    embedding: Annotated[str, typer.Option(help="pca, tsne or umap.")] = "pca",
    lpips_vgg: Annotated[
        Path | None, typer.Option(help="VGG-16 weights for LPIPS (else $GEN_EVAL_VGG16_WEIGHTS, hub cache).")
    ] = None,
    lpips_lin: Annotated[
        Path | None, typer.Option(help="LPIPS lin weights (else $GEN_EVAL_LPIPS_WEIGHTS, hub cache, lpips).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 0,
    trust_code: Annotated[bool, typer.Option(help="Allow running a Python model file.")] = False,
    unsafe_no_isolation: UnsafeNoIsolation = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON.")] = False,
) -> None:
    """Analyse MODEL's latent space: lerp/slerp strips, path smoothness, perceptual path length,
    traversals of the most active dimensions, latent arithmetic, and a 2-D embedding.

    Without LPIPS weights on disk, PPL uses the domain extractor's features and is named
    ppl_<extractor>_features: comparable between models here, not with published PPL.
    """

    def body() -> None:
        from gen_eval.errors import GenEvalError
        from gen_eval.features.cache import default_cache_dir
        from gen_eval.latent.analyse import DEFAULT_REFERENCE, analyse_latent, load_latent_model, save_latent

        if run is not None and out is not None:
            raise GenEvalError("pass --run (an existing run) or --out (a new run), not both")
        pair = None
        if arithmetic:
            try:
                a, b = (int(part) for part in arithmetic.split(","))
            except ValueError:
                raise GenEvalError(
                    f"--arithmetic {arithmetic!r}: expected two class numbers, e.g. 3,8"
                ) from None
            pair = (a, b)
        loaded, name = load_latent_model(model, trust_code, unsafe_no_isolation)
        real = reference or DEFAULT_REFERENCE.get(str(getattr(loaded, "dataset", "")))
        analysis = analyse_latent(
            loaded,
            name=name,
            reference=real,
            features=features,
            analyses=[a.strip() for a in analyses.split(",") if a.strip()],
            num_pairs=num_pairs,
            steps=steps,
            ppl_samples=ppl_samples,
            top_k=top_k,
            traversal_range=traversal_range,
            arithmetic=pair,
            embedding=embedding,
            lpips_vgg=str(lpips_vgg) if lpips_vgg else None,
            lpips_lin=str(lpips_lin) if lpips_lin else None,
            random_state=seed,
            cache_dir=str(default_cache_dir() / "embeddings"),
        )
        target = run
        if out is not None:
            from gen_eval.evaluation import evaluate

            spec = model if model.startswith("ref:") or ".py" in model else f"ref:{model}"
            if real is None:
                raise GenEvalError(f"{model}: no default reference for its data; pass --reference")
            from gen_eval.features import extractor_class
            from gen_eval.latent.analyse import default_features
            from gen_eval.metrics import default_metrics

            extractor = features or default_features(str(getattr(loaded, "dataset", "")))
            available = {"features", "images"} | set(extractor_class(extractor).feature_names)
            kind = _model_data_kind(loaded)
            evaluate(
                spec,
                real,
                features=extractor,
                # No bits/dim, and at most 2,000 reference samples: on 64x64 shapes (4096-d raw
                # features) the full evaluation takes many minutes; gen-eval evaluate does it all.
                metrics=default_metrics(available, kind),
                num_reference=2000,
                out=out,
                trust_code=trust_code,
                unsafe_no_isolation=unsafe_no_isolation,
                num_samples=1000,
                show_progress=False,
            )
            target = out
        if target is not None:
            save_latent(str(target), analysis)
        if as_json:
            typer.echo(to_json({**analysis.to_dict(), "run_dir": str(target or "")}))
            return
        _print(analysis)
        if target is not None:
            typer.echo(f"latent results written to {target}/latent.json and {target}/latent/")

    _guard(body)


def _print(analysis) -> None:  # analysis: LatentAnalysis
    from rich.table import Table

    from gen_eval.latent.analyse import summary_rows
    from gen_eval.tables import console_for, unclipped

    table = Table(title=f"Latent space of {analysis.model}")
    table.add_column("analysis")
    table.add_column("result")
    for row in summary_rows(analysis.summary):
        table.add_row(*row)
    console = console_for(unclipped(table, whole=("analysis",)))
    console.print(table)
    for note in analysis.notes + analysis.summary.get("ppl", {}).get("notes", []):
        console.print(f"[dim]note: {note}[/dim]")


def _model_data_kind(model: object) -> str | None:
    """The data kind of the embedded dataset a model was trained on (None: unknown, every kind)."""
    from gen_eval.datasets import dataset_names, get_dataset

    name = str(getattr(model, "dataset", ""))
    return get_dataset(name).data_kind if name in dataset_names() else None
