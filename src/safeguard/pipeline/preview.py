"""The preview scan's order and budget (``safeguard scan --preview``, docs/scanning.md).

A preview reads an evidence's pending units (top-level files) in the order most likely to
answer fast, and stops at a budget of time or files. Every unit falls in one class, first
rule that holds wins (folder names are compared case-insensitively, whole names only, and
only the folders of a path count, never its file name):

0. **camera folders** — a folder named ``DCIM``, ``Camera``, ``Camera Roll``, ``Camera
   Uploads``, a DCF folder (``100APPLE``, ``101CANON``, ``100_FUJI``: three digits from 100,
   then five letters, digits or ``_``), or a messenger's media folder (``WhatsApp Images``,
   ``WhatsApp Video``, ``WhatsApp Animated Gifs``, the same with ``WhatsApp Business``,
   ``Telegram Images``, ``Telegram Video``), anywhere in the path outside system folders;
1. **user folders** — a path under ``Users/<name>/``, ``home/<name>/`` or ``Documents and
   Settings/<name>/``, under ``sdcard/``, ``storage/emulated/``, ``data/media/`` (Android) or
   ``var/mobile/`` (iOS), or a folder named ``Documents``, ``Downloads``, ``Download``,
   ``Desktop``, ``Pictures``, ``Videos``, ``Movies``, ``My Documents``, ``My Pictures``,
   ``My Videos``, ``OneDrive``, ``Dropbox``, ``Google Drive``, ``iCloud Drive``, or a
   recycle bin or trash (``$Recycle.Bin``, ``RECYCLER``, ``.Trash``, ``.Trashes``);
2. **recent** — modified within :data:`RECENT_DAYS` days of the newest modified time among
   the units ranked outside system folders;
3. **the rest** — everything else; files in **system folders** come last of all.

System folders: a folder named ``Windows``, ``Program Files``, ``Program Files (x86)``,
``ProgramData``, ``System Volume Information``, ``$Windows.~BT``, ``$Windows.~WS``,
``PerfLogs``, ``usr``, ``bin``, ``sbin``, ``lib``, ``lib32``, ``lib64``, ``libexec``,
``boot``, ``etc``, ``proc``, ``sys``, ``dev``, ``run``, ``snap``, ``System``,
``Applications``, ``vendor``, ``apex``, ``$Extend``, or the folders ``var/lib``, ``var/cache``,
``var/log``, ``var/db``, count when they come before any user folder in the path
(``Users/alex/lib/`` is a user folder, ``Windows/Users/`` a system one); ``Library/Caches``
counts anywhere. NTFS's own files (``$MFT``, ``$LogFile`` …) are system files too.

Within a class: pictures and videos first (by the extension of the name: the content is not
read yet), then archives and other containers (documents, mail, databases, disk images),
then everything else; newest modified time first, files without one (or with one later than
:data:`FUTURE_SLACK_DAYS` after this machine's clock: not trusted) after those with one;
ties by id. The ranking reads three columns of a unit (id, path, modified time) and keeps
16 bytes per unit while it reads, about 29 at its peak (:func:`rank`; 10 million units:
benchmarks/preview.py --rank-rows).
"""

from __future__ import annotations

import itertools
import math
import re
import time
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

#: the classes, in the order a preview reads them
CAMERA, USER, RECENT, REST = 0, 1, 2, 3
#: their names in ``scan --json`` and the audit log
CLASS_NAMES = ("camera_folders", "user_folders", "recent", "rest")
#: their names in the text a person reads
CLASS_LABELS = ("camera folders", "user folders", "recent", "the rest")
#: within a class: pictures and videos, containers, the rest
PICTURE, CONTAINER, OTHER = 0, 1, 2

#: "recent": modified within this many days of the newest modified time ranked
RECENT_DAYS = 30
#: a modified time later than this machine's clock plus this many days is not trusted
FUTURE_SLACK_DAYS = 1
#: the CLI's time budget when ``--preview`` is given alone
DEFAULT_SECONDS = 300.0
#: once the time budget is spent, files still being read get this long, then they are
#: stopped and left pending
GRACE_SECONDS = 10.0

