"""The reference-model scorecard (``gen-eval scorecard`` -> ``reports/reference_models.md``).

Scores every bundled model against its test split, checks the quality bars the project promises
(likelihood bars, beating the trivial baseline, the faulty models looking faulty), and writes the
headline numbers beside the checkpoints so ``gen-eval models`` can list them.
"""

from __future__ import annotations

import json
import platform
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gen_eval.demo.leaderboard import BPD_MARKS, FLOOR, ModelScore, score_models
from gen_eval.demo.likelihood_table import likelihood_section
from gen_eval.schemas import to_json

# Bars on digits:test over the 17 grey levels (uniform: log2 17 = 4.09 bits/dim).
BPD_BARS = {"pixelcnn": 2.0, "vae": 2.2, "realnvp": 2.4, "gmm": 2.7}
SCORES_FILE = "scores.json"


def _checkpoint_dir() -> Path:
    from reference_models import CHECKPOINT_DIR

    return CHECKPOINT_DIR


def _config(name: str) -> dict[str, Any]:
    path = _checkpoint_dir() / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def model_rows() -> list[dict[str, Any]]:
    """What ``gen-eval models`` shows: registry, checkpoint size, capabilities and headline scores.

    Returns
    -------
    list of dict
        One row per registered model. Numbers are JSON numbers: ``size_bytes`` (None when no
        checkpoint is shipped), and ``fid`` / ``bits_per_dim`` as ``{"value", "kind"}`` objects
        (kind "estimate", "exact" or "bound", as in a run's metrics.json) or None when not scored.
    """
    from reference_models import MODELS, load_model
    from reference_models.protocol import capabilities

    scores_path = _checkpoint_dir() / SCORES_FILE
    scores = json.loads(scores_path.read_text()) if scores_path.is_file() else {}
    rows = []
    for name, entry in MODELS.items():
        shipped = entry.checkpoint.is_file()
        model = load_model(name) if shipped else None
        # Paired models and translators answer inputs (translate) and have no sample().
        exposes = (
            [*(["sample"] if callable(getattr(model, "sample", None)) else []), *capabilities(model)]
            if shipped
            else []
        )
        headline = scores.get(name, {})
        bpd = headline.get("bits_per_dim")
        rows.append(
            {
                "name": name,
                "family": entry.family,
                "dataset": entry.dataset,
                "size_bytes": entry.checkpoint.stat().st_size if shipped else None,
                "exposes": exposes,
                "fid": {"value": headline["fid"], "kind": "estimate"} if "fid" in headline else None,
                # Rows use metrics.json's vocabulary; scores.json written before bpd_kind has only the flag.
                "bits_per_dim": None
                if bpd is None
                else {
                    "value": bpd,
                    "kind": headline.get("bpd_kind") or ("bound" if headline.get("bpd_bound") else "exact"),
                },
                "faulty": entry.faulty,
                "train_seconds": _config(name).get("train_seconds"),
            }
        )
    return rows


def format_headline(entry: dict[str, Any] | None, spec: str, marks: dict[str, str] | None = None) -> str:
    """``entry`` (a ``{"value", "kind"}`` object or None) as table text: ``≤ 2.117`` for a bound, - if None.

    ``marks`` maps kinds to their sign (default: only bounds marked); bits/dim columns pass
    ``BPD_MARKS``, where an estimate (AIS) shows as ``≈ 2.23``.
    """
    if entry is None:
        return "-"
    mark = (marks or {"bound": "≤"}).get(entry["kind"])
    return (f"{mark} " if mark else "") + format(entry["value"], spec)


def _fmt(score: ModelScore, metric: str, digits: int = 3) -> str:
    entry = score.metrics.get(metric)
    if entry is None:
        return "-"
    text = f"{entry['value']:.{digits}f}"
    if entry.get("interval"):
        low, high = entry["interval"]
        text += f" [{low:.{digits}f}, {high:.{digits}f}]"
    mark = BPD_MARKS.get(entry.get("kind", "")) if metric == "bits_per_dim" else None
    return ("≤ " if entry.get("kind") == "bound" else f"{mark} " if mark else "") + text


