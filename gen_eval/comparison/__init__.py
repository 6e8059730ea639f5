"""Comparing runs: is run B really better than run A, on what, and by how much?

- ``compare``: :func:`~gen_eval.comparison.compare.compare` (also ``gen_eval.compare``);
- ``result``: what it returns (rows, ranking, runs), read by the printers, the page and the dashboard;
- ``bootstrap``: the replicates it recomputes from each run's cached features;
- ``html``: the self-contained comparison page.

(The folder is not named ``compare``: that would shadow the public function ``gen_eval.compare``.)
"""
