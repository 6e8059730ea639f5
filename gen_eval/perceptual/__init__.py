"""Perceptual distances between paired images (issue 23): metrics that run a network.

Above ``gen_eval.metrics`` and ``gen_eval.features`` in the layers (like ``gen_eval.likelihood``'s
bits/dim): a metric here builds a feature network, which the metrics package may not import.
"""
