"""The prompts a generator installation keeps in its records: AUTOMATIC1111-family
``params.txt``, ``styles.csv``, ``log.csv`` and ``ui-config.json``; ComfyUI's saved workflows;
InvokeAI's image database and its 2.x ``invoke_log.txt``; Fooocus' ``log.html``; kohya_ss'
training configurations (their sample prompts).

:func:`read_records` gives each prompt found as a :class:`PromptRecord` and each file (or
part of one) that could not be read as a :class:`RecordError`; it never raises. The text of
a prompt is read by the parsers that read it from a picture's own metadata
(:mod:`safeguard.provenance.generators`): A1111 infotext, ComfyUI's graphs and their walk
(each node visited once, however its links loop), InvokeAI's metadata and Dream commands.
A ComfyUI workflow gives one record (location ``workflow``): that parser gives a graph's
prompts, not the node each came from.

Bounds: a record file is read whole into memory up to ``limits.max_nested_archive_bytes``
(larger is an error, unread); at most ``MAX_ROWS`` rows, entries or prompts a file; JSON too
deeply nested is an error (the parser's own recursion limit); each prompt is cut at
``MAX_PROMPT_CHARS`` (ComfyUI's, read through the picture parser, at 4096 characters each).
InvokeAI's database is opened as the SQLite container reader opens one (a copy in memory,
query-only, ``trusted_schema`` off, a budget of query steps): a damaged page is an error, the
rows read before it are kept; a truncated file is said; rows still only in the database's
``-wal`` file are not read (InvokeAI keeps its database in WAL mode).
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import tomllib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from safeguard.config import Limits
from safeguard.errors import ItemError, one_line, os_reason, short_name, tidy
from safeguard.evidence.containers.sqlite import BASE_STEPS, STEP_GRAIN, STEPS_PER_BYTE
from safeguard.provenance.evidence import clean_text
from safeguard.provenance.generators.a1111 import infotext
from safeguard.provenance.generators.base import MAX_TEXT_CHARS, Lines, TextFields
from safeguard.provenance.generators.comfyui import MAX_NODES, read_graphs
from safeguard.provenance.generators.invokeai import InvokeAI
from safeguard.toolchain.installations import FileRef, Installation, Opener, base

#: most rows, entries or prompts read from one record file
MAX_ROWS = 100_000
#: longest prompt kept (characters)
MAX_PROMPT_CHARS = 64 << 10
#: longest InvokeAI metadata value parsed (characters)
MAX_METADATA_CHARS = 1 << 20
_CHUNK = 1 << 20


@dataclass(frozen=True)
class PromptRecord:
    """One prompt found in a record file: which kind of record, the file, where in it, the
    prompt and negative prompt, the model (name and hash) and LoRAs it names, and the output
    picture's file name when the record names one (ComfyUI: the ``SaveImage`` file name
    prefix, its pictures being ``<prefix>_00001_.png``)."""

    source: str
    file: FileRef
    location: str
    prompt: str
    negative: str | None = None
    model: str | None = None
    model_hash: str | None = None
    loras: tuple[str, ...] = ()
    output: str | None = None


@dataclass(frozen=True)
class RecordError:
    """A record file, or part of one, that could not be read; ``reason`` is one line."""

    file: FileRef
    reason: str


Found = PromptRecord | RecordError


class _Fail(Exception):
    """Stops reading one file; its message is the RecordError's reason."""


def read_records(inst: Installation, open_file: Opener, limits: Limits) -> Iterator[Found]:
    """The prompts in ``inst``'s record files, in their order, and what could not be read."""
    for ref in inst.records:
        reader = _reader(inst.generator, ref)
        if reader is None:
            continue  # a settings file with no prompt in it (config.json, comfy.settings.json)
        label, read = reader
        try:
            yield from read(ref, _read_bytes(ref, open_file, limits, label), label)
        except _Fail as exc:
            yield RecordError(ref, tidy(str(exc)))
        except Exception as exc:  # a parser's bug must not stop the others
            yield RecordError(ref, tidy(f"{label} not read: {one_line(exc)}"))


Reader = Callable[[FileRef, bytes, str], Iterator[Found]]


