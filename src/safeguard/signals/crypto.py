"""MD5, SHA1 and SHA256 of an item's bytes, in one pass."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Digest:
    md5: str
    sha1: str
    sha256: str


class DigestBuilder:
    """Feed chunks as they are read; ``digest()`` once at the end."""

    __slots__ = ("_md5", "_sha1", "_sha256", "size")

    def __init__(self) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha1 = hashlib.sha1(usedforsecurity=False)
        self._sha256 = hashlib.sha256()
        self.size = 0

    def update(self, chunk: bytes | memoryview) -> None:
        self._md5.update(chunk)
        self._sha1.update(chunk)
        self._sha256.update(chunk)
        self.size += len(chunk)

    def digest(self) -> Digest:
        return Digest(self._md5.hexdigest(), self._sha1.hexdigest(), self._sha256.hexdigest())


def digest_bytes(data: bytes) -> Digest:
    builder = DigestBuilder()
    builder.update(data)
    return builder.digest()
