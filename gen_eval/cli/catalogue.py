"""``gen-eval datasets | features | metrics | train-features``: what is available here, and retraining it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from gen_eval.cli.common import _guard, _print_table, app
from gen_eval.errors import GenEvalError
from gen_eval.schemas import to_json


@app.command(epilog="[bold]Example[/bold]\n\n  gen-eval datasets")
def datasets(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the embedded datasets and their splits (nothing is downloaded)."""

    def body() -> None:
        from gen_eval.datasets import dataset_names, get_dataset
        from gen_eval.datasets.tasks import task_names

        rows = []
        for name in dataset_names():
            info = get_dataset(name)
            sizes = {split: info.size(split) for split in info.splits}
            rows.append(
                {
                    "name": name,
                    "kind": info.data_kind,
                    "splits": sizes,
                    "default": info.default_split,
                    "description": info.description,
                }
            )
        if as_json:
            typer.echo(to_json(rows))
            return
        _print_table(
            "Embedded datasets",
            ["name", "kind", "splits (size)", "description"],
            [
                [
                    r["name"],
                    r["kind"],
                    ", ".join(
                        f"{s}{'*' if s == r['default'] else ''} ({n:,})" for s, n in r["splits"].items()
                    ),
                    r["description"],
                ]
                for r in rows
            ],
            caption="* default split; use NAME:SPLIT, e.g. digits:test. Paired tasks on mnist (targets with "
            f"their inputs; test split unless named): {', '.join(f'task:{t}' for t in task_names())}",
        )

    _guard(body)


@app.command(
    epilog="[bold]Example[/bold]\n\n  gen-eval features --inception-weights ~/weights/pt_inception.pth"
)
def features(
    inception_weights: Annotated[Path | None, typer.Option(help="Check this Inception weights file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the feature extractors and whether their weights are available here."""

    def body() -> None:
        from gen_eval.features import extractor_status

        rows = extractor_status(weights_path=inception_weights)
        if as_json:
            typer.echo(to_json(rows))
            return
        _print_table(
            "Feature extractors",
            ["name", "input", "available", "description", "weights"],
            [
                [
                    r["name"],
                    r["input"],
                    "yes" if r["available"] else "[red]no[/red]",
                    r["description"],
                    r["detail"],
                ]
                for r in rows
            ],
        )

    _guard(body)


@app.command(
    "train-features",
    epilog="[bold]Examples[/bold]\n\n  gen-eval train-features digits --seed 0\n  gen-eval train-features pointnet-shapes3d"
    "\n  gen-eval train-features char-names\n  gen-eval train-features mnist",
)
def train_features(
    name: Annotated[
        str,
        typer.Argument(help="Which extractor to retrain (digits, mnist, pointnet-shapes3d or char-names)."),
    ] = "digits",
    epochs: Annotated[int | None, typer.Option(help="Training epochs (default: the shipped recipe).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Weights file (default: the shipped file).")] = None,
) -> None:
    """Retrain a bundled feature network reproducibly and write its safetensors weights."""

    def body() -> None:
        if name not in ("digits", "mnist", "pointnet-shapes3d", "char-names"):
            raise GenEvalError(
                f"train-features {name!r}: gen-eval trains only the digits, mnist, pointnet-shapes3d and "
                "char-names networks"
            )
        if name == "digits":
            from gen_eval.features.digits import DEFAULT_WEIGHTS
            from gen_eval.features.digits import retrain_digits_weights as retrain
        elif name == "mnist":
            from gen_eval.features.mnist import DEFAULT_WEIGHTS
            from gen_eval.features.mnist import retrain_mnist_weights as retrain
        elif name == "char-names":
            from gen_eval.features.char_names import DEFAULT_WEIGHTS
            from gen_eval.features.char_names import retrain_char_names as retrain
        else:
            from gen_eval.features.pointnet import DEFAULT_WEIGHTS
            from gen_eval.features.pointnet import retrain_pointnet_weights as retrain

        options: dict[str, Any] = {"seed": seed}
        if epochs is not None:
            options["epochs"] = epochs
        info = retrain(out or DEFAULT_WEIGHTS, **options)
        typer.echo(to_json(info, default=str))

    _guard(body)


@app.command(epilog="[bold]Example[/bold]\n\n  gen-eval metrics")
def metrics(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the metrics, what each needs, and which are computed by default."""

    def body() -> None:
        from gen_eval.metrics import metric_table

        rows = metric_table()
        if as_json:
            typer.echo(to_json(rows))
            return
        from gen_eval.options import option_rows

        _print_table(
            "Metrics",
            ["name", "needs", "default", "what"],
            [[r["name"], r["requires"], "yes" if r["default"] else "no", r["summary"]] for r in rows],
            caption="defaults run when their needs are met; pick others with --metrics a,b,c",
        )
        _print_table("Options (-o KEY=VALUE)", ["option", "of", "default", "what"], option_rows())

    _guard(body)
