"""``gen-eval stats``: write a reference's feature statistics in pytorch-fid's, ADM's, EDM2's or gen-eval's format."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gen_eval.cli.common import _guard, app
from gen_eval.features import RESIZE_MODE_HELP
from gen_eval.schemas import to_json
from gen_eval.sources.resize import RESIZE_METHOD_HELP

if TYPE_CHECKING:
    import numpy as np

    from gen_eval.sources import Source

STATS_EXAMPLES = """
[bold]Examples[/bold]

  gen-eval stats real_images/ --features inception --format pytorch-fid --out real_stats.npz
  gen-eval stats digits:test --format gen-eval --out digits_test_stats.npz
  gen-eval stats real_images/ --features inception --format edm2 --out real_ref.pkl --json
  gen-eval stats real_images/ --features inception --format adm --out VIRTUAL_ref.npz
  gen-eval stats real_images/ --features inception --resize-mode clean --out real_clean.npz
  gen-eval stats train_images/ --features dinov2-vit-l14 --weights dinov2_vitl14_pretrain.pth --out train_dinov2.npz
  gen-eval evaluate samples/ --reference real_stats.npz --reference-features inception
"""


@app.command(epilog=STATS_EXAMPLES)
def stats(
    source: Annotated[
        str, typer.Argument(help="Reference samples: folder, .npz/.npy, file.py:factory, or dataset[:split].")
    ],
    out: Annotated[Path, typer.Option(help="The file to write (.npz; .pkl for --format edm2).")],
    format: Annotated[
        str,
        typer.Option(
            "--format",
            help="gen-eval (mu, sigma, count and provenance), pytorch-fid (mu, sigma; clean-fid reads it too), "
            "edm2 (.pkl dict) or adm (the guided-diffusion evaluator's batch: mu, sigma and the spatial "
            "mu_s, sigma_s for sFID; Inception only).",
        ),
    ] = "gen-eval",
    features: Annotated[
        str,
        typer.Option(help="Feature extractor (see `gen-eval features`) or auto (the data kind's default)."),
    ] = "auto",
    num_samples: Annotated[int | None, typer.Option(help="Use the first N samples (or draw N).")] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Samples per forward pass (auto by default).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed for a generator source.")] = 0,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Feature cache (default: $GEN_EVAL_CACHE or ~/.cache/gen-eval).")
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Neither read nor write cached features.")
    ] = False,
    trust_code: Annotated[bool, typer.Option(help="Allow running a Python generator file.")] = False,
    inception_weights: Annotated[Path | None, typer.Option(help="Local Inception-v3 weights (.pth).")] = None,
    weights: Annotated[
        Path | None, typer.Option(help="Weights file of a dinov2-* or clip-* extractor (else its env var).")
    ] = None,
    resize_method: Annotated[str, typer.Option(help=RESIZE_METHOD_HELP)] = "bicubic",
    resize_mode: Annotated[str | None, typer.Option(help=RESIZE_MODE_HELP)] = None,
    adm_images: Annotated[
        bool,
        typer.Option(
            "--adm-images",
            help="--format adm: also store the images as arr_0 (NHWC uint8), as ADM's batches do.",
        ),
    ] = False,
    key: Annotated[str | None, typer.Option(help="Array name inside an .npz (default arr_0).")] = None,
    value_range: Annotated[str, typer.Option(help="Float arrays: auto, 0,1, -1,1 or 0,255.")] = "auto",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a line.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Write the feature mean and covariance of SOURCE, for `evaluate --reference FILE` or other tools."""

    def body() -> None:
        from gen_eval.errors import GenEvalError
        from gen_eval.evaluation_setup import batch_size_for, resolve_device
        from gen_eval.features import (
            check_resize_mode_name,
            choose_extractor,
            create_extractor,
            resize_mode_options,
        )
        from gen_eval.features.cache import FeatureCache, default_cache_dir
        from gen_eval.features.statistics import compute_statistics
        from gen_eval.sources import open_source
        from gen_eval.sources.resize import check_method
        from gen_eval.sources.statistics import check_format, write_statistics

        # Everything the user typed is checked before a sample is read: a typo must not cost a pass.
        check_format(format, out)
        if out.exists() and not overwrite:
            raise GenEvalError(f"{out}: exists; pass --overwrite to replace it, or choose another --out")
        check_method(resize_method)
        check_resize_mode_name(resize_mode)
        if adm_images and format != "adm":
            raise GenEvalError(
                f"--adm-images: only --format adm stores images; drop it for --format {format}"
            )
        chosen_device = resolve_device(device)
        source_set = open_source(
            source,
            num_samples=num_samples,
            seed=seed,
            trust_code=trust_code,
            key=key,
            value_range=value_range,
        )
        name = choose_extractor(source_set, source_set) if features == "auto" else features
        if format == "adm" and name != "inception":
            raise GenEvalError(
                f"--format adm holds Inception's statistics (and its spatial ones for sFID); use --features "
                f"inception, or --format gen-eval for {name} features"
            )
        options: dict[str, object] = resize_mode_options(name, resize_mode)
        if name == "inception":  # ADM's files hold the spatial statistics sFID reads
            options |= {"weights_path": inception_weights, "spatial": format == "adm"}
        if weights is not None and name != "inception":
            options["weights_path"] = weights
        extractor = create_extractor(name, device=chosen_device, **options)
        size = batch_size_for(name, chosen_device, batch_size)
        if size < 1:
            raise GenEvalError(f"--batch-size must be at least 1, got {size}")
        cache = FeatureCache(None if no_cache else (cache_dir or default_cache_dir()))
        computed = compute_statistics(
            source_set,
            extractor,
            batch_size=size,
            cache=cache,
            show_progress=not quiet and not as_json,
            resize_method=resize_method,
        )
        images = _images(source_set, size) if adm_images else None
        write_statistics(computed, out, format, images)
        document = {
            "file": str(out),
            "format": format,
            "source": source_set.spec,
            "count": computed.count,
            "dimensions": int(computed.mu.shape[0]),
            "extractor": computed.extractor,
            "weights_sha256": computed.weights_sha256,
            # pytorch-fid's file has no room for provenance: the reader must state it.
            "provenance_recorded": format in ("gen-eval", "edm2"),
            "spatial_dimensions": len(computed.extra["mu_s"]) if "mu_s" in computed.extra else None,
            "images_stored": images is not None,
        }
        if as_json:
            typer.echo(to_json(document))
        else:
            said = (
                "recorded in the file"
                if document["provenance_recorded"]
                else (f"not recorded: read it back with --reference-features {computed.extractor}")
            )
            typer.echo(
                f"wrote {out}: {format} statistics of {computed.count:,} samples of {source_set.spec}, "
                f"{document['dimensions']}-d {computed.extractor} features (extractor {said})"
            )

    _guard(body)


def _images(source: Source, batch_size: int) -> np.ndarray:
    """ADM's ``arr_0``: the source's images as one uint8 (N, H, W, 3) array (grey repeated to RGB)."""
    import numpy as np

    from gen_eval.errors import GenEvalError

    if source.data_kind != "image":
        raise GenEvalError(f"--adm-images: {source.spec} holds no images")
    parts = []
    for batch in source.batches(batch_size):
        data = batch.data.numpy()
        parts.append(np.repeat(data, 3, axis=1) if data.shape[1] == 1 else data)
    return np.ascontiguousarray(np.concatenate(parts).transpose(0, 2, 3, 1))
