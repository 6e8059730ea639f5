"""Mode-collapse detectors: is a model dropping modes, and which?

One module per detector, each a plain function over feature arrays returning a dataclass with
``to_dict()``:

* ``known_modes``: PacGAN/VEEGAN known-mode coverage (2-D mixtures, or modes fitted per label);
* ``stacked``: distinct (digit, digit, digit) triples on stacked digits (1,000 modes);
* ``classes``: predicted-class histogram of generated vs reference images;
* ``ndb``: number of statistically different k-means bins (Richardson & Weiss 2018);
* ``birthday``: birthday-paradox duplicate test for the support size (Arora & Zhang 2017);
* ``vendi``: Vendi score diversity (Friedman & Dieng 2023);
* ``memorisation``: near-copies of training samples.

``check.check_collapse`` runs every detector that applies and ``verdict`` turns their results
into findings and one verdict; ``figures`` and ``outputs`` draw them; ``from_sources`` is the
glue ``gen_eval.evaluate`` uses.
"""

from gen_eval.collapse.check import CollapseReport, Finding, check_collapse

__all__ = ["CollapseReport", "Finding", "check_collapse"]
