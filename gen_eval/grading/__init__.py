"""Grading a cohort: ``gen-eval score`` over a folder of students' submissions.

- ``score``: :func:`~gen_eval.grading.score.score` (also ``gen_eval.score``), one run per submission;
- ``pages``: the leaderboard (CSV, HTML) and a failed submission's page;
- intake, checked before a byte of samples is read: ``discovery`` (finding entries), ``archives``
  (unpacking safely), ``contents`` (links, counts, unread files), ``submissions`` (opening samples);
- ``claims``: the numbers a student claims, checked against the measured ones.
"""
