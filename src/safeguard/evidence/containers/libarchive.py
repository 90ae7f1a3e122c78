"""RAR, CAB, CPIO, LZH and ISO 9660 through libarchive.

(Being written: detects nothing yet.)"""

from __future__ import annotations

from safeguard.evidence.containers.base import ContainerReader

#: one reader per format, in the order they are asked
LIBARCHIVE_READERS: tuple[ContainerReader, ...] = ()
