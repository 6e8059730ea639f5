"""Latent-space analyses of generative models.

Subpackages
-----------
disentangle
    The six supervised disentanglement metrics of disentanglement_lib (BetaVAE score, FactorVAE
    score, MIG, DCI, SAP, modularity/explicitness) as plain functions over arrays or over a
    ``representation_fn`` that maps ground-truth factor indices to codes.
"""