CAMERA_FOLDERS = frozenset({
    "dcim", "camera", "camera roll", "camera uploads",
    "whatsapp images", "whatsapp video", "whatsapp animated gifs",
    "whatsapp business images", "whatsapp business video",
    "telegram images", "telegram video",
})
#: DCF (Design rule for Camera File system) folders: 100-999 and five free characters
DCF_FOLDER = re.compile(r"[1-9][0-9]{2}[a-z0-9_]{5}")
#: a folder that holds one user's files when another folder (the user's name) follows it
USER_PARENTS = frozenset({"users", "home", "documents and settings"})
#: folders (or pairs of folders) whose contents are a user's
USER_FOLDERS = frozenset({
    "documents", "downloads", "download", "desktop", "pictures", "videos", "movies",
    "my documents", "my pictures", "my videos", "onedrive", "dropbox", "google drive",
    "icloud drive", "sdcard", "$recycle.bin", "recycler", ".trash", ".trashes",
})
USER_PAIRS = frozenset({("storage", "emulated"), ("data", "media"), ("var", "mobile")})
SYSTEM_FOLDERS = frozenset({
    "windows", "program files", "program files (x86)", "programdata",
    "system volume information", "$windows.~bt", "$windows.~ws", "perflogs",
    "usr", "bin", "sbin", "lib", "lib32", "lib64", "libexec", "boot", "etc", "proc", "sys",
    "dev", "run", "snap", "system", "applications", "vendor", "apex", "$extend",
})
SYSTEM_PAIRS = frozenset({("var", "lib"), ("var", "cache"), ("var", "log"), ("var", "db")})
#: system folders anywhere, even inside a user's folder
CACHE_PAIRS = frozenset({("library", "caches")})
NTFS_FILES = frozenset({
    "$mft", "$mftmirr", "$logfile", "$volume", "$attrdef", "$bitmap", "$boot", "$badclus",
    "$secure", "$upcase", "$extend",
})

PICTURE_EXTENSIONS = frozenset({
    "jpg", "jpeg", "jpe", "jfif", "png", "gif", "bmp", "dib", "tif", "tiff", "webp", "heic",
    "heif", "avif", "jxl", "dng", "cr2", "cr3", "nef", "arw", "raf", "orf", "rw2", "srw", "pef",
    "mp4", "m4v", "mov", "qt", "3gp", "3g2", "avi", "mkv", "webm", "wmv", "asf", "flv", "mpg",
    "mpeg", "m2v", "mts", "m2ts", "vob", "ogv",
})
CONTAINER_EXTENSIONS = frozenset({
    "zip", "7z", "rar", "tar", "gz", "tgz", "bz2", "tbz2", "xz", "txz", "cab", "cpio", "lzh",
    "lha", "xar", "iso", "docx", "docm", "xlsx", "xlsm", "pptx", "pptm", "odt", "ods", "odp",
    "pdf", "doc", "xls", "ppt", "rtf", "msg", "eml", "mbox", "pst", "ost", "db", "sqlite",
    "sqlite3", "sqlitedb", "db-wal", "e01", "vmdk", "vhd", "vhdx", "qcow", "qcow2",
})
#: container files known by name (Android gallery caches)
CONTAINER_PREFIXES = (".thumbdata", "imgcache.")

#: rows read per query while ranking, and the ids looked up at once while reading
PAGE = 10_000
_TIME_BITS = 58  # a sort key: the class, system flag and kind above, time rank below
_UNDATED = (1 << _TIME_BITS) - 1
_TIME_ZERO = 1 << (_TIME_BITS - 1)
_SYSTEM_FLAG = 4  # in a group: class * 8 + system * 4 + kind
_MAX_TIME_TEXT = 64
_FOLDERS_REMEMBERED = 65_536
_SLICE = 1 << 16


@dataclass(frozen=True)
class Budget:
    """How far a preview goes: ``seconds`` since its files started being read, ``items``
    top-level files read; whichever is spent first stops it (None: no such limit; neither:
    the preview reads everything, in its order)."""

    seconds: float | None = None
    items: int | None = None

    def __post_init__(self) -> None:
        if self.seconds is not None and not (math.isfinite(self.seconds) and self.seconds > 0):
            raise ValueError(f"a preview's time budget must be positive seconds, not "
                             f"{self.seconds!r}")
        if self.items is not None and (isinstance(self.items, bool) or self.items < 1):
            raise ValueError(f"a preview's item budget must be 1 or more, not {self.items!r}")

    def as_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "items": self.items}


class Meter:
    """A budget being spent. ``allows(submitted)`` is asked before each file is handed to a
    worker and stays False once it has said so (``stopped_by``: ``"items"`` or
    ``"seconds"``); ``overdue()`` says when the files still being read have had their
    :data:`GRACE_SECONDS` after a spent time budget. ``clock`` (seconds, monotonic) is
    injectable, so a test counts its steps instead of waiting."""

    def __init__(self, budget: Budget, clock: Callable[[], float] = time.monotonic) -> None:
        self.budget = budget
        self.clock = clock
        self.started = clock()
        self.stopped_by: str | None = None
        self._stopped_at: float | None = None

    def allows(self, submitted: int) -> bool:
        if self.stopped_by is not None:
            return False
        if self.budget.items is not None and submitted >= self.budget.items:
            self.stopped_by = "items"
            return False
        if self.budget.seconds is not None:
            now = self.clock()
            if now - self.started >= self.budget.seconds:
                self.stopped_by, self._stopped_at = "seconds", now
                return False
        return True

    def overdue(self) -> bool:
        return (self._stopped_at is not None
                and self.clock() - self._stopped_at >= GRACE_SECONDS)


