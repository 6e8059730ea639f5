"""The one exception type meant for users."""

from __future__ import annotations


class GenEvalError(Exception):
    """An error caused by the user's input or environment, not by a bug.

    The message is one line that names the offending input (file, array, option)
    and says what to do about it. The CLI prints it without a traceback and exits
    with status 2; pass ``--debug`` to see the traceback.
    """


class StorageError(GenEvalError):
    """A write the disk refused (full, read-only, no permission): the grader's storage, not the input.

    ``gen-eval score`` stops the batch on it rather than failing every submission in turn.
    """
