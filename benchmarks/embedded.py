"""Pictures inside other files: what reading documents, mail, databases and thumbnail caches
costs a scan's workers.

    .venv/bin/python benchmarks/embedded.py [--files 1000] [--reps 3]

A folder of ``--files`` benign files is built (cached under benchmarks/.corpus/embedded-N,
git-ignored), in turn: PDFs with two pictures, Word (OOXML) documents with two pictures,
EML messages with one attachment, MBOX mailboxes of three messages, SQLite chat databases
with picture BLOBs, RTF documents with one picture, and Windows thumbnail caches with three
thumbnails. Every file is processed by the worker's own code (``process_unit``, one process,
one file after the other: the pool's scheduling is not measured) twice per repetition, side
by side: with every container reader, and with the new readers taken out of the registry
(the same folder as Safeguard read it before: each file hashed whole, the OOXML packages as
zips). The table gives the median items/s and seconds of each, and the share of the time
spent on what the new readers open: (with - without) / with; and, apart, the new readers'
parsing alone (every member's bytes given, nothing hashed or decoded).
"""

from __future__ import annotations

import argparse
import email.message
import io
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import pikepdf
from PIL import Image
from tests.evidence.containers.thumbcache_builder import cache_file, entry
from tests.helpers import jpeg_bytes, png_bytes, scene

from safeguard.config import Limits
from safeguard.evidence import containers
from safeguard.evidence.directory import DirectorySource
from safeguard.pipeline.tasks import UnitTask
from safeguard.pipeline.worker import process_unit

CORPUS = Path(__file__).resolve().parent / ".corpus"
#: the readers Safeguard had before pictures inside other files were read
OLD_READERS = ("zip", "7z", "gzip", "bzip2", "xz", "disk image", "tar")


def _pdf(n: int) -> bytes:
    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=(400, 300))
    resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary())
    for k in range(2):
        img = scene(n * 2 + k, (320, 240))
        stream = pikepdf.Stream(pdf, jpeg_bytes(img))
        stream.Type, stream.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
        stream.Width, stream.Height = img.width, img.height
        stream.ColorSpace, stream.BitsPerComponent = pikepdf.Name.DeviceRGB, 8
        stream.Filter = pikepdf.Name.DCTDecode
        resources.XObject[f"/Im{k}"] = stream
    page.Resources = resources
    page.Contents = pdf.make_stream(b"q 160 0 0 120 10 10 cm /Im0 Do Q "
                                    b"q 160 0 0 120 200 10 cm /Im1 Do Q")
    out = io.BytesIO()
    pdf.save(out, deterministic_id=True)
    return out.getvalue()


def _docx(n: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as package:
        package.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://'
                         'schemas.openxmlformats.org/package/2006/content-types"/>')
        package.writestr("word/document.xml", "<w:document/>")
        for k in range(2):
            package.writestr(f"word/media/image{k + 1}.jpeg", jpeg_bytes(scene(n * 2 + k)))
    return out.getvalue()


def _message(n: int, k: int = 0) -> email.message.EmailMessage:
    message = email.message.EmailMessage()
    message["From"], message["To"] = "alice@example.org", "bob@example.org"
    message["Subject"], message["Date"] = f"Pictures {n}-{k}", "Mon, 20 May 2024 12:00:00 +0000"
    message.set_content("Some pictures from the walk.\n")
    message.add_attachment(jpeg_bytes(scene(n * 3 + k)), maintype="image", subtype="jpeg",
                           filename=f"walk-{k}.jpg")
    return message


def _mbox(n: int) -> bytes:
    return b"".join(b"From alice@example.org Mon May 20 12:00:00 2024\n"
                    + _message(n, k).as_bytes().replace(b"\nFrom ", b"\n>From ") + b"\n"
                    for k in range(3))


def _sqlite(n: int) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "chat.db"
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY, body TEXT, thumb BLOB)")
        for k in range(3):
            conn.execute("INSERT INTO messages VALUES (?, ?, ?)",
                         (k, f"message {k}", png_bytes(scene(n * 3 + k, (96, 72)))))
        conn.commit()
        conn.close()
        return path.read_bytes()


