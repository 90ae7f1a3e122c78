"""What every report format shares: the plug-in type, the job it is given, its result and
its error.

A :class:`ReportFormat` is a small object in the registry
(:data:`safeguard.reports.REPORT_FORMATS`): its ``name`` (the ``--format`` value, recorded
in the ``case.reported`` audit event: never rename one) and ``write``, which writes the
report's files atomically from a :class:`ReportJob` and returns them, the report first. This
module imports nothing heavy: the CLI reads the registry at every start.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from safeguard.audit.checkpoints import Mark
    from safeguard.reports.content import AppendixRow, ReportData
    from safeguard.reports.thumbnails import Thumbnail

    Thumb = Callable[[AppendixRow], Thumbnail]


@dataclass(frozen=True)
class ReportFile:
    path: Path
    sha256: str
    #: appendix records in this file
    items: int


@dataclass(frozen=True)
class ReportResult:
    format: str
    #: the report first, then any further appendix volumes (PDF)
    files: tuple[ReportFile, ...]
    appendix: str
    thumbnails: bool
    #: the signed checkpoint of the audit log the report rests on (None: no lab key)
    checkpoint: Mark | None = None

    @property
    def items(self) -> int:
        return sum(f.items for f in self.files)


@dataclass(frozen=True)
class ReportJob:
    """One report to write: its body, its appendix rows (a stream) and where it goes."""

    data: ReportData
    rows: Iterator[AppendixRow]
    output: Path
    force: bool
    #: a blurred thumbnail per appendix row, or None without ``--thumbnails``
    thumb: Thumb | None


class ReportFormat(ABC):
    """One report format (see the module docstring)."""

    name: ClassVar[str]
    #: what the report is served as by the review app (its Content-Type)
    media_type: ClassVar[str]

    @abstractmethod
    def write(self, job: ReportJob) -> tuple[ReportFile, ...]:
        """Write the report's files; return them, the report first."""
