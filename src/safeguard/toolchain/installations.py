"""Generator installations known by their folder layout, from a listing of an evidence's files.

Pure: :func:`find_installations` reads no file, only the paths (and sizes) the scan listed.
The listing is indexed once by folder (each folder's files and sub-folders, names compared
case-insensitively, as Windows keeps them), then every folder is asked the rules below: the
work is linear in the listing, whatever its size.

Each rule names files and folders a project's own repository (or installer) puts at its root;
one file alone is never enough where the name is common (``main.py``, ``webui.py``):

* **Fooocus** — ``fooocus_version.py``, or ``entry_with_update.py`` beside ``modules/``
  (asked before AUTOMATIC1111: Fooocus also has ``webui.py``, ``launch.py`` and ``modules/``);
* **Forge** — ``webui.py``, ``modules/`` and ``modules_forge/``;
* **SD.Next** — ``webui.py``, ``modules/`` and ``installer.py``;
* **AUTOMATIC1111** — ``webui.py`` and ``modules/`` with ``launch.py``,
  ``models/Stable-diffusion/`` or ``webui-user.bat``/``.sh``;
* **ComfyUI** — ``main.py`` and ``comfy/`` with ``nodes.py``, ``comfy_extras/`` or
  ``custom_nodes/``; or ``user/default/comfy.settings.json`` (ComfyUI Desktop's base
  folder, whose code lives in the application). A portable build's ``python_embeded/`` and
  ``run_*.bat`` in the parent folder are added to its markers;
* **InvokeAI** — ``invokeai.yaml`` (3.x and later), ``databases/invokeai.db`` or
  ``invokeai.init`` (2.x) in its root folder; its version from the
  ``invokeai-<version>.dist-info`` folder of the root's ``.venv``, when listed;
* **kohya_ss** — ``kohya_gui.py`` with ``sd-scripts/``, ``kohya_gui/``, ``gui.sh`` or
  ``gui.bat``.

An installation's ``markers`` are the item paths that gave it away (a folder's path ends in
"/"); ``model_dirs`` and ``output_dirs`` the folders of its layout present in the listing;
``records`` the files under it that :mod:`safeguard.toolchain.records` reads (prompt history,
styles, workflows, image databases, logs, training configurations), at most ``MAX_RECORDS``
an installation. An installation inside another's folder (ComfyUI inside an AUTOMATIC1111
extension) is its own installation, and the outer one's walk for records stops at its root.
Only InvokeAI's version can be told from paths; the others' is None (their version is in a
file's contents: ``fooocus_version.py``, ``comfyui_version.py``, kohya_ss' ``.release``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

#: most record files listed for one installation
MAX_RECORDS = 10_000
#: most folders one walk for records visits
MAX_WALK_FOLDERS = 100_000


@dataclass(frozen=True)
class FileRef:
    """One file of the evidence: its item's id, its path inside the evidence ("/"-separated)
    and size (None when unknown)."""

    item_id: int
    path: str
    size: int | None


#: opens a listed file for reading; may raise OSError or safeguard.errors.ItemError
Opener = Callable[[FileRef], BinaryIO]


@dataclass(frozen=True)
class Installation:
    """One generator installation: which generator, its root folder, what gave it away, its
    model and output folders, the record files found under it, and its version if known."""

    generator: str
    root: str
    markers: tuple[str, ...]
    model_dirs: tuple[str, ...]
    output_dirs: tuple[str, ...]
    records: tuple[FileRef, ...]
    version: str | None


def join(folder: str, name: str) -> str:
    """``folder/name``; the evidence's top folder is ""."""
    return f"{folder}/{name}" if folder else name


def parent(path: str) -> str:
    """The folder holding ``path`` ("" at the top)."""
    return path.rpartition("/")[0]


def base(path: str) -> str:
    """The last part of ``path``."""
    return path.rpartition("/")[2]


