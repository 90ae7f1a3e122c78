"""The demo's benign hash sets, built from the demo pictures (``make demo`` imports them).

- ``demo-vics.json``: a VICS 2.0 set (Project VIC category codes, labels only) with the
  MD5, SHA1, SHA256 and PDQ of three camera pictures, and of a copy of a fourth that is
  flipped upside down and recompressed — a copy the evidence does not hold, so the
  evidence's own picture (and its WebP conversion) can only match it through PDQ's
  dihedral variants.
- ``demo-known-good.txt``: an MD5 list (purpose ``known_good``) naming the demo's text file,
  as an NSRL set would name operating-system files.

What a scan of the demo evidence then finds: exact matches (the camera pictures and the
byte-identical copy inside ``holiday.zip``), PDQ matches (the resized, recompressed and
mirrored copies, and the upside-down reference), and one known-good file.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from PIL import Image

from safeguard.hashsets.entry import HashEntry
from safeguard.hashsets.formats import FORMATS
from safeguard.hashsets.formats.base import SetInfo
from safeguard.signals.pdq import pdq_from_bytes

VICS_FILE = "demo-vics.json"
KNOWN_GOOD_FILE = "demo-known-good.txt"
#: (evidence file, Project VIC code, series) of the pictures the set holds as they are
KNOWN = (
    ("camera/IMG_0002.jpg", "1", "Demo series A"),
    ("camera/IMG_0003.jpg", "2", "Demo series A"),
    ("camera/IMG_0004.jpg", "1", "Demo series B"),
)
#: the picture the set holds only as a flipped copy (IMG_0001 is not used: its PDQ quality
#: is below 50, so only its digests could match)
TURNED = ("camera/IMG_0005.jpg", "3", "Demo series C")
KNOWN_GOOD = ("misc/notes.txt",)


def _entry(data: bytes, code: str, series: str, media_id: str, name: str) -> HashEntry:
    pdq = pdq_from_bytes(data, 10**8, "reference")
    return HashEntry(
        md5=hashlib.md5(data).hexdigest(), sha1=hashlib.sha1(data).hexdigest(),
        sha256=hashlib.sha256(data).hexdigest(), pdq=pdq.hash.hex, media_id=media_id,
        category=code, series=series, victim_identified=False, offender_identified=False,
        distributed=True, tags=["demo", "benign"],
        files=[{"FileName": name, "FilePath": f"demo/{name}"}])


def build_demo_hashsets(evidence: Path, dest: Path) -> list[Path]:
    """Write the demo hash sets for the demo evidence at ``evidence`` into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    entries = [
        _entry((evidence / path).read_bytes(), code, series, f"DEMO-{n:04d}",
               Path(path).name)
        for n, (path, code, series) in enumerate(KNOWN, 1)
    ]
    with Image.open(evidence / TURNED[0]) as img:
        turned = img.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        buffer = io.BytesIO()
        turned.save(buffer, "JPEG", quality=85)
    entries.append(_entry(buffer.getvalue(), TURNED[1], TURNED[2], f"DEMO-{len(KNOWN) + 1:04d}",
                          "IMG_0005_flipped.jpg"))
    vics = dest / VICS_FILE
    with open(vics, "wb") as out:
        FORMATS.get("vics").write(
            entries, out, SetInfo(name="demo-vics", version="2026-11",
                                  supplier="Safeguard demo (benign)", scheme="projectvic"))
    known_good = dest / KNOWN_GOOD_FILE
    known_good.write_text("".join(
        hashlib.md5((evidence / path).read_bytes()).hexdigest() + "\n" for path in KNOWN_GOOD))
    return [vics, known_good]
