"""The ``gen-eval`` command line: a thin layer over the public functions.

- ``common``: the Typer ``app`` and what every command shares (one-line errors, ``_guard``, ``--threads``);
- one module per command group (``evaluate``, ``catalogue``, ``bench``, ``collapse``, ``compare``,
  ``dashboard``, ``latent``, ``models``, ``report``, ``score``), each importing only ``common``;
- ``main``: imports them all (registering their commands) and holds the console entry point.

``from gen_eval.cli import app, main`` gives the app with every command registered.
"""

from gen_eval.cli.main import ERROR_PREFIX, app, main

__all__ = ["ERROR_PREFIX", "app", "main"]