def _bars(scores: list[ModelScore]) -> list[tuple[str, str, bool]]:
    """(what, measured, passed) for every promise the scorecard checks."""
    by_name = {s.name: s for s in scores}
    checks = []
    for name, bar in BPD_BARS.items():
        if name in by_name and "bits_per_dim" in by_name[name].metrics:
            value = by_name[name].value("bits_per_dim")
            checks.append((f"{name} bits/dim ≤ {bar}", f"{value:.3f}", value <= bar))
    if "ddpm" in by_name:
        cov = by_name["ddpm"].coverage
        checks.append(("ddpm samples cover all 10 classes", f"{cov['covered']}/10", cov["covered"] == 10))
    baseline = by_name.get("baseline")
    for score in scores:
        if baseline is None or score.name in (FLOOR, "baseline") or score.dataset != "digits":
            continue
        if score.faulty:
            cov = score.coverage
            checks.append(
                (
                    f"{score.name} visibly faulty (classes missing)",
                    f"{cov['covered']}/10",
                    cov["covered"] < 10,
                )
            )
            continue
        fid, base_fid = score.value("fid"), baseline.value("fid")
        checks.append(
            (f"{score.name} beats the baseline on FID", f"{fid:.2f} vs {base_fid:.2f}", fid < base_fid)
        )
        if "bits_per_dim" in score.metrics:
            bpd, base_bpd = score.value("bits_per_dim"), baseline.value("bits_per_dim")
            checks.append(
                (
                    f"{score.name} beats the baseline on bits/dim",
                    f"{bpd:.3f} vs {base_bpd:.3f}",
                    bpd < base_bpd,
                )
            )
    for score in scores:
        if score.faulty and score.coverage.get("kind") == "modes":
            cov = score.coverage
            checks.append(
                (
                    f"{score.name} visibly faulty (modes missing)",
                    f"{cov['covered']}/{cov['total']}",
                    cov["covered"] < cov["total"],
                )
            )
    return checks


