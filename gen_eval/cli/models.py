"""``gen-eval models | train | demo | scorecard``: the bundled reference models on the command line.

Registered on the main app by ``gen_eval.cli.main``; kept apart so that module stays readable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from gen_eval.cli.common import _guard, _print_table, app
from gen_eval.errors import GenEvalError
from gen_eval.schemas import to_json


@app.command(epilog="[bold]Examples[/bold]\n\n  gen-eval models\n  gen-eval models --json")
def models(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the bundled reference models: family, data, checkpoint size and headline scores."""

    def body() -> None:
        from gen_eval.demo.leaderboard import BPD_MARKS
        from gen_eval.demo.scorecard import format_headline, model_rows

        rows = model_rows()
        if as_json:
            typer.echo(to_json(rows))
            return
        _print_table(
            "Bundled reference models (use as ref:NAME)",
            ["name", "family", "data", "size", "exposes", "FID", "bits/dim", "note"],
            [
                [
                    r["name"],
                    r["family"],
                    r["dataset"],
                    "not trained" if r["size_bytes"] is None else f"{r['size_bytes'] / 1e6:.2f} MB",
                    ", ".join(r["exposes"]),
                    format_headline(r["fid"], ".4g"),
                    format_headline(r["bits_per_dim"], ".3f", BPD_MARKS),
                    f"[red]{r['faulty']}[/red]" if r["faulty"] else "",
                ]
                for r in rows
            ],
            caption="scores: vs the test split at 1,000 samples (gen-eval scorecard); ≤ marks a bound, ≈ an AIS estimate",
        )

    _guard(body)


TRAIN_EXAMPLES = """
[bold]Examples[/bold]

  gen-eval train vae
  gen-eval train dcgan --dataset ring8 --steps 2000 --seed 1 --out my_checkpoints/
  gen-eval train beta_vae --dataset shapes
  gen-eval evaluate ref:vae --reference digits:test
"""


