"""Test helpers: a minimal writer of OLE compound files ([MS-CFB], version 3: 512-byte
sectors, a FAT, a directory, a mini stream for streams under 4096 bytes), and the structures
the OLE reader looks for inside them: a Thumbs.db Catalog and its thumbnail streams,
OfficeArt BLIP records, an OLE1 Package (``\\x01Ole10Native``), and an Outlook .msg's
property streams. olefile only rewrites existing files, so the fixtures are written here,
from the specification, at test time.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

SECTOR = 512
MINI = 64
CUTOFF = 4096
FREESECT, ENDOFCHAIN, FATSECT, NOSTREAM = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
SIGNATURE = bytes.fromhex("D0CF11E0A1B11AE1")


@dataclass
class Built:
    """A written compound file and where its parts went (for tests that damage them)."""

    data: bytearray
    fat_sectors: list[int]
    directory_sectors: list[int]
    #: a big stream's path: its sectors, in chain order
    chains: dict[str, list[int]] = field(default_factory=dict)

    def fat_offset(self, sector: int) -> int:
        """Where in the file the FAT entry of ``sector`` is."""
        fat_sector = self.fat_sectors[sector // (SECTOR // 4)]
        return SECTOR + fat_sector * SECTOR + (sector % (SECTOR // 4)) * 4

    def set_fat(self, sector: int, value: int) -> None:
        struct.pack_into("<I", self.data, self.fat_offset(sector), value)

    def dir_offset(self, sid: int) -> int:
        return SECTOR + self.directory_sectors[sid // 4] * SECTOR + (sid % 4) * 128


@dataclass
class _Node:
    name: str
    kind: int  # 1 storage, 2 stream, 5 root
    data: bytes = b""
    kids: dict[str, _Node] = field(default_factory=dict)
    sid: int = 0
    start: int = ENDOFCHAIN
    left: int = NOSTREAM
    right: int = NOSTREAM


def _order(name: str) -> tuple[int, str]:
    """[MS-CFB]'s order of siblings: shorter names first, then by upper case."""
    return (len(name), name.upper())


