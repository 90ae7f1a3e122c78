"""Folders laid out for fine-tuning a model, from a listing of an evidence's files, and the
captions they give their pictures.

Pure: :func:`find_training_sets` reads no file. A folder is a **training folder** when one
of these holds (pictures and captions counted in the folder itself):

* **captioned** — at least ``MIN_CAPTIONED`` (3) of its pictures have a caption file of the
  same name (``.txt`` or ``.caption``), and they are at least half its pictures: a photo
  folder with a few notes, or with one ``.txt`` per hundred photos, is not one;
* **kohya-named** — its name is ``<repeats>_<name>`` (``10_subject``; repeats 1 to 9999
  without a leading zero, and not a year 1900–2100: ``2019_summer`` is an album) with at
  least one picture, *and* one of: a picture of it has a caption, its parent is named as
  kohya_ss' layouts name it (``img``, ``image(s)``, ``train(ing)``, ``dataset``, ``data``,
  ``reg…``, ``regularization``, ``class…``), or its parent holds another kohya-named folder
  with pictures. A lone ``3_beach`` folder of photos is not one;
* **dreambooth** — named ``instance_images``/``instance_data``/``instance_data_dir`` (or
  ``class_…``, regularisation) with at least one picture;
* **imagefolder** — it holds a ``metadata.jsonl`` (Hugging Face datasets' imagefolder) and
  it or a folder below it (``train/``) holds a picture.

Training folders are grouped into sets: kohya-named folders by their parent (the parent of
``img/`` and ``reg/`` when both are there: one set with its regularisation); folders inside
an imagefolder (``metadata.jsonl``) with it; any other folder alone. A folder is
**regularisation** when it or its parent is named ``reg``, ``reg_…``/``reg-…``,
``regularization``/``regularisation`` or ``class_…``. A set's name is the names of its
training (not regularisation) folders, joined with ", " (an imagefolder's: its root's).

:func:`read_captions` reads each caption file (at most ``MAX_CAPTION_BYTES``) and each
``metadata.jsonl`` line, giving a :class:`~safeguard.toolchain.records.PromptRecord` of
source ``caption`` whose location is the picture's path, or a ``RecordError``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from safeguard.config import Limits
from safeguard.errors import ItemError, one_line, os_reason, short_name, tidy
from safeguard.toolchain.installations import FileRef, Listing, Opener, base, join, parent
from safeguard.toolchain.records import MAX_ROWS, PromptRecord, RecordError, decode

#: pictures with a same-named caption that make a folder a captioned training folder
MIN_CAPTIONED = 3
#: longest caption file read (bytes)
MAX_CAPTION_BYTES = 64 << 10
#: longest metadata.jsonl read (bytes), and most caption records one set gives
MAX_METADATA_BYTES = 64 << 20
MAX_CAPTIONS = 100_000

PICTURE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".avif",
                                ".jxl", ".tif", ".tiff"})
#: caption extensions, in the order one is chosen when a picture has several
CAPTION_EXTENSIONS = (".txt", ".caption")
_KOHYA_NAME = re.compile(r"([1-9]\d{0,3})_(\S.*)")
_KOHYA_PARENTS = re.compile(
    r"img|images?|train(?:ing)?(?:[_ -]?data)?|datasets?|data|reg(?:[_-].*)?|"
    r"regulari[sz]ation.*|class.*", re.IGNORECASE)
_REG = re.compile(r"reg|reg[_-].*|regulari[sz]ation.*|class[_-].*", re.IGNORECASE)
_DREAMBOOTH = re.compile(r"(instance|class)_(?:images|data|data_dir)", re.IGNORECASE)
_TEXT_KEYS = ("text", "caption", "prompt", "additional_feature")


@dataclass(frozen=True)
class TrainingFolder:
    """One folder of a training set: its path, kohya_ss' repeat count (None when its name
    gives none), its name (the concept: "subject" of ``10_subject``) and whether it holds
    regularisation pictures."""

    path: str
    repeats: int | None
    name: str
    regularisation: bool


@dataclass(frozen=True)
class TrainingSet:
    """Folders laid out for fine-tuning: the set's root folder, name, folders, pictures,
    captions (picture path → its caption file) and ``metadata.jsonl`` files."""

    root: str
    name: str
    folders: tuple[TrainingFolder, ...]
    pictures: tuple[FileRef, ...]
    captions: tuple[tuple[str, FileRef], ...]
    metadata_files: tuple[FileRef, ...]


def _split(name: str) -> tuple[str, str]:
    stem, dot, ext = name.rpartition(".")
    return (stem, f".{ext}".lower()) if dot and stem else (name, "")


@dataclass
class _Folder:
    path: str
    pictures: list[FileRef]
    captions: dict[str, FileRef]  # picture path -> caption file
    metadata: FileRef | None


def _survey(ix: Listing, folder: str) -> _Folder:
    """A folder's pictures, their same-named captions, and its metadata.jsonl."""
    files = ix.files_in(folder)
    stems: dict[str, dict[str, FileRef]] = {}
    pictures = []
    for ref in files:
        stem, ext = _split(base(ref.path))
        if ext in PICTURE_EXTENSIONS:
            pictures.append(ref)
        elif ext in CAPTION_EXTENSIONS:
            stems.setdefault(stem.lower(), {})[ext] = ref
    captions = {}
    for picture in pictures:
        found = stems.get(_split(base(picture.path))[0].lower(), {})
        chosen = next((found[ext] for ext in CAPTION_EXTENSIONS if ext in found), None)
        if chosen is not None:
            captions[picture.path] = chosen
    return _Folder(folder, pictures, captions, ix.file(folder, "metadata.jsonl"))


