"""The search of every byte for signatures, compiled with numba: one pass over the bytes for
all signatures at once, where ``bytes.find`` would take one pass per signature.

Each signature is looked up by its first two magic bytes in a table of the 65,536 byte pairs
(most pairs start none, so most bytes cost one table look-up), then its other bytes compared.
Compiled on first use (well under a second), cached on disk next to this file, or in
~/.cache/numba when the package is read-only; with neither writable, once per process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numba
import numpy as np

_F = TypeVar("_F", bound=Callable[..., Any])


def _jit(func: _F) -> _F:
    """``numba.njit(cache=True, nogil=True)``, or without the disk cache when numba finds no
    writable place for it (numba refuses ``cache=True`` at decoration time then)."""
    try:
        return numba.njit(cache=True, nogil=True)(func)  # type: ignore[no-any-return]
    except RuntimeError:
        return numba.njit(nogil=True)(func)  # type: ignore[no-any-return]


@_jit
def find_magics(data: np.ndarray, at: int, pairs: np.ndarray, group_starts: np.ndarray,
                group_magics: np.ndarray, magics: np.ndarray, lengths: np.ndarray,
                out: np.ndarray) -> tuple[int, np.int64 | int]:
    """Where magics start in ``data`` from ``at`` on: ``out[k] = (position, magic)`` for
    each; answers how many were written and where to go on from (``len(data)`` when the
    search is done; earlier when ``out`` is full). ``pairs`` maps the 16-bit little-endian
    pair at a position to its group (0: none); group ``g``'s magics are
    ``group_magics[group_starts[g]:group_starts[g + 1]]``; magic ``m`` is
    ``magics[m, :lengths[m]]`` (two bytes or more)."""
    size = data.shape[0]
    room = out.shape[0]
    count = 0
    if at >= size - 1:
        return count, size
    # unsigned positions: numba then checks no index for a negative one (a third faster)
    one, eight = np.uint64(1), np.uint64(8)
    i, end = np.uint64(at), np.uint64(size - 1)
    byte = np.uint64(data[i])
    while i < end:
        after = np.uint64(data[i + one])
        group = pairs[byte | after << eight]
        byte = after
        if group:
            first, last = group_starts[group], group_starts[group + 1]
            if count + last - first > room:
                return count, np.int64(i)
            start = np.int64(i)
            for member in range(first, last):
                magic = group_magics[member]
                length = lengths[magic]
                if start + length > size:
                    continue
                j = 2
                while j < length and data[start + j] == magics[magic, j]:
                    j += 1
                if j == length:
                    out[count, 0] = start
                    out[count, 1] = magic
                    count += 1
        i += one
    return count, size
