"""Hash-set file formats, in and out: one small module per format, one line each here.

``FORMATS`` lists them in detection order: the SQLite magic of NSRL first, then VICS JSON,
then the ICSE header, and the plain/CSV ``text`` reader last because it accepts the most.
``pdq-text`` is only ever chosen by name.
"""

from __future__ import annotations

from safeguard.hashsets.formats.base import FormatRegistry, HashSetFormat, SetInfo, open_text
from safeguard.hashsets.formats.icse import IcseFormat
from safeguard.hashsets.formats.nsrl import NsrlFormat
from safeguard.hashsets.formats.text import PdqTextFormat, TextFormat
from safeguard.hashsets.formats.vics import VicsFormat
from safeguard.hashsets.formats.vpdq import VpdqFormat

FORMATS = FormatRegistry([
    NsrlFormat(),
    VicsFormat(),
    IcseFormat(),
    VpdqFormat(),
    TextFormat(),
    PdqTextFormat(),
])

__all__ = ["FORMATS", "FormatRegistry", "HashSetFormat", "SetInfo", "open_text"]
