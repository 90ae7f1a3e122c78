"""The lab index's tables (docs/links.md): one row per indexed case, one per material item,
one per series of two or more, and one per camera, model file, training set or prompt an
item or a case holds. Digests and PDQ hashes are kept as raw bytes (half the size of hex).

The index holds no picture, no path and no prompt text: digests, hashes, the camera's
``make|model|serial``, a model file's name and kind, a training set's name and the SHA-256
of a normalised prompt. Rows are rewritten whole per case (:meth:`LabIndex.update_case`).
"""

from __future__ import annotations

from sqlalchemy import Boolean, Index, Integer, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class IndexBase(DeclarativeBase):
    pass


class IndexInfo(IndexBase):
    """One row: the index's generation, raised by every change of a case's rows."""

    __tablename__ = "index_info"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    generation: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[str] = mapped_column(String(32))


class IndexedCase(IndexBase):
    """A case in the index: its owner (who created it), when and at which generation its
    rows were last written, and how many items and new items they hold."""

    __tablename__ = "index_cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    owner: Mapped[str] = mapped_column(String(128))
    indexed_at: Mapped[str] = mapped_column(String(32))
    generation: Mapped[int] = mapped_column(Integer)
    items: Mapped[int] = mapped_column(Integer)
    new_items: Mapped[int] = mapped_column(Integer)


class IndexItem(IndexBase):
    """One item of a case with a SHA-256 and no known-good match."""

    __tablename__ = "index_items"
    __table_args__ = (Index("ix_index_items_sha256", "sha256"),)

    case_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    item_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    #: the item's series in its case (the smallest item id of the series; its own id alone)
    series_id: Mapped[int] = mapped_column(Integer)
    #: 0 other, 1 picture, 2 video (``KINDS`` in safeguard.intel.index)
    kind: Mapped[int] = mapped_column(SmallInteger)
    #: a picture or video that matched no hash set (a model set's match aside)
    new: Mapped[bool] = mapped_column(Boolean)
    sha256: Mapped[bytes] = mapped_column(LargeBinary)
    md5: Mapped[bytes | None] = mapped_column(LargeBinary)
    sha1: Mapped[bytes | None] = mapped_column(LargeBinary)
    pdq: Mapped[bytes | None] = mapped_column(LargeBinary)
    pdq_quality: Mapped[int | None] = mapped_column(SmallInteger)


class IndexSeries(IndexBase):
    """A series of two or more items of a case: its size, whether it is new material (no
    member known, one new picture or video at least) and its representative's PDQ hash (the
    member of best quality, the smallest id among equals)."""

    __tablename__ = "index_series"

    case_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    series_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(Integer)
    new: Mapped[bool] = mapped_column(Boolean)
    representative: Mapped[int | None] = mapped_column(Integer)
    pdq: Mapped[bytes | None] = mapped_column(LargeBinary)
    pdq_quality: Mapped[int | None] = mapped_column(SmallInteger)


class IndexKey(IndexBase):
    """Something a case holds that another case may hold too: ``camera`` (key
    ``make|model|serial``), ``model`` (a model file's SHA-256), ``model_weights`` (its
    tensors' SHA-256), ``training_set`` (the fingerprint of its pictures) or ``prompt`` (the
    SHA-256 of the normalised prompt). ``label``: canonical JSON for display (a model's name
    and kind, a training set's name and pictures, a prompt's source)."""

    __tablename__ = "index_keys"
    __table_args__ = (Index("ix_index_keys_key", "kind", "key"),
                      Index("ix_index_keys_case", "case_id", "kind"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(Text)
    item_id: Mapped[int | None] = mapped_column(Integer)
    new: Mapped[bool] = mapped_column(Boolean)
    label: Mapped[str | None] = mapped_column(Text)
