"""Mode-collapse detectors: is a model dropping modes, and which?

``known_modes`` scores 2-D mixtures with labelled modes (ring8, grid25); ``classes`` compares the
predicted-class histogram of generated and reference images.
"""