@dataclass(frozen=True)
class Ranking:
    """Pending units in preview order: ``ids`` and each one's class (``classes``, aligned),
    how many units each class holds (``counts``) and the first moment counted recent
    (``recent_since``, ISO UTC; None when no unit has a trusted modified time)."""

    ids: npt.NDArray[np.int64]
    classes: npt.NDArray[np.int8]
    counts: tuple[int, int, int, int]
    recent_since: str | None

    def __len__(self) -> int:
        return int(self.ids.shape[0])


@dataclass
class PreviewSummary:
    """What a preview reached and found. ``units`` were pending when it began; ``reached``
    and ``not_reached`` count them by class (:data:`CLASS_NAMES`); ``stopped_by`` is
    ``items``, ``seconds`` or None (it reached everything); ``cancelled``: files being read
    when the grace ran out, left pending. The findings cover the whole evidence as scanned
    so far: ``known_items`` (items matching a hash set that is not known-good),
    ``known_by_category`` (items per category, an item counted in each it matched; null
    category as ``uncategorised``), ``new_camera_originals`` (camera-original pictures
    matching no hash set) and ``first_known_seconds`` (seconds from the scan's start to the
    first write of a match of a set that is not known-good in this run; None: none)."""

    budget: Budget
    units: int
    reached: dict[str, int]
    not_reached: dict[str, int]
    stopped_by: str | None
    cancelled: int
    recent_since: str | None
    ranking_seconds: float
    known_items: int = 0
    known_by_category: dict[str, int] = field(default_factory=dict)
    new_camera_originals: int = 0
    first_known_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["budget"] = self.budget.as_dict()
        return out


def _folder_class(folders: list[str]) -> tuple[int, bool]:
    """(CAMERA, USER or REST, in a system folder) of a file in these folders (lower case,
    outermost first)."""
    pairs = list(itertools.pairwise(folders))
    if any(pair in CACHE_PAIRS for pair in pairs):
        return REST, True
    domain = None
    for index, name in enumerate(folders):
        pair = pairs[index] if index < len(pairs) else None
        if (name in USER_FOLDERS or pair in USER_PAIRS
                or (name in USER_PARENTS and index + 1 < len(folders))):
            domain = USER
            break
        if name in SYSTEM_FOLDERS or pair in SYSTEM_PAIRS:
            return REST, True
    if any(name in CAMERA_FOLDERS or DCF_FOLDER.fullmatch(name) for name in folders):
        return CAMERA, False
    return (USER, False) if domain == USER else (REST, False)


def classify(path: str) -> tuple[int, bool, int]:
    """A unit's place by its path alone: (class — CAMERA, USER or REST; RECENT needs the
    other units' times —, whether it is in a system folder, kind — PICTURE, CONTAINER or
    OTHER). Pure; any text is accepted."""
    folder, _, name = path.rpartition("/")
    cls, system = _folder_class([part for part in folder.lower().split("/") if part])
    return cls, system or name.lower() in NTFS_FILES, kind_of(name)


def kind_of(name: str) -> int:
    """PICTURE (pictures and videos), CONTAINER or OTHER, by a file name's extension."""
    lower = name.lower()
    if lower.startswith(CONTAINER_PREFIXES):
        return CONTAINER
    stem, dot, extension = lower.rpartition(".")
    if not dot or not stem:
        return OTHER
    if extension in PICTURE_EXTENSIONS:
        return PICTURE
    return CONTAINER if extension in CONTAINER_EXTENSIONS else OTHER


def seconds_of(mtime: str | None) -> int | None:
    """Whole seconds since 1970 of an ISO-8601 time (no offset: UTC); None when it is not
    one."""
    if not mtime or len(mtime) > _MAX_TIME_TEXT:
        return None
    try:
        moment = datetime.fromisoformat(mtime)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return math.floor(moment.timestamp())
    except (ValueError, OverflowError, OSError):
        return None


