"""The hash library's tables (one ``library.db`` per home, shared by every case).

Digests are stored as bytes; the lookups themselves run on the index files each set has
beside the database (``matching/exact.py``, ``matching/pdq_index.py``), so the entry table
carries no digest indexes. The audit chain has the same table and hashing as a case's.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from safeguard.store.models import AuditColumns


class LibraryBase(DeclarativeBase):
    pass


class LibraryInfo(LibraryBase):
    __tablename__ = "library_info"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: bumped by every import and removal: a case matched at an older generation is stale
    generation: Mapped[int] = mapped_column(Integer, default=0)
    #: the category scheme every entry's category is mapped into
    scheme: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[str] = mapped_column(String(32))


class HashSet(LibraryBase):
    __tablename__ = "hash_sets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: the folder of its index files under ``library/sets/``; new for every import
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    format: Mapped[str] = mapped_column(String(32))
    version: Mapped[str | None] = mapped_column(String(128))
    supplier: Mapped[str | None] = mapped_column(String(256))
    purpose: Mapped[str] = mapped_column(String(16))
    scheme: Mapped[str] = mapped_column(String(64))  # the scheme its categories came in
    imported_at: Mapped[str] = mapped_column(String(32))
    imported_by: Mapped[str] = mapped_column(String(128))
    source_name: Mapped[str] = mapped_column(Text)  # the imported file's name
    source_size: Mapped[int] = mapped_column(BigInteger)
    source_sha256: Mapped[str] = mapped_column(String(64))
    entries: Mapped[int] = mapped_column(BigInteger)
    md5_count: Mapped[int] = mapped_column(BigInteger, default=0)
    sha1_count: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256_count: Mapped[int] = mapped_column(BigInteger, default=0)
    pdq_count: Mapped[int] = mapped_column(BigInteger, default=0)
    #: entries with vPDQ frame hashes (videos), their frames indexed in ``vpdq/``
    vpdq_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: model hash sets (purpose ``model``): entries with each model hash kind, indexed too
    autov2_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    legacy_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    tensor_sha256_count: Mapped[int] = mapped_column(BigInteger, default=0,
                                                     server_default="0")
    #: digest-only sets (NSRL) keep no entry rows: their digests live in the index alone
    digest_only: Mapped[bool] = mapped_column(Boolean, default=False)
    report: Mapped[str] = mapped_column(Text)  # canonical JSON of the ImportReport


class Entry(LibraryBase):
    __tablename__ = "entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: no foreign key: checking one per row cost a third of a 10 M-line import's time;
    #: entries are only ever written and deleted with their set, in one transaction
    set_id: Mapped[int] = mapped_column(Integer, index=True)
    md5: Mapped[bytes | None] = mapped_column(LargeBinary)
    sha1: Mapped[bytes | None] = mapped_column(LargeBinary)
    sha256: Mapped[bytes | None] = mapped_column(LargeBinary)
    pdq: Mapped[bytes | None] = mapped_column(LargeBinary)
    vpdq: Mapped[str | None] = mapped_column(Text)
    photodna: Mapped[str | None] = mapped_column(Text)
    media_id: Mapped[str | None] = mapped_column(Text)
    category_given: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(64))  # mapped into the library scheme
    series: Mapped[str | None] = mapped_column(Text)
    victim_identified: Mapped[bool | None] = mapped_column(Boolean)
    offender_identified: Mapped[bool | None] = mapped_column(Boolean)
    distributed: Mapped[bool | None] = mapped_column(Boolean)
    tags: Mapped[str | None] = mapped_column(Text)  # JSON list
    comments: Mapped[str | None] = mapped_column(Text)
    files: Mapped[str | None] = mapped_column(Text)  # JSON list of VICS MediaFiles
    extra: Mapped[str | None] = mapped_column(Text)  # JSON object
    #: model hash sets only: AutoV2 (5 bytes), legacy (4 bytes), the tensor-data SHA256
    #: (32 bytes) and the model's name (``sha256`` holds the model file's own)
    autov2: Mapped[bytes | None] = mapped_column(LargeBinary)
    legacy: Mapped[bytes | None] = mapped_column(LargeBinary)
    tensor_sha256: Mapped[bytes | None] = mapped_column(LargeBinary)
    name: Mapped[str | None] = mapped_column(Text)


class LibraryAuditEvent(AuditColumns, LibraryBase):
    """Same columns as the case store's ``audit_events`` so ``audit.log`` serves both."""

    __tablename__ = "audit_events"