class Listing:
    """A listing indexed by folder: each folder's files and sub-folders by lower-cased name.
    Built in one pass: a folder is added to its parent once, when first seen."""

    def __init__(self, files: Sequence[FileRef]) -> None:
        self.files: dict[str, dict[str, FileRef]] = {}
        self.dirs: dict[str, dict[str, str]] = {"": {}}
        for ref in files:
            path = ref.path.strip("/")
            if not path:
                continue
            folder, _, name = path.rpartition("/")
            self.files.setdefault(folder, {}).setdefault(name.lower(), ref)
            links = []
            while folder not in self.dirs:
                self.dirs[folder] = {}
                up, _, part = folder.rpartition("/")
                links.append((up, part))
                folder = up
            for up, part in links:
                self.dirs[up].setdefault(part.lower(), part)

    def folder(self, folder: str, rel: str) -> str | None:
        """The real path of the folder ``rel`` ("a/b", any case) under ``folder``, or None."""
        for part in rel.split("/"):
            name = self.dirs.get(folder, {}).get(part.lower())
            if name is None:
                return None
            folder = join(folder, name)
        return folder

    def file(self, folder: str, rel: str) -> FileRef | None:
        """The file ``rel`` ("a/b.txt", any case) under ``folder``, or None."""
        up, _, name = rel.rpartition("/")
        where = self.folder(folder, up) if up else folder
        return None if where is None else self.files.get(where, {}).get(name.lower())

    def subdirs(self, folder: str) -> list[str]:
        """The real paths of ``folder``'s sub-folders, sorted."""
        return sorted(join(folder, name) for name in self.dirs.get(folder, {}).values())

    def files_in(self, folder: str) -> list[FileRef]:
        """``folder``'s own files, sorted by path."""
        return sorted(self.files.get(folder, {}).values(), key=lambda ref: ref.path)

    def walk(self, folder: str, skip: Callable[[str], bool] = lambda path: False
             ) -> Iterator[FileRef]:
        """The files under ``folder`` in path order, not entering folders ``skip`` refuses,
        at most ``MAX_WALK_FOLDERS`` folders."""
        stack, visited = [folder], 0
        while stack and visited < MAX_WALK_FOLDERS:
            here = stack.pop()
            visited += 1
            yield from self.files_in(here)
            stack += [d for d in reversed(self.subdirs(here)) if not skip(d)]


# -- the rules ------------------------------------------------------------------------------


def _present(ix: Listing, folder: str, names: Sequence[str]) -> list[str]:
    """The item paths of the names present under ``folder``: files as they are, folders
    (a name ending in "/") with a trailing "/"."""
    found = []
    for name in names:
        if name.endswith("/"):
            real = ix.folder(folder, name[:-1])
            if real is not None:
                found.append(real + "/")
        elif (ref := ix.file(folder, name)) is not None:
            found.append(ref.path.strip("/"))
    return found


def _webui_family(ix: Listing, folder: str) -> tuple[str, list[str]] | None:
    """Fooocus, Forge, SD.Next or AUTOMATIC1111 (asked in that order: they share files)."""
    fooocus = _present(ix, folder, ("fooocus_version.py", "entry_with_update.py"))
    has_modules = ix.folder(folder, "modules") is not None
    if any(m.endswith("fooocus_version.py") for m in fooocus) or (fooocus and has_modules):
        return "Fooocus", fooocus
    if ix.file(folder, "webui.py") is None or not has_modules:
        return None
    webui = _present(ix, folder, ("webui.py", "modules/"))
    if forge := _present(ix, folder, ("modules_forge/",)):
        return "Forge", webui + forge
    if sdnext := _present(ix, folder, ("installer.py",)):
        return "SD.Next", webui + sdnext
    a1111 = _present(ix, folder, ("launch.py", "models/Stable-diffusion/", "webui-user.bat",
                                  "webui-user.sh"))
    return ("AUTOMATIC1111", webui + a1111) if a1111 else None


