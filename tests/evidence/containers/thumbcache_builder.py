"""Windows thumbcache_*.db files built to the documented layout (libyal's libwtcdb format
document), for the thumbnail-cache tests and benchmarks: entries of Vista (20), 7 (21), 8.1
(31) and 10 (32) with their CRC-64 header checksums."""

from __future__ import annotations

import struct

from safeguard.evidence.containers.thumbcache import crc64


def entry(version: int, cache_id: int, data: bytes = b"", identifier: str | None = None,
          width: int = 0, height: int = 0, padding: int = 0, size: int | None = None,
          checksum: int | None = None) -> bytes:
    """One cache entry: its header (with its CRC-64 header checksum), identifier, padding,
    data. ``size`` and ``checksum`` override the true values (to damage the entry)."""
    ident = (f"{cache_id:x}" if identifier is None else identifier).encode("utf-16-le")
    if version == 20:
        fields = struct.pack("<IQ8sIIII", 0, cache_id, "jpg\0".encode("utf-16-le"), len(ident),
                             padding, len(data), 0)
    elif version == 21:
        fields = struct.pack("<IQIIII", 0, cache_id, len(ident), padding, len(data), 0)
    else:
        fields = struct.pack("<IQIIIIII", 0, cache_id, len(ident), padding, len(data), width,
                             height, 0)
    header_size = 4 + len(fields) + 16
    total = header_size + len(ident) + padding + len(data) if size is None else size
    head = b"CMMM" + struct.pack("<I", total) + fields[4:] + struct.pack("<Q", 0)
    crc = crc64(head) if checksum is None else checksum
    return head + struct.pack("<Q", crc) + ident + bytes(padding) + data


def cache_file(version: int, cache_type: int, entries: list[bytes], free: int = 256) -> bytes:
    """A thumbcache file: its header, ``entries``, then the free space as one empty entry."""
    body = b"".join(entries)
    header_size = 24
    if version >= 30:
        header = struct.pack("<4sIIIII", b"CMMM", version, cache_type, 0, header_size,
                             header_size + len(body))
    else:
        header = struct.pack("<4sIIIII", b"CMMM", version, cache_type, header_size,
                             header_size + len(body), len(entries))
    empty = entry(version, 0, identifier="")
    empty = empty[:4] + struct.pack("<I", len(empty) + free) + empty[8:]
    empty = empty[:-8] + struct.pack("<Q", crc64(empty[:-8]))
    return header + body + empty + bytes(free)
