"""Latent-space analyses of generative models.

Subpackages
-----------
disentangle
    The six supervised disentanglement metrics of disentanglement_lib (BetaVAE score, FactorVAE
    score, MIG, DCI, SAP, modularity/explicitness) as plain functions over arrays or over a
    ``representation_fn`` that maps ground-truth factor indices to codes.
"""

from gen_eval.kinds import Registry

# The analyses ``gen-eval latent --analyses`` accepts, here (no heavy imports) so that the
# command's help is built from this list and cannot drift from what runs.
ANALYSES = ("interpolation", "smoothness", "ppl", "traversal", "arithmetic", "embedding", "disentanglement")
# Run when no list is given; disentanglement (shapes models only) takes about 2 minutes.
DEFAULT_ANALYSES = ANALYSES[:-1]

# Parts of the analyses that depend on the data kind, and the kinds each applies to: grids of
# decoded samples (interpolation, traversal, arithmetic), LPIPS distances for PPL, and ranking
# dimensions by encoding real samples. Other kinds get the numbers without these parts. Grids of
# another kind than images show each decoded sample as its kind draws it (``DataKind.draw``).
PART_KINDS: Registry[tuple[str, ...]] = Registry("latent analysis part")
PART_KINDS.register("grids", ("image", "pointcloud"))
PART_KINDS.register("lpips", ("image",))
PART_KINDS.register("real_ranking", ("image", "pointcloud"))


def applies(part: str, kind: str | None) -> bool:
    """Whether the kind-dependent ``part`` of the latent analyses applies to samples of ``kind``."""
    return kind is not None and kind in PART_KINDS.get(part)
