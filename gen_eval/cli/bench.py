"""``gen-eval bench ...``: benchmarks and parity reports under reports/ (registered by ``gen_eval.cli.main``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gen_eval.cli.common import _guard, app
from gen_eval.errors import GenEvalError

bench_app = typer.Typer(help="Benchmarks and parity reports, written under reports/.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


@bench_app.command("metrics", epilog="[bold]Example[/bold]\n\n  gen-eval bench metrics --num-images 200")
def bench_metrics(
    out: Annotated[Path, typer.Option(help="Markdown report to write.")] = Path("reports/benchmarks.md"),
    num_images: Annotated[int, typer.Option(help="Images per set for the end-to-end timing.")] = 200,
    repeats: Annotated[int, typer.Option(help="Take the best of this many runs.")] = 1,
    max_prc: Annotated[int, typer.Option(help="Largest precision/recall size (N x N, 2048-d).")] = 50_000,
) -> None:
    """Time our metrics against torch-fidelity, pytorch-fid, scipy and prdc on the same inputs."""

    def body() -> None:
        from gen_eval.bench.metrics_bench import run_metrics_benchmark

        sizes = tuple(n for n in (10_000, 50_000) if n <= max_prc) or (max_prc,)
        typer.echo(run_metrics_benchmark(out, num_images=num_images, repeats=repeats, prc_sizes=sizes))
        typer.echo(f"written to {out}")

    _guard(body)


@bench_app.command("features", epilog="[bold]Example[/bold]\n\n  gen-eval bench features --num-images 32")
def bench_features(
    out: Annotated[Path, typer.Option(help="Markdown report to write.")] = Path("reports/encoders.md"),
    num_images: Annotated[int, typer.Option(help="Images per timing run.")] = 32,
    repeats: Annotated[int, typer.Option(help="Interleaved repetitions (medians are reported).")] = 5,
    threads: Annotated[int, typer.Option(help="Torch threads on both sides.")] = 2,
) -> None:
    """Time DINOv2 ViT-S/14 and CLIP ViT-B/32 extraction against torch-fidelity's own extractors."""

    def body() -> None:
        from gen_eval.bench.encoders_bench import run_encoder_benchmark

        typer.echo(run_encoder_benchmark(out, num_images=num_images, repeats=repeats, threads=threads))
        typer.echo(f"written to {out}")

    _guard(body)


@bench_app.command("parity", epilog="[bold]Example[/bold]\n\n  gen-eval bench parity --num-images 100")
def bench_parity(
    out: Annotated[Path, typer.Option(help="Markdown report to write.")] = Path("reports/parity.md"),
    num_images: Annotated[int, typer.Option(help="Images per set.")] = 100,
) -> None:
    """Compare every metric with torch-fidelity (and prdc) on the same images and weights."""

    def body() -> None:
        from gen_eval.bench.parity import tolerance, write_parity_report

        rows = write_parity_report(out, num_images=num_images)
        for row in rows:
            typer.echo(
                f"{row['metric']:>10}: ours {row['ours']:.8g}  {row['tool']} {row['theirs']:.8g}  "
                f"rel. diff {row['relative_difference']:.1e}"
            )
        typer.echo(f"written to {out}")
        if any(row["relative_difference"] > tolerance(row) for row in rows):
            raise GenEvalError(f"parity outside its bound: see {out}")

    _guard(body)


@bench_app.command("scale", epilog="[bold]Example[/bold]\n\n  gen-eval bench scale --memory-images 50000")
def bench_scale(
    out: Annotated[Path, typer.Option(help="Markdown report to write.")] = Path("reports/scale.md"),
    num_images: Annotated[int, typer.Option(help="Images per set for the 1 vs 2 process timing.")] = 400,
    memory_images: Annotated[int, typer.Option(help="Images (and points) for the memory peaks.")] = 50_000,
) -> None:
    """Time torchrun with 1 vs 2 processes and measure peak memory on 50,000 images and points."""

    def body() -> None:
        from gen_eval.bench.scale import run_scale_benchmark

        typer.echo(run_scale_benchmark(out, num_images=num_images, memory_images=memory_images))
        typer.echo(f"written to {out}")

    _guard(body)


@bench_app.command("robustness", epilog="[bold]Example[/bold]\n\n  gen-eval bench robustness")
def bench_robustness(
    out: Annotated[Path, typer.Option(help="Markdown report to write.")] = Path("reports/robustness.md"),
) -> None:
    """Score the hostile corpus, inject write faults, kill a scoring run; count what went right."""

    def body() -> None:
        from gen_eval.bench.robustness import run_robustness

        report = run_robustness(out)
        correct = sum(check.ok for check in report.checks)
        for check in report.checks:
            if not check.ok:
                typer.echo(f"WRONG {check.part}/{check.case}: expected {check.expected}; got {check.got}")
        typer.echo(
            f"{len(report.checks)} cases, {correct} handled as expected, data lost: {report.data_lost}, "
            f"escapes: {report.escapes}, hangs: {report.hangs}, tracebacks: {report.tracebacks}; written to {out}"
        )
        if (
            correct < len(report.checks)
            or report.data_lost
            or report.escapes
            or report.hangs
            or report.tracebacks
        ):
            raise GenEvalError(f"robustness cases failed: see {out}")

    _guard(body)


