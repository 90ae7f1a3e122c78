"""The case store's tables (SQLAlchemy 2). Schema changes go through Alembic migrations.

Storage keys are plain column names chosen here, never derived from class names.
Times are ISO-8601 text: UTC with ``Z`` where the source says so, no offset where it does
not (zip members carry local time with no zone).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class CaseInfo(Base):
    __tablename__ = "case_info"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[str] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(128))
    tool_version: Mapped[str] = mapped_column(String(32))


class Evidence(Base):
    __tablename__ = "evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text, unique=True)  # absolute, display form
    fs_path: Mapped[bytes] = mapped_column(LargeBinary)  # absolute, as the OS spells it
    source: Mapped[str] = mapped_column(String(32))  # the evidence source that opened it
    added_at: Mapped[str] = mapped_column(String(32))
    added_by: Mapped[str] = mapped_column(String(128))
    enumerated: Mapped[bool] = mapped_column(Boolean, default=False)
    #: verified | mismatch | not stored (disk images); None for folders and files
    verification: Mapped[str | None] = mapped_column(String(16))
    acquisition: Mapped[str | None] = mapped_column(Text)  # canonical JSON, the source's own


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("evidence_id", "path", "ordinal", name="uq_items_location"),
        Index("ix_items_status", "evidence_id", "status", "depth"),
        Index("ix_items_unit", "unit_id"),
        Index("ix_items_md5", "md5"),
        Index("ix_items_sha1", "sha1"),
        Index("ix_items_sha256", "sha256"),
        Index("ix_items_pdq", "pdq"),
        Index("ix_items_verdict", "verdict"),
        Index("ix_items_device", "device"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evidence_id: Mapped[int] = mapped_column(ForeignKey("evidence.id"))
    path: Mapped[str] = mapped_column(Text)  # inside the evidence; `a.zip!dir/b.jpg`
    ordinal: Mapped[int] = mapped_column(Integer, default=0)  # repeats of one path (zip dups)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))  # top-level item
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))  # container
    depth: Mapped[int] = mapped_column(Integer, default=0)  # containers above it
    fs_path: Mapped[bytes | None] = mapped_column(LargeBinary)  # to reopen top-level files
    entry: Mapped[str] = mapped_column(String(16), default="file")  # file|symlink|special...
    size: Mapped[int | None] = mapped_column(BigInteger)
    mtime: Mapped[str | None] = mapped_column(String(32))
    atime: Mapped[str | None] = mapped_column(String(32))
    ctime: Mapped[str | None] = mapped_column(String(32))
    crtime: Mapped[str | None] = mapped_column(String(32))
    inode: Mapped[int | None] = mapped_column(BigInteger)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    type: Mapped[str | None] = mapped_column(String(128))
    extension_mismatch: Mapped[bool] = mapped_column(Boolean, default=False)
    md5: Mapped[str | None] = mapped_column(String(32))
    sha1: Mapped[str | None] = mapped_column(String(40))
    sha256: Mapped[str | None] = mapped_column(String(64))
    pdq: Mapped[str | None] = mapped_column(String(64))
    pdq_quality: Mapped[int | None] = mapped_column(Integer)
    pdq_dihedral: Mapped[str | None] = mapped_column(Text)  # 8 hex hashes, comma-separated
    pdq_method: Mapped[str | None] = mapped_column(String(16))
    #: the hashes of the picture with uniform borders cut (``signals.pdq.trim_box``):
    #: canonical JSON {"box": [left, top, right, bottom], "quality", "dihedral": [8 hex]};
    #: None when the picture has no borders
    pdq_trimmed: Mapped[str | None] = mapped_column(Text)
    #: the crop- and overlay-tolerant second signal (``signals.keypoints``): its binary form
    keypoints: Mapped[bytes | None] = mapped_column(LargeBinary)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    exif: Mapped[str | None] = mapped_column(Text)  # canonical JSON
    #: video frame hashes: canonical JSON list of {"t", "pdq", "quality"}
    vpdq: Mapped[str | None] = mapped_column(Text)
    #: video container metadata and review keyframe times: canonical JSON
    video: Mapped[str | None] = mapped_column(Text)
    #: provenance verdict: ai_confirmed|ai_indicated|ai_modified|camera_original|unknown
    verdict: Mapped[str | None] = mapped_column(String(24))
    #: canonical JSON {"verdict", "priority", "evidence": [{signal, field, value, strength,
    #: indicates}]}
    provenance: Mapped[str | None] = mapped_column(Text)
    #: the camera, ``make|model|serial``, when the picture names its serial number
    device: Mapped[str | None] = mapped_column(Text)
    link_target: Mapped[str | None] = mapped_column(Text)
    #: a carved item's origin: canonical JSON {"partition", "region", "offset", "length",
    #: "format", "partial", "reason"}; None for items with a file-system entry
    carved: Mapped[str | None] = mapped_column(Text)
    #: a shadow copy's file: canonical JSON {"store", "created", "identifier", "change"};
    #: None for every other item
    shadow_copy: Mapped[str | None] = mapped_column(Text)
    #: where an embedded item sits in its container and what the container says of it:
    #: canonical JSON {"relation", ...} (docs/json.md "context"); None for archive members
    #: and top-level items
    context: Mapped[str | None] = mapped_column(Text)
    #: a model file (checkpoint, LoRA, embedding, VAE …): canonical JSON {"format", "kind",
    #: "architecture", "base_model", "hashes", "training", "code", …} (docs/ai-toolchain.md);
    #: None for every other item
    model: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|done|error
    error: Mapped[str | None] = mapped_column(Text)


class Scan(Base):
    __tablename__ = "scans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evidence_id: Mapped[int] = mapped_column(ForeignKey("evidence.id"))
    started_at: Mapped[str] = mapped_column(String(32))
    finished_at: Mapped[str | None] = mapped_column(String(32))
    #: running | finished | interrupted | failed | abandoned (found running by the next scan)
    #: | preview (a preview scan that stopped at its budget: the rest is pending)
    status: Mapped[str] = mapped_column(String(16))
    workers: Mapped[int] = mapped_column(Integer)
    resumed: Mapped[bool] = mapped_column(Boolean, default=False)
    actor: Mapped[str] = mapped_column(String(128))


class AuditColumns:
    """The audit chain's columns, shared by the case store and the hash library so
    ``audit.log`` appends to and verifies either."""

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    time: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    object: Mapped[str] = mapped_column(Text)
    details: Mapped[str] = mapped_column(Text)  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditEvent(AuditColumns, Base):
    __tablename__ = "audit_events"


class Checkpoint(Base):
    """A lab key's Ed25519 signature over the audit chain's head at one event
    (``safeguard.audit.checkpoints``). No foreign key to ``audit_events``: a checkpoint must
    outlive events cut off the chain, so that the cut shows."""

    __tablename__ = "checkpoints"

    #: the event signed
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    #: that event's hash, as signed
    hash: Mapped[str] = mapped_column(String(64))
    #: the signer's Ed25519 public key: its 32 raw bytes in hex
    public_key: Mapped[str] = mapped_column(String(64))
    #: the 64-byte signature in hex
    signature: Mapped[str] = mapped_column(String(128))


class MatchRun(Base):
    """One pass of matching (during a scan, or ``safeguard match``) against the library."""

    __tablename__ = "match_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trigger: Mapped[str] = mapped_column(String(16))  # scan | match
    started_at: Mapped[str] = mapped_column(String(32))
    finished_at: Mapped[str | None] = mapped_column(String(32))
    library_generation: Mapped[int] = mapped_column(Integer)
    pdq_threshold: Mapped[int] = mapped_column(Integer)
    sets: Mapped[str] = mapped_column(Text)  # canonical JSON: name, version, uid, purpose
    items: Mapped[int] = mapped_column(Integer, default=0)
    matches: Mapped[int] = mapped_column(Integer, default=0)


class Match(Base):
    """An item matched a hash-set entry: which set version, by which signal, how close."""

    __tablename__ = "matches"
    __table_args__ = (Index("ix_matches_item", "item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    run_id: Mapped[int] = mapped_column(ForeignKey("match_runs.id"))
    set_uid: Mapped[str] = mapped_column(String(32))
    set_name: Mapped[str] = mapped_column(String(128))
    set_version: Mapped[str | None] = mapped_column(String(128))
    purpose: Mapped[str] = mapped_column(String(16))
    entry_id: Mapped[int | None] = mapped_column(BigInteger)  # None: a digest-only set
    media_id: Mapped[str | None] = mapped_column(Text)
    signal: Mapped[str] = mapped_column(String(16))  # md5 | sha1 | sha256 | pdq
    distance: Mapped[int] = mapped_column(Integer)  # 0 for exact digests
    variant: Mapped[str | None] = mapped_column(String(16))  # the PDQ dihedral variant
    category_given: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(64))  # in the library's scheme
    scheme: Mapped[str | None] = mapped_column(String(64))
    series: Mapped[str | None] = mapped_column(Text)
    #: video matches: {"segments": [[start, end], ...]} for frames matching a picture set,
    #: {"query_share", "reference_share"} for the vPDQ rule; canonical JSON
    details: Mapped[str | None] = mapped_column(Text)


class Series(Base):
    """Every item's series: PDQ near-duplicates and identical SHA256 grouped together
    (``safeguard.triage.series``). Derived data, rebuilt whole; no foreign keys, so a scan
    that replaces an interrupted unit's items is never blocked by it."""

    __tablename__ = "series"
    __table_args__ = (Index("ix_series_series", "series_id", "item_id"),)

    item_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    #: the smallest item id of the series
    series_id: Mapped[int] = mapped_column(Integer)
    #: items in the series
    size: Mapped[int] = mapped_column(Integer)
    #: the signals of the links that joined this item to others of its series, comma-separated
    #: in ``triage.series.SIGNALS`` order (``sha256``, ``pdq``, ``pdq_trimmed``,
    #: ``keypoints``); None for a series of one
    joined_by: Mapped[str | None] = mapped_column(Text)


