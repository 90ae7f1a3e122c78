"""Hash-set file formats, in and out: one small module per format, one line each here.

``FORMATS`` lists them in detection order: the SQLite magic of NSRL first, then VICS JSON
(its model-hash variant ``model-vics`` before it: VICS-shaped Media with model hash keys),
then the ICSE header, ``model-text`` (only what no other list has: 8- and 10-digit hashes,
AutoV2 / legacy / tensor SHA256 columns), and the plain/CSV ``text`` reader last because it
accepts the most. ``pdq-text`` is only ever chosen by name; a list of SHA256 model hashes
is read as ``model-text`` when the import's purpose is ``model`` (``formats/model.py``).
:func:`detect_format` asks them about a file.
"""

from __future__ import annotations

from pathlib import Path

from safeguard.errors import HashSetError
from safeguard.hashsets.formats.base import HashSetFormat, SetInfo, open_text, read_head
from safeguard.hashsets.formats.icse import IcseFormat
from safeguard.hashsets.formats.model import ModelTextFormat, ModelVicsFormat
from safeguard.hashsets.formats.nsrl import NsrlFormat
from safeguard.hashsets.formats.text import PdqTextFormat, TextFormat
from safeguard.hashsets.formats.vics import VicsFormat
from safeguard.hashsets.formats.vpdq import VpdqFormat
from safeguard.registry import Registry

FORMATS = Registry[HashSetFormat]("hash-set format", HashSetError, [
    NsrlFormat(),
    ModelVicsFormat(),
    VicsFormat(),
    IcseFormat(),
    VpdqFormat(),
    ModelTextFormat(),
    TextFormat(),
    PdqTextFormat(),
])


def detect_format(path: Path) -> HashSetFormat:
    """The first format, in ``FORMATS`` order, whose ``detect`` accepts ``path`` (given the
    file's first bytes; a detector that raises counts as a no). HashSetError for a missing
    file, a directory, or a file no format accepts."""
    path = Path(path)
    head = read_head(path)
    for fmt in FORMATS:
        try:
            if fmt.detect(path, head):
                return fmt
        except Exception:
            continue
    raise HashSetError(f"cannot tell the format of {path.name}; give --format "
                       f"(one of {', '.join(FORMATS.names())})")


__all__ = ["FORMATS", "HashSetFormat", "SetInfo", "detect_format", "open_text"]
