"""SQLite databases and their write-ahead logs: BLOB cells as items.

(Being written: detects nothing yet.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from safeguard.config import Limits
from safeguard.evidence.containers.base import Member


class SqliteReader:
    name = "SQLite database"
    relation = "cell of database"
    streamed = False

    def detect(self, head: bytes, name: str = "") -> bool:
        return False

    def members(self, stream: BinaryIO, limits: Limits, container_name: str) -> Iterator[Member]:
        return iter(())


class SqliteWalReader:
    name = "SQLite write-ahead log"
    relation = "cell of database"
    streamed = False

    def detect(self, head: bytes, name: str = "") -> bool:
        return False

    def members(self, stream: BinaryIO, limits: Limits, container_name: str) -> Iterator[Member]:
        return iter(())
