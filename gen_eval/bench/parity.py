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
from gen_eval.bench.fid_reference import fid_eigvals_rank_limited  # re-exported: tests import it here
from gen_eval.bench.parity_knn import knn_section
from gen_eval.bench.parity_modern import modern_section

TOLERANCE = 1e-4
# torch-fidelity's FID adds square roots of noise eigenvalues when N <= D (see
# fid_eigvals_rank_limited); its raw value is held to this looser bound, the rank-limited one to TOLERANCE.
RAW_FID_TOLERANCE = 1e-3


# k-NN rows compare exact counts (fractions of 1,000 samples): any difference is a real disagreement.
KNN_TOLERANCE = 1e-9


def tolerance(row: dict[str, Any]) -> float:
    """The bound a parity row must meet."""
    if "bound" in row:
        return row["bound"]
    return RAW_FID_TOLERANCE if row["metric"] == "fid" and row["tool"] == "torch-fidelity" else TOLERANCE


# Where gen-eval and its peers choose differently, the choice and how to get the other one.
CONVENTIONS = [
    "## Conventions",
    "",
    "| what | gen-eval's default | peers | the other choice |",
    "| --- | --- | --- | --- |",
    "| k-NN ball membership (precision, recall, density, coverage) | closed balls, d <= radius | torch-fidelity: closed; prdc: open (d < radius) | `-o pr_ball=open`, `-o dc_ball=open` |",
    "| k-NN distances | both sets centred on one common grid-rounded point, then float32 products (error bound in `metrics/knn.py`) | torch-fidelity: float32 `cdist` uncentred; prdc: float64 uncentred | none needed: translation-invariant |",
    "| FID interval | FID at this N, generated set resampled, reference fixed (see [coverage.md](coverage.md)) | torch-fidelity, clean-fid: no interval | `fd_inf` for the large-sample value |",
    "| FD-infinity subset sizes | dgm-eval: 15 sizes from min(5000, N/10) to N, repeats kept | Chong & Forsyth: 5,000 to 50,000 (the same rule at N = 50,000) | `-o fd_inf_convention=legacy` (N/10, no cap, repeats dropped) |",
    "| FD-infinity interval | bootstrap of FID_N plus the fit's OLS variance | dgm-eval: none; Chong & Forsyth: none | `-o fd_inf_interval=refit` or `ols` |",
    "| MS-SSIM | torchmetrics: reflection padding, channel mean before the product across scales | pytorch-msssim: valid windows only, per-channel product | `-o ms_ssim_convention=pytorch_msssim` |",
    "| KID interval | none below 10 generated samples (a warning says why) | torch-fidelity: std over subsets | — |",
    "| Inception's resize to 299x299 | legacy-tf: torch-fidelity's TF-1.x bilinear, then (x - 128) / 128 | clean-fid: PIL bicubic in float; pytorch-fid: torch bilinear, 2x - 1 | `--resize-mode clean` or `legacy-pytorch` |",
    "| DINOv2/CLIP resize to 224x224 | bicubic, antialiased, on [0, 255] (EDM2's FD_DINOv2) | torch-fidelity: its TF-1.x bilinear | `--resize-mode legacy-tf` |",
    "",
]


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
        extractor = InceptionExtractor(
            weights_path=weights, channels_last=ours.manifest["options"]["channels_last"]
        )
        features = {
            role: extract_features(
                open_source(folder), extractor, batch_size=8, cache=cache, show_progress=False
            )
            for role, folder in (("generated", gen_dir), ("reference", ref_dir))
        }
        assert all(f.from_cache for f in features.values())
        gen_np = features["generated"].tensors["features"].double().numpy()
        ref_np = features["reference"].tensors["features"].double().numpy()
        dc = prdc.compute_prdc(real_features=ref_np, fake_features=gen_np, nearest_k=5)
        fid_exact = fid_eigvals_rank_limited(gen_np, ref_np)
    rows = []
    for name, reference in theirs.items():
        rows.append(
            {"metric": name, "ours": ours.metrics[name].value, "theirs": reference, "tool": "torch-fidelity"}
        )
    rows.append(
        {
            "metric": "fid",
            "ours": ours.metrics["fid"].value,
            "theirs": fid_exact,
            "tool": "torch-fidelity's eigvals, rank-limited (see note)",
        }
    )
    for name in ("density", "coverage"):
        rows.append(
            {"metric": name, "ours": ours.metrics[name].value, "theirs": float(dc[name]), "tool": "prdc"}
        )
    for row in rows:
        row["relative_difference"] = relative_difference(row["ours"], row["theirs"])
    return rows


