"""The ``gen-eval`` entry point: imports every command module so each registers its commands on ``app``.

Command modules import only ``gen_eval.cli.common``; this module is the one place that imports them,
in the order ``gen-eval --help`` lists them.
"""

from __future__ import annotations

import sys

# Imported for their side effect: each registers its commands on `app`. The order is the order
# `gen-eval --help` lists them in, so the import sorter must leave it alone.
# isort: off
import gen_eval.cli.evaluate
import gen_eval.cli.catalogue
import gen_eval.cli.bench
import gen_eval.cli.collapse
import gen_eval.cli.compare
import gen_eval.cli.human
import gen_eval.cli.dashboard
import gen_eval.cli.latent
import gen_eval.cli.likelihood
import gen_eval.cli.models
import gen_eval.cli.report
import gen_eval.cli.stats
import gen_eval.cli.score  # noqa: F401

# isort: on
from gen_eval.cli.common import ERROR_PREFIX, app

__all__ = ["ERROR_PREFIX", "app", "main"]


def main() -> None:
    """Console-script entry point (also for ``torchrun -m gen_eval``: ranks other than 0 stay quiet)."""
    from gen_eval import distributed

    if not distributed.is_main():
        import os

        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (for the life of the process)
    try:
        app(prog_name="gen-eval")
    finally:
        distributed.shutdown()


if __name__ == "__main__":  # pragma: no cover
    main()
    sys.exit(0)