def _reader(generator: str, ref: FileRef) -> tuple[str, Reader] | None:
    """(label, reader) for a record file, by its name and the installation's generator."""
    name = base(ref.path).lower()
    if generator in ("AUTOMATIC1111", "Forge", "SD.Next"):
        return {"params.txt": ("A1111 params.txt", _a1111_params),
                "styles.csv": ("A1111 styles.csv", _a1111_styles),
                "log.csv": ("A1111 log.csv", _a1111_log),
                "ui-config.json": ("A1111 ui-config.json", _a1111_ui_config)}.get(name)
    if generator == "ComfyUI":
        return None if name == "comfy.settings.json" else ("ComfyUI workflow", _comfyui)
    if generator == "InvokeAI":
        return ("InvokeAI database", _invokeai_db) if name.endswith(".db") else (
            "InvokeAI log", _invokeai_log)
    if generator == "Fooocus":
        return "Fooocus log.html", _fooocus_log
    if generator == "kohya_ss":
        return "kohya_ss training config", _kohya_config
    return None


# -- reading ---------------------------------------------------------------------------------


def _read_bytes(ref: FileRef, open_file: Opener, limits: Limits, label: str) -> bytes:
    """The whole file, at most ``limits.max_nested_archive_bytes``."""
    limit = limits.max_nested_archive_bytes
    if ref.size is not None and ref.size > limit:
        raise _Fail(f"{label} not read: {ref.size} bytes, over the limit of {limit} bytes")
    try:
        with open_file(ref) as stream:
            data = bytearray()
            while chunk := stream.read(min(_CHUNK, limit + 1 - len(data))):
                data += chunk
                if len(data) > limit:
                    raise _Fail(f"{label} not read: over the limit of {limit} bytes")
    except OSError as exc:
        raise _Fail(f"{label} not read: {os_reason(exc)}") from exc
    except ItemError as exc:
        raise _Fail(f"{label} not read: {one_line(exc)}") from exc
    return bytes(data)


def decode(data: bytes, ref: FileRef, label: str) -> tuple[str, RecordError | None]:
    """UTF-8 text (a byte-order mark dropped); bytes that are not UTF-8 are replaced, and a
    RecordError says so."""
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        text = data.decode("utf-8-sig", "replace")
        return text, RecordError(ref, tidy(f"{label} is not valid UTF-8 (byte {exc.start}): "
                                           "read with replacement characters"))


def _text(ref: FileRef, data: bytes, label: str) -> Iterator[RecordError | str]:
    """The decoding's RecordError (if any), then the text."""
    text, error = decode(data, ref, label)
    if error is not None:
        yield error
    yield text


def _json(text: str, label: str) -> Any:
    try:
        return json.loads(text)
    except Exception as exc:  # ValueError, RecursionError on deep nesting
        reason = "nested too deeply" if isinstance(exc, RecursionError) else one_line(exc)
        raise _Fail(f"{label} is not valid JSON: {reason}") from exc


def _prompt(value: Any) -> str | None:
    return clean_text(value, MAX_PROMPT_CHARS)


def _short(value: Any) -> str | None:
    return clean_text(value, 512)


_LORA_TAG = re.compile(r"<(?:lora|lyco):([^:<>]{1,256})(?::[^<>]{0,64})?>", re.IGNORECASE)


def prompt_loras(prompt: str) -> tuple[str, ...]:
    """The LoRAs an A1111-style prompt calls with ``<lora:name:weight>`` / ``<lyco:…>``."""
    return tuple(dict.fromkeys(m.group(1).strip() for m in _LORA_TAG.finditer(prompt[:1 << 20])))


def _whole_text(ref: FileRef, data: bytes, label: str) -> Generator[RecordError, None, str]:
    """A record's text (what ``_text`` decodes), its decoding problems yielded on the way."""
    text = ""
    for part in _text(ref, data, label):
        if isinstance(part, str):
            text = part
        else:
            yield part
    return text


# -- AUTOMATIC1111 family ----------------------------------------------------------------------


def _a1111_params(ref: FileRef, data: bytes, label: str) -> Iterator[Found]:
    """``params.txt``: the last generation's infotext."""
    text = yield from _whole_text(ref, data, label)
    parsed = infotext(text) if len(text) <= MAX_METADATA_CHARS else None
    if parsed is None:
        raise _Fail(f"{label} is not A1111 generation parameters")
    prompt, negative, params = parsed
    yield PromptRecord("a1111-params", ref, "last generation", _prompt(prompt) or "",
                       _prompt(negative), _short(params.get("Model")),
                       _short(params.get("Model hash")), prompt_loras(prompt))


