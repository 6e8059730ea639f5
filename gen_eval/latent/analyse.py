"""Run every latent-space analysis a model allows and keep the results as run files.

:func:`analyse_latent` needs ``decode(z)`` and ``latent_dim``; ``encode`` adds encoded
interpolation end points, the encoder-based dimension ranking, latent arithmetic and a latent
embedding; ``decode_float`` (a decoder whose output is smooth in z) is used for smoothness and
PPL when the plain ``decode`` returns discrete modes. :meth:`LatentAnalysis.files` gives the
run files: ``latent.json`` (the numbers), ``latent/<name>.json`` (plotly figures) and
``latent/<name>.png`` (image grids), which the HTML report and the dashboard show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from gen_eval.errors import GenEvalError
from gen_eval.latent import ANALYSES, DEFAULT_ANALYSES, applies
from gen_eval.latent.pictures import as_pictures
from gen_eval.schemas import to_json

DEFAULT_REFERENCE = {
    "digits": "digits:test",
    "shapes": "shapes:test",
    "ring8": "ring8:test",
    "grid25": "grid25:test",
    "shapes3d": "shapes3d:test",
}


def default_features(dataset: str) -> str:
    """The extractor latent distances use: the dataset's own network (digits, shapes3d), else raw values."""
    return {"digits": "digits", "shapes3d": "pointnet-shapes3d"}.get(dataset, "identity")