def _rtf(n: int) -> bytes:
    data = jpeg_bytes(scene(n, (200, 150)))
    return (b"{\\rtf1\\ansi{\\pict\\jpegblip\\picw200\\pich150 " + data.hex().encode()
            + b"}}")


def _thumbcache(n: int) -> bytes:
    return cache_file(21, 2, [entry(21, n * 3 + k + 1, jpeg_bytes(scene(n * 3 + k, (96, 72))))
                              for k in range(3)])


KINDS = (("pdf", _pdf), ("docx", _docx), ("eml", lambda n: _message(n).as_bytes()),
         ("mbox", _mbox), ("db", _sqlite), ("rtf", _rtf), ("thumbcache", _thumbcache))


def build(count: int) -> Path:
    folder = CORPUS / f"embedded-{count}"
    if folder.is_dir() and len(list(folder.iterdir())) == count:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        kind, make = KINDS[n % len(KINDS)]
        data = make(n)
        name = f"thumbcache_{n:04d}.db" if kind == "thumbcache" else f"{n:04d}.{kind}"
        (folder / name).write_bytes(data)
    return folder


def run(folder: Path) -> tuple[float, int]:
    """Seconds to process every file of ``folder`` and the items recorded."""
    source = DirectorySource(folder)
    tasks = [UnitTask(i, "directory", os.fsencode(folder), item.locator or b"", item.path,
                      item.size, Limits()) for i, item in enumerate(source.items())]
    started = time.perf_counter()
    items = sum(len(process_unit(task).records) for task in tasks)
    return time.perf_counter() - started, items


def parse_only(folder: Path) -> tuple[float, int]:
    """Seconds the new readers take to give every member's bytes of the folder's files (no
    hashing, no decoding: the parsing alone), and the members given."""
    from safeguard.evidence.containers import detect_container, iter_members

    paths = sorted(folder.iterdir())
    started = time.perf_counter()
    count = 0
    for path in paths:
        data = path.read_bytes()
        kind = detect_container(data[:8192], path.name)
        if kind is None or kind in OLD_READERS:
            continue
        for member in iter_members(kind, io.BytesIO(data), Limits(), path.name):
            count += 1
            if member.stream is not None:
                member.stream.read()
    return time.perf_counter() - started, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    folder = build(args.files)
    everything = list(containers.CONTAINERS)
    old = [reader for reader in everything if reader.name in OLD_READERS]
    registry = containers.CONTAINERS._items  # the benchmark swaps the plug-ins
    times: dict[str, list[float]] = {"with": [], "without": []}
    counts: dict[str, int] = {}
    Image.open(io.BytesIO(jpeg_bytes(scene(0)))).load()  # decoders loaded before timing
    for _ in range(args.reps):
        for mode, readers in (("with", everything), ("without", old)):
            registry.clear()
            registry.update({reader.name: reader for reader in readers})
            seconds, counts[mode] = run(folder)
            times[mode].append(seconds)
    registry.clear()
    registry.update({reader.name: reader for reader in everything})
    parsing = [parse_only(folder) for _ in range(args.reps)]
    parse_s, members = statistics.median(p[0] for p in parsing), parsing[0][1]
    print(f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{args.files} files, {args.reps} repetitions (median)")
    print(f"{'readers':<34} {'items':>6} {'seconds':>8} {'items/s':>8}")
    for mode, label in (("with", "every reader (this version)"),
                        ("without", "without the new readers (baseline)")):
        seconds = statistics.median(times[mode])
        print(f"{label:<34} {counts[mode]:>6} {seconds:>8.2f} {counts[mode] / seconds:>8.0f}")
    print(f"{'the new readers parsing alone':<34} {members:>6} {parse_s:>8.2f} "
          f"{members / parse_s:>8.0f}")
    with_s, without_s = statistics.median(times["with"]), statistics.median(times["without"])
    print(f"time ratio with/without: {with_s / without_s:.2f}x; share of the time in the new "
          f"parsers: {(with_s - without_s) / with_s:.0%}; items found: "
          f"{counts['with']} vs {counts['without']}; the parsing alone is "
          f"{parse_s / (with_s - without_s):.0%} of the extra time")


if __name__ == "__main__":
    main()