class TriageState(Base):
    """What a derived triage table was built from (``series``, ``queue``), so a reader can
    tell whether it is current."""

    __tablename__ = "triage_state"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    #: canonical JSON: item count, last item id, pending items, threshold, ...
    fingerprint: Mapped[str] = mapped_column(Text)
    built_at: Mapped[str] = mapped_column(String(32))
    #: rows written (series, or queue entries)
    entries: Mapped[int] = mapped_column(Integer)


class QueueItem(Base):
    """One item in the review queue (a picture or video, not known-good) and what the
    queue's filters look at (``safeguard.triage.queue``). Derived, rebuilt whole."""

    __tablename__ = "queue_items"
    __table_args__ = (Index("ix_queue_items_series", "series_id", "item_id"),)

    item_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    series_id: Mapped[int] = mapped_column(Integer)
    evidence_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))  # picture | video
    verdict: Mapped[str | None] = mapped_column(String(24))
    known: Mapped[bool] = mapped_column(Boolean)
    tier: Mapped[int] = mapped_column(Integer)  # index into triage.priority.TIERS
    #: the most severe matched category (in the case's scheme) and its sort key
    category: Mapped[str | None] = mapped_column(String(64))
    severity_key: Mapped[int | None] = mapped_column(Integer)


class QueueEntry(Base):
    """One series in the review queue, at its place in priority order (``position``)."""

    __tablename__ = "queue"
    __table_args__ = (Index("ix_queue_position", "position", unique=True),)

    series_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    position: Mapped[int] = mapped_column(Integer)
    tier: Mapped[int] = mapped_column(Integer)
    severity: Mapped[int] = mapped_column(Integer)  # rank of the most severe category, or 0
    size: Mapped[int] = mapped_column(Integer)  # queued items
    first_item: Mapped[int] = mapped_column(Integer)  # lowest queued item id
    known: Mapped[bool] = mapped_column(Boolean)
    verdict: Mapped[str | None] = mapped_column(String(24))
    category: Mapped[str | None] = mapped_column(String(64))