@bench_app.command(
    "disentanglement", epilog="[bold]Example[/bold]\n\n  gen-eval bench disentanglement --num-train 2000"
)
def bench_disentanglement(
    out: Annotated[Path, typer.Option(help="Markdown report to write.")] = Path("reports/disentanglement.md"),
    num_train: Annotated[
        int, typer.Option(help="Training points per metric (evaluation points: half as many).")
    ] = 10_000,
    dci_jobs: Annotated[int, typer.Option(help="Processes for DCI's per-factor classifiers.")] = 2,
    dci_estimators: Annotated[int, typer.Option(help="Boosting stages of DCI's classifiers.")] = 100,
) -> None:
    """Time the six disentanglement metrics on planted encoders and check their known scores."""

    def body() -> None:
        from gen_eval.bench.disentanglement import run_disentanglement_benchmark

        options = {"dci": {"n_jobs": dci_jobs, "n_estimators": dci_estimators}}
        text, failed = run_disentanglement_benchmark(out, num_train=num_train, options=options)
        typer.echo(text)
        typer.echo(f"written to {out}")
        if failed:
            raise GenEvalError(f"{failed} planted expectation(s) do not hold: see {out}")

    _guard(body)


@bench_app.command(
    "coverage", epilog="[bold]Example[/bold]\n\n  gen-eval bench coverage --quick --out /tmp/coverage.md"
)
def bench_coverage(
    out: Annotated[Path, typer.Option(help="Markdown report to write.")] = Path("reports/coverage.md"),
    repeats: Annotated[int, typer.Option(help="Repeated experiments per metric and case.")] = 200,
    num_samples: Annotated[int, typer.Option(help="Samples per set (N = M).")] = 500,
    dim: Annotated[int, typer.Option(help="Dimension of the Gaussian features.")] = 16,
    mc_draws: Annotated[int, typer.Option(help="Draws for the Monte Carlo expected value at N.")] = 500,
    num_resamples: Annotated[int, typer.Option(help="Bootstrap resamples per interval.")] = 100,
    metrics: Annotated[
        str | None,
        typer.Option(help="Comma-separated registry names (default: every metric with an interval)."),
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="Toy sizes (seconds): N = 200, 8-d, 30 repeats.")
    ] = False,
) -> None:
    """Coverage of each metric's 95% interval: of the large-sample value and of the expected value at N."""

    def body() -> None:
        from gen_eval.bench.coverage import Sizes, run_coverage_benchmark
        from gen_eval.metrics import resolve_metric_name

        sizes = Sizes.quick() if quick else Sizes(num_samples, dim, repeats, mc_draws, num_resamples)
        chosen = None if metrics is None else tuple(resolve_metric_name(m) for m in metrics.split(","))
        _, rows = run_coverage_benchmark(out, sizes, chosen)
        for row in rows:
            typer.echo(
                f"{row['metric']:>12} {row['case']:<11} covers large-sample {row['coverage_large_sample']:.2f}, "
                f"expected at N {row['coverage_expected']:.2f} (R={row['repeats']})"
            )
        typer.echo(f"written to {out}")

    _guard(body)


@bench_app.command("likelihood", epilog="[bold]Example[/bold]\n\n  gen-eval bench likelihood")
def bench_likelihood(
    out: Annotated[Path, typer.Option(help="Markdown report to write.")] = Path("reports/likelihood.md"),
    full: Annotated[
        bool, typer.Option(help="Also run 360 images x 16 chains x 1,000 steps (else extrapolated).")
    ] = False,
    method_examples: Annotated[int, typer.Option(min=2, help="Test images for the table of methods.")] = 32,
) -> None:
    """Time AIS on the shipped VAE (cost against examples x chains x steps) and tabulate every method."""

    def body() -> None:
        from gen_eval.bench.likelihood import run_likelihood_benchmark

        summary = run_likelihood_benchmark(out, full=full, method_examples=method_examples)
        typer.echo(f"AIS target predicted: {summary['predicted_seconds'] / 60:.1f} minutes")
        typer.echo(f"written to {out}")

    _guard(body)


