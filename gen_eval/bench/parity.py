"""``gen-eval bench parity``: our metrics against torch-fidelity (and prdc) on the same inputs.

Both tools read the same two folders of PNG images with the same Inception-v3 weights:
a random but informative state dict made here (the real weights cannot be downloaded in
this environment), so the comparison exercises every step (decoding, resizing, the
network, the metric maths) without the official file. With the official weights the
same command compares the published configuration.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from gen_eval.bench.common import environment_lines, markdown_table, relative_difference, write_png_folder

TOLERANCE = 1e-4


def _torch_fidelity_metrics(
    gen_dir: Path, ref_dir: Path, weights: Path, seed: int, n: int
) -> dict[str, float]:
    import torch_fidelity

    raw = torch_fidelity.calculate_metrics(
        input1=str(gen_dir),
        input2=str(ref_dir),
        cuda=False,
        isc=True,
        fid=True,
        kid=True,
        prc=True,
        kid_subset_size=n,
        rng_seed=seed,
        # torch-fidelity 0.4 defaults precision/recall to VGG16 features; compare like with like.
        feature_extractor="inception-v3-compat",
        feature_layer_prc="2048",
        feature_extractor_weights_path=str(weights),
        cache=False,
        verbose=False,
        save_cpu_ram=True,
    )
    return {
        "fid": raw["frechet_inception_distance"],
        "kid": raw["kernel_inception_distance_mean"],
        "is": raw["inception_score_mean"],
        "precision": raw["precision"],
        "recall": raw["recall"],
    }


def compare_with_torch_fidelity(
    num_images: int = 100, size: int = 32, seed: int = 2020, workdir: Path | None = None
) -> list[dict[str, Any]]:
    """Rows (metric, ours, reference implementation, relative difference) on two generated image sets.

    Parameters
    ----------
    num_images : int
        Images per set (the reference set has the same count).
    size : int
        Image height and width.
    seed : int
        torch-fidelity's ``rng_seed`` and our ``seed`` (KID subsets, IS shuffle).
    workdir : Path, optional
        Where to write the images and weights (a temporary folder by default).
    """
    import prdc

    from gen_eval.bench.inception_weights import make_informative_inception_weights, varied_images
    from gen_eval.evaluation import evaluate
    from gen_eval.features.cache import FeatureCache
    from gen_eval.features.extract import extract_features
    from gen_eval.features.inception import InceptionExtractor
    from gen_eval.sources import open_source

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(workdir or tmp)
        weights = make_informative_inception_weights(root / "inception-random.pth", seed=0)
        gen_dir = write_png_folder(varied_images(num_images, size, seed=1).numpy(), root / "generated")
        ref_dir = write_png_folder(varied_images(num_images, size, seed=2).numpy(), root / "reference")
        cache = FeatureCache(root / "cache")
        ours = evaluate(
            gen_dir,
            ref_dir,
            features="inception",
            inception_weights=weights,
            metrics=["fid", "kid", "is", "precision_recall", "density_coverage"],
            seed=seed,
            num_resamples=0,
            metric_options={"kid_subset_size": num_images},
            cache_dir=cache.root,
        )
        theirs = _torch_fidelity_metrics(gen_dir, ref_dir, weights, seed, num_images)
        # The same features our metrics saw, straight from the cache evaluate just filled.
        extractor = InceptionExtractor(weights_path=weights)
        features = {
            role: extract_features(
                open_source(folder), extractor, batch_size=8, cache=cache, show_progress=False
            )
            for role, folder in (("generated", gen_dir), ("reference", ref_dir))
        }
        assert all(f.from_cache for f in features.values())
        dc = prdc.compute_prdc(
            real_features=features["reference"].tensors["features"].numpy(),
            fake_features=features["generated"].tensors["features"].numpy(),
            nearest_k=5,
        )
    rows = []
    for name, reference in theirs.items():
        rows.append(
            {"metric": name, "ours": ours.metrics[name].value, "theirs": reference, "tool": "torch-fidelity"}
        )
    for name in ("density", "coverage"):
        rows.append(
            {"metric": name, "ours": ours.metrics[name].value, "theirs": float(dc[name]), "tool": "prdc"}
        )
    for row in rows:
        row["relative_difference"] = relative_difference(row["ours"], row["theirs"])
    return rows


def write_parity_report(out: Path, num_images: int = 100, size: int = 32) -> list[dict[str, Any]]:
    """Run :func:`compare_with_torch_fidelity` and write the markdown report to ``out``."""
    rows = compare_with_torch_fidelity(num_images=num_images, size=size)
    table = markdown_table(
        ["metric", "gen-eval", "reference", "reference tool", "relative difference", f"within {TOLERANCE:g}"],
        [
            [
                r["metric"],
                f"{r['ours']:.8g}",
                f"{r['theirs']:.8g}",
                r["tool"],
                f"{r['relative_difference']:.2e}",
                "yes" if r["relative_difference"] <= TOLERANCE else "**no**",
            ]
            for r in rows
        ],
    )
    text = "\n".join(
        [
            "# Parity with torch-fidelity and prdc",
            "",
            "Regenerate with `gen-eval bench parity` (this file is written by it).",
            "",
            f"Inputs: two sets of {num_images} procedurally generated {size}x{size} RGB PNG images, read from folders",
            "by both tools; Inception-v3 with random but informative weights (He-normal convolutions, BatchNorm",
            "statistics fitted on varied images) saved to one file that both tools load. KID uses subset size = N",
            "(deterministic) and both tools use seed 2020 (KID subsets, IS shuffle). Precision/recall: k = 3;",
            "density/coverage (prdc, on the same features): k = 5.",
            "",
            table,
            "",
            *environment_lines(),
            "",
        ]
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return rows