def _csv_rows(ref: FileRef, data: bytes, label: str) -> Iterator[RecordError | list[str]]:
    """The rows of a CSV file (strict: an unclosed quote is an error, the rows before it
    kept), at most ``MAX_ROWS``."""
    text = yield from _whole_text(ref, data, label)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    count = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _Fail(f"{label} is damaged at line {reader.line_num}: {one_line(exc)}; "
                        "the rows before it are read") from exc
        count += 1
        if count > MAX_ROWS:
            raise _Fail(f"{label} has more than {MAX_ROWS} rows: the rest are not read")
        yield row


def _csv_table(ref: FileRef, data: bytes, label: str, keys: tuple[str, ...],
               header: str) -> Iterator[RecordError | tuple[int, Callable[[str], str | None]]]:
    """The rows of a CSV record whose columns are ``keys`` in that order, unless a first row
    naming ``prompt`` and ``header`` says where each is: (row number, cell reader)."""
    columns = {key: index for index, key in enumerate(keys)}
    number = 0
    for row in _csv_rows(ref, data, label):
        if isinstance(row, RecordError):
            yield row
            continue
        lowered = [cell.strip().lower() for cell in row]
        if number == 0 and "prompt" in lowered and header in lowered:
            columns = {key: lowered.index(key) if key in lowered else -1 for key in keys}
            continue
        number += 1
        yield number, _cells(row, columns)


def _a1111_styles(ref: FileRef, data: bytes, label: str) -> Iterator[Found]:
    """``styles.csv``: ``name,prompt,negative_prompt`` (a header row first)."""
    for found in _csv_table(ref, data, label, ("name", "prompt", "negative_prompt"), "name"):
        if isinstance(found, RecordError):
            yield found
            continue
        number, cell = found
        prompt, negative = _prompt(cell("prompt")), _prompt(cell("negative_prompt"))
        if prompt or negative:
            name = _short(cell("name"))
            where = f"row {number} ({short_name(name)})" if name else f"row {number}"
            yield PromptRecord("a1111-styles", ref, tidy(where), prompt or "", negative,
                               loras=prompt_loras(prompt or ""))


def _cells(row: list[str], columns: dict[str, int]) -> Callable[[str], str | None]:
    def cell(key: str) -> str | None:
        index = columns.get(key, -1)
        return row[index] if 0 <= index < len(row) else None
    return cell


_LOG_COLUMNS = ("prompt", "seed", "width", "height", "sampler", "cfgs", "steps", "filename",
                "negative_prompt", "sd_model_name", "sd_model_hash")


def _a1111_log(ref: FileRef, data: bytes, label: str) -> Iterator[Found]:
    """``log.csv`` of pictures kept with the Save button: prompt, seed, …, filename,
    negative prompt, model name and hash (a header row first, when the file was new)."""
    for found in _csv_table(ref, data, label, _LOG_COLUMNS, "filename"):
        if isinstance(found, RecordError):
            yield found
            continue
        number, cell = found
        prompt, negative = _prompt(cell("prompt")), _prompt(cell("negative_prompt"))
        if prompt or negative:
            output = _short(cell("filename"))
            yield PromptRecord("a1111-log", ref, f"row {number}", prompt or "", negative,
                               _short(cell("sd_model_name")), _short(cell("sd_model_hash")),
                               prompt_loras(prompt or ""),
                               base(output.replace("\\", "/")) if output else None)


def _a1111_ui_config(ref: FileRef, data: bytes, label: str) -> Iterator[Found]:
    """``ui-config.json``: the default prompts a user set for a tab."""
    text = yield from _whole_text(ref, data, label)
    config = _json(text, label)
    if not isinstance(config, dict):
        raise _Fail(f"{label} is not a JSON object")
    for tab in ("txt2img", "img2img"):
        prompt = _prompt(config.get(f"{tab}/Prompt/value"))
        negative = _prompt(config.get(f"{tab}/Negative prompt/value"))
        if prompt or negative:
            yield PromptRecord("a1111-ui-config", ref, f"{tab} default prompt", prompt or "",
                               negative, loras=prompt_loras(prompt or ""))