@bench_app.command(
    "pointclouds",
    epilog="[bold]Examples[/bold]\n\n  gen-eval --threads 2 bench pointclouds\n\n"
    "  gen-eval --threads 2 bench pointclouds --full   (1,000 x 1,000 clouds: 1,999,000 Chamfer pairs, hours on 2 shared cores)",
)
def bench_pointclouds(
    out: Annotated[Path, typer.Option(help="Markdown report to write.")] = Path("reports/pointclouds.md"),
    clouds: Annotated[
        int | None,
        typer.Option(
            "--clouds",
            "--num-clouds",
            min=4,
            help="Clouds per set (default 64, extrapolated to 1,000; with --full, 1,000).",
        ),
    ] = None,
    points: Annotated[int, typer.Option(min=8, help="Points per cloud.")] = 2048,
    error_pairs: Annotated[int, typer.Option(min=1, help="Pairs for the EMD approximation's error.")] = 10,
    full: Annotated[
        bool,
        typer.Option(
            help="Only the full-size run (its own report section, rewritten after each step; the rest kept)."
        ),
    ] = False,
    device: Annotated[str, typer.Option(help="Where the Chamfer products run: cpu or cuda.")] = "cpu",
    chamfer: Annotated[str, typer.Option(help="Chamfer path: auto, gemm or kdtree.")] = "auto",
) -> None:
    """Time MMD/COV/1-NNA with CD against the distances alone, the EMD path, and the EMD approximation's error."""

    def body() -> None:
        from gen_eval.metrics.pointclouds_distances import chamfer_path

        chamfer_path(device, chamfer)  # a bad --chamfer or --device fails before any work
        if full:
            from gen_eval.bench.pointclouds_full import run_full_protocol

            result = run_full_protocol(
                out, clouds=clouds or 1000, points=points, device=device, method=chamfer
            )
            total = sum(s["wall_seconds"] for s in result["steps"])
            typer.echo(f"{result['clouds']:,} x {result['clouds']:,} CD protocol: {total / 60:.1f} minutes")
        else:
            from gen_eval.bench.pointclouds import run_pointclouds_benchmark

            summary = run_pointclouds_benchmark(
                out,
                clouds=clouds or 64,
                points=points,
                error_pairs=error_pairs,
                device=device,
                method=chamfer,
            )
            typer.echo(f"1,000 x 1,000 CD protocol: {summary['target_metric_seconds'] / 60:.1f} minutes")
        typer.echo(f"written to {out}")

    _guard(body)


@bench_app.command("text", epilog="[bold]Example[/bold]\n\n  gen-eval --threads 2 bench text")
def bench_text(
    out: Annotated[Path, typer.Option(help="Markdown report to write.")] = Path("reports/text.md"),
    count: Annotated[int, typer.Option(min=100, help="Strings per set (generated and reference).")] = 10_000,
    num_resamples: Annotated[int, typer.Option(min=0, help="Bootstrap resamples per metric.")] = 100,
) -> None:
    """Seconds for every sample-based text metric (and the collapse check) on COUNT vs COUNT names."""

    def body() -> None:
        from gen_eval.bench.text import run_text_benchmark

        summary = run_text_benchmark(out, count=count, num_resamples=num_resamples)
        typer.echo(
            f"{summary['count']:,} vs {summary['count']:,} strings: {summary['total_seconds']:.1f} s in all"
        )
        typer.echo(f"written to {out}")

    _guard(body)


@bench_app.command("paired", epilog="[bold]Example[/bold]\n\n  gen-eval --threads 2 bench paired")
def bench_paired(
    out: Annotated[Path, typer.Option(help="Markdown report to write.")] = Path("reports/paired.md"),
    num_resamples: Annotated[int, typer.Option(min=0, help="Bootstrap resamples per metric.")] = 100,
) -> None:
    """Seconds for every paired metric (PSNR, SSIM, LPIPS, consistency, diversity) on 10,000 pairs; CAS on 5,000 images."""

    def body() -> None:
        from gen_eval.bench.paired import run_paired_benchmark

        summary = run_paired_benchmark(out, num_resamples=num_resamples)
        typer.echo(f"{summary['pairs']:,} pairs: {summary['metric_seconds']:.1f} s for every paired metric")
        typer.echo(f"cas on {summary['cas']['images']:,} labelled images: {summary['cas']['seconds']:.1f} s")
        typer.echo(f"written to {out}")

    _guard(body)


@bench_app.command("text-models", epilog="[bold]Example[/bold]\n\n  gen-eval bench text-models")
def bench_text_models(
    out: Annotated[Path, typer.Option(help="Markdown report to write.")] = Path("reports/text_models.md"),
    num_resamples: Annotated[int, typer.Option(min=0, help="Bootstrap resamples of the test strings.")] = 200,
) -> None:
    """Bits/char (test split) and exact KL to the truth of every shipped text model: the ladder."""

    def body() -> None:
        from gen_eval.bench.text_models import run_text_models_benchmark

        results = run_text_models_benchmark(out, num_resamples=num_resamples)
        for dataset, rows in results.items():
            ladder = " < ".join(f"{r['name']} {r['bits_per_char']:.3f}" for r in rows)
            typer.echo(f"{dataset} bits/char: {ladder}")
        typer.echo(f"written to {out}")

    _guard(body)