def _kohya(name: str) -> tuple[int, str] | None:
    match = _KOHYA_NAME.fullmatch(name)
    if match is None:
        return None
    repeats = int(match.group(1))
    return None if 1900 <= repeats <= 2100 else (repeats, match.group(2))


def find_training_sets(files: Sequence[FileRef]) -> list[TrainingSet]:
    """The training sets in a listing of an evidence's files, sorted by root."""
    ix = Listing(files)
    surveys = {folder: _survey(ix, folder) for folder in ix.files}
    jsonl_roots = {folder for folder, s in surveys.items() if s.metadata is not None and (
        s.pictures or any(surveys.get(d) and surveys[d].pictures for d in ix.subdirs(folder)))}

    def kohya_folder(folder: str) -> bool:
        s = surveys.get(folder)
        if s is None or not s.pictures or _kohya(base(folder)) is None:
            return False
        if s.captions or _KOHYA_PARENTS.fullmatch(base(parent(folder))):
            return True
        return any(d != folder and _kohya(base(d)) and surveys.get(d) and surveys[d].pictures
                   for d in ix.subdirs(parent(folder)))

    groups: dict[str, list[str]] = {}  # set root -> its folders
    for folder, s in sorted(surveys.items()):
        if not s.pictures:
            continue
        up = parent(folder)
        jsonl = next((r for r in (folder, up, parent(up)) if r in jsonl_roots and (
            r == folder or folder.startswith(r + "/"))), None)
        if jsonl is not None:
            groups.setdefault(jsonl, []).append(folder)
        elif kohya_folder(folder):
            reg_beside = _KOHYA_PARENTS.fullmatch(base(up)) is not None and any(
                _REG.fullmatch(base(d)) for d in ix.subdirs(parent(up)) if d != up)
            # reg/ alone, or img/ and reg/ side by side: one set above them
            root = parent(up) if _REG.fullmatch(base(up)) or reg_beside else up
            groups.setdefault(root, []).append(folder)
        elif _DREAMBOOTH.fullmatch(base(folder)):
            siblings = [d for d in ix.subdirs(up) if _DREAMBOOTH.fullmatch(base(d))]
            groups.setdefault(up if len(siblings) > 1 else folder, []).append(folder)
        elif len(s.captions) >= MIN_CAPTIONED and 2 * len(s.captions) >= len(s.pictures):
            groups.setdefault(folder, []).append(folder)
    return [_training_set(root, folders, surveys, root in jsonl_roots)
            for root, folders in sorted(groups.items())]


def _training_set(root: str, paths: list[str], surveys: dict[str, _Folder],
                  imagefolder: bool) -> TrainingSet:
    """A set of ``paths`` under ``root``; an imagefolder's name is its root folder's."""
    folders = []
    for path in sorted(paths):
        kohya = _kohya(base(path))
        dreambooth = _DREAMBOOTH.fullmatch(base(path))
        regularisation = bool(_REG.fullmatch(base(path)) or _REG.fullmatch(base(parent(path)))
                              or (dreambooth and dreambooth.group(1).lower() == "class"))
        repeats, name = kohya if kohya else (None, base(path) or root)
        folders.append(TrainingFolder(path, repeats, name, regularisation))
    concepts = [f.name for f in folders if not f.regularisation] or [f.name for f in folders]
    pictures = [ref for path in sorted(paths) for ref in surveys[path].pictures]
    captions = [(picture, ref) for path in sorted(paths)
                for picture, ref in sorted(surveys[path].captions.items())]
    metadata = [s.metadata for s in (surveys.get(root), *(surveys[p] for p in sorted(paths)))
                if s is not None and s.metadata is not None]
    name = base(root) if imagefolder else ", ".join(dict.fromkeys(concepts))
    return TrainingSet(root, name or base(root), tuple(folders),
                       tuple(pictures), tuple(captions),
                       tuple({ref.path: ref for ref in metadata}.values()))