@dataclass
class LatentAnalysis:
    """Numbers, figures and image grids of the latent analyses of one model."""

    model: str
    summary: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    grids: dict[str, tuple[np.ndarray, list[str]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    columns: dict[str, list[str]] = field(default_factory=dict)  # grid name -> column labels (PNG)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "gen-eval-latent/1",
            "model": self.model,
            "analyses": self.summary,
            "notes": self.notes,
        }

    def files(self) -> dict[str, bytes]:
        """Run files: ``latent.json``, one plotly JSON per figure and grid, one labelled PNG per grid."""
        from gen_eval.collapse.figures import image_grid_figure
        from gen_eval.figure_style import TEMPLATE, labelled_grid_png

        files = {"latent.json": to_json(self.to_dict()).encode()}
        for name, figure in self.figures.items():
            figure.update_layout(template=TEMPLATE)  # also for figures added after analyse_latent
            files[f"latent/{name}.json"] = figure.to_json().encode()
        for name, (grid, captions) in self.grids.items():
            title, note = _GRID_TEXT.get(name, (name.replace("_", " "), None))
            title = f"{self.model}: {title}"
            files[f"latent/{name}.json"] = image_grid_figure(title, grid, captions).to_json().encode()
            png = labelled_grid_png(grid, title, captions, self.columns.get(name), note)
            files[f"latent/{name}.png"] = png
        return files


# Titles and notes of the latent PNGs, which are opened on their own (outside the report).
_GRID_TEXT = {
    "interpolation": (
        "latent interpolation",
        "Each row decodes a path from one latent (left) to another (right); columns are the "
        "fraction t of the way. lerp: straight line, slerp: along the sphere.",
    ),
    "traversal": (
        "latent traversal",
        "Each row varies one latent dimension (columns: its value), the others fixed at 0. "
        "Rows are the most active dimensions, with their activity score.",
    ),
    "arithmetic": (
        "latent arithmetic",
        "Columns are different images; rows: the originals, their reconstructions, and the "
        "decoded latents moved by the difference of the two class means.",
    ),
}


class _SmoothDecoder:
    """``decode`` = the model's ``decode_float``: what smoothness and PPL should differentiate."""

    def __init__(self, model: Any) -> None:
        self.decode, self.latent_dim = model.decode_float, model.latent_dim


def _featurizer(extractor_name: str) -> Any:
    from gen_eval.features import create_extractor

    extractor = create_extractor(extractor_name)

    def featurize(samples: np.ndarray) -> torch.Tensor:
        return extractor(torch.from_numpy(np.ascontiguousarray(samples)))["features"].double()

    return featurize


def analyse_latent(
    model: Any,
    *,
    name: str = "model",
    reference: str | None = None,
    features: str | None = None,
    analyses: tuple[str, ...] | list[str] = DEFAULT_ANALYSES,
    num_pairs: int = 32,
    steps: int = 10,
    ppl_samples: int = 1000,
    top_k: int = 5,
    traversal_range: float = 3.0,
    arithmetic: tuple[int, int] | None = None,
    embedding: str = "pca",
    num_real: int = 500,
    cache_dir: str | None = None,
    lpips_vgg: str | None = None,
    lpips_lin: str | None = None,
    random_state: int = 0,
) -> LatentAnalysis:
    """Analyse the latent space of ``model`` (see the module docstring for what each part needs).

    Parameters
    ----------
    model : object
        Has ``decode`` and ``latent_dim`` (the generator protocol's latent part).
    name : str
        Shown in titles and stored in ``latent.json``.
    reference : str, optional
        Real data (a source spec with labels; default from ``model.dataset``, e.g. ``digits:test``).
    features : str, optional
        Extractor for distances (default ``digits`` for digits, else ``identity``).
    analyses : sequence of str
        Any of :data:`ANALYSES` (default: all but ``"disentanglement"``, which needs a shapes
        model with ``encode`` and about 2 minutes); those the model cannot support are skipped
        with a note.
    num_pairs, steps : int
        Smoothness paths and images per path.
    ppl_samples : int
        PPL segments (1%/99% filtered).
    top_k, traversal_range : int, float
        Traversals: the k most active dimensions over [-range, range].
    arithmetic : (int, int), optional
        Classes (a, b) for latent arithmetic (default: 3 -> 8 when present, else the first two).
    embedding : {"pca", "tsne", "umap"}
        Embedding method; coordinates are cached in ``cache_dir`` when given.
    num_real : int
        Real images used for encoder statistics, arithmetic and the embedding.
    lpips_vgg, lpips_lin : str, optional
        LPIPS weight files (else looked up; without them PPL uses the domain features).
    random_state : int
        Seed of every random choice.

    Returns
    -------
    LatentAnalysis
    """
    from gen_eval.latent import embed as embed_module
    from gen_eval.latent import interpolate as interp
    from gen_eval.latent import ppl as ppl_module
    from gen_eval.latent import traverse
    from gen_eval.sources import open_source

    if not callable(getattr(model, "decode", None)) or not getattr(model, "latent_dim", None):
        raise GenEvalError(
            f"{name}: latent analysis needs decode(z) and latent_dim (see reference_models/protocol.py); "
            f"{type(model).__name__} has {'no decode' if not callable(getattr(model, 'decode', None)) else 'no latent_dim'}"
        )
    unknown = [a for a in analyses if a not in ANALYSES]
    if unknown:
        raise GenEvalError(f"unknown latent analyses {unknown}; choose from {', '.join(ANALYSES)}")
    dataset = str(getattr(model, "dataset", ""))
    reference = reference or DEFAULT_REFERENCE.get(dataset)
    features = features or default_features(dataset)
    out = LatentAnalysis(model=name)
    featurize = _featurizer(features)
    can_encode = callable(getattr(model, "encode", None))
    smooth = _SmoothDecoder(model) if callable(getattr(model, "decode_float", None)) else model
    generator = torch.Generator().manual_seed(random_state)

    real = labels = real_features = real_kind = None
    if reference is not None:
        real_source = open_source(reference, num_samples=num_real)
        batch, real_kind = real_source.head(num_real), real_source.data_kind
        real, labels = batch.data, batch.labels
        real_features = featurize(real.numpy())
    decoded = interp.decoded_kind(model)
    image_model = applies("grids", decoded)  # decoded samples can be drawn in grids

    if "interpolation" in analyses and image_model:
        z = torch.randn(6, model.latent_dim, generator=generator)
        rows, captions = [], []
        pairs = [(z[0], z[1], "random"), (z[2], z[3], "random")]
        if can_encode and real is not None:
            with torch.inference_mode():
                encoded = torch.as_tensor(model.encode(real[:2])).float()
            pairs.append((encoded[0], encoded[1], "encoded real images"))
        for a, b, kind in pairs:
            for method in ("lerp", "slerp"):
                rows.append(
                    as_pictures(interp.interpolation_strip(model, a, b, steps, method), decoded, lead=1)
                )
                captions.append(f"{method}, {kind}")
        out.grids["interpolation"] = (np.stack(rows), captions)
        out.columns["interpolation"] = [f"t={t:.2f}" for t in np.linspace(0, 1, rows[0].shape[0])]
        out.summary["interpolation"] = {"steps": steps, "rows": captions}

    if "smoothness" in analyses:
        result = interp.path_smoothness(
            smooth,
            featurize,
            num_pairs=num_pairs,
            steps=steps,
            reference_features=real_features,
            random_state=random_state,
        )
        out.summary["smoothness"] = {
            **result.summary(),
            "features": features,
            "decoder": _decoder_name(smooth, model),
        }
        out.figures["smoothness"] = result.figure()

    if "ppl" in analyses:
        try:
            metric, distance, notes = ppl_module.ppl_distance(features, lpips_vgg, lpips_lin)
            if metric == "ppl_lpips_vgg" and not applies("lpips", decoded):
                raise GenEvalError("LPIPS needs images")
            result = ppl_module.perceptual_path_length(
                smooth.decode,
                model.latent_dim,
                distance,
                name=metric,
                num_samples=ppl_samples,
                random_state=random_state,
            )
            result.notes.extend(notes)
            out.summary["ppl"] = {**result.summary(), "decoder": _decoder_name(smooth, model)}
            out.figures["ppl"] = result.figure()
        except GenEvalError as exc:
            out.notes.append(f"ppl skipped: {exc}")

    if "traversal" in analyses:
        ranking = traverse.rank_dimensions(
            model,
            images=real if real is not None and applies("real_ranking", real_kind) else None,
            featurize=featurize,
            random_state=random_state,
        )
        dims = ranking.top(min(top_k, model.latent_dim))
        values = np.linspace(-traversal_range, traversal_range, 7)
        out.summary["traversal"] = {
            "ranking": ranking.method,
            "top_dimensions": dims,
            "scores": [float(ranking.scores[d]) for d in dims],
            "values": values.tolist(),
        }
        out.figures["dimension_activity"] = ranking.figure()
        if image_model:
            grid = as_pictures(traverse.traversal_grid(model, dims, values), decoded, lead=2)
            captions = [f"z{d} ({ranking.method} {ranking.scores[d]:.3g})" for d in dims]
            out.grids["traversal"] = (grid, captions)
            out.columns["traversal"] = [f"{v:+.3g}" for v in values]

    class_labels = labels if labels is not None and np.ndim(labels) == 1 else None
    if "arithmetic" in analyses:
        if not (can_encode and image_model and class_labels is not None):
            out.notes.append("arithmetic skipped: needs encode(x), images and class labels")
        else:
            present = sorted(set(class_labels.tolist()))
            a, b = arithmetic or ((3, 8) if {3, 8} <= set(present) else tuple(present[:2]))
            grid, shift = traverse.latent_arithmetic(model, real, class_labels, a, b)
            grid = as_pictures(grid, decoded, lead=2)
            out.columns["arithmetic"] = [f"#{i + 1}" for i in range(grid.shape[1])]
            out.grids["arithmetic"] = (
                grid,
                [f"class {a} originals", "reconstructions", f"+ (mean z[{b}] - mean z[{a}])"],
            )
            out.summary["arithmetic"] = {
                "source": int(a),
                "target": int(b),
                "shift_norm": float(shift.norm()),
            }

    if "embedding" in analyses and real is not None:
        fake_z = torch.randn(min(num_real, len(real)), model.latent_dim, generator=generator)
        generated = interp.decode_images(model, fake_z)
        with torch.inference_mode():
            if can_encode:
                space = "latent"
                points = [
                    torch.as_tensor(model.encode(real)).float(),
                    torch.as_tensor(model.encode(torch.from_numpy(generated))).float(),
                ]
            else:
                space = f"{features} features"
                points = [real_features.float(), featurize(generated).float()]
        stacked = torch.cat(points).numpy()
        coords = embed_module.embed(stacked, embedding, random_state=random_state, cache_dir=cache_dir)
        groups = np.array(["real"] * len(points[0]) + ["generated"] * len(points[1]))
        colours = None
        if labels is not None:
            first = np.asarray(labels) if np.ndim(labels) == 1 else np.asarray(labels)[:, 0]
            colours = np.concatenate([first, np.full(len(points[1]), np.nan)])
        title = f"{embedding.upper()} of the {space}: real (coloured by label) and generated"
        out.figures["embedding"] = embed_module.embedding_figure(coords, groups, colours, title)
        out.summary["embedding"] = {
            "method": embedding,
            "space": space,
            "num_real": len(points[0]),
            "num_generated": len(points[1]),
        }
    if "disentanglement" in analyses:
        from gen_eval.latent.factors import shapes_disentanglement

        try:
            summary, figures = shapes_disentanglement(model, random_state=random_state)
        except GenEvalError as exc:
            out.notes.append(f"disentanglement skipped: {exc}")
        else:
            out.summary["disentanglement"] = summary
            out.figures.update(figures)
    from gen_eval.figure_style import TEMPLATE

    for figure in out.figures.values():  # one look with the report's other charts (not plotly's grey)
        figure.update_layout(template=TEMPLATE)
    return out


def _decoder_name(smooth: Any, model: Any) -> str:
    return "decode_float" if smooth is not model else "decode"


def load_latent_model(
    spec: str, trust_code: bool = False, unsafe_no_isolation: bool = False
) -> tuple[Any, str]:
    """The model behind ``spec`` and a display name: ``ref:NAME``, a bundled ``NAME``, or ``file.py:factory``.

    Loading ``file.py:factory`` runs its code, so it needs ``trust_code``.
    """
    text = spec.removeprefix("ref:")
    if text.endswith(".py") or ".py:" in text:
        from gen_eval.sources.python import open_python_source

        return open_python_source(spec, 1, 0, trust_code, unsafe_no_isolation=unsafe_no_isolation).model, spec
    from reference_models import MODELS, load_model

    if text not in MODELS:
        raise GenEvalError(
            f"{spec}: not a bundled model ({', '.join(MODELS)}) nor file.py:factory; see gen-eval models"
        )
    return load_model(text), text


def save_latent(run_dir: str, analysis: LatentAnalysis) -> None:
    """Store ``analysis`` in the run at ``run_dir`` (replacing earlier latent results), checksummed."""
    from gen_eval.runs.run import add_run_files

    add_run_files(run_dir, analysis.files(), replace_prefix="latent")


def summary_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """(analysis, result) rows of a ``latent.json`` "analyses" dict, for terminal and HTML tables."""
    rows = []
    if "smoothness" in summary:
        m = summary["smoothness"]
        text = f"largest/mean step: median {m['step_ratio_median']:.2f}, p90 {m['step_ratio_p90']:.2f} (1 = even)"
        if "mid_to_end_distance_ratio" in m:
            text += f"; mid-path distance to data {m['mid_to_end_distance_ratio']:.2f}x the end points'"
        rows.append(("smoothness", text))
    if "ppl" in summary:
        p = summary["ppl"]
        rows.append(
            (p["name"], f"{p['value']:.4g} ({p['sampling']}, {p['num_kept']} of {p['num_samples']} kept)")
        )
    if "traversal" in summary:
        t = summary["traversal"]
        dims = ", ".join(f"z{d} ({v:.3g})" for d, v in zip(t["top_dimensions"], t["scores"], strict=True))
        rows.append(("most active", f"{dims} by {t['ranking']}"))
    if "arithmetic" in summary:
        a = summary["arithmetic"]
        rows.append(("arithmetic", f"class {a['source']} -> {a['target']}, |shift| {a['shift_norm']:.3g}"))
    if "embedding" in summary:
        e = summary["embedding"]
        rows.append(
            (
                "embedding",
                f"{e['method']} of the {e['space']}: {e['num_real']} real, {e['num_generated']} generated",
            )
        )
    if "disentanglement" in summary:
        d = summary["disentanglement"]
        scores = ", ".join(f"{name} {value:.3f}" for name, value in d["scores"].items())
        rows.append(("disentanglement", f"{scores} ({d['num_train']:,} samples, {d['seconds']:.0f} s)"))
    if "interpolation" in summary:
        i = summary["interpolation"]
        rows.append(("interpolation", f"{len(i['rows'])} strips of {i['steps']}"))
    return rows