def rank(rows: Iterable[tuple[int, str, str | None]], now: float | None = None,
         recent_days: int = RECENT_DAYS) -> Ranking:
    """Units ``(id, path, mtime)`` in preview order (module docstring). ``now`` (seconds
    since 1970, default this machine's clock) bounds the modified times trusted. Reads
    ``rows`` once, keeping two 8-byte numbers per unit (about 28 bytes per unit at the
    peak, while they are sorted); the ranking keeps 9 bytes per unit."""
    limit = (time.time() if now is None else now) + FUTURE_SLACK_DAYS * 86400
    ids, keys = array("q"), array("q")
    newest: int | None = None
    places: dict[str, tuple[int, bool]] = {}  # folders seen lately (a walk keeps them close)
    ascending, previous = True, None
    for item_id, path, mtime in rows:
        folder, _, name = path.rpartition("/")
        place = places.get(folder)
        if place is None:
            if len(places) >= _FOLDERS_REMEMBERED:
                places.clear()
            place = places[folder] = _folder_class(
                [part for part in folder.lower().split("/") if part])
        cls, system = place
        system = system or name.lower() in NTFS_FILES
        seconds = seconds_of(mtime)
        if seconds is None or seconds > limit:
            when = _UNDATED
        else:
            when = min(max(_TIME_ZERO - seconds, 0), _UNDATED - 1)
            if not system and (newest is None or seconds > newest):
                newest = seconds
        if previous is not None and item_id <= previous:
            ascending = False
        previous = item_id
        ids.append(item_id)
        keys.append(((cls * 8 + (_SYSTEM_FLAG if system else 0) + kind_of(name))
                     << _TIME_BITS) | when)
    columns = [ids, keys]
    del ids, keys, places  # _ordered frees each column as soon as it is done with it
    return _ordered(columns, ascending, _since(newest, recent_days))


def _since(newest: int | None, recent_days: int) -> int | None:
    """The first second counted recent; None without a trusted modified time (or when it
    falls outside the calendar)."""
    if newest is None:
        return None
    cutoff = newest - recent_days * 86400
    try:
        datetime.fromtimestamp(cutoff, UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return cutoff


def _move_recent(keys: npt.NDArray[np.int64], cutoff: int) -> None:
    """Units of the rest (not in system folders) modified at ``cutoff`` or later become
    recent, in place, a slice at a time (few temporaries on any size)."""
    latest_rank = _TIME_ZERO - cutoff  # a smaller rank is a later time
    for start in range(0, keys.shape[0], _SLICE):
        part = keys[start:start + _SLICE]
        groups = part >> _TIME_BITS
        recent = (((groups >> 3) == REST) & ((groups & _SYSTEM_FLAG) == 0)
                  & ((part & _UNDATED) <= latest_rank))
        part[recent] -= (REST - RECENT) << (_TIME_BITS + 3)


def _ordered(columns: list[array[int]], ascending: bool, cutoff: int | None) -> Ranking:
    """Sort the packed keys of ``columns`` (ids, keys; emptied here so each is freed when
    done), recent units moved up from the rest first; ties by id."""
    keys = columns.pop()
    count = len(keys)
    key_view = np.frombuffer(keys, dtype=np.int64) if count else np.zeros(0, np.int64)
    if cutoff is not None:
        _move_recent(key_view, cutoff)
    ids = columns.pop()
    id_view = np.frombuffer(ids, dtype=np.int64) if count else np.zeros(0, np.int64)
    # ids read in ascending order (as the store gives them): a stable sort keeps id order
    order = (np.argsort(key_view, kind="stable") if ascending
             else np.lexsort((id_view, key_view)))
    classes = np.empty(count, dtype=np.int8)
    for start in range(0, count, _SLICE):
        classes[start:start + _SLICE] = key_view[order[start:start + _SLICE]] >> (
            _TIME_BITS + 3)
    del key_view, keys
    ordered_ids = id_view[order]
    del order, id_view, ids
    counts = np.bincount(classes, minlength=4) if count else np.zeros(4, np.int64)
    since = None if cutoff is None else (
        datetime.fromtimestamp(cutoff, UTC).isoformat().replace("+00:00", "Z"))
    return Ranking(ordered_ids, classes,
                   (int(counts[0]), int(counts[1]), int(counts[2]), int(counts[3])), since)


def reached_by_class(ranking: Ranking, positions: npt.NDArray[np.int64],
                     left: Iterable[int]) -> tuple[dict[str, int], dict[str, int]]:
    """(reached, not reached) units by class name: ``positions`` in the ranking were handed
    to workers, of which the unit ids ``left`` were stopped and left pending."""
    stopped = np.fromiter(left, dtype=np.int64)
    taken = positions[~np.isin(ranking.ids[positions], stopped)] if positions.size else positions
    got = np.bincount(ranking.classes[taken], minlength=4) if taken.size else np.zeros(4)
    reached = {name: int(got[n]) for n, name in enumerate(CLASS_NAMES)}
    return reached, {name: ranking.counts[n] - reached[name]
                     for n, name in enumerate(CLASS_NAMES)}