def write_parity_report(out: Path, num_images: int = 100, size: int = 32) -> list[dict[str, Any]]:
    """Run :func:`compare_with_torch_fidelity` and the MS-SSIM rows, and write the markdown report to ``out``."""
    from gen_eval.bench.parity_inception import inception_mode_rows
    from gen_eval.bench.parity_msssim import msssim_rows

    rows = compare_with_torch_fidelity(num_images=num_images, size=size)
    from gen_eval.bench.parity_encoders import encoder_rows

    with tempfile.TemporaryDirectory() as tmp:
        extra_rows, msssim_notes = msssim_rows(Path(tmp))
        mode_rows, mode_notes = inception_mode_rows(Path(tmp), size=size)
        extra_rows += encoder_rows(Path(tmp))  # FD_DINOv2's pipeline and FD on CLIP (issue 25)
    extra_rows += mode_rows
    for row in extra_rows:
        row["relative_difference"] = relative_difference(row["ours"], row["theirs"])
    rows += extra_rows
    knn_lines, knn_rows = knn_section(KNN_TOLERANCE)
    for row in knn_rows:  # exact counts: held to an absolute bound, checked like the others
        row["relative_difference"] = row["difference"]
        row["bound"] = KNN_TOLERANCE
    modern_lines, modern_rows = modern_section()  # issue 25's metrics, each row with its bound
    table = markdown_table(
        ["metric", "gen-eval", "reference", "reference tool", "relative difference", "bound", "within"],
        [
            [
                r["metric"],
                f"{r['ours']:.8g}",
                f"{r['theirs']:.8g}",
                r["tool"],
                f"{r['relative_difference']:.2e}",
                f"{tolerance(r):g}",
                "yes" if r["relative_difference"] <= tolerance(r) else "**no**",
            ]
            for r in rows
        ],
    )
    text = "\n".join(
        [
            "# Parity with torch-fidelity, prdc, torchmetrics and pytorch-msssim",
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
            "Note on FID. With N <= 2048 samples the covariances have rank N - 1 and gen-eval uses the exact",
            "low-rank identity tr sqrt(S1 S2) = ||A B^T||_* (nuclear norm). torch-fidelity takes numpy's eigvals of",
            "the 2048 x 2048 product and adds the square roots of all of them, including ~2,000 eigenvalues that are",
            "rounding noise (about 1e-16 of the largest); those add a small positive amount to the trace and lower",
            "its FID. The second FID row evaluates torch-fidelity's own eigvals on the same features but keeps only",
            "the N - 1 eigenvalues of the true rank: it agrees with gen-eval to ~1e-8. The raw difference grows with",
            "the scale of the features (random weights give large ones); it is held to 1e-3 here.",
            "",
            "FD_DINOv2 and CLIP rows: random official-layout ViT weights loaded by both tools, torch-fidelity's",
            "resize (`--resize-mode legacy-tf`); the DINOv2 row runs ViT-S/14 through the code ViT-L/14 takes",
            "(`fd_dinov2` is FID's formula on `dinov2-vit-l14` features; gen_eval/bench/parity_encoders.py says",
            "why the large network is not run here). EDM2's own convention (bicubic, antialiased) has no",
            "installable peer: `tests/test_features_encoders.py` checks it against the formula.",
            "",
            *(line for note in msssim_notes for line in (note, "")),
            *mode_notes,
            "",
            *knn_lines,
            *modern_lines,
            *CONVENTIONS,
            *environment_lines(),
            "",
            "## What the intervals cover",
            "",
            "This page checks point values. What each 95% interval covers is measured in",
            "[coverage.md](coverage.md) (`gen-eval bench coverage`, repeated experiments with known truth): FID's",
            "interval covers FID at the run's sample size, not the large-sample FID (FID is biased upward by",
            "O(1/N)), so compare FIDs at equal N or use `fd_inf`; KID, MS-SSIM and bits/dim are unbiased; IS,",
            "precision, recall, density and coverage are values at the run's N (and splits, k).",
            "",
        ]
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return rows + knn_rows + modern_rows
