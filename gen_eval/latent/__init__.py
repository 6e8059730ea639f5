"""Latent-space analyses of generative models.

Subpackages
-----------
disentangle
    The six supervised disentanglement metrics of disentanglement_lib (BetaVAE score, FactorVAE
    score, MIG, DCI, SAP, modularity/explicitness) as plain functions over arrays or over a
    ``representation_fn`` that maps ground-truth factor indices to codes.
"""

# The analyses ``gen-eval latent --analyses`` accepts, here (no heavy imports) so that the
# command's help is built from this list and cannot drift from what runs.
ANALYSES = ("interpolation", "smoothness", "ppl", "traversal", "arithmetic", "embedding", "disentanglement")
# Run when no list is given; disentanglement (shapes models only) takes about 2 minutes.
DEFAULT_ANALYSES = ANALYSES[:-1]
