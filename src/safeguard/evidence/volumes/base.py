"""What every volume kind shares: the protocol, the bounded sample of a partition's bytes,
and byte entropy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

#: bytes of a partition's start the kinds are recognised by
HEAD_BYTES = 4096
#: sampled blocks, spread over the partition, for the entropy test; a block is large enough
#: that random bytes measure above HIGH_ENTROPY (a 4 KiB block of random bytes measures
#: about 7.955 bits/byte: too few bytes to fill 256 counts evenly)
SAMPLE_BLOCKS = 8
SAMPLE_BLOCK_BYTES = 64 * 1024
#: bits per byte every sampled block must exceed to call a partition high-entropy
HIGH_ENTROPY = 7.99

#: ``read(offset, size)`` within the partition: at most ``size`` bytes (fewer at its end)
Reader = Callable[[int, int], bytes]


class VolumeKind(Protocol):
    """One kind of volume TSK reads no file system in, known by its first bytes."""

    #: stored in the case ("bitlocker"): never renamed
    name: str
    #: as shown ("BitLocker")
    label: str
    #: its bytes are ciphertext: carving them finds nothing, so they are not carved
    encrypted: bool
    #: the line shown for it in ``case show`` and the report
    note: str

    def detect(self, head: bytes, sample: Sample) -> bool:
        """True when the partition whose first bytes are ``head`` is of this kind;
        ``sample`` reads the spread-out blocks (only when called). Never raises."""
        ...


class Sample:
    """Up to SAMPLE_BLOCKS blocks of SAMPLE_BLOCK_BYTES spread evenly over ``length`` bytes,
    read once, when first asked for (``[]`` when the partition is smaller than a block)."""

    def __init__(self, read: Reader, length: int) -> None:
        self._read, self._length = read, length
        self._blocks: list[bytes] | None = None

    def __call__(self) -> list[bytes]:
        if self._blocks is None:
            self._blocks = [self._read(at, SAMPLE_BLOCK_BYTES) for at in self.offsets()]
        return self._blocks

    def offsets(self) -> list[int]:
        count = min(SAMPLE_BLOCKS, self._length // SAMPLE_BLOCK_BYTES)
        if count <= 0:
            return []
        if count == 1:
            return [0]
        span = self._length - SAMPLE_BLOCK_BYTES
        return [(span * i // (count - 1)) // 512 * 512 for i in range(count)]


def entropy(data: bytes) -> float:
    """Shannon entropy of ``data`` in bits per byte (0.0 for no bytes)."""
    if not data:
        return 0.0
    counts = np.bincount(np.frombuffer(data, dtype=np.uint8), minlength=256)
    p = counts[counts > 0] / len(data)
    return max(0.0, float(-(p * np.log2(p)).sum()))