# --- review ---


class ReviewGrade(Base):
    """One reviewer's grade of one item, or (``resolution``) an examiner's decision on it.

    Rows are never deleted or changed but for ``undone_at``: a new grade by the same
    reviewer supersedes the old one (see safeguard.review.grading)."""

    __tablename__ = "grades"
    __table_args__ = (
        Index("ix_grades_item", "item_id"),
        Index("ix_grades_reviewer", "reviewer"),
        Index("ix_grades_batch", "batch"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    reviewer: Mapped[str] = mapped_column(String(128))
    category: Mapped[str] = mapped_column(String(64))  # a code of the case's scheme
    flags: Mapped[str] = mapped_column(Text, default="")  # comma-separated, e.g. ai_generated
    note: Mapped[str | None] = mapped_column(Text)  # as given (at most 2000 characters)
    batch: Mapped[str] = mapped_column(String(36))  # one UUID per grade action
    created_at: Mapped[str] = mapped_column(String(32))
    undone_at: Mapped[str | None] = mapped_column(String(32))
    resolution: Mapped[bool] = mapped_column(Boolean, default=False)


class SegmentGrade(Base):
    """A reviewer's category for a stretch of a video (seconds from its first frame), beside
    the grade of the video as a whole; exported as a VICS ``Segments`` entry. Never deleted or
    changed but for ``undone_at`` (see safeguard.review.segments)."""

    __tablename__ = "segment_grades"
    __table_args__ = (Index("ix_segment_grades_item", "item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    reviewer: Mapped[str] = mapped_column(String(128))
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    category: Mapped[str] = mapped_column(String(64))  # a code of the case's scheme
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[str] = mapped_column(String(32))
    undone_at: Mapped[str | None] = mapped_column(String(32))


class Reveal(Base):
    """A reviewer saw an item unblurred: a thumbnail, a video strip or the original bytes."""

    __tablename__ = "reveals"
    __table_args__ = (
        Index("ix_reveals_item", "item_id"),
        Index("ix_reveals_reviewer", "reviewer"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    reviewer: Mapped[str] = mapped_column(String(128))
    what: Mapped[str] = mapped_column(String(16))  # thumbnail | original | strip
    at: Mapped[str] = mapped_column(String(32))


class ToolchainEntry(Base):
    """What the AI-toolchain analysis found in an evidence (docs/ai-toolchain.md): a generator
    installation, a training set, a link between a generated picture and a model file or
    between a fine-tune and its training set, or an item raised to the top of review (a
    training picture, a watch-list hit). Rewritten whole for an evidence at each scan's end."""

    __tablename__ = "toolchain"
    __table_args__ = (Index("ix_toolchain_kind", "evidence_id", "kind"),
                      Index("ix_toolchain_item", "item_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evidence_id: Mapped[int] = mapped_column(ForeignKey("evidence.id"))
    #: installation | training_set | output_link | training_link | raised
    kind: Mapped[str] = mapped_column(String(24))
    #: the item it is about (a picture, a model file, a record file), when there is one
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))
    #: the folder or file it is about, as an item path inside the evidence
    path: Mapped[str] = mapped_column(Text)
    #: a short name: the generator ("ComfyUI"), the set's folder, the model's file name
    name: Mapped[str | None] = mapped_column(Text)
    details: Mapped[str | None] = mapped_column(Text)  # canonical JSON


class Prompt(Base):
    """One prompt found in the evidence: in a picture's metadata, a generator's database,
    log, history, style list or workflow, a training caption or a model's training tags."""

    __tablename__ = "prompts"
    __table_args__ = (Index("ix_prompts_evidence", "evidence_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evidence_id: Mapped[int] = mapped_column(ForeignKey("evidence.id"))
    #: the item it was read from (a picture, a database, a log, a caption file)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))
    #: picture | invokeai | comfyui | a1111-styles | a1111-params | fooocus-log | caption |
    #: model-training …
    source: Mapped[str] = mapped_column(String(32))
    #: where inside that item (a database row, a log entry's time), or the item's path
    location: Mapped[str] = mapped_column(Text)
    prompt: Mapped[str] = mapped_column(Text)
    negative: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(Text)
    model_hash: Mapped[str | None] = mapped_column(String(64))
    #: the watch-list terms it matched, comma-separated; None when none
    watch: Mapped[str | None] = mapped_column(Text)