def _comfyui(ix: Listing, folder: str) -> tuple[str, list[str]] | None:
    markers: list[str] = []
    if ix.file(folder, "main.py") is not None and ix.folder(folder, "comfy") is not None:
        extra = _present(ix, folder, ("nodes.py", "comfy_extras/", "custom_nodes/"))
        if extra:
            markers = _present(ix, folder, ("main.py", "comfy/")) + extra
    markers += _present(ix, folder, ("user/default/comfy.settings.json",))
    if not markers:
        return None
    if folder:  # ComfyUI_windows_portable/ComfyUI: the portable build around it
        up = parent(folder)
        portable = _present(ix, up, ("python_embeded/",))
        if portable:
            bats = [ref.path for ref in ix.files_in(up)
                    if re.fullmatch(r"run_\w+\.bat", base(ref.path), re.IGNORECASE)]
            markers += portable + bats
    return "ComfyUI", markers


def _invokeai(ix: Listing, folder: str) -> tuple[str, list[str]] | None:
    markers = _present(ix, folder, ("invokeai.yaml", "databases/invokeai.db", "invokeai.init"))
    return ("InvokeAI", markers) if markers else None


def _kohya(ix: Listing, folder: str) -> tuple[str, list[str]] | None:
    if ix.file(folder, "kohya_gui.py") is None:
        return None
    extra = _present(ix, folder, ("sd-scripts/", "kohya_gui/", "gui.sh", "gui.bat"))
    return ("kohya_ss", _present(ix, folder, ("kohya_gui.py",)) + extra) if extra else None


_RULES = (_webui_family, _comfyui, _invokeai, _kohya)
#: the file names in a folder that make it worth asking the rules
_TRIGGERS = frozenset({"fooocus_version.py", "entry_with_update.py", "webui.py", "main.py",
                       "invokeai.yaml", "invokeai.init", "kohya_gui.py"})
_TRIGGER_DIRS = frozenset({"databases", "user"})


def find_installations(files: Sequence[FileRef]) -> list[Installation]:
    """The generator installations in a listing of an evidence's files, sorted by (root,
    generator); each reported once, with its root folder."""
    ix = Listing(files)
    found: list[tuple[str, str, list[str]]] = []
    for folder in ix.dirs:
        names = ix.files.get(folder, {})
        if not (_TRIGGERS & names.keys() or _TRIGGER_DIRS & ix.dirs[folder].keys()):
            continue
        for rule in _RULES:
            hit = rule(ix, folder)
            if hit is not None:
                found.append((folder, hit[0], hit[1]))
    found.sort(key=lambda hit: (hit[0], hit[1]))
    roots = {folder for folder, _, _ in found}
    return [_describe(ix, folder, generator, markers, roots)
            for folder, generator, markers in found]


def _describe(ix: Listing, root: str, generator: str, markers: list[str],
              roots: set[str]) -> Installation:
    models = ix.folder(root, "models")
    model_dirs = (ix.subdirs(models) or [models]) if models is not None else []
    outputs: list[str] = []
    version = None
    if generator in ("AUTOMATIC1111", "Forge", "SD.Next"):
        model_dirs += _present_dirs(ix, root, ("embeddings",))
        out = ix.folder(root, "outputs")
        outputs = (ix.subdirs(out) or [out]) if out is not None else []
        outputs += _present_dirs(ix, root, ("log/images",))
    elif generator == "ComfyUI":
        outputs = _present_dirs(ix, root, ("output",))
    elif generator == "InvokeAI":
        outputs = _present_dirs(ix, root, ("outputs/images",)) or _present_dirs(
            ix, root, ("outputs",))
        version = _invokeai_version(ix, root)
    else:  # Fooocus, kohya_ss (whose outputs are the models it trained)
        outputs = _present_dirs(ix, root, ("outputs",))
    others = {r for r in roots if r != root}
    records = sorted(_records(ix, root, generator, others), key=lambda ref: ref.path)
    return Installation(generator, root, tuple(dict.fromkeys(markers)), tuple(model_dirs),
                        tuple(dict.fromkeys(outputs)), tuple(records[:MAX_RECORDS]), version)