def build(streams: dict[str, bytes]) -> Built:
    """A compound file holding ``streams`` (path "storage/sub/stream" -> bytes)."""
    root = _Node("Root Entry", 5)
    for path, data in streams.items():
        node = root
        *folders, leaf = path.split("/")
        for folder in folders:
            node = node.kids.setdefault(folder, _Node(folder, 1))
        node.kids[leaf] = _Node(leaf, 2, data)
    nodes: list[_Node] = []

    def number(node: _Node) -> None:
        node.sid = len(nodes)
        nodes.append(node)
        for kid in sorted(node.kids.values(), key=lambda k: _order(k.name)):
            number(kid)

    number(root)
    # the mini stream: small streams in 64-byte mini sectors
    mini = bytearray()
    minifat: list[int] = []
    for node in nodes:
        if node.kind == 2 and 0 < len(node.data) < CUTOFF:
            count = -(-len(node.data) // MINI)
            node.start = len(minifat)
            minifat += [len(minifat) + i + 1 for i in range(count - 1)] + [ENDOFCHAIN]
            mini += node.data.ljust(count * MINI, b"\0")
    big = [n for n in nodes if n.kind == 2 and len(n.data) >= CUTOFF]
    dir_count = -(-len(nodes) // 4)
    minifat_count = -(-len(minifat) * 4 // SECTOR) if minifat else 0
    mini_count = -(-len(mini) // SECTOR)
    data_count = sum(-(-len(n.data) // SECTOR) for n in big)
    fat_count = 1
    used = dir_count + minifat_count + mini_count + data_count
    while fat_count * (SECTOR // 4) < fat_count + used:
        fat_count += 1
    assert fat_count <= 109, "fixture too large for a header-only DIFAT"
    fat: list[int] = [FATSECT] * fat_count
    built = Built(bytearray(), list(range(fat_count)), [])

    def chain(count: int) -> list[int]:
        first = len(fat)
        fat.extend([first + i + 1 for i in range(count - 1)] + [ENDOFCHAIN] if count else [])
        return list(range(first, first + count))

    built.directory_sectors = chain(dir_count)
    minifat_sectors = chain(minifat_count)
    mini_sectors = chain(mini_count)
    root.start = mini_sectors[0] if mini_sectors else ENDOFCHAIN
    body: dict[int, bytes] = {}
    for node in big:
        sectors = chain(-(-len(node.data) // SECTOR))
        node.start = sectors[0]
        built.chains[_path(node, nodes)] = sectors
        for i, sector in enumerate(sectors):
            body[sector] = node.data[i * SECTOR:(i + 1) * SECTOR]
    fat += [FREESECT] * (fat_count * (SECTOR // 4) - len(fat))
    directory = b"".join(_entry(n, nodes, len(mini)) for n in nodes)
    directory = directory.ljust(dir_count * SECTOR, b"\0")
    for i, sector in enumerate(built.directory_sectors):
        body[sector] = directory[i * SECTOR:(i + 1) * SECTOR]
    packed_minifat = struct.pack(f"<{len(minifat)}I", *minifat)
    packed_minifat = packed_minifat.ljust(minifat_count * SECTOR, b"\xff")
    for i, sector in enumerate(minifat_sectors):
        body[sector] = packed_minifat[i * SECTOR:(i + 1) * SECTOR]
    for i, sector in enumerate(mini_sectors):
        body[sector] = bytes(mini[i * SECTOR:(i + 1) * SECTOR])
    packed_fat = struct.pack(f"<{len(fat)}I", *fat)
    for i in range(fat_count):
        body[i] = packed_fat[i * SECTOR:(i + 1) * SECTOR]
    difat = list(range(fat_count)) + [FREESECT] * (109 - fat_count)
    header = (SIGNATURE + bytes(16) + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + bytes(6)
              + struct.pack("<IIIIIIIII", 0, fat_count, built.directory_sectors[0], 0, CUTOFF,
                            minifat_sectors[0] if minifat_sectors else ENDOFCHAIN,
                            minifat_count, ENDOFCHAIN, 0)
              + struct.pack("<109I", *difat))
    built.data = bytearray(header + b"".join(body[i].ljust(SECTOR, b"\0")
                                             for i in range(len(body))))
    return built


def _path(node: _Node, nodes: list[_Node]) -> str:
    def find(parent: _Node, prefix: str) -> str | None:
        for kid in parent.kids.values():
            here = f"{prefix}{kid.name}"
            if kid is node:
                return here
            if (deeper := find(kid, here + "/")) is not None:
                return deeper
        return None

    return find(nodes[0], "") or ""


def _tree(kids: list[_Node]) -> int:
    """The sibling tree of sorted ``kids`` (balanced; every node black): its top's sid."""
    if not kids:
        return NOSTREAM
    middle = len(kids) // 2
    top = kids[middle]
    top.left, top.right = _tree(kids[:middle]), _tree(kids[middle + 1:])
    return top.sid


def _entry(node: _Node, nodes: list[_Node], mini_size: int) -> bytes:
    kids = sorted(node.kids.values(), key=lambda k: _order(k.name))
    child = _tree(kids)
    name = node.name.encode("utf-16-le") + b"\0\0"
    size = mini_size if node.kind == 5 else len(node.data)
    return (name.ljust(64, b"\0") + struct.pack("<HBB", len(name), node.kind, 1)
            + struct.pack("<III", node.left, node.right, child)
            + bytes(16 + 4 + 16) + struct.pack("<IQ", node.start if size else ENDOFCHAIN, size))


# --- what goes inside -------------------------------------------------------------------------


def filetime(moment: datetime) -> int:
    return int((moment - datetime(1601, 1, 1, tzinfo=UTC)).total_seconds() * 10_000_000)


def catalog(entries: list[tuple[int, datetime, str]], size: tuple[int, int] = (96, 96)) -> bytes:
    """A Thumbs.db Catalog: a 16-byte header, then one record per thumbnail (its length,
    id, FILETIME and UTF-16 file name, closed by four zero bytes)."""
    out = struct.pack("<HHIII", 16, 7, len(entries), *size)
    for index, moment, name in entries:
        text = name.encode("utf-16-le") + bytes(4)
        out += struct.pack("<IIQ", 16 + len(text), index, filetime(moment)) + text
    return out


def thumbnail(jpeg: bytes, header: int = 12) -> bytes:
    """A Thumbs.db thumbnail stream: its header (length, a revision, the data size), then
    the JPEG."""
    return struct.pack("<III", header, 1, len(jpeg)) + bytes(header - 12) + jpeg


def thumb_stream_name(index: int) -> str:
    """A thumbnail's stream is named by its catalog id's decimal digits, reversed."""
    return str(index)[::-1]


#: OfficeArt BLIP kinds: record type, instance with one UID, header bytes after the UID(s)
BLIPS = {"emf": (0xF01A, 0x3D4, 34), "wmf": (0xF01B, 0x216, 34), "jpeg": (0xF01D, 0x46A, 1),
         "png": (0xF01E, 0x6E0, 1), "dib": (0xF01F, 0x7A8, 1), "tiff": (0xF029, 0x6E4, 1)}


def blip(kind: str, payload: bytes, second_uid: bool = False, compress: bool = False) -> bytes:
    """An OfficeArt BLIP record ([MS-ODRAW] 2.2.23-2.2.31) holding ``payload``: a bitmap's
    UID(s) and tag byte, or a metafile's UID(s) and 34-byte metafile header (deflated when
    ``compress``)."""
    rec_type, instance, _ = BLIPS[kind]
    uid = bytes(range(16)) + (bytes(range(16, 32)) if second_uid else b"")
    if kind in ("emf", "wmf"):
        stored = zlib.compress(payload) if compress else payload
        body = uid + struct.pack("<I16s8sIBB", len(payload), bytes(16), bytes(8), len(stored),
                                 0x00 if compress else 0xFE, 0xFE) + stored
    else:
        body = uid + b"\xff" + payload
    return struct.pack("<HHI", (instance + int(second_uid)) << 4, rec_type, len(body)) + body


def fbse(embedded: bytes) -> bytes:
    """An OfficeArtFBSE record (the BLIP store's entry) with ``embedded`` BLIP after it."""
    fixed = bytes(2) + bytes(16) + struct.pack("<HIIIIBBBB", 0xFF, len(embedded), 1, 0, 0, 0, 0,
                                                0, 0)
    return struct.pack("<HHI", 0x002 | (5 << 4), 0xF007, len(fixed) + len(embedded)) + fixed + \
        embedded


def biff(record: int, data: bytes) -> bytes:
    return struct.pack("<HH", record, len(data)) + data


def drawing_group(blips: bytes) -> bytes:
    """A Workbook stream's MsoDrawingGroup: BIFF record 0x00EB, continued in 0x003C records
    every 8224 bytes (so a BLIP is split by BIFF headers, as Excel writes it)."""
    container = struct.pack("<HHI", 0xF, 0xF000, len(blips)) + blips
    parts = [container[i:i + 8224] for i in range(0, len(container), 8224)]
    out = biff(0x0809, bytes(16))  # BOF
    out += biff(0x00EB, parts[0]) + b"".join(biff(0x003C, p) for p in parts[1:])
    return out + biff(0x000A, b"")  # EOF


def ole10native(label: str, path: str, data: bytes) -> bytes:
    """An OLE1 Package object's native data: size, then label, paths and the file."""
    body = (struct.pack("<H", 2) + label.encode("cp1252") + b"\0" + path.encode("cp1252")
            + b"\0" + struct.pack("<I", 0x00030000) + struct.pack("<I", len(path) + 1)
            + path.encode("cp1252") + b"\0" + struct.pack("<I", len(data)) + data)
    return struct.pack("<I", len(body)) + body


def msg_properties(times: dict[int, datetime], header: int = 32) -> bytes:
    """A .msg's ``__properties_version1.0`` stream: its header, then 16-byte fixed-length
    properties (here PT_SYSTIME ones)."""
    out = bytes(header)
    for prop, moment in times.items():
        out += struct.pack("<HHIQ", 0x0040, prop, 6, filetime(moment))
    return out


def msg(fields: dict[str, str], attachments: list[tuple[str, bytes]],
        times: dict[int, datetime]) -> dict[str, bytes]:
    """The streams of an Outlook .msg: ``fields`` by property tag ("0037" subject, ...),
    as Unicode strings (type 001F), and ``attachments`` (file name, data)."""
    streams = {f"__substg1.0_{tag}001F": text.encode("utf-16-le") for tag, text in fields.items()}
    streams["__properties_version1.0"] = msg_properties(times)
    for n, (name, data) in enumerate(attachments):
        folder = f"__attach_version1.0_#{n:08X}"
        streams[f"{folder}/__substg1.0_37010102"] = data
        streams[f"{folder}/__substg1.0_3707001F"] = name.encode("utf-16-le")
        streams[f"{folder}/__properties_version1.0"] = msg_properties({}, 8)
    return streams
