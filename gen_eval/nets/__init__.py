"""Small networks gen-eval trains itself, shared by the feature extractors and the metrics.

Below both ``features`` and ``metrics`` in the import layers (they may not import each other):
the ``digits`` and ``mnist`` extractors load weights into :class:`~gen_eval.nets.small_cnn.SmallCNN`,
and the classification accuracy score trains the same architecture from scratch.
"""
