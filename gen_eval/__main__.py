"""``python -m gen_eval`` (and ``torchrun -m gen_eval``) run the CLI."""

from gen_eval.cli import main

main()