# -- captions ----------------------------------------------------------------------------------


def _read(ref: FileRef, open_file: Opener, limit: int, what: str) -> bytes:
    """The whole file, or RecordError-worthy ValueError when over ``limit`` or unreadable."""
    if ref.size is not None and ref.size > limit:
        raise ValueError(f"{what} not read: {ref.size} bytes, over the limit of {limit} bytes")
    try:
        with open_file(ref) as stream:
            data = stream.read(limit + 1)
    except OSError as exc:
        raise ValueError(f"{what} not read: {os_reason(exc)}") from exc
    except ItemError as exc:
        raise ValueError(f"{what} not read: {one_line(exc)}") from exc
    if len(data) > limit:
        raise ValueError(f"{what} not read: over the limit of {limit} bytes")
    return bytes(data)


def read_captions(ts: TrainingSet, open_file: Opener, limits: Limits
                  ) -> Iterator[PromptRecord | RecordError]:
    """The captions of a training set's pictures: each caption file, then each
    ``metadata.jsonl`` line naming a picture; what could not be read as RecordErrors.
    ``limits.max_nested_archive_bytes`` bounds a metadata.jsonl as well."""
    count = 0
    for picture, ref in ts.captions:
        if count >= MAX_CAPTIONS:
            yield RecordError(ref, f"training set has more than {MAX_CAPTIONS} captions: the "
                                   "rest are not read")
            return
        try:
            data = _read(ref, open_file, MAX_CAPTION_BYTES, "caption")
        except ValueError as exc:
            yield RecordError(ref, tidy(str(exc)))
            continue
        text, error = decode(data, ref, "caption")
        if error is not None:
            yield error
        if caption := text.replace("\x00", "").strip():
            count += 1
            yield PromptRecord("caption", ref, picture, caption, output=base(picture))
    limit = min(MAX_METADATA_BYTES, limits.max_nested_archive_bytes)
    for ref in ts.metadata_files:
        for found in _jsonl(ref, open_file, limit):
            if isinstance(found, PromptRecord):
                count += 1
                if count > MAX_CAPTIONS:
                    yield RecordError(ref, f"training set has more than {MAX_CAPTIONS} "
                                           "captions: the rest are not read")
                    return
            yield found


def _jsonl(ref: FileRef, open_file: Opener, limit: int) -> Iterator[PromptRecord | RecordError]:
    """``metadata.jsonl``: ``{"file_name": …, "text": …}`` a line (the text under ``text``,
    ``caption``, ``prompt`` or ``additional_feature``); a line that is not JSON is an
    error, the first ten said, the rest counted."""
    try:
        data = _read(ref, open_file, limit, "metadata.jsonl")
    except ValueError as exc:
        yield RecordError(ref, tidy(str(exc)))
        return
    text, error = decode(data, ref, "metadata.jsonl")
    if error is not None:
        yield error
    folder, bad = parent(ref.path), 0
    for number, line in enumerate(text.splitlines(), 1):
        if number > MAX_ROWS:
            yield RecordError(ref, f"metadata.jsonl has more than {MAX_ROWS} lines: the rest "
                                   "are not read")
            break
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except Exception as exc:
            bad += 1
            if bad <= 10:
                yield RecordError(ref, tidy(f"metadata.jsonl line {number} is not valid JSON: "
                                            f"{one_line(exc)}"))
            continue
        if not isinstance(row, dict) or not isinstance(row.get("file_name"), str):
            continue
        caption = next((row[k] for k in _TEXT_KEYS if isinstance(row.get(k), str)), None)
        if caption is None or not caption.strip():
            continue
        name = row["file_name"].replace("\\", "/").strip("/")
        yield PromptRecord("caption", ref, tidy(join(folder, short_path(name))),
                           caption.replace("\x00", "").strip()[:MAX_CAPTION_BYTES],
                           output=base(name) or None)
    if bad > 10:
        yield RecordError(ref, f"metadata.jsonl: {bad - 10} more lines are not valid JSON")


def short_path(name: str) -> str:
    """A file name from a metadata line, cut as messages cut names (hostile lines can hold
    anything)."""
    return name if len(name) <= 1024 else short_name(name)
