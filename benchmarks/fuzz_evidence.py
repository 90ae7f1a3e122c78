"""Fuzz: mutated evidence through the real scan; every message clear, no damage taken silently.

    .venv/bin/python benchmarks/fuzz_evidence.py [--quick] [--seed 0] [--files N] [--images N]
                                                 [--json OUT] [--keep DIR]

A seeded mutation corpus is built at run time from benign seeds: pictures generated here
(JPEG with a camera's EXIF, PNG, GIF, BMP, TIFF through libtiff, WebP), pictures, a video
and archives of ``../shared/testdata``, a video made here (MPEG-4 Part 2), archives made
here (zip, tar, tgz, gz, bz2, xz, 7z) and the shared disk images (E01, raw ext2, ISO 9660).
Each mutant is one seed with one mutation: bit flips, overwritten bytes, a zeroed block, a
truncation, an overwritten length field of the format (PNG chunk, JPEG segment, TIFF IFD,
MP4 box, zip headers, tar size, EWF section descriptors with and without their checksum put
right, ext2 superblock …), garbage member names, or a garbage file
name (one in twelve). The same seed gives the same corpus.

The mutants go into one folder scanned with ``safeguard scan`` (the CLI, in-process, in a
temporary home) twice, into two cases; each disk-image mutant is also scanned as evidence of
its own, after its intact seed. The table gives the files tried, the item errors grouped by
message pattern (numbers, hex and quoted names normalised), the refusals of disk images, and
the counts that must be 0:

- unclear: an item error, an acquisition error or a refused scan's line holding an object
  address (``0x`` and 6+ hex digits), a bare exception name (``EOFError``,
  ``UnidentifiedImageError``, ``zlib.error`` as a part of the message), more than 160
  characters in one reason, or more than one line; or an item whose error differs between the
  two scans of one folder;
- silent: a mutated E01 accepted with media size 0, the MD5 of nothing, or verification "not
  stored" though the intact image stores its MD5; a mutated raw image of which no file is read,
  with no error and no note; a picture (by its content or its name) with neither a PDQ nor an
  error; a video giving fewer vPDQ frames than its seed with no error; a zip, 7z, gzip,
  bzip2 or xz (they carry CRCs) whose members' bytes changed with no
  error in it; an archive or an E01 in the folder giving fewer members than its seed with no
  error in it (headers rewritten consistently aside);
- crashes (a traceback in a scan's output, an exit code other than 0 and 1) and hangs (60 s
  for one image);
- stray: lines any process (the workers' decoders above all) wrote to the terminal, and
  apart, the tracebacks among them.

``--quick``: 72 files and 10 images, about 20 s on 2 cores; the default, 600 files and 60
images, about a minute. Exit status 1 when any count above is not 0.
"""

from __future__ import annotations

import argparse
import builtins
import bz2
import contextlib
import gzip
import hashlib
import io
import json
import lzma
import os
import random
import re
import shutil
import signal
import sys
import tarfile
import tempfile
import time
import zipfile
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from PIL import Image
from tests.helpers import SHARED, jpeg_bytes, png_bytes, scene, small_video
from tests.provenance.exif_builder import camera_jpeg

from safeguard.cli import main as safeguard

MAX_REASON = 160
EMPTY_MD5 = hashlib.md5(b"").hexdigest()
IMAGE_TIMEOUT = 60
PICTURE_EXTS = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp"}

ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")
_BUILTIN_EXCEPTIONS = {name for name, value in vars(builtins).items()
                       if isinstance(value, type) and issubclass(value, BaseException)}
EXCEPTION_NAME = re.compile(
    r"^(?:[A-Za-z_]\w*\.)*(?:[A-Z]\w*(?:Error|Exception|Warning|Exit|Interrupt|Iteration)"
    r"|BadZipFile|error)$")


# --- seeds -----------------------------------------------------------------------------------


@dataclass
class Seed:
    name: str
    ext: str
    data: bytes
    kind: str  # picture | video | zip | tar | gzip | bzip2 | xz | 7z | ewf | raw


def _picture(img: Image.Image, fmt: str, **kw: Any) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **kw)
    return out.getvalue()


