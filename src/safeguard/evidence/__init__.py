"""Evidence sources, asked in this order to open evidence: one line per source.

A source's ``name`` is stored in case databases: never rename one.
"""

from pathlib import Path

from safeguard.errors import EvidenceError
from safeguard.evidence.base import Item, Source
from safeguard.evidence.directory import DirectorySource, FileSource
from safeguard.evidence.diskimage import DiskImageSource
from safeguard.registry import Registry

SOURCES = Registry[type[Source]](
    "evidence source",
    EvidenceError,
    [
        DirectorySource,
        DiskImageSource,  # before the catch-all single file
        FileSource,
    ],
    missing=lambda name, _: f"no evidence source named {name!r}",
)


def open_source(path: Path) -> Source:
    """The first registered source that recognises the evidence at ``path``, opened on it."""
    if not path.exists() and not path.is_symlink():
        raise EvidenceError(f"evidence not found: {path}")
    source = SOURCES.detect(path)
    if source is None:
        raise EvidenceError(f"no evidence source can open {path}")
    return source(path)


__all__ = ["SOURCES", "Item", "Source", "open_source"]
