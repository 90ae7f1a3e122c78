"""docs/scanning.md names every registered evidence source, container reader and disk-image
format: a plug-in registered without its line in the user guide fails here."""

from __future__ import annotations

import re
from pathlib import Path

from safeguard.evidence import SOURCES
from safeguard.evidence.containers import CONTAINERS
from safeguard.evidence.images import IMAGE_FORMATS

SCANNING = Path(__file__).resolve().parents[2] / "docs" / "scanning.md"


def section(title: str) -> str:
    """The text of ``## title`` in docs/scanning.md, up to the next section."""
    text = SCANNING.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def unnamed(names: list[str], text: str) -> list[str]:
    """The names that ``text`` does not mention as a word (any case: "EWF" names ewf)."""
    return [name for name in names
            if not re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", text, re.IGNORECASE)]


def test_every_evidence_source_has_its_row() -> None:
    # the table of sources: one row per source, its name in code as the first cell
    rows = re.findall(r"^\| `([^`]+)` \|", section("Evidence sources"), re.MULTILINE)
    assert sorted(rows) == sorted(SOURCES.names())


def test_every_container_reader_is_named() -> None:
    assert unnamed(CONTAINERS.names(), section("Evidence sources")) == []


def test_every_disk_image_format_is_named() -> None:
    assert unnamed(IMAGE_FORMATS.names(), section("Evidence sources")) == []


def test_the_check_sees_a_missing_name() -> None:
    text = "zip, tar, tar.gz/.bz2/.xz, 7z, and single gzip/bzip2/xz files; an EWF image"
    assert unnamed(["zip", "7z", "xz", "bzip2", "ewf", "rar", "gz", "ar", "z"], text) == [
        "rar", "gz", "ar", "z"]