# -- ComfyUI ------------------------------------------------------------------------------------

_LORA_TYPES = ("LoraLoader", "LoraLoaderModelOnly")


def _comfyui(ref: FileRef, data: bytes, label: str) -> Iterator[Found]:
    """A saved workflow (UI format) or API-format prompt, read by the picture reader's
    ComfyUI parser (its graph walk traces each sampler's positive and negative prompts, each
    node once): one record a workflow, its prompt texts one a line, with the graph's
    checkpoint, LoRAs and ``SaveImage`` file name prefix."""
    text = yield from _whole_text(ref, data, label)
    if len(text) > MAX_TEXT_CHARS:
        raise _Fail(f"{label} is too large to parse ({len(text)} characters > "
                    f"{MAX_TEXT_CHARS})")
    raw = _json(text, label)
    lines = Lines()
    read_graphs(lines, None, ("workflow", text))
    fields: dict[str, list[Any]] = {}
    for line in lines.items:
        fields.setdefault(line.field, []).append(line.value)
    if "generator" not in fields:
        raise _Fail(f"{label} is not a ComfyUI graph")
    nodes = raw.get("nodes") if isinstance(raw, dict) else None
    if isinstance(nodes, list):  # UI format: values by position in widgets_values
        model, loras, output = _ui_extras(nodes[:MAX_NODES])
    else:
        model, loras, output = _api_extras(raw)
    model = model or _short(next(iter(fields.get("model", [])), None))
    prompt = _prompt("\n".join(map(str, fields.get("prompt", []))))
    negative = _prompt("\n".join(map(str, fields.get("negative_prompt", []))))
    if prompt or negative:
        yield PromptRecord("comfyui-workflow", ref, "workflow", prompt or "", negative, model,
                           None, tuple(dict.fromkeys(loras)), output)


def _api_extras(raw: Any) -> tuple[str | None, list[str], str | None]:
    """(checkpoint, LoRAs, SaveImage prefix) from API-format nodes' inputs."""
    model = output = None
    loras: list[str] = []
    for node in list(raw.values())[:MAX_NODES] if isinstance(raw, dict) else []:
        inputs = node.get("inputs") if isinstance(node, dict) else None
        if not isinstance(inputs, dict):
            continue
        kind = node.get("class_type")
        if kind in _LORA_TYPES and (name := _short(inputs.get("lora_name"))):
            loras.append(name)
        elif kind == "SaveImage" and output is None:
            output = _short(inputs.get("filename_prefix"))
        elif kind in ("CheckpointLoaderSimple", "UNETLoader") and model is None:
            model = _short(inputs.get("ckpt_name") or inputs.get("unet_name"))
    return model, loras, output


def _ui_extras(nodes: list[Any]) -> tuple[str | None, list[str], str | None]:
    """(checkpoint, LoRAs, SaveImage prefix) from UI-format nodes' ``widgets_values``."""
    model = output = None
    loras: list[str] = []
    for node in nodes:
        if not isinstance(node, dict) or not isinstance(node.get("widgets_values"), list):
            continue
        widgets, kind = node["widgets_values"], node.get("type")
        first = _short(widgets[0]) if widgets and isinstance(widgets[0], str) else None
        if first is None:
            continue
        if kind in _LORA_TYPES:
            loras.append(first)
        elif kind == "SaveImage" and output is None:
            output = first
        elif kind in ("CheckpointLoaderSimple", "UNETLoader") and model is None:
            model = first
    return model, loras, output


# -- InvokeAI ------------------------------------------------------------------------------------


def _dialect_fields(key: str, text: str) -> dict[str, Any]:
    """The first value of each field the InvokeAI dialect reads from one text field
    (``invokeai_metadata``, ``sd-metadata`` or ``dream``)."""
    lines = Lines()
    InvokeAI().read_texts(lines, TextFields({key: (key, text)}, lambda name: name))
    fields: dict[str, Any] = {}
    for line in lines.items:
        fields.setdefault(line.field, line.value)
    return fields


def _model_name(value: Any) -> tuple[str | None, str | None]:
    if isinstance(value, dict):
        return (_short(value.get("name") or value.get("model_name")),
                _short(value.get("hash")))
    return _short(value), None


