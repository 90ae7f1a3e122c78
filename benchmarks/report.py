"""Reports and exports of a large case: time and peak memory (issue 7).

Builds a synthetic benign case (no pictures: item rows with random hashes, every item
graded by two reviewers so graded-only outputs hold them all), then times each output in a
fresh process and reads that process's peak resident memory. Two case sizes side by side
show that memory stays flat as the case grows (everything streams; the PDF's appendix goes
into volumes of 20,000 records).

    .venv/bin/python benchmarks/report.py                       # 100,000 and 1,000,000 items
    .venv/bin/python benchmarks/report.py --sizes 20000 --formats html,csv     # smoke run
    .venv/bin/python benchmarks/report.py --pdf-libraries       # ReportLab vs WeasyPrint

``--pdf-libraries`` renders the same appendix table with both PDF libraries the issue named
(WeasyPrint must be installed by hand: ``pip install weasyprint``; Safeguard does not depend
on it) and prints their time and memory.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUTPUTS = {
    "report html": ("report", "html"),
    "report pdf": ("report", "pdf"),
    "export csv": ("export", "csv"),
    "export vics": ("export", "vics"),
    "export icse": ("export", "icse"),
    "export case-uco": ("export", "case-uco"),
}
BATCH = 20_000


def build_case(home: Path, items: int) -> dict[str, float]:
    """A case ``bench`` of ``items`` picture rows, each graded B by rev1 and rev2."""
    from sqlalchemy import insert

    from safeguard.config import load_settings
    from safeguard.store.cases import create_case
    from safeguard.store.models import Evidence, Item, ReviewGrade
    from safeguard.triage.series import ensure_series

    started = time.perf_counter()
    case = create_case(load_settings(home), "bench")
    stamp = "2024-05-01T10:00:00.000000Z"
    with case.engine.begin() as conn:
        evidence = conn.execute(insert(Evidence).returning(Evidence.id), {
            "path": "/evidence/seizure-01", "fs_path": b"/evidence/seizure-01",
            "source": "directory", "added_at": stamp, "added_by": "bench",
            "enumerated": True}).scalar_one()
    for start in range(0, items, BATCH):
        rows, grades = [], []
        batch = str(uuid.uuid4())
        for i in range(start + 1, min(items, start + BATCH) + 1):
            seed = i.to_bytes(8, "little")
            sha = hashlib.sha256(seed).hexdigest()
            rows.append({
                "id": i, "evidence_id": evidence, "path": f"DCIM/{i // 1000:04d}/IMG_{i:07d}.jpg",
                "ordinal": 0, "depth": 0, "entry": "file", "size": 100_000 + i % 5000,
                "mtime": stamp, "atime": stamp, "ctime": stamp, "crtime": None,
                "deleted": i % 50 == 0, "type": "image/jpeg", "extension_mismatch": False,
                "md5": hashlib.md5(seed).hexdigest(), "sha1": hashlib.sha1(seed).hexdigest(),
                "sha256": sha, "pdq": hashlib.sha256(sha.encode()).hexdigest(),
                "pdq_quality": 100, "status": "done", "verdict": "unknown"})
            for reviewer in ("rev1", "rev2"):
                grades.append({"item_id": i, "reviewer": reviewer, "category": "B",
                               "flags": "", "batch": batch, "created_at": stamp,
                               "resolution": False})
        with case.engine.begin() as conn:  # plain tables: the ORM's bulk path is slower
            conn.execute(insert(Item.__table__), rows)
            conn.execute(insert(ReviewGrade.__table__), grades)
    built = time.perf_counter() - started
    started = time.perf_counter()
    ensure_series(case)  # triage's series: built once, as the review app would have
    return {"build_s": built, "series_s": time.perf_counter() - started}


def run_one(home: Path, kind: str, fmt: str, out: Path) -> dict[str, Any]:
    """In this (fresh) process: one output; its time and this process's peak memory."""
    from safeguard.cli import main

    args = ["--home", str(home), kind, "bench", "--format", fmt, "--out", str(out),
            "--force"]
    if kind == "report":
        args += ["--appendix", "graded"]
    started = time.perf_counter()
    code = main(args)
    seconds = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"{kind} {fmt} failed with exit code {code}")
    size = sum(p.stat().st_size for p in out.parent.glob(out.stem + "*"))
    return {"seconds": seconds, "peak_mb": peak_mb(), "bytes": size}