def _zip(files: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, data in files:
            archive.writestr(name, data)
    return out.getvalue()


def _tar(files: list[tuple[str, bytes]], mode: str = "w") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as archive:  # type: ignore[call-overload]
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _sevenzip(files: list[tuple[str, bytes]]) -> bytes:
    import py7zr

    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w") as archive:
        for name, data in files:
            archive.writestr(data, name)
    return out.getvalue()


def seeds() -> list[Seed]:
    """The benign seeds, the same bytes on every run."""
    jpeg = jpeg_bytes(scene(1))
    png = png_bytes(scene(3, (96, 72)))
    text = b"benign text member\n" * 20
    found = [
        Seed("jpeg", ".jpg", jpeg, "picture"),
        Seed("camera", ".jpg", camera_jpeg(scene(2)), "picture"),
        Seed("png", ".png", png, "picture"),
        Seed("gif", ".gif", _picture(scene(4, (80, 60)).convert("P"), "GIF"), "picture"),
        Seed("bmp", ".bmp", _picture(scene(5, (64, 48)), "BMP"), "picture"),
        Seed("tiff-lzw", ".tif", _picture(scene(6, (80, 60)), "TIFF", compression="tiff_lzw"),
             "picture"),
        Seed("tiff-deflate", ".tif",
             _picture(scene(7, (80, 60)), "TIFF", compression="tiff_adobe_deflate"), "picture"),
        Seed("tiff-raw", ".tif", _picture(scene(8, (64, 48)), "TIFF"), "picture"),
        Seed("webp", ".webp", _picture(scene(9, (96, 72)), "WEBP", quality=80), "picture"),
        Seed("small", ".jpg", (SHARED / "pdq-reference/misc/small.jpg").read_bytes(), "picture"),
        Seed("wee", ".jpg", (SHARED / "pdq-reference/misc/wee.jpg").read_bytes(), "picture"),
        Seed("mp4", ".mp4", small_video(seconds=4), "video"),
        Seed("h264", ".mp4",
             (SHARED / "vpdq-reference/videos/pattern-sd-grey-bar.mp4").read_bytes(), "video"),
        Seed("zip", ".zip", _zip([("pics/a.jpg", jpeg), ("b.png", png), ("c.txt", text)]),
             "zip"),
        Seed("zip-stored", ".zip", _zip([("a.jpg", jpeg), ("c.txt", text)], zipfile.ZIP_STORED),
             "zip"),
        Seed("zip-shared", ".zip",
             (SHARED / "archives/zip-with_directory.zip").read_bytes(), "zip"),
        Seed("tar", ".tar", _tar([("pics/a.jpg", jpeg), ("c.txt", text)]), "tar"),
        Seed("tar-shared", ".tar",
             (SHARED / "archives/tar-with_directory.tar").read_bytes(), "tar"),
        Seed("tgz", ".tgz", _tar([("a.jpg", jpeg), ("b.png", png)], "w:gz"), "gzip"),
        Seed("gz", ".jpg.gz", gzip.compress(jpeg, mtime=0), "gzip"),
        Seed("bz2", ".png.bz2", bz2.compress(png), "bzip2"),
        Seed("xz", ".txt.xz", lzma.compress(text), "xz"),
        Seed("7z", ".7z", _sevenzip([("a.jpg", jpeg), ("c.txt", text)]), "7z"),
        Seed("e01", ".E01", (SHARED / "disk-images/ext2.E01").read_bytes(), "ewf"),
        Seed("ext2", ".dd", (SHARED / "disk-images/ímynd.dd").read_bytes(), "raw"),
        Seed("iso", ".iso", (SHARED / "disk-images/iso9660.raw").read_bytes(), "raw"),
    ]
    return found


# --- mutations -------------------------------------------------------------------------------

Field = tuple[int, int, str]  # offset, width in bytes, byte order ("<" or ">")


def _png_fields(data: bytes) -> list[Field]:
    fields, at = [], 8
    while at + 8 <= len(data):
        fields.append((at, 4, ">"))
        at += 12 + int.from_bytes(data[at:at + 4], "big")
    return fields


def _jpeg_fields(data: bytes) -> list[Field]:
    fields, at = [], 2
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        fields.append((at + 2, 2, ">"))
        if marker == 0xDA:  # start of scan: the entropy-coded data follows
            break
        at += 2 + int.from_bytes(data[at + 2:at + 4], "big")
    return fields


def _zip_fields(data: bytes) -> list[Field]:
    fields: list[Field] = []
    for sig, offsets in ((b"PK\x03\x04", [(18, 4), (22, 4), (26, 2), (28, 2)]),
                         (b"PK\x01\x02", [(20, 4), (24, 4), (28, 2), (30, 2), (42, 4)]),
                         (b"PK\x05\x06", [(8, 2), (10, 2), (12, 4), (16, 4)])):
        for found in re.finditer(re.escape(sig), data):
            fields += [(found.start() + o, w, "<") for o, w in offsets]
    return fields


def _ewf_descriptors(data: bytes) -> list[int]:
    found, at = [], 13
    while at + 76 <= len(data) and len(found) < 64:
        found.append(at)
        kind = data[at:at + 16].rstrip(b"\0")
        following = int.from_bytes(data[at + 16:at + 24], "little")
        if kind in (b"done", b"next") or following <= at:
            break
        at = following
    return found


def _raw_fields(data: bytes) -> list[Field]:
    if data[1024 + 56:1024 + 58] == b"\x53\xef":  # ext2 superblock: counts, sizes, magic
        return [(1024 + o, w, "<") for o, w in
                ((0, 4), (4, 4), (20, 4), (24, 4), (32, 4), (40, 4), (56, 2), (88, 2))]
    return [(32768 + 80, 4, "<"), (32768 + 128, 2, "<"), (32768 + 156 + 2, 4, "<")]  # ISO


def _mp4_fields(data: bytes) -> list[Field]:
    """The sizes of the top-level boxes and of the boxes inside moov (where the sample
    tables' sizes and counts sit)."""
    fields: list[Field] = []

    def boxes(start: int, end: int, depth: int) -> None:
        at = start
        while at + 8 <= end:
            size = int.from_bytes(data[at:at + 4], "big")
            fields.append((at, 4, ">"))
            if depth < 4 and data[at + 4:at + 8] in (b"moov", b"trak", b"mdia", b"minf",
                                                     b"stbl"):
                boxes(at + 8, at + size, depth + 1)
            if size < 8:
                return
            at += size

    boxes(0, len(data), 0)
    return fields


def length_fields(seed: Seed, data: bytes) -> list[Field]:
    """Where the seed's format keeps lengths, counts and offsets."""
    if seed.ext == ".png":
        return _png_fields(data)
    if seed.ext == ".jpg":
        return _jpeg_fields(data)
    if seed.kind == "zip":
        return _zip_fields(data)
    if seed.ext == ".gif":
        return [(6, 2, "<"), (8, 2, "<")]
    if seed.ext == ".bmp":
        return [(2, 4, "<"), (10, 4, "<"), (14, 4, "<"), (18, 4, "<"), (22, 4, "<"), (34, 4, "<")]
    if seed.ext == ".tif":
        ifd = int.from_bytes(data[4:8], "little")
        count = int.from_bytes(data[ifd:ifd + 2], "little")
        return [(4, 4, "<"), (ifd, 2, "<")] + [
            (ifd + 2 + 12 * i + o, 4, "<") for i in range(count) for o in (4, 8)]
    if seed.ext == ".webp":
        return [(4, 4, "<"), (16, 4, "<")]
    if seed.kind == "tar":
        return [(at + 124, 11, "octal") for at in range(0, len(data), 512)
                if data[at + 257:at + 262] == b"ustar"]
    if seed.kind in ("gzip", "bzip2", "xz"):
        return [(len(data) - 8, 4, "<"), (len(data) - 4, 4, "<")]
    if seed.kind == "7z":
        return [(12, 8, "<"), (20, 8, "<")]
    if seed.kind == "ewf":
        return [(at + o, 8, "<") for at in _ewf_descriptors(data) for o in (16, 24)]
    if seed.kind == "raw":
        return _raw_fields(data)
    if seed.kind == "video":
        return _mp4_fields(data)
    return []


def _value(rng: random.Random, width: int, old: int) -> int:
    top = (1 << (8 * width)) - 1
    return rng.choice([0, 1, 0xFF, top, top >> 1, rng.getrandbits(8 * width), old + 1,
                       max(old - 1, 0), old * 2, old + 0x3600000000000000]) & top


def _ewf_fix_checksums(data: bytearray) -> None:
    for at in _ewf_descriptors(bytes(data)):
        data[at + 72:at + 76] = zlib.adler32(bytes(data[at:at + 72])).to_bytes(4, "little")


def _tar_fix_checksum(data: bytearray, at: int) -> None:
    header = data[at:at + 148] + b" " * 8 + data[at + 156:at + 512]
    data[at + 148:at + 156] = b"%06o\0 " % sum(header)


#: the mutations of an E01 scanned as evidence, in turn: its section sizes first (the
#: damage issue 18 found accepted as an empty, unverified disk)
EWF_TURNS = ["size", "size-fixed", "next", "hash", "volume", "bitflip", "truncate", "size",
             "overwrite", "zeros", "length-fixed", "header"]


def mutate(seed: Seed, rng: random.Random, kind: str = "") -> tuple[str, bytes]:
    """One mutation of ``seed`` (``kind``, or one drawn): its label and the mutated bytes."""
    data = bytearray(seed.data)
    choices = ["bitflip", "bitflip", "overwrite", "truncate", "zeros", "length", "length"]
    if seed.kind in ("zip", "tar", "7z"):
        choices.append("names")
    if seed.kind == "ewf":
        choices += ["size", "size-fixed", "length-fixed", "hash", "volume", "header"]
    kind = kind or rng.choice(choices)
    if kind == "bitflip":
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(len(data))
            data[at] ^= 1 << rng.randrange(8)
    elif kind == "overwrite":
        size = rng.randint(1, 16)
        at = rng.randrange(max(len(data) - size, 1))
        data[at:at + size] = rng.randbytes(size)
    elif kind == "zeros":
        size = rng.randint(16, 4096)
        at = rng.randrange(max(len(data) - size, 1))
        data[at:at + size] = bytes(len(data[at:at + size]))
    elif kind == "truncate":
        data = data[:rng.choice([rng.randrange(1, len(data)), len(data) - rng.randint(1, 64)])]
    elif kind in ("size", "size-fixed", "next"):  # one field of one EWF section descriptor
        at = rng.choice(_ewf_descriptors(bytes(data))) + (16 if kind == "next" else 24)
        old = int.from_bytes(data[at:at + 8], "little")
        data[at:at + 8] = _value(rng, 8, old).to_bytes(8, "little")
        if kind == "size-fixed":
            _ewf_fix_checksums(data)
    elif kind == "header":  # the compressed case data of a header section
        headers = [at for at in _ewf_descriptors(bytes(data))
                   if data[at:at + 16].rstrip(b"\0").startswith(b"header")]
        at = rng.choice(headers) + 76 + rng.randrange(2, 40)
        data[at] ^= 1 << rng.randrange(8)
    elif kind in ("length", "length-fixed"):
        fields = length_fields(seed, bytes(data))
        if not fields:
            return mutate(seed, rng)
        at, width, order = rng.choice(fields)
        if order == "octal":
            data[at:at + width] = b"%011o" % rng.choice([0, 1, 8**11 - 1, rng.getrandbits(30)])
            if rng.random() < 0.5:
                _tar_fix_checksum(data, at - 124)
                kind += "-fixed"
        else:
            old = int.from_bytes(data[at:at + width], "little" if order == "<" else "big")
            new = _value(rng, width, old)
            data[at:at + width] = new.to_bytes(width, "little" if order == "<" else "big")
        if kind == "length-fixed" and seed.kind == "ewf":
            _ewf_fix_checksums(data)
    elif kind == "hash":  # the MD5 an E01 stores, or the hash section's checksum
        hashes = [at for at in _ewf_descriptors(bytes(data))
                  if data[at:at + 16].rstrip(b"\0") == b"hash"]
        at = hashes[0] + 76 + rng.choice([0, 7, 15, 32])
        data[at] ^= 0xFF
    elif kind == "volume":  # the media geometry an E01 stores
        volumes = [at for at in _ewf_descriptors(bytes(data))
                   if data[at:at + 16].rstrip(b"\0") in (b"volume", b"disk")]
        at = volumes[0] + 76 + rng.choice([4, 8, 12, 16, 20])
        data[at:at + 4] = rng.choice([b"\0\0\0\0", b"\xff\xff\xff\xff", rng.randbytes(4)])
    else:
        return "names", garbage_names(seed, rng)
    return kind, bytes(data)


def garbage_name(rng: random.Random, size: int) -> bytes:
    alphabet = bytes(range(1, 256)).replace(b"/", b"")
    return bytes(rng.choice(alphabet) for _ in range(size))


def garbage_names(seed: Seed, rng: random.Random) -> bytes:
    """The seed's archive rebuilt with hostile member names: long, undecodable, control
    characters (zip: raw bytes patched into the headers, with and without the UTF-8 flag)."""
    payload = jpeg_bytes(scene(11, (64, 48)))
    sizes = [rng.choice([40, 120, 250, 400]) for _ in range(2)]
    if seed.kind == "tar":
        names = [garbage_name(rng, n).decode("utf-8", "surrogateescape") for n in sizes]
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT,
                          encoding="utf-8", errors="surrogateescape") as archive:
            for name in names:
                info = tarfile.TarInfo(name)
                info.size = len(payload)
                archive.addfile(info, io.BytesIO(payload))
        return out.getvalue()
    if seed.kind == "7z":
        return _sevenzip([(garbage_name(rng, n).decode("latin-1").replace("/", "_"), payload)
                          for n in sizes])
    placeholders = [bytes([65 + i]) * n for i, n in enumerate(sizes)]
    data = bytearray(_zip([(p.decode(), payload) for p in placeholders]))
    utf8 = rng.random() < 0.5
    for placeholder in placeholders:
        name = garbage_name(rng, len(placeholder))
        data = bytearray(bytes(data).replace(placeholder, name))
    for sig, flags in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        for found in re.finditer(re.escape(sig), bytes(data)):
            at = found.start() + flags
            value = int.from_bytes(data[at:at + 2], "little")
            value = value | 0x800 if utf8 else value & ~0x800
            data[at:at + 2] = value.to_bytes(2, "little")
    return bytes(data)


