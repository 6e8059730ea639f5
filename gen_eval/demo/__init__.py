"""The bundled reference models, scored: ``gen-eval demo`` and ``gen-eval scorecard``.

- ``leaderboard``: score every bundled model against its test split and print/write the leaderboard;
- ``files``: which files in a demo folder the demo wrote itself (so a rerun replaces only those);
- ``scorecard``: the quality bars the project promises, written to ``reports/reference_models.md``.

(Grading students' submissions has its own leaderboard: :mod:`gen_eval.grading`.)
"""