def write_scorecard(
    out: str | Path = "reports/reference_models.md",
    runs_dir: str | Path = "runs/scorecard",
    *,
    num_samples: int = 1000,
    num_resamples: int = 100,
    show_progress: bool = True,
) -> Path:
    """Score every bundled model and write the markdown scorecard with sample grids beside it."""
    out = Path(out)
    figures = out.parent / "figures" / "reference_models"
    figures.mkdir(parents=True, exist_ok=True)
    scores = score_models(
        datasets=("digits", "ring8", "grid25"),
        out_dir=runs_dir,
        num_samples=num_samples,
        num_resamples=num_resamples,
        show_progress=show_progress,
    )
    for score in scores:
        if score.run_dir:
            shutil.copyfile(
                Path(score.run_dir) / "samples.png", figures / f"{_slug(score.name, score.dataset)}.png"
            )
    lines = [
        "# Reference-model scorecard",
        "",
        f"Regenerate with `gen-eval scorecard` (written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on "
        f"{platform.machine()}, {platform.python_version()}). Each model draws {num_samples:,} samples (seed 0) "
        "and is scored against the **test split** of its data; intervals are 95% bootstrap intervals over "
        f"{num_resamples} resamples of the generated set. FID on digits uses the bundled `digits` features "
        "(64-d), so it is not comparable with Inception FIDs. The `train split` row (the floor) scores the training "
        "images themselves: no model is expected to beat it.",
        "",
        "Likelihoods are in bits/dim over the **17 grey levels** that digits really have (the uniform model "
        "scores log2 17 = 4.09). Values marked ≤ are upper bounds: dequantised densities (log P(x) ≥ "
        "E_u log p((k+u)/17) − 64 log 17), the VAE's IWAE bound (K = 100) and the DDPM's ELBO. Values marked ≈ "
        "are annealed importance sampling estimates: `rbm_large`'s log Z (forward AIS, a stochastic lower bound "
        "on log Z, so its bits/dim errs low) and the GANs' stored AIS results (`gen-eval likelihood ref:NAME "
        "--method ais,bdmc --save`; forward AIS errs high), which are likelihoods of the GAN plus Gaussian "
        "observation noise, not of the GAN: see the note under the table.",
        "",
        "## Quality bars",
        "",
        "| check | measured | passed |",
        "| --- | --- | --- |",
    ]
    lines += [
        f"| {what} | {measured} | {'yes' if ok else '**NO**'} |" for what, measured, ok in _bars(scores)
    ]
    lines += [
        "",
        "## Digits (vs digits:test, digits features)",
        "",
        "| model | family | FID | IS | precision | recall | density | coverage | bits/dim | classes | collapse verdict | train s | size |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for score in (s for s in scores if s.dataset == "digits"):
        config = _config(score.name) if score.name != FLOOR else {}
        size = _checkpoint_dir() / f"{score.name}.safetensors"
        cov = score.coverage
        missing = f" (missing {', '.join(map(str, cov['missing']))})" if cov.get("missing") else ""
        lines.append(
            f"| {score.name}{' (faulty)' if score.faulty else ''} | {score.family} | {_fmt(score, 'fid', 2)} | "
            f"{_fmt(score, 'is', 2)} | {_fmt(score, 'precision')} | {_fmt(score, 'recall')} | "
            f"{_fmt(score, 'density')} | {_fmt(score, 'coverage')} | {_fmt(score, 'bits_per_dim')} | "
            f"{cov.get('covered', '-')}/10{missing} | {score.collapse.get('verdict', '-')} | "
            f"{config.get('train_seconds', '-')} | "
            f"{f'{size.stat().st_size / 1e3:.0f} kB' if size.is_file() else '-'} |"
        )
    labels = {
        f"{s.name}: {w}" for s in scores for w in (s.metrics.get("bits_per_dim") or {}).get("warnings", [])
    }
    lines += ([""] if labels else []) + [f"- bits/dim of {label}" for label in sorted(labels)]
    lines += [
        "",
        "## 2-D mixtures (vs the test split, identity features)",
        "",
        "Known-mode coverage follows PacGAN: a sample is high quality (HQ) within 3 std of its nearest mode; "
        "a perfect sampler has HQ = 98.9%.",
        "",
        "| model | data | FID | precision | recall | modes covered | HQ share | reverse KL | train s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for score in (s for s in scores if s.dataset in ("ring8", "grid25")):
        cov = score.coverage
        config = _config(score.name) if score.name != FLOOR else {}
        lines.append(
            f"| {score.name}{' (faulty)' if score.faulty else ''} | {score.dataset} | {_fmt(score, 'fid', 4)} | "
            f"{_fmt(score, 'precision')} | {_fmt(score, 'recall')} | {cov['covered']}/{cov['total']} | "
            f"{cov['hq_share']:.1%} | {cov['reverse_kl']:.3f} | {config.get('train_seconds', '-')} |"
        )
    lines += likelihood_section()  # ELBO, IWAE-k, AIS at two schedules, BDMC: how the bounds tighten
    lines += disentanglement_section()
    # Class-conditional, paired and translation models (issue 23): gen_eval/demo/scorecard_sections.py.
    from gen_eval.demo.scorecard_sections import write_sections

    lines += [
        "",
        *write_sections(
            out, runs_dir, num_samples=num_samples, num_resamples=num_resamples, show_progress=show_progress
        ),
    ]
    lines += ["", "## Samples", ""]
    for score in scores:
        slug = _slug(score.name, score.dataset)
        lines.append(
            f"**{score.name}** ({score.dataset})\n\n![{slug}](figures/reference_models/{slug}.png)\n"
        )
    out.write_text("\n".join(lines) + "\n")
    _write_headlines(scores)
    return out


def disentanglement_section(models: tuple[str, ...] = ("vae_shapes", "beta_vae_shapes")) -> list[str]:
    """Markdown rows: the six disentanglement metrics of the shapes VAEs (10,000 samples for the rest)."""
    import time

    import numpy as np
    import torch

    from gen_eval.datasets import shapes
    from gen_eval.latent.disentangle import evaluate_disentanglement
    from gen_eval.latent.factors import DISENTANGLEMENT_OPTIONS
    from reference_models import load_model

    lines = [
        "",
        "## Disentanglement (shapes, ground-truth factors)",
        "",
        "Each encoder's mean code of rendered `shapes` images, scored by `gen_eval.latent.disentangle` with "
        "disentanglement_lib's definitions. MIG, SAP (continuous mode) and modularity use 10,000 + 5,000 "
        "sampled factor combinations; BetaVAE and FactorVAE 500 training and 250 evaluation points (batches "
        "of 64), DCI 3,000 + 1,500, to keep the report to minutes. Orientation is only partly identifiable "
        "(square and ellipse symmetries), which caps every metric below 1 for any encoder of images.",
        "",
        "| model | BetaVAE | FactorVAE | MIG | DCI disent. | DCI compl. | SAP | modularity | explicitness | seconds |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in models:
        model = load_model(name)

        def represent(factors: np.ndarray, model=model) -> np.ndarray:
            with torch.no_grad():
                return model.encode(torch.from_numpy(shapes.render_shapes(factors))).numpy()

        started = time.perf_counter()
        found = evaluate_disentanglement(
            represent, shapes.FACTOR_SIZES, num_train=10_000, random_state=0, options=DISENTANGLEMENT_OPTIONS
        )
        seconds = time.perf_counter() - started
        lines.append(
            f"| {name} | {found['beta_vae']['eval_accuracy']:.3f} | {found['factor_vae']['eval_accuracy']:.3f} | "
            f"{found['mig']['mig']:.3f} | {found['dci']['disentanglement']:.3f} | "
            f"{found['dci']['completeness']:.3f} | {found['sap']['sap']:.3f} | "
            f"{found['modularity']['modularity']:.3f} | {found['modularity']['explicitness_test']:.3f} | "
            f"{seconds:.0f} |"
        )
    return lines


def _slug(name: str, dataset: str) -> str:
    return f"{dataset}-train-floor" if name == FLOOR else name


def _write_headlines(scores: list[ModelScore]) -> None:
    headlines = {}
    for score in scores:
        if score.name == FLOOR:
            continue
        entry: dict[str, Any] = {"fid": score.value("fid"), "recall": score.value("recall")}
        if "bits_per_dim" in score.metrics:
            entry["bits_per_dim"] = score.value("bits_per_dim")
            entry["bpd_bound"] = score.metrics["bits_per_dim"]["kind"] == "bound"
            entry["bpd_kind"] = score.metrics["bits_per_dim"]["kind"]
        headlines[score.name] = entry
    path = _checkpoint_dir() / SCORES_FILE
    path.write_text(to_json(headlines, sort_keys=True) + "\n")