def _invokeai_loras(metadata: dict[str, Any]) -> tuple[str, ...]:
    """4.x ``loras: [{model: {name}, weight}]``, 3.x ``[{lora: {model_name}, weight}]``."""
    found = []
    loras = metadata.get("loras")
    for lora in loras[:256] if isinstance(loras, list) else []:
        if isinstance(lora, dict):
            name, _ = _model_name(lora.get("model") or lora.get("lora"))
            if name:
                found.append(name)
    return tuple(dict.fromkeys(found))


def _invokeai_db(ref: FileRef, data: bytes, label: str) -> Iterator[Found]:
    """The ``images`` table: each picture's ``metadata`` JSON (positive and negative
    prompt, model, LoRAs), in rowid order."""
    budget = BASE_STEPS + STEPS_PER_BYTE * len(data)
    truncated = _truncation(data)
    conn = _open_database(data, budget, label)
    del data
    try:
        yield from _invokeai_rows(conn, ref, label)
    finally:
        conn.close()
    if truncated:
        yield RecordError(ref, f"{label} is truncated: {truncated}; rows on the missing pages "
                               "are not read")


def _truncation(data: bytes) -> str | None:
    """What the header says is missing of a database cut short (its page count, when the
    header's change counters agree that it is kept, times its page size), else None."""
    if len(data) < 100:
        return None
    size = int.from_bytes(data[16:18], "big")
    size = 65536 if size == 1 else size
    declared = int.from_bytes(data[28:32], "big")
    if size < 512 or size & (size - 1) or data[24:28] != data[92:96]:
        return None
    present = len(data) // size
    if declared > present or len(data) % size:
        return f"{present} of its {max(declared, present + 1)} pages are in the file"
    return None


def _open_database(data: bytes, budget: int, label: str) -> sqlite3.Connection:
    """An in-memory, query-only copy of a database, hardened as the SQLite container reader
    hardens its own (``evidence/containers/sqlite.py``): no extensions, no attached
    databases, ``trusted_schema`` off, cell sizes checked, values no longer than the file,
    a budget of query steps. A WAL-mode database is read as a rollback-journal one (SQLite
    opens no WAL database in memory): rows still only in its ``-wal`` file are not read."""
    copy = bytearray(data)
    if copy[18:20] == b"\x02\x02":
        copy[18:20] = b"\x01\x01"
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=True)
    try:
        conn.text_factory = lambda raw: raw.decode("utf-8", "replace")
        disable = getattr(conn, "enable_load_extension", None)
        if disable is not None:
            disable(False)
        for pragma in ("query_only=ON", "trusted_schema=OFF", "cell_size_check=ON"):
            conn.execute(f"PRAGMA {pragma}")
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        conn.setlimit(sqlite3.SQLITE_LIMIT_WORKER_THREADS, 0)
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max(len(copy), 1 << 20))
        conn.deserialize(copy)
        steps = 0

        def progress() -> int:
            nonlocal steps
            steps += STEP_GRAIN
            return int(steps > budget)

        conn.set_progress_handler(progress, STEP_GRAIN)
    except Exception as exc:
        conn.close()
        raise _Fail(f"{label} not read: not a readable SQLite database: {one_line(exc)}"
                    ) from exc
    return conn


def _invokeai_rows(conn: sqlite3.Connection, ref: FileRef, label: str) -> Iterator[Found]:
    try:
        columns = {row[0].lower() for row in conn.execute(
            "SELECT name FROM pragma_table_xinfo('images')")}
    except sqlite3.Error as exc:
        raise _Fail(f"{label} is damaged: {one_line(exc)}") from exc
    if not {"image_name", "metadata"} <= columns:
        raise _Fail(f"{label} has no images table with metadata")
    bad, first_bad, last, count = 0, "", None, 0
    try:
        cursor = conn.execute("SELECT rowid, image_name, metadata FROM images ORDER BY rowid")
        for rowid, name, metadata in cursor:
            last = rowid
            count += 1
            if count > MAX_ROWS:
                yield RecordError(ref, f"{label} has more than {MAX_ROWS} images: the rest "
                                       "are not read")
                break
            if not isinstance(metadata, str) or not metadata.strip():
                continue
            record = _invokeai_image(ref, str(name), metadata)
            if record is None:
                bad += 1
                first_bad = first_bad or str(name)
            else:
                yield record
    except sqlite3.Error as exc:
        after = "" if last is None else f" after rowid {last}"
        reason = ("over its budget of query steps" if str(exc) == "interrupted"
                  else one_line(exc))
        yield RecordError(ref, tidy(f"{label} is damaged{after}: {reason}; the rows before "
                                    "it are read"))
    if bad:
        yield RecordError(ref, tidy(f"{label}: {bad} images' metadata is not InvokeAI "
                                    f"metadata (first: {short_name(first_bad)})"))


