"""Latent explorer: embeddings, interpolation strips between chosen points, traversal sliders,
and the disentanglement scores, for runs of models with ``decode`` (and ``encode``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
import torch

from dashboards.data import RunInfo, figure_files
from dashboards.widgets import choose_run, load_runs, show_stored_figure
from gen_eval.errors import GenEvalError

st.title("Latent explorer")


def _model_name(info: RunInfo) -> str | None:
    spec = info.model
    return spec[4:] if spec.startswith("ref:") else None


@st.cache_resource(show_spinner="Loading the model...")
def _model(name: str):
    from reference_models import load_model

    return load_model(name)


@st.cache_data(show_spinner=False)
def _real(spec: str, count: int):
    from gen_eval.sources import open_source

    batch = open_source(spec, num_samples=count).head(count)
    return batch.data, batch.labels


def _has_latent(info: RunInfo) -> bool:
    if info.latent:
        return True
    name = _model_name(info)
    if name is None:
        return False
    from reference_models import MODELS

    return name in MODELS and MODELS[name].family in ("vae", "gan", "flow")


def _picture(images: np.ndarray) -> np.ndarray:
    from gen_eval.collapse.figures import grid_array

    return grid_array(images[None] if images.ndim == 4 else images, min_cell=64)


def _save_back(info: RunInfo, files: dict[str, bytes]) -> None:
    from gen_eval.runs.run import add_run_files

    try:
        add_run_files(info.path, files)
        st.cache_data.clear()  # the run list must see the new files
    except GenEvalError as exc:
        st.warning(f"Could not save into the run: {exc}")


runs = [r for r in load_runs() if _has_latent(r)]
if not runs:
    st.info(
        "No run of a model with a latent space here. `gen-eval demo` adds latent analyses to its VAE, GAN and flow runs; `gen-eval latent MODEL --run RUN` adds them to any run."
    )
    st.stop()
info = choose_run(runs, key="latent_run")
if info.latent:
    from gen_eval.latent.analyse import summary_rows

    st.dataframe(
        pd.DataFrame(summary_rows(info.latent.get("analyses", {})), columns=["analysis", "result"]),
        hide_index=True,
        width="stretch",
    )
    for note in info.latent.get("notes", []) + info.latent.get("analyses", {}).get("ppl", {}).get(
        "notes", []
    ):
        st.caption(note)

name = _model_name(info)
model = _model(name) if name else None
if model is None or not callable(getattr(model, "decode", None)):
    st.caption(
        "The model behind this run is not a bundled one, so only its stored figures are shown (the dashboard never runs submitted code)."
    )
stored = {stem: (j, p) for stem, j, p in figure_files(info, "latent")}

tab_embed, tab_interp, tab_traverse, tab_factors, tab_more = st.tabs(
    ["Embedding", "Interpolation", "Traversals", "Disentanglement", "Smoothness, PPL, arithmetic"]
)

with tab_embed:
    method = st.radio("Method", ["pca", "umap", "tsne"], horizontal=True, key="embed_method")
    stem = (
        "embedding"
        if method == (info.latent or {}).get("analyses", {}).get("embedding", {}).get("method", "pca")
        else f"embedding_{method}"
    )
    if stem in stored:
        show_stored_figure(*stored[stem])
    elif model is not None and st.button(f"Compute the {method.upper()} embedding (saved into the run)"):
        from gen_eval.features.cache import default_cache_dir
        from gen_eval.latent.analyse import analyse_latent

        with st.spinner(f"{method.upper()}..."):
            analysis = analyse_latent(
                model,
                name=name,
                analyses=["embedding"],
                embedding=method,
                cache_dir=str(default_cache_dir() / "embeddings"),
            )
        figure = analysis.figures["embedding"]
        st.plotly_chart(figure, width="stretch")
        _save_back(info, {f"latent/{stem}.json": figure.to_json().encode()})
    else:
        st.info("Not computed yet for this run.")

image_model = model is not None and getattr(model, "dataset", "") in ("digits", "shapes")
with tab_interp:
    if not image_model:
        st.info("Interactive strips need a bundled image model.")
    else:
        from gen_eval.latent.interpolate import interpolation_strip

        reference = info.reference
        images, labels = _real(reference, 200)
        encoded = callable(getattr(model, "encode", None))
        source = st.radio(
            "End points",
            (["two real images (encoded)"] if encoded else []) + ["two random latents"],
            horizontal=True,
        )
        steps = st.slider("Steps", 3, 16, 10)
        if source.startswith("two real"):
            a, b = st.columns(2)
            first = a.number_input("Image A (index into the reference)", 0, len(images) - 1, 0)
            second = b.number_input("Image B", 0, len(images) - 1, 1)
            st.image(
                _picture(images[[first, second]].numpy()),
                caption=f"A and B (labels {labels[first] if labels is not None else '?'}, {labels[second] if labels is not None else '?'})",
                width=200,
            )
            with torch.inference_mode():
                z = torch.as_tensor(model.encode(images[[first, second]])).float()
            z0, z1 = z[0], z[1]
        else:
            seed = st.number_input("Seed", 0, 10_000, 0)
            g = torch.Generator().manual_seed(int(seed))
            z0, z1 = torch.randn(2, model.latent_dim, generator=g)
        strips = np.stack([interpolation_strip(model, z0, z1, steps, m) for m in ("lerp", "slerp")])
        st.image(_picture(strips), caption="top: lerp, bottom: slerp", width="stretch")

with tab_traverse:
    if "traversal" in stored:
        show_stored_figure(*stored["traversal"])
    if image_model:
        top = (info.latent or {}).get("analyses", {}).get("traversal", {}).get("top_dimensions") or list(
            range(min(5, model.latent_dim))
        )
        st.markdown("**Move the most active dimensions** (others at 0, the prior's mode)")
        z = torch.zeros(1, model.latent_dim)
        columns = st.columns(len(top))
        for column, d in zip(columns, top, strict=True):
            z[0, d] = column.slider(f"z{d}", -3.0, 3.0, 0.0, 0.25, key=f"z{d}")
        from gen_eval.latent.interpolate import decode_images

        st.image(_picture(decode_images(model, z)), width=220)

with tab_factors:
    if "disentanglement" in stored:
        show_stored_figure(*stored["disentanglement"])
        if "dci_importance" in stored:
            show_stored_figure(*stored["dci_importance"])
    elif (
        model is not None
        and getattr(model, "dataset", "") == "shapes"
        and callable(getattr(model, "encode", None))
    ):
        st.info("Scores against the shapes factors are not in this run yet.")
        if st.button("Compute the six disentanglement metrics (about 2 minutes; saved into the run)"):
            from gen_eval.latent.factors import shapes_disentanglement

            with st.spinner("BetaVAE, FactorVAE, MIG, DCI, SAP, modularity..."):
                summary, figures = shapes_disentanglement(model)
            for figure in figures.values():
                st.plotly_chart(figure, width="stretch")
            _save_back(info, {f"latent/{k}.json": f.to_json().encode() for k, f in figures.items()})
    else:
        st.info("Disentanglement needs ground-truth factors: models trained on `shapes` with an encoder.")

with tab_more:
    shown = False
    for stem in ("smoothness", "ppl", "dimension_activity", "arithmetic", "interpolation"):
        if stem in stored:
            show_stored_figure(*stored[stem])
            shown = True
    if not shown:
        st.info("No stored latent figures; run `gen-eval latent MODEL --run RUN`.")
