"""What every export format shares: the plug-in type, the job it is given, its result and
its error.

An :class:`ExportFormat` is a small object in the registry
(:data:`safeguard.exports.EXPORT_FORMATS`): its ``name`` (the ``--format`` value, recorded
in the ``case.exported`` audit event: never rename one), a ``title`` for the command's help,
the category scheme its file uses, and ``write``, which writes one file from an
:class:`ExportJob` and returns the entries written. This module imports nothing heavy: the
CLI reads the registry at every start.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, ClassVar

if TYPE_CHECKING:
    from safeguard.audit.checkpoints import Mark
    from safeguard.config import Settings
    from safeguard.hashsets.categories import Schemes
    from safeguard.store.cases import Case


@dataclass(frozen=True)
class ExportResult:
    format: str
    #: Media (vics), rows (icse, csv), items (case-uco) written
    entries: int
    path: Path
    sha256: str
    graded_only: bool
    #: the category scheme of the file's categories
    scheme: str
    #: the signed checkpoint of the audit log the export rests on (None: no lab key)
    checkpoint: Mark | None = None


@dataclass(frozen=True)
class ExportJob:
    """One export to write: the case, which items, and the schemes of its categories."""

    case: Case
    settings: Settings
    schemes: Schemes
    #: the case scheme: the scheme of the grades and matched categories
    source: str
    #: the scheme of the file's categories
    target: str
    graded_only: bool
    #: the destination (the file is written beside it first)
    output: Path


class ExportFormat(ABC):
    """One export format (see the module docstring)."""

    name: ClassVar[str]
    #: what the file is, for ``--help``: "vics (TITLE)"
    title: ClassVar[str]
    #: a format whose file has a category scheme of its own (VICS: ``projectvic``) takes
    #: ``--scheme``; the others (None) carry the case scheme's codes
    default_scheme: ClassVar[str | None] = None

    def scheme(self, requested: str | None, case_scheme: str) -> str:
        """The category scheme of the file."""
        if self.default_scheme is None:
            return case_scheme
        return requested or self.default_scheme

    @abstractmethod
    def write(self, job: ExportJob, out: BinaryIO) -> int:
        """Write the file to ``out``; return the entries written."""