def peak_mb() -> float:
    """This process's peak resident memory since it started (VmHWM). Not ``ru_maxrss``:
    Linux carries that across fork and exec, so a child would report its parent's peak
    (here: the parent that built the case)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(home: Path, name: str, work: Path) -> dict[str, Any]:
    kind, fmt = OUTPUTS[name]
    out = work / f"out-{fmt}.{ {'case-uco': 'jsonld', 'vics': 'json'}.get(fmt, fmt) }"
    done = subprocess.run(
        [sys.executable, __file__, "--run", kind, fmt, str(home), str(out)],
        capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{name}: {done.stderr.strip() or done.stdout.strip()}")
    for path in out.parent.glob(out.stem + "*"):
        path.unlink()
    return json.loads(done.stdout.strip().splitlines()[-1])


def idle_peak_mb() -> float:
    """Peak memory of a process that only imports the CLI: the floor under every row."""
    done = subprocess.run([sys.executable, __file__, "--floor"], capture_output=True,
                          text=True, check=True)
    return float(done.stdout.strip())


def pdf_libraries(rows: int) -> None:
    """The same appendix-like table rendered by ReportLab and by WeasyPrint."""
    print(f"\nPDF libraries: a {rows}-row table of paths and hashes, fresh process each\n")
    print("| library | seconds | peak MB |")
    print("|---|---:|---:|")
    for library in ("reportlab", "weasyprint"):
        done = subprocess.run([sys.executable, __file__, "--pdf-run", library, str(rows)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"| {library} | not run: {done.stderr.strip().splitlines()[-1]} | |")
            continue
        found = json.loads(done.stdout)
        print(f"| {library} | {found['seconds']:.1f} | {found['peak_mb']:.0f} |")


def pdf_run(library: str, rows: int) -> None:
    data = [(f"/evidence/folder{i % 50}/IMG_{i:07d}.jpg", hashlib.md5(str(i).encode()).hexdigest(),
             hashlib.sha256(str(i).encode()).hexdigest(), "2024-05-01T10:00:00Z", "B",
             "rev1, rev2") for i in range(rows)]
    out = Path(tempfile.mkdtemp()) / "t.pdf"
    started = time.perf_counter()
    if library == "weasyprint":
        from weasyprint import HTML

        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                       for row in data)
        HTML(string="<html><head><style>@page{size:A4 landscape;margin:1cm} td{font-size:6pt;"
                    f"word-break:break-all}}</style></head><body><table>{body}</table></body>"
                    "</html>").write_pdf(out)
    else:
        from reportlab.lib.pagesizes import A4, landscape
        from reportlab.lib.styles import getSampleStyleSheet
        from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate

        style = getSampleStyleSheet()["BodyText"]
        style.fontSize, style.leading = 6, 7
        cells = [[Paragraph(html.escape(c), style) for c in row] for row in data]
        SimpleDocTemplate(str(out), pagesize=landscape(A4)).build(
            [LongTable(cells, colWidths=[220, 120, 250, 80, 30, 60])])
    seconds = time.perf_counter() - started
    shutil.rmtree(out.parent)
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000",
                        help="case sizes in items, comma-separated")
    parser.add_argument("--formats", default=",".join(
        name.split()[1] for name in OUTPUTS), help="html,pdf (reports), csv,vics,icse,case-uco")
    parser.add_argument("--pdf-libraries", type=int, nargs="?", const=1000, default=None,
                        metavar="ROWS", help="compare ReportLab and WeasyPrint instead")
    parser.add_argument("--run", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--pdf-run", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor:
        import safeguard.cli
        import safeguard.exports.case_uco
        import safeguard.exports.cases
        import safeguard.exports.csv_items
        import safeguard.exports.icse
        import safeguard.exports.vics
        import safeguard.reports.pdf
        import safeguard.reports.report
        import safeguard.triage.series  # noqa: F401

        print(peak_mb())
        return
    if args.run:
        kind, fmt, home, out = args.run
        print(json.dumps(run_one(Path(home), kind, fmt, Path(out))))
        return
    if args.pdf_run:
        pdf_run(args.pdf_run[0], int(args.pdf_run[1]))
        return
    if args.pdf_libraries:
        pdf_libraries(args.pdf_libraries)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    wanted = set(args.formats.split(","))
    names = [n for n in OUTPUTS if n.split()[1] in wanted]
    print(f"Reports and exports; {os.cpu_count()} cores; every item graded (two reviewers);"
          f" process floor (imports only) {idle_peak_mb():.0f} MB peak\n")
    results: dict[tuple[int, str], dict[str, Any]] = {}
    for size in sizes:
        work = Path(tempfile.mkdtemp(prefix="sg-report-bench-"))
        try:
            setup = build_case(work / "home", size)
            print(f"case of {size:,} items built in {setup['build_s']:.0f} s "
                  f"(+ triage series {setup['series_s']:.0f} s)", flush=True)
            for name in names:
                results[size, name] = measure(work / "home", name, work)
                found = results[size, name]
                print(f"  {name}: {found['seconds']:.1f} s, {found['peak_mb']:.0f} MB peak",
                      flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print("\n| output | items | seconds | items/s | peak memory MB | output MB |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in names:
        for size in sizes:
            found = results[size, name]
            print(f"| {name} | {size:,} | {found['seconds']:.1f} | "
                  f"{size / found['seconds']:,.0f} | {found['peak_mb']:.0f} | "
                  f"{found['bytes'] / 1e6:,.0f} |")
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        print(f"\nPeak memory, {large:,} items against {small:,} ({large // small}x the "
              "items): bounded means close to 1.0x")
        print("| output | ratio |")
        print("|---|---:|")
        for name in names:
            ratio = results[large, name]["peak_mb"] / results[small, name]["peak_mb"]
            print(f"| {name} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
