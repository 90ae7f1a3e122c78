"""Hash-library test helpers: a format object that yields given entries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from safeguard.errors import HashSetError
from safeguard.hashsets.entry import HashEntry, ImportReport


class ListFormat:
    """A format object that yields given entries (and can fail after some of them)."""

    name = "test-list"
    scheme = "uk"
    purpose: str | None = None
    digest_only = False

    def __init__(self, entries: list[HashEntry], fail_after: int | None = None) -> None:
        self.entries = entries
        self.fail_after = fail_after

    def read(self, path: Path, report: ImportReport, strict: bool = False
             ) -> Iterator[HashEntry]:
        for n, entry in enumerate(self.entries):
            if n == self.fail_after:
                raise HashSetError(f"{path.name}: not valid at line {n + 1}")
            yield entry
