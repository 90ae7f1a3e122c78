"""Evidence sources, asked in this order to open evidence: one line per source."""

from safeguard.evidence.base import Item, Source, SourceRegistry
from safeguard.evidence.directory import DirectorySource, FileSource
from safeguard.evidence.diskimage import DiskImageSource

SOURCES = SourceRegistry(
    [
        DirectorySource,
        DiskImageSource,
        FileSource,
    ]
)

__all__ = ["SOURCES", "Item", "Source", "SourceRegistry"]