@app.command(epilog=TRAIN_EXAMPLES)
def train(
    name: Annotated[str, typer.Argument(help="A bundled model (see `gen-eval models`).")],
    dataset: Annotated[
        str | None, typer.Option(help="Train the NAME model of this dataset (e.g. dcgan on ring8).")
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Optimiser steps (models trained in steps).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs (models trained in epochs).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for initialisation, data order and noise.")] = 0,
    out: Annotated[
        Path | None, typer.Option(help="Checkpoint folder (default: the shipped checkpoints).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Train a reference model reproducibly on the CPU; writes safetensors + JSON config + loss log."""

    def body() -> None:
        from reference_models import resolve_model
        from reference_models.train import train_model

        try:
            chosen = resolve_model(name, dataset)
            _, config = train_model(
                chosen, steps=steps, epochs=epochs, seed=seed, directory=out, show_progress=not quiet
            )
        except (KeyError, ValueError) as exc:
            raise GenEvalError(str(exc.args[0])) from None
        typer.echo(to_json(config))

    _guard(body)


DEMO_EXAMPLES = """
[bold]Examples[/bold]

  gen-eval demo
  gen-eval demo --num-samples 2000 --out runs/demo
  gen-eval demo --models vae,dcgan --num-resamples 0
"""


@app.command(epilog=DEMO_EXAMPLES)
def demo(
    out: Annotated[
        Path, typer.Option(help="Folder for the runs (one per model) and the leaderboard.")
    ] = Path("runs/demo"),
    model_names: Annotated[
        str | None, typer.Option("--models", help="Comma-separated models (default: every digits model).")
    ] = None,
    num_samples: Annotated[int, typer.Option(help="Samples drawn from each model.")] = 1000,
    num_resamples: Annotated[int, typer.Option(help="Bootstrap resamples for 95% intervals.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed for sampling and resampling.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    overwrite: Annotated[
        bool,
        typer.Option(
            help="Replace files in --out that the demo did not write (a report, a saved embedding); "
            "without it the demo refuses and names them."
        ),
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Models scored at once, each in its own process (default: 2, or 1 on a 1-core "
            "machine); 1 scores them one after another in this process. The numbers are the same.",
        ),
    ] = min(2, os.cpu_count() or 1),
) -> None:
    """The main job: score every bundled digits model against digits:test and print the leaderboard.

    The point-cloud models (shapes3d) follow in a section of their own: FPD, precision/recall,
    the PointFlow metrics and the classes their samples cover, against shapes3d:test.
    The text models (census_names: naive Bayes up to a tiny transformer, and two faulty ones)
    follow too: bits per character, n-gram JSDs, training copies and the true mass covered.

    Models with a latent space (VAEs, GANs, the flow) also get the latent analyses in their runs.
    Running it again replaces its own runs; files added to them since make it stop (see --overwrite).
    """

    def body() -> None:
        from gen_eval.demo.leaderboard import print_leaderboard, score_models, write_leaderboard
        from gen_eval.demo.pointclouds import NUM_SAMPLES, print_pointcloud_table, score_pointcloud_models
        from gen_eval.demo.pointclouds import split_names as split_pointcloud_models
        from gen_eval.demo.sections import print_section, score_section, split_for_section
        from gen_eval.demo.text import print_text_table, score_text_models
        from gen_eval.demo.text import split_names as split_text_models

        names = None if model_names is None else [n.strip() for n in model_names.split(",") if n.strip()]
        _check_names(names)
        names, cloud_names = split_pointcloud_models(names)
        names, text_names = split_text_models(names)
        section_names = []  # issue 23: class-conditional, paired and translation models
        for section in _model_sections():
            names, chosen = split_for_section(names, section)
            section_names.append((section, chosen))
        scores = []
        if names != []:  # [] when only point-cloud models were asked for
            scores = score_models(
                names,
                out_dir=out,
                num_samples=num_samples,
                num_resamples=num_resamples,
                seed=seed,
                show_progress=not quiet,
                latent=True,
                overwrite=overwrite,
                # One thread unless --threads (or GEN_EVAL_THREADS, OMP_NUM_THREADS) says otherwise:
                # the models are small and a second thread mostly spins (see score_models).
                threads=None if os.environ.get("OMP_NUM_THREADS") else 1,
                workers=workers,
            )
        # The point-cloud models: other features and metrics, a section of their own (at most
        # 100 clouds each: the PointFlow metrics compare every pair of clouds).
        cloud_scores = score_pointcloud_models(
            cloud_names,
            out_dir=out,
            num_samples=min(num_samples, NUM_SAMPLES),
            num_reference=NUM_SAMPLES,
            num_resamples=num_resamples,
            seed=seed,
            show_progress=not quiet,
            latent=True,
            overwrite=overwrite,
        )
        # The text ladder (census_names): bits/char, n-gram JSDs, copies and the true mass covered.
        text_scores = score_text_models(
            text_names,
            out_dir=out,
            num_samples=num_samples,
            num_resamples=num_resamples,
            seed=seed,
            show_progress=not quiet,
            overwrite=overwrite,
        )
        section_scores = [
            (
                section,
                score_section(
                    section,
                    chosen,
                    out_dir=out,
                    num_samples=num_samples,
                    num_resamples=num_resamples,
                    seed=seed,
                    show_progress=not quiet,
                    overwrite=overwrite,
                ),
            )
            for section, chosen in section_names
        ]
        if scores:
            print_leaderboard(scores)
        print_pointcloud_table(cloud_scores)
        print_text_table(text_scores)
        for section, found in section_scores:
            print_section(section, found)
        everything = scores + cloud_scores + text_scores + [s for _, found in section_scores for s in found]
        plane = _paired_plane([s for _, found in section_scores for s in found], out, overwrite)
        if plane is not None:
            typer.echo(f"distortion-realism plane of the paired models: {plane}")
        typer.echo(f"runs and leaderboard written to {write_leaderboard(everything, out).parent}")

    _guard(body)


@app.command(epilog="[bold]Example[/bold]\n\n  gen-eval scorecard")
def scorecard(
    out: Annotated[Path, typer.Option(help="Markdown scorecard to write.")] = Path(
        "reports/reference_models.md"
    ),
    runs: Annotated[Path, typer.Option(help="Folder for the runs behind it.")] = Path("runs/scorecard"),
    num_samples: Annotated[int, typer.Option(help="Samples drawn from each model.")] = 1000,
    num_resamples: Annotated[int, typer.Option(help="Bootstrap resamples for 95% intervals.")] = 100,
    sections: Annotated[
        str,
        typer.Option(
            help="all, or some of conditional,paired,translation: rescore only those models and rewrite "
            "the scorecard's issue-23 part with them alone (the full scorecard takes about an hour)."
        ),
    ] = "all",
) -> None:
    """Score every bundled model (digits, 2-D mixtures, conditional, paired, translation) and write
    reports/reference_models.md."""

    def body() -> None:
        from gen_eval.demo.scorecard import write_scorecard
        from gen_eval.demo.scorecard_sections import sections_of, update_scorecard, write_sections

        if sections.strip() == "all":
            path = write_scorecard(out, runs, num_samples=num_samples, num_resamples=num_resamples)
        else:
            groups = tuple(g.strip() for g in sections.split(",") if g.strip())
            sections_of(groups)  # an unknown name fails before any scoring
            block = write_sections(out, runs, groups, num_samples=num_samples, num_resamples=num_resamples)
            path = update_scorecard(out, block)
        typer.echo(f"scorecard written to {path}")

    _guard(body)


def _model_sections() -> list:
    """The demo sections of issue 23, in the order they print: conditional, paired tasks, translation."""
    from gen_eval.demo import conditional, paired, translation

    return [conditional.SECTION, *paired.SECTIONS.values(), *translation.SECTIONS.values()]


def _paired_plane(scores: list, out: Path | None, overwrite: bool) -> Path | None:
    """PSNR against FID of the paired models scored (``OUT/paired_plane.png``), or None."""
    from gen_eval.demo.paired import plane_points

    points = plane_points(scores)
    if not points or out is None:
        return None
    from gen_eval.demo.files import check_replaceable, record_files
    from gen_eval.report.plane import plane_png

    check_replaceable(out, ["paired_plane.png"], overwrite)
    path = plane_png(points, Path(out) / "paired_plane.png")
    record_files(out, [path.name])
    return path


def _check_names(names: list[str] | None) -> None:
    from reference_models import MODELS

    for name in names or []:
        if name not in MODELS:
            raise GenEvalError(f"no reference model {name!r}; bundled: {', '.join(MODELS)}")
