"""OOXML and ODF documents (zip packages): their parts as embedded items.

(Being written: detects nothing yet.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from safeguard.config import Limits
from safeguard.evidence.containers.base import Member


class OfficeDocumentReader:
    name = "office document"
    relation = "embedded in document"
    streamed = False

    def detect(self, head: bytes, name: str = "") -> bool:
        return False

    def members(self, stream: BinaryIO, limits: Limits, container_name: str) -> Iterator[Member]:
        return iter(())
