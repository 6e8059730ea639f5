"""One small registry type that every layer keys by data kind (or by name), with test-time undo.

Each layer of the data-kind seam (sources, features, metrics, collapse, latent, pictures) keeps
its entries in a :class:`Registry`, so a contributor adds a kind the same way everywhere:
``register`` an entry, and, in tests, ``registered(...)`` to have it removed again afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from gen_eval.errors import GenEvalError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries in registration order.

    Parameters
    ----------
    what : str
        What an entry is, for messages (``"data kind"``, ``"source reader"``).
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T, *, replace: bool = False) -> T:
        """Add ``entry`` under ``name``; a name already taken is an error unless ``replace``."""
        if name in self._entries and not replace:
            raise GenEvalError(f"{self.what} {name!r} is already registered; unregister it first")
        self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> T:
        """Remove and return the entry ``name``."""
        if name not in self._entries:
            raise GenEvalError(f"no {self.what} {name!r} is registered")
        return self._entries.pop(name)

    @contextmanager
    def registered(self, name: str, entry: T) -> Iterator[T]:
        """Register ``entry`` for the body of a ``with`` block only (tests, experiments)."""
        self.register(name, entry)
        try:
            yield entry
        finally:
            self._entries.pop(name, None)

    def get(self, name: str) -> T:
        """The entry ``name``, or a one-line GenEvalError listing the registered names."""
        if name not in self._entries:
            raise GenEvalError(
                f"unknown {self.what} {name!r}: choose one of {', '.join(self._entries) or 'none registered'}"
            )
        return self._entries[name]

    def find(self, name: str) -> T | None:
        """The entry ``name``, or None."""
        return self._entries.get(name)

    def names(self) -> list[str]:
        """Registered names, oldest first."""
        return list(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """(name, entry) pairs, oldest first."""
        return list(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)