def _present_dirs(ix: Listing, folder: str, rels: Sequence[str]) -> list[str]:
    return [real for rel in rels if (real := ix.folder(folder, rel)) is not None]


def _invokeai_version(ix: Listing, root: str) -> str | None:
    """From ``.venv/lib/python3.X/site-packages/invokeai-<version>.dist-info`` (or
    ``.venv/Lib/site-packages`` on Windows)."""
    lib = ix.folder(root, ".venv/lib")
    if lib is None:
        return None
    places = [lib, *ix.subdirs(lib)]
    for place in places:
        packages = ix.folder(place, "site-packages")
        for folder in ix.subdirs(packages) if packages else []:
            match = re.fullmatch(r"invokeai-([\w.+!-]{1,40})\.dist-info", base(folder),
                                 re.IGNORECASE)
            if match:
                return match.group(1)
    return None


_A1111_RECORDS = ("params.txt", "styles.csv", "config.json", "ui-config.json",
                  "log/images/log.csv", "outputs/save/log.csv")
#: kohya_ss folders that hold its code, libraries or shipped examples, not a user's configs
_KOHYA_SKIP = frozenset({"sd-scripts", "kohya_gui", "localizations", "assets", "docs",
                         "examples", "test", "tests", "tools", "setup", "config_files",
                         "models", "node_modules", "__pycache__", "dataset", "outputs",
                         "logs"})
_KOHYA_SKIP_FILES = frozenset({"pyproject.toml", "package.json", "_typos.toml",
                               "package-lock.json", "config example.toml"})


def _records(ix: Listing, root: str, generator: str, others: set[str]) -> Iterator[FileRef]:
    """The record files of one installation."""
    if generator in ("AUTOMATIC1111", "Forge", "SD.Next"):
        yield from filter(None, (ix.file(root, rel) for rel in _A1111_RECORDS))
    elif generator == "ComfyUI":
        user = ix.folder(root, "user")
        for profile in ix.subdirs(user) if user else []:
            if (settings := ix.file(profile, "comfy.settings.json")) is not None:
                yield settings
            workflows = ix.folder(profile, "workflows")
            if workflows is not None:
                yield from (ref for ref in ix.walk(workflows, others.__contains__)
                            if ref.path.lower().endswith(".json"))
    elif generator == "InvokeAI":
        if (db := ix.file(root, "databases/invokeai.db")) is not None:
            yield db
        outputs = ix.folder(root, "outputs")
        for folder in [outputs, *ix.subdirs(outputs)] if outputs else []:
            yield from filter(None, (ix.file(folder, name)
                                     for name in ("invoke_log.txt", "dream_log.txt")))
    elif generator == "Fooocus":
        outputs = ix.folder(root, "outputs")
        for folder in [outputs, *ix.subdirs(outputs)] if outputs else []:
            if (log := ix.file(folder, "log.html")) is not None:
                yield log
    elif generator == "kohya_ss":
        yield from _kohya_records(ix, root, others)


def _kohya_records(ix: Listing, root: str, others: set[str]) -> Iterator[FileRef]:
    """The JSON and TOML files the GUI saved: anywhere under the root but in its code,
    library and example folders (``presets/*/user_presets`` are the user's own)."""
    presets = ix.folder(root, "presets")

    def skip(folder: str) -> bool:
        name = base(folder)
        if folder in others or name.startswith(".") or name.lower().startswith("venv"):
            return True
        if presets is not None and parent(folder) == presets:
            return False  # presets/lora: only its user_presets are entered below
        if presets is not None and parent(parent(folder)) == presets:
            return name.lower() != "user_presets"
        return parent(folder) == root and name.lower() in _KOHYA_SKIP

    shipped = {presets, *ix.subdirs(presets)} if presets is not None else set()
    for ref in ix.walk(root, skip):
        name = base(ref.path).lower()
        if name.endswith((".json", ".toml")) and name not in _KOHYA_SKIP_FILES and (
                parent(ref.path) not in shipped):
            yield ref
