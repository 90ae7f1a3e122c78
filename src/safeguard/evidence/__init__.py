"""Evidence sources, asked in this order to open evidence: one line per source."""

from safeguard.evidence.base import Item, Source, SourceRegistry
from safeguard.evidence.directory import DirectorySource, FileSource

SOURCES = SourceRegistry(
    [
        DirectorySource,
        FileSource,
    ]
)

__all__ = ["SOURCES", "Item", "Source", "SourceRegistry"]