@dataclass
class Mutant:
    number: int
    seed: Seed
    mutation: str
    data: bytes
    file_name: bytes = b""

    @property
    def label(self) -> str:
        return f"{self.seed.name}/{self.mutation}"


def corpus(rng: random.Random, count: int, images: int) -> tuple[list[Mutant], list[Mutant]]:
    """``count`` mutants for the folder (one in twelve under a garbage file name) and
    ``images`` disk-image mutants scanned as evidence of their own."""
    all_seeds = seeds()
    folder: list[Mutant] = []
    for number in range(count):
        seed = all_seeds[number % len(all_seeds)]
        mutation, data = mutate(seed, rng)
        mutant = Mutant(number, seed, mutation, data)
        prefix = b"%04d-" % number
        if rng.random() < 1 / 12:
            mutant.file_name = prefix + garbage_name(rng, rng.randint(20, 200)) + b".jpg"
            mutant.mutation += "+filename"
        else:
            mutant.file_name = prefix + f"{seed.name}-{mutation}{seed.ext}".encode()
        folder.append(mutant)
    disks = [s for s in all_seeds if s.kind in ("ewf", "raw")]
    alone: list[Mutant] = []
    for number in range(images):
        seed = disks[0] if number % 4 else disks[1 + number // 4 % (len(disks) - 1)]
        turn = EWF_TURNS[(number - number // 4 - 1) % len(EWF_TURNS)] if number % 4 else ""
        mutation, data = mutate(seed, rng, turn)
        alone.append(Mutant(number, seed, mutation, data,
                            b"img%03d-%s-%s%s" % (number, seed.name.encode(), mutation.encode(),
                                                  seed.ext.encode())))
    return folder, alone


# --- scanning --------------------------------------------------------------------------------


class _Hang(BaseException):
    pass


@dataclass
class Run:
    code: int
    out: str
    err: str
    hung: bool = False


def cli(home: Path, *args: str, timeout: int = 0) -> Run:
    """``safeguard`` in-process, its output captured; with ``timeout`` (s) a hang is cut."""
    out, err = io.StringIO(), io.StringIO()

    def alarm(_signum: int, _frame: Any) -> None:
        raise _Hang

    previous = signal.signal(signal.SIGALRM, alarm) if timeout else None
    if timeout:
        signal.alarm(timeout)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = safeguard(["--home", str(home), *args])
        return Run(code, out.getvalue(), err.getvalue())
    except _Hang:
        return Run(-1, out.getvalue(), err.getvalue(), hung=True)
    finally:
        if timeout:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)


def items(home: Path, case: str) -> list[dict[str, Any]]:
    run = cli(home, "items", case, "--json")
    return [json.loads(line) for line in run.out.splitlines() if line.strip()]


# --- checks ----------------------------------------------------------------------------------


def unclear(message: str) -> str | None:
    """Why ``message`` (an item's error: reasons joined by "; ") is unclear, or None."""
    if "\n" in message.strip():
        return "more than one line"
    if ADDRESS.search(message):
        return "object address"
    for reason in message.split("; "):
        if len(reason) > MAX_REASON:
            return f"{len(reason)} characters"
        for part in re.split(r": | \(|\)", reason):
            part = part.strip()
            if part and (EXCEPTION_NAME.match(part) or part in _BUILTIN_EXCEPTIONS):
                return f"bare exception name {part}"
    return None


def pattern(message: str) -> str:
    """A message with its numbers, hex and quoted names normalised, for grouping."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", message)
    text = re.sub(r"0x[0-9a-fA-F]+|\b[0-9a-f]{16,}\b", "H", text)
    return re.sub(r"\d+", "N", text)


@dataclass
class Findings:
    files: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    unclear: list[tuple[str, str, str]] = field(default_factory=list)
    silent: list[tuple[str, str]] = field(default_factory=list)
    crashes: list[tuple[str, str]] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)

    def message(self, where: str, text: str) -> None:
        for reason in text.split("; "):
            key = pattern(reason)
            self.errors[key] += 1
            self.examples.setdefault(key, where)
        if (why := unclear(text)) is not None:
            self.unclear.append((where, why, text))


def tree(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each top-level file's records (its own first), by the file's name."""
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        found[record["path"].split("!", 1)[0]].append(record)
    return found


def members(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if "!" in r["path"]]


def check_folder(findings: Findings, mutants: list[Mutant], bases: dict[str, list[dict]],
                 first: list[dict[str, Any]], second: list[dict[str, Any]]) -> None:
    by_file = tree(first)
    again = {r["path"]: r["error"] for r in second}
    shown = {m.number: m for m in mutants}
    for top, records in by_file.items():
        if not top[:4].isdigit():
            continue
        mutant = shown[int(top[:4])]
        findings.files[mutant.seed.kind] += 1
        where = f"{mutant.label} #{mutant.number}"
        for record in records:
            if record["error"]:
                findings.message(where, record["error"])
            if again.get(record["path"], "missing") != record["error"]:
                findings.unclear.append((where, "differs between two scans",
                                         f"{record['error']!r} / {again.get(record['path'])!r}"))
        silent = downgrade(mutant, records, bases[mutant.seed.name])
        if silent:
            findings.silent.append((where, silent))


def downgrade(mutant: Mutant, records: list[dict[str, Any]], base: list[dict[str, Any]]) -> str:
    """What a mutant lost with no error to say so ("" when nothing)."""
    if any(r["error"] for r in records) or mutant.data == mutant.seed.data:
        return ""
    head = records[0]
    seed = mutant.seed
    if seed.kind == "picture" and not head["pdq"]:
        named = os.path.splitext(head["path"])[1].lower() in PICTURE_EXTS
        if (head["type"] or "").startswith("image/") or named:
            return f"picture recorded as {head['type']} with no PDQ and no error"
    if seed.kind == "video":
        frames, before = len(head.get("vpdq") or []), len(base[0].get("vpdq") or [])
        if frames < before:
            return f"{before - frames} of {before} video frames lost with no error"
    if mutant.mutation.startswith(("names", "length-fixed")):
        return ""
    lost = len(members(base)) - len(members(records))
    if seed.kind in ("zip", "tar", "gzip", "bzip2", "xz", "7z", "ewf") and lost > 0:
        return f"{lost} of {len(members(base))} members lost with no error"
    if seed.kind in ("zip", "gzip", "bzip2", "xz", "7z"):
        known = {r["sha256"] for r in members(base)}
        changed = [r["path"] for r in members(records) if r["sha256"] not in known]
        if changed:
            return f"member bytes changed with no CRC error: {changed[0]}"
    return ""


@dataclass
class Intact:
    """What the intact image gives: the hashes it stores, the files read from it."""

    stored: dict[str, str]
    paths: set[str]


def files_read(records: list[dict[str, Any]]) -> set[str]:
    """The paths of the files a disk-image scan read from file systems (carved ones not)."""
    return {r["path"] for r in records if not r.get("carved")}


def check_image(findings: Findings, mutant: Mutant, run: Run, evidence: dict[str, Any] | None,
                records: list[dict[str, Any]], intact: Intact) -> None:
    where = f"{mutant.label} #{mutant.number} (evidence)"
    findings.files[f"{mutant.seed.kind} (evidence)"] += 1
    if run.hung:
        findings.hangs.append(where)
        return
    if run.code not in (0, 1) or "Traceback" in run.err:
        findings.crashes.append((where, run.err.strip().splitlines()[-1:][0] if run.err else
                                 f"exit {run.code}"))
        return
    if run.code == 1:
        line = run.err.strip().removeprefix("error: ")
        findings.refused[pattern(line)] += 1
        findings.examples.setdefault(pattern(line), where)
        if (why := unclear(line)) is not None:
            findings.unclear.append((where, why, line))
        return
    acquisition = (evidence or {}).get("acquisition") or {}
    if acquisition.get("error"):
        findings.message(where, acquisition["error"])
    for record in records:
        if record["error"]:
            findings.message(where, record["error"])
    if mutant.data == mutant.seed.data:
        return
    verification = (evidence or {}).get("verification")
    computed = (acquisition.get("computed") or {}).get("md5")
    if intact.stored and (acquisition.get("media_size") == 0 or computed == EMPTY_MD5):
        findings.silent.append((where, "E01 accepted as an empty disk"))
    elif intact.stored and verification in ("not stored", None):
        findings.silent.append((where, f"E01 accepted with verification {verification!r} "
                                       "though the intact image stores its MD5"))
    said = (acquisition.get("error") or any(r["error"] for r in records)
            or any(not v.get("read", True) for v in acquisition.get("volumes") or []))
    # a raw image has no checksum: a damaged directory may lose files with nothing to tell;
    # but no file system read at all must be said (issue 18: one opaque "file" item)
    if not said and verification != "mismatch" and not intact.paths & files_read(records):
        findings.silent.append((where, f"none of the {len(intact.paths)} files of the intact "
                                       "image read, with no error and no note"))


# --- the run ---------------------------------------------------------------------------------


@contextlib.contextmanager
def terminal_output() -> Iterator[list[str]]:
    """What any process writes to this process's stderr (file descriptor 2) meanwhile: the
    workers' decoders, a forkserver's traceback. On leaving, ``lines`` holds it."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines += capture.read().decode("utf-8", "replace").splitlines()


def split_tracebacks(lines: list[str]) -> tuple[list[str], list[str]]:
    """Python tracebacks in ``lines`` (each as its last line: the exception), and the rest."""
    tracebacks: list[str] = []
    rest: list[str] = []
    inside = False
    for line in lines:
        if line.startswith("Traceback (most recent call last):"):
            inside = True
        elif inside and not line.startswith(" "):
            tracebacks.append(line)
            inside = False
        elif not inside:
            rest.append(line)
    return tracebacks, rest


def scan_folder(findings: Findings, home: Path, root: Path, folder: list[Mutant]) -> None:
    """The seeds scanned once, the mutants' folder twice (into two cases), and checked."""
    seeds_dir, evidence = root / "seeds", root / "evidence"
    for path in (seeds_dir, evidence):
        path.mkdir()
    for seed in seeds():
        (seeds_dir / f"{seed.name}{seed.ext}").write_bytes(seed.data)
    for mutant in folder:
        with open(os.path.join(os.fsencode(evidence), mutant.file_name), "wb") as out:
            out.write(mutant.data)
    for case in ("seeds", "fuzz", "again"):
        cli(home, "case", "create", case)
    cli(home, "scan", str(seeds_dir), "--case", "seeds")
    bases = {name.split(".", 1)[0]: records
             for name, records in tree(items(home, "seeds")).items()}
    for case in ("fuzz", "again"):
        scan = cli(home, "scan", str(evidence), "--case", case)
        if scan.code != 0 or "Traceback" in scan.err:
            findings.crashes.append(("folder scan", scan.err.strip()[-300:]))
    check_folder(findings, folder, bases, items(home, "fuzz"), items(home, "again"))


def scan_images(findings: Findings, home: Path, root: Path, alone: list[Mutant]) -> None:
    """Each disk-image mutant scanned as evidence into a case of its own, and checked
    against what the intact image stores."""
    images = root / "images"
    images.mkdir()
    intact: dict[str, Intact] = {}
    for mutant in alone:
        seed = mutant.seed
        if seed.name not in intact:
            case = f"intact-{seed.name}"
            cli(home, "case", "create", case)
            path = images / f"intact-{seed.name}{seed.ext}"
            path.write_bytes(seed.data)
            cli(home, "scan", str(path), "--case", case)
            shown = json.loads(cli(home, "case", "show", case, "--json").out)
            intact[seed.name] = Intact(shown["evidence"][0]["acquisition"].get("stored") or {},
                                       files_read(items(home, case)))
        case = f"img{mutant.number}"
        cli(home, "case", "create", case)
        path = images / os.fsdecode(mutant.file_name)
        path.write_bytes(mutant.data)
        result = cli(home, "scan", str(path), "--case", case, timeout=IMAGE_TIMEOUT)
        shown = json.loads(cli(home, "case", "show", case, "--json").out or "{}")
        found = [e for e in shown.get("evidence", []) if e["path"] == str(path)]
        check_image(findings, mutant, result, found[0] if found else None,
                    items(home, case) if result.code == 0 else [], intact[seed.name])


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build the corpus, scan it, check it: the findings as a dict (``--json``)."""
    folder, alone = corpus(random.Random(args.seed), args.files, args.images)
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="sg-fuzz-"))
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    findings = Findings()
    started = time.perf_counter()
    try:
        with terminal_output() as stray:
            scan_folder(findings, root / "home", root, folder)
            scan_images(findings, root / "home", root, alone)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return {"seed": args.seed, "files": len(folder), "images": len(alone),
            "seconds": time.perf_counter() - started, "by_kind": dict(findings.files),
            "errors": dict(findings.errors), "refused": dict(findings.refused),
            "examples": findings.examples, "unclear": findings.unclear,
            "silent": findings.silent, "crashes": findings.crashes, "hangs": findings.hangs,
            **dict(zip(("tracebacks", "stray"), split_tracebacks(stray), strict=True))}


def table(result: dict[str, Any]) -> Iterator[str]:
    yield (f"fuzz_evidence: seed {result['seed']}, {result['files']} files in one folder "
           f"(scanned twice) + {result['images']} disk images as evidence, "
           f"{os.cpu_count()} cores, {result['seconds']:.0f} s")
    yield ""
    yield "files tried by kind: " + ", ".join(f"{k} {v}" for k, v in
                                              sorted(result["by_kind"].items()))
    for title, counts in (("item errors by message", result["errors"]),
                          ("disk images refused (exit 1) by message", result["refused"])):
        yield ""
        yield f"{title} ({sum(counts.values())})"
        yield f"  {'count':>5}  message pattern"
        for key, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            yield f"  {count:>5}  {key}"
    yield ""
    for title in ("unclear", "silent", "crashes", "hangs", "stray", "tracebacks"):
        found = result[title]
        yield f"{title + ':':<11} {len(found)}"
        for entry in found[:20]:
            yield "    " + " | ".join(map(str, entry if isinstance(entry, list | tuple)
                                           else [entry]))[:300]


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="72 files, 10 images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--files", type=int, default=None, help="mutants in the folder (600)")
    parser.add_argument("--images", type=int, default=None,
                        help="disk-image mutants scanned as evidence (60)")
    parser.add_argument("--json", metavar="OUT", help="also write the findings as JSON")
    parser.add_argument("--keep", metavar="DIR", help="build and keep the corpus in DIR")
    args = parser.parse_args(argv)
    args.files = args.files if args.files is not None else (72 if args.quick else 600)
    args.images = args.images if args.images is not None else (10 if args.quick else 60)
    return args


def cli_main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    result = run(args)
    for line in table(result):
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=list), encoding="utf-8")
    bad = any(result[key] for key in ("unclear", "silent", "crashes", "hangs", "stray",
                                      "tracebacks"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(cli_main())