def _invokeai_image(ref: FileRef, name: str, metadata: str) -> PromptRecord | None:
    """One image's record; None when its metadata is not InvokeAI's."""
    if len(metadata) > MAX_METADATA_CHARS:
        return None
    try:
        data = json.loads(metadata)
    except Exception:
        return None
    if not isinstance(data, dict):
        return None
    key = "sd-metadata" if isinstance(data.get("image"), dict) else "invokeai_metadata"
    fields = _dialect_fields(key, metadata)
    if "generator" not in fields:
        return None
    model, model_hash = _model_name(data.get("model"))
    location = tidy(f"image {short_name(name)}")
    return PromptRecord("invokeai", ref, location,
                        _prompt(data.get("positive_prompt")) or _prompt(fields.get("prompt"))
                        or "",
                        _prompt(data.get("negative_prompt")) or _prompt(
                            fields.get("negative_prompt")),
                        model or _short(fields.get("model")),
                        model_hash or _short(fields.get("model_hash")),
                        _invokeai_loras(data), _short(name))


def _invokeai_log(ref: FileRef, data: bytes, label: str) -> Iterator[Found]:
    """2.x ``invoke_log.txt`` / ``dream_log.txt``: ``<file>: <Dream command>`` lines."""
    text = yield from _whole_text(ref, data, label)
    for number, line in enumerate(text.splitlines()[:MAX_ROWS], 1):
        name, colon, command = line.partition(": ")
        if not colon or not re.fullmatch(r"[\w.\-]{1,200}\.(?:png|jpe?g|webp)", name.strip()):
            continue
        fields = _dialect_fields("dream", command)
        if "prompt" in fields:
            yield PromptRecord("invokeai-log", ref, f"line {number}", _prompt(fields["prompt"])
                               or "", _prompt(fields.get("negative_prompt")),
                               output=_short(name.strip()))


# -- Fooocus ------------------------------------------------------------------------------------


