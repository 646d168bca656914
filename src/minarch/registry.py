"""Named entries users pick in a study file: pruners, pruning criteria, quantizers.

As in the model registry, a second entry under one name is an error, not an
override, and an unknown name's error lists the valid ones.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from minarch.errors import MinarchError

Entry = TypeVar("Entry")


class Registry(Generic[Entry]):
    """``what`` names the entries in messages; ``error`` is the package's error type."""

    def __init__(self, what: str, error: type[MinarchError]) -> None:
        self._what, self._error = what, error
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, entry: Entry) -> None:
        if name in self._entries:
            raise self._error(f"{self._what} {name!r} is already registered")
        self._entries[name] = entry

    def __getitem__(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            valid = ", ".join(self.names())
            raise self._error(f"unknown {self._what} {name!r}; valid: {valid}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)
