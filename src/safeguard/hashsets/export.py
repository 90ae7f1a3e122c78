"""``safeguard hashset export``: a library set written out through its format's writer.

The file is written beside its destination and renamed into place, so a failed export
leaves no half-written file; an existing file is refused unless ``force``. Each export is
an audit event in the library's chain, with the SHA256 of what was written.
"""

from __future__ import annotations

import sys
from pathlib import Path

from safeguard.errors import HashSetError
from safeguard.hashsets.entry import MODEL_PURPOSE
from safeguard.hashsets.formats import FORMATS
from safeguard.hashsets.formats.base import SetInfo
from safeguard.hashsets.library import Library
from safeguard.outputs import write_atomically


def export_set(library: Library, name: str, format: str, output: Path,
               force: bool = False) -> int:
    record = library.get(name)
    writer = FORMATS.get(format)
    if (record.purpose == MODEL_PURPOSE) != (writer.purpose == MODEL_PURPOSE):
        raise HashSetError(
            f"hash set {name!r} holds model hashes: export it as model-text or model-vics"
            if record.purpose == MODEL_PURPOSE else
            f"{writer.name} exports model hash sets only; hash set {name!r} is {record.purpose}")
    if record.digest_only:
        raise HashSetError(f"hash set {name!r} holds digests only ({record.format}); "
                           "export the file it was imported from")
    info = SetInfo(name=record.name, version=record.version, supplier=record.supplier,
                   scheme=record.scheme)
    if str(output) == "-":
        return writer.write(library.entries(record), sys.stdout.buffer, info)
    count, digest = write_atomically(
        output, lambda handle: writer.write(library.entries(record), handle, info), force,
        HashSetError)
    library.audit_log("hashset.exported", name, {
        "version": record.version, "format": format, "entries": count,
        "path": str(output.absolute()), "sha256": digest})
    return count