class _FooocusLog(HTMLParser):
    """Fooocus' ``log.html``: an entry per picture (``div.image-container``, or in the
    earliest logs the text after an ``<hr>``), its file name, and its ``Label`` → value
    table rows (early logs: ``Label: <b>value</b>``)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.entries: list[tuple[str | None, dict[str, str]]] = []
        self.name: str | None = None
        self.fields: dict[str, str] = {}
        self.cell: str | None = None  # "label" | "value" | "b" while inside one
        self.text: list[str] = []
        self.label: str | None = None
        self.before_b = ""
        self.started = False
        self.overflow = False
        self.split_seen = False  # the current format's <!--fooocus-log-split--> markers

    def _close_entry(self) -> None:
        if self.started and (self.fields or self.name):
            if len(self.entries) >= MAX_ROWS:
                self.overflow = True
            else:
                self.entries.append((self.name, self.fields))
        self.name, self.fields, self.label, self.started = None, {}, None, True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        css = values.get("class") or ""
        if (tag == "div" and "image-container" in css) or tag == "hr":
            self._close_entry()
        elif tag == "td" and css in ("label", "value"):
            self.cell, self.text = css, []
        elif tag == "b":
            self.before_b = "".join(self.text[-1:]) if self.cell is None else ""
            self.cell, self.text = "b", []
        elif tag in ("a", "img") and self.name is None and self.started:
            self.name = _picture_name(values.get("href") or values.get("src"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "br" and self.cell in ("value", "b"):
            self.text.append("\n")
        elif tag == "td" and self.cell in ("label", "value"):
            value = re.sub(r" ?\n ?", "\n", "".join(self.text)).strip()
            if self.cell == "label":
                self.label = value
            elif self.label and len(self.fields) < 64:
                self.fields.setdefault(self.label, value[:MAX_PROMPT_CHARS])
            self.cell = None
        elif tag == "b" and self.cell == "b":
            key = self.before_b.strip()
            if key.endswith(":") and len(self.fields) < 64:
                self.fields.setdefault(key[:-1].strip(),
                                       "".join(self.text).strip()[:MAX_PROMPT_CHARS])
            self.cell, self.text = None, []

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            if sum(map(len, self.text)) < MAX_PROMPT_CHARS:
                self.text.append(data)
            return
        self.text = [data]  # early logs: the label before a <b>, or a <p>file name</p>
        if self.started and self.name is None:
            self.name = _picture_name(data.strip())

    def handle_comment(self, data: str) -> None:
        self.split_seen = self.split_seen or data.strip() == "fooocus-log-split"

    def finish(self) -> None:
        self._close_entry()


def _picture_name(value: str | None) -> str | None:
    if not value:
        return None
    name = base(value.replace("\\", "/")).strip()
    ok = re.fullmatch(r"[^\s<>\"']{1,255}\.(?:png|jpe?g|webp)", name, re.IGNORECASE)
    return name if ok else None


def _fooocus_log(ref: FileRef, data: bytes, label: str) -> Iterator[Found]:
    text = yield from _whole_text(ref, data, label)
    parser = _FooocusLog()
    for start in range(0, len(text), 1 << 16):
        parser.feed(text[start:start + (1 << 16)])
    cut = bool(parser.rawdata) or (parser.split_seen and not text.rstrip().lower().endswith(
        "</html>"))
    parser.finish()
    for name, fields in parser.entries:
        prompt, negative = _prompt(fields.get("Prompt")), _prompt(fields.get("Negative Prompt"))
        if not (prompt or negative):
            continue
        loras = [lora.rpartition(" : ")[0].strip() or lora.strip() for key, lora in
                 fields.items() if re.fullmatch(r"LoRA \d{1,3}", key)]
        where = tidy(f"image {short_name(name)}") if name else "an entry without a file name"
        yield PromptRecord("fooocus-log", ref, where, prompt or "", negative,
                           _short(fields.get("Base Model")), None,
                           tuple(dict.fromkeys(filter(None, map(_short, loras)))), name)
    if parser.overflow:
        yield RecordError(ref, f"{label} has more than {MAX_ROWS} entries: the rest are not read")
    if cut:
        yield RecordError(ref, f"{label} ends early: its last entry may be cut off")


# -- kohya_ss -------------------------------------------------------------------------------------

_SAMPLE_OPTION = re.compile(r"\s--([a-z]{1,4})(?=\s|$)")


def _kohya_config(ref: FileRef, data: bytes, label: str) -> Iterator[Found]:
    """A training configuration (the GUI's JSON, or a TOML of sd-scripts / the GUI): its
    ``sample_prompts`` (one prompt a line, ``--n`` the negative), with the base model."""
    text = yield from _whole_text(ref, data, label)
    if ref.path.lower().endswith(".toml"):
        try:
            config: Any = tomllib.loads(text)
        except Exception as exc:
            raise _Fail(f"{label} is not valid TOML: {one_line(exc)}") from exc
    else:
        config = _json(text, label)
    if not isinstance(config, dict):
        return
    flat = dict(config)
    for value in config.values():  # the GUI's config.toml keeps its keys in sections
        if isinstance(value, dict):
            for key, inner in value.items():
                flat.setdefault(key, inner)
    samples = flat.get("sample_prompts")
    if not isinstance(samples, str) or (
            "\n" not in samples and re.search(r"\.(?:txt|toml|json)\s*$", samples)):
        return  # none, or the path of a prompts file
    model = _short(flat.get("pretrained_model_name_or_path"))
    for number, line in enumerate(samples.splitlines()[:MAX_ROWS], 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        prompt, negative = _sample_prompt(line)
        if prompt or negative:
            yield PromptRecord("kohya-config", ref, f"sample prompt {number}", prompt or "",
                               negative, model, loras=())


def _sample_prompt(line: str) -> tuple[str | None, str | None]:
    """sd-scripts' sample prompt line: ``prompt --n negative --w 512 --s 28 …``."""
    parts = _SAMPLE_OPTION.split(" " + line)
    prompt = parts[0]
    negative = None
    for option, value in zip(parts[1::2], parts[2::2], strict=False):
        if option == "n":
            negative = value
    return _prompt(prompt), _prompt(negative)
