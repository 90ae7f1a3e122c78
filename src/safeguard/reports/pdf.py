"""``--format pdf``: the case report, with ReportLab (docs/reports.md says why ReportLab
over WeasyPrint).

The body is the HTML report's, laid out with platypus on landscape A4. The font is the
Bitstream Vera that ships inside ReportLab's wheel, so a report renders the same on every
machine and nothing is fetched; a character the font lacks, and every control character, is
written as a visible escape (``\\u0416``, ``\\n``) so no name is shown wrongly or silently
changed. Hashes are in Courier.

The appendix is a list of item records, each a flowable that splits between pages at a line
boundary. ReportLab holds a document's pages until it saves it, so a large appendix goes into
volumes of :data:`VOLUME_ITEMS` records: the report holds the first, each further volume is a
file beside it (``NAME.appendix-002.pdf`` …), and the report lists every volume with its
SHA256 and item range. Memory is bounded by one volume whatever the case's size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache, partial
from io import BytesIO
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO
from xml.sax.saxutils import escape

import reportlab
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.utils import ImageReader, simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    KeepTogether,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from safeguard.errors import ReportError
from safeguard.evidence.volumes import volume_line
from safeguard.outputs import write_atomically
from safeguard.reports.base import ReportFile, ReportJob
from safeguard.reports.content import AppendixRow, ReportData
from safeguard.reports.html import EMPTY_TEXT, SCOPE_TEXT, checks, show
from safeguard.reports.thumbnails import Thumbnail
from safeguard.text import visible
from safeguard.toolchain.summary import summary_lines

#: item records per PDF file (about 700 pages)
VOLUME_ITEMS = 20_000
PAGE = landscape(A4)
MARGIN = 28
WIDTH = PAGE[0] - 2 * MARGIN
FONT, BOLD, MONO = "SafeguardVera", "SafeguardVera-Bold", "Courier"
SMALL, LEADING = 6.5, 8.0
THUMB = 56


@dataclass(frozen=True)
class Volume:
    number: int
    path: Path
    sha256: str
    items: int
    first_id: int
    last_id: int


@cache
def _fonts() -> frozenset[int]:
    """Register Vera (regular, bold) from ReportLab's own wheel; the code points it has."""
    folder = Path(reportlab.__file__).parent / "fonts"
    regular = TTFont(FONT, str(folder / "Vera.ttf"))
    pdfmetrics.registerFont(regular)
    pdfmetrics.registerFont(TTFont(BOLD, str(folder / "VeraBd.ttf")))
    return frozenset(regular.face.charToGlyph)


def printable(text: Any) -> str:
    """``text`` as the PDF shows it: :func:`visible`, and every character the font cannot
    show written as an escape too (``\\u0416``)."""
    if text is None:
        return ""
    shown = visible(str(text))
    have = _fonts()
    if all(ord(char) in have for char in shown):
        return shown
    return "".join(char if ord(char) in have
                   else char.encode("unicode_escape").decode("ascii") for char in shown)


def _styles() -> dict[str, ParagraphStyle]:
    _fonts()
    base = ParagraphStyle("body", fontName=FONT, fontSize=8.5, leading=11)
    return {
        "body": base,
        "title": ParagraphStyle("title", base, fontName=BOLD, fontSize=16, leading=20,
                                spaceAfter=8),
        "h2": ParagraphStyle("h2", base, fontName=BOLD, fontSize=12, leading=15,
                             spaceBefore=12, spaceAfter=4),
        "h3": ParagraphStyle("h3", base, fontName=BOLD, fontSize=9.5, leading=12,
                             spaceBefore=8, spaceAfter=3),
        "cell": ParagraphStyle("cell", base, fontSize=7.5, leading=9.5),
        "mono": ParagraphStyle("mono", base, fontName=MONO, fontSize=7, leading=9),
        "note": ParagraphStyle("note", base, fontSize=7.5, leading=9.5,
                               textColor=colors.HexColor("#444444")),
    }


def _p(text: Any, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(printable(text)), style)


def _table(header: Sequence[str] | None, rows: Sequence[Sequence[Any]],
           widths: Sequence[float], mono: Sequence[int] = ()) -> Table:
    """A grid of wrapped cells; ``header`` (shaded, repeated on each page) unless None."""
    styles = _styles()
    data = [] if header is None else [[_p(h, styles["cell"]) for h in header]]
    for row in rows:
        data.append([_p(value, styles["mono"] if i in mono else styles["cell"])
                     for i, value in enumerate(row)])
    table = Table(data, colWidths=list(widths), repeatRows=0 if header is None else 1,
                  hAlign="LEFT")
    table.setStyle(TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#999999")),
        ("BACKGROUND", (0, 0), (0 if header is None else -1, -1 if header is None else 0),
         colors.HexColor("#eeeeee")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
    ]))
    return table


def _pairs(rows: Sequence[tuple[str, Any]]) -> Table:
    """Label and value rows, the labels shaded."""
    return _table(None, rows, [170, WIDTH - 170])


# --- the appendix's records ------------------------------------------------------------------


class _Record(Flowable):
    """Columns of text lines drawn top-aligned; splits at a line boundary."""

    def __init__(self, columns: list[tuple[float, str, list[str]]], rule: bool,
                 image: bytes | None = None) -> None:
        super().__init__()
        self.columns = columns  # (x, font, lines)
        self.rule = rule
        self.image = image
        self.lines = max(1, *(len(lines) for _, _, lines in columns))

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        height = self.lines * LEADING + 3
        if self.image is not None:
            height = max(height, THUMB + 3)
        return WIDTH, height

    def split(self, avail_width: float, avail_height: float) -> list[Flowable]:
        fit = int((avail_height - 3) // LEADING)
        if self.image is not None or fit < 2 or fit >= self.lines:
            return []
        head = [(x, font, lines[:fit]) for x, font, lines in self.columns]
        tail = [(x, font, lines[fit:]) for x, font, lines in self.columns]
        return [_Record(head, self.rule), _Record(tail, False)]

    def draw(self) -> None:
        canvas = self.canv
        _, height = self.wrap(WIDTH, 0)
        if self.rule:
            canvas.setStrokeColor(colors.HexColor("#bbbbbb"))
            canvas.setLineWidth(0.4)
            canvas.line(0, height, WIDTH, height)
        text = canvas.beginText()  # one text object per record: far cheaper than per line
        for x, font, lines in self.columns:
            if lines:
                text.setTextOrigin(x, height - 1.5 - SMALL)
                text.setFont(font, SMALL, LEADING)
                for line in lines:
                    text.textLine(line)
        canvas.drawText(text)
        if self.image is not None:
            canvas.drawImage(ImageReader(BytesIO(self.image)), 0, height - 1.5 - THUMB,
                             width=THUMB, height=THUMB, preserveAspectRatio=True, anchor="nw")


def _wrapped(texts: Sequence[str], font: str, width: float) -> list[str]:
    lines: list[str] = []
    for text in texts:
        if text:
            text = printable(text)
            if pdfmetrics.stringWidth(text, font, SMALL) <= width:
                lines.append(text)  # most lines fit: no wrapping to work out
            else:
                lines.extend(_split(text, font, width))
    return lines


def _split(text: str, font: str, width: float) -> list[str]:
    """Wrap at spaces where possible, and inside long words (paths, hashes) where not."""
    out = []
    for line in simpleSplit(text, font, SMALL, width):
        while pdfmetrics.stringWidth(line, font, SMALL) > width and len(line) > 1:
            cut = len(line) - 1
            while cut > 1 and pdfmetrics.stringWidth(line[:cut], font, SMALL) > width:
                cut = max(1, cut * 9 // 10)
            while pdfmetrics.stringWidth(line[:cut + 1], font, SMALL) <= width:
                cut += 1
            out.append(line[:cut])
            line = line[cut:]
        out.append(line)
    return out


def _layout(thumbnails: bool) -> dict[str, tuple[float, float]]:
    """x and width of each appendix column: the hash column fits a SHA256 line, the times
    column a timestamp with microseconds; the path takes what is left."""
    _fonts()
    hashes = pdfmetrics.stringWidth("SHA256 " + "0" * 64, MONO, SMALL) + 8
    times = pdfmetrics.stringWidth("accessed 2000-00-00T00:00:00.000000Z", FONT, SMALL) + 8
    widths: list[tuple[str, float | None]] = [
        ("thumb", THUMB + 6 if thumbnails else 0), ("id", 34), ("path", None),
        ("hashes", hashes), ("times", times), ("category", 120)]
    rest = WIDTH - sum(w for _, w in widths if w is not None)
    x, layout = 0.0, {}
    for name, given in widths:
        width = rest if given is None else given
        layout[name] = (x, width - 6)
        x += width
    return layout


def _record(row: AppendixRow, layout: dict[str, tuple[float, float]],
            thumb: Thumbnail | None) -> list[Flowable]:
    item = row.item
    meta = [f"in {item.evidence}", f"{item.type or 'unknown type'}; "
            f"{item.size if item.size is not None else '?'} bytes"
            + ("; DELETED" if item.deleted else "")]
    if item.context:
        meta.append(f"found as: {item.context}")
    if row.error:
        meta.append(f"error: {row.error}")
    if thumb is not None and thumb.jpeg is None:
        meta.append(thumb.reason or "")
    hashes = [f"MD5    {item.md5}", f"SHA1   {item.sha1}", f"SHA256 {item.sha256}"]
    if item.pdq:
        hashes.append(f"PDQ    {item.pdq}")
    times = [f"{label} {value}" for label, value in (
        ("modified", item.mtime), ("created", item.crtime), ("accessed", item.atime),
        ("changed", item.ctime)) if value]
    category = [f"{item.graded} ({item.status})" if item.graded else item.status]
    if item.matched:
        category.append(f"matched {item.matched}")
    if item.series is not None:
        category.append(f"series {item.series}")
    category += [f"segment {run.start}–{run.end} s" + (f": {run.category}" if run.category
                                                      else "") + f" ({run.source})"
                 for run in item.segments]
    if row.graders:
        category.append("graded by " + ", ".join(row.graders))

    def column(name: str, font: str, texts: Sequence[str]) -> tuple[float, str, list[str]]:
        x, width = layout[name]
        return x, font, _wrapped(texts, font, width)

    columns = [
        column("id", FONT, [str(item.id)]),
        column("path", FONT, [item.path, *meta]),
        (layout["hashes"][0], MONO, hashes),
        column("times", FONT, times),
        column("category", FONT, category),
    ]
    flowables: list[Flowable] = [_Record(columns, True, thumb.jpeg if thumb else None)]
    if row.provenance or row.verdict not in (None, "unknown"):
        x = layout["path"][0]
        texts = [f"provenance: {row.verdict or 'no verdict'}", *(f"  {line}"
                                                                 for line in row.provenance)]
        flowables.append(_Record([(x, FONT, _wrapped(texts, FONT, WIDTH - x))], False))
    return flowables


def _appendix(rows: Sequence[AppendixRow], thumb: Callable[[AppendixRow], Thumbnail] | None
              ) -> Iterator[Flowable]:
    layout = _layout(thumb is not None)
    for row in rows:
        yield from _record(row, layout, thumb(row) if thumb else None)


# --- documents -------------------------------------------------------------------------------


def _document(handle: BinaryIO, data: ReportData, title: str) -> BaseDocTemplate:
    _fonts()
    doc = BaseDocTemplate(handle, pagesize=PAGE, leftMargin=MARGIN, rightMargin=MARGIN,
                          topMargin=MARGIN + 10, bottomMargin=MARGIN + 6, title=title,
                          author=data.generated_by, creator=f"Safeguard {data.tool_version}",
                          subject=f"case {data.case}")
    frame = Frame(MARGIN, MARGIN + 6, WIDTH, PAGE[1] - 2 * MARGIN - 16, id="body",
                  leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0)

    def decorate(canvas: Any, document: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7)
        canvas.setFillColor(colors.HexColor("#555555"))
        canvas.drawString(MARGIN, PAGE[1] - MARGIN, printable(title))
        canvas.drawRightString(PAGE[0] - MARGIN, PAGE[1] - MARGIN,
                               f"generated {data.generated_at}")
        canvas.drawString(MARGIN, MARGIN - 8, f"Safeguard {data.tool_version}; this file's "
                          "SHA256 is in the case's audit log (case.reported)")
        canvas.drawRightString(PAGE[0] - MARGIN, MARGIN - 8, f"page {document.page}")
        canvas.restoreState()

    doc.addPageTemplates([PageTemplate(id="page", frames=[frame], onPage=decorate)])
    return doc


def write_volume(data: ReportData, number: int, rows: Sequence[AppendixRow], handle: BinaryIO,
                 thumb: Callable[[AppendixRow], Thumbnail] | None = None) -> int:
    """One further appendix volume (``number`` ≥ 2) of the report."""
    styles = _styles()
    title = f"Case report: {data.case} (appendix, volume {number})"
    story: list[Flowable] = [
        _p(title, styles["title"]),
        _p(f"Items {rows[0].item.id} to {rows[-1].item.id} ({len(rows)} records) of the "
           f"report generated {data.generated_at} by {data.generated_by}; appendix of "
           f"{SCOPE_TEXT[data.appendix_scope]}.", styles["body"]),
        Spacer(1, 6), *_appendix(rows, thumb)]
    _document(handle, data, title).build(story)
    return len(rows)


def write_report(data: ReportData, rows: Sequence[AppendixRow], volumes: Sequence[Volume],
                 handle: BinaryIO, thumb: Callable[[AppendixRow], Thumbnail] | None = None
                 ) -> int:
    """The report: body, the first appendix volume and the list of further volumes."""
    styles = _styles()
    s, review = data.summary, data.review
    counts, matching, provenance = s["counts"], s["matching"], s["provenance"]
    title = f"Case report: {data.case}"
    story: list[Flowable] = [_p(title, styles["title"]), _pairs([
        ("Case", data.case),
        ("Created", f"{s['created_at']} by {s['created_by']} (Safeguard {s['tool_version']})"),
        ("Report generated", f"{data.generated_at} by {data.generated_by} with Safeguard "
                             f"{data.tool_version}"),
        ("Case state", f"audit event {data.audit_events}, hash {data.audit_head or '-'}; "
                       f"chain {'verified' if data.audit_ok else 'DOES NOT VERIFY'}"),
        ("Signed checkpoint", data.checkpoint.describe() if data.checkpoint
         else "none: no lab key signs this case's audit log"),
        ("This report", "its SHA256 is written to the case's audit log (case.reported); "
                        f"check it with: safeguard audit verify {data.case}"),
    ])]
    h2, h3, body = styles["h2"], styles["h3"], styles["body"]
    story.append(_p("1. Evidence", h2))
    for number, evidence in enumerate(s["evidence"], 1):
        story.append(_p(f"{number}. {evidence['path']}", h3))
        pairs = [("Source", evidence["source"]),
                 ("Added", f"{evidence['added_at']} by {evidence['added_by']}"),
                 ("Verification", evidence["verification"] or "none recorded")]
        pairs += [(key, "; ".join(map(volume_line, value)) if key == "volumes" else show(value))
                  for key, value in sorted((evidence["acquisition"] or {}).items())]
        story.append(_pairs(pairs))
    if not s["evidence"]:
        story.append(_p("No evidence has been added to this case.", body))

    story += [_p("2. Methods", h2), _p(
        "Every file was hashed with MD5, SHA1 and SHA256; pictures with PDQ; videos with "
        "vPDQ. Items are compared with the hash sets below; a PDQ match is a distance at "
        "most the threshold. A category is graded when "
        f"{review['required']} reviewers agree (trusted) or an examiner resolves a dispute.",
        body), _p("Scans", h3)]
    story.append(_table(
        ["Scan", "Evidence", "By", "Started", "Finished", "Status", "Workers", "PDQ",
         "Threshold", "Library gen.", "Provenance checks"],
        [[f"{scan['scan']}{' (resumed)' if scan['resumed'] else ''}", scan["evidence"],
          scan["actor"], scan["started_at"], scan["finished_at"] or "", scan["status"],
          scan["workers"], scan["pdq_method"] or "",
          "no matching" if scan["pdq_threshold"] is None else scan["pdq_threshold"],
          "" if scan["library_generation"] is None else scan["library_generation"],
          checks(scan["provenance"])] for scan in data.scans] or [["No scans."] + [""] * 10],
        [40, 120, 50, 80, 80, 45, 35, 45, 40, 40, WIDTH - 575]))
    story.append(_p("Hash sets", h3))
    story.append(_table(
        ["Name", "Version", "Supplier", "Purpose", "Scheme", "Entries", "Imported",
         "Source file SHA256"],
        [[hs["name"], hs["version"] or "", hs["supplier"] or "", hs["purpose"],
          hs["scheme"] or "", "" if hs["entries"] is None else hs["entries"],
          hs["imported_at"] or "no longer in the library", hs["source_sha256"] or ""]
         for hs in data.hash_sets] or [["No hash sets were used."] + [""] * 7],
        [100, 50, 90, 60, 50, 50, 90, WIDTH - 490], mono=(7,)))

    known = data.known_new
    story += [_p("3. Results", h2), _pairs([
        ("Items", counts["items"]), ("Pictures and videos", known["media"]),
        ("Known (matched a known-bad hash set)", known["known"]),
        ("Known good only", known["known_good"]), ("New (no match)", known["new"]),
        ("Archive members", counts["archive_members"]),
        ("Items with errors", counts["errors"]), ("Not yet scanned", counts["pending"])]),
        _p("Graded categories (reviewers' consensus)", h3)]
    if review["by_category"]:
        story.append(_table(["Category", "Items"], list(review["by_category"].items()),
                            [120, 60]))
    else:
        story.append(_p("No items have been graded in this case (no trusted or resolved "
                        "category).", styles["h3"]))
    story += [_p("Categories of matched hash sets", h3), _table(
        ["Category", "As the set gave it", "Items", "By digest", "By PDQ only"],
        [[row["category"] or "unmapped", row["category_given"] or "", row["items"],
          row["exact_items"], row["pdq_only_items"]] for row in matching["by_category"]]
        or [["No matches with a category.", "", "", "", ""]], [90, 110, 60, 60, 60])]
    story += [_p("By evidence", h3), _table(
        ["Evidence", "Items", "Pictures", "Videos", "Known", "Graded", "Errors"],
        [[row["path"], row["items"], row["pictures"], row["videos"], row["known"],
          row["graded"], row["errors"]] for row in data.by_evidence] or [["None"] + [""] * 6],
        [WIDTH - 300, 50, 50, 50, 50, 50, 50])]
    story += [_p("Matches by hash set", h3), _table(
        ["Set", "Version", "Purpose", "Items"],
        [[row["set"], row["version"] or "", row["purpose"], row["items"]]
         for row in matching["by_set"]] or [["No matches.", "", "", ""]], [160, 80, 80, 60])]
    story += [_p("Provenance verdicts", h3), _table(
        ["Verdict", "Pictures"], list(provenance["by_verdict"].items()), [120, 60]),
        _p("Unsigned metadata (generator text, XMP, EXIF) can be written by anyone: it "
           "indicates, it does not prove. Only a trusted C2PA signature confirms. Each item's "
           "evidence lines are in the appendix.", styles["note"])]
    if data.evidence_kinds:
        story.append(_table(
            ["Verdict", "Signal", "Field", "Indicates", "Pictures"],
            [[k["verdict"], k["signal"], k["field"], k["indicates"], k["items"]]
             for k in data.evidence_kinds], [100, 90, 200, 80, 60]))
    story += [_p("Camera devices seen", h3), _table(
        ["Make", "Model", "Serial", "Items"],
        [[d.get("make"), d.get("model"), d.get("serial"), d["items"]]
         for d in provenance["devices"]] or [["No camera serial numbers recorded.", "", "",
                                              ""]], [120, 160, 160, 60])]
    toolchain = data.summary["toolchain"]
    story.append(_p("AI toolchain", h3))
    if toolchain["installations"] or toolchain["model_files"] or toolchain["training_sets"] \
            or toolchain["prompts"]:
        story.append(_table(["Found"], [[line] for line in summary_lines(toolchain)], [700]))
        if toolchain["output_links"]:
            story.append(_table(
                ["Generated picture", "Made with", "Model file on the device", "Linked by"],
                [[link["picture"], f"{link['role']} {link['named']}", link["model"],
                  link["by"]] for link in toolchain["output_links"]], [240, 140, 240, 60]))
    else:
        story.append(_p("No generator installation, model file, training set or prompt was "
                        "found.", body))
    story += _links(data.links, h3, body)

    # the section's heading and its short consensus table on one page, never split
    story += [KeepTogether([_p("4. Review", h2), _table(
        ["Consensus", "Items"],
        [*review["by_status"].items(), *((f"flagged {flag}", n)
                                         for flag, n in review["flags"].items())], [150, 60])]),
        Spacer(1, 6), _table(
            ["Reviewer", "Grades", "Resolutions", "Undone", "First", "Last"],
            [[p["name"], p["grades"], p["resolutions"], p["undone"], p["first"], p["last"]]
             for p in data.reviewers] or [["Nobody has graded an item.", "", "", "", "", ""]],
            [120, 50, 60, 50, 130, 130])]
    story += [_p("5. Earlier reports and exports", h2), _table(
        ["Audit event", "Time", "By", "What", "File", "SHA256"],
        [[o["seq"], o["time"], o["actor"], f"{o['action']} {o['format'] or ''}",
          o["path"] or "", o["sha256"] or ""] for o in data.outputs]
        or [["None.", "", "", "", "", ""]], [45, 100, 60, 90, WIDTH - 595, 300], mono=(5,))]

    story += [PageBreak(), _p(f"Appendix: item records ({SCOPE_TEXT[data.appendix_scope]})",
                              h2)]
    total = len(rows) + sum(v.items for v in volumes)
    if not rows:
        story.append(_p(f"No items: {EMPTY_TEXT[data.appendix_scope]}.", body))
    elif volumes:
        story.append(_p(f"{total} records in {len(volumes) + 1} volumes: this file holds "
                        f"items {rows[0].item.id} to {rows[-1].item.id} ({len(rows)} records); "
                        "the others are:", body))
        story.append(_table(["Volume", "File", "Items", "Records", "SHA256"], [
            [v.number, v.path.name, f"{v.first_id} to {v.last_id}", v.items, v.sha256]
            for v in volumes], [40, 200, 100, 50, 300], mono=(4,)))
        story.append(Spacer(1, 6))
    story += list(_appendix(rows, thumb))
    story.append(_p("End of report.", styles["note"]))
    _document(handle, data, title).build(story)
    return len(rows)


def volume_path(output: Path, number: int) -> Path:
    return output.with_name(f"{output.stem}.appendix-{number:03d}{output.suffix or '.pdf'}")


def existing_volumes(output: Path) -> list[Path]:
    """Further volumes of an earlier report at ``output``."""
    folder = output.parent if str(output.parent) else Path(".")
    return sorted(folder.glob(f"{_glob_escape(output.stem)}.appendix-[0-9][0-9][0-9]"
                              f"{_glob_escape(output.suffix or '.pdf')}"))


def _links(links: dict[str, Any], h3: ParagraphStyle, body: ParagraphStyle) -> list[Any]:
    """"Seen in other cases" (reports.content.case_links)."""
    story: list[Any] = [_p("Seen in other cases", h3), _p(
        "From the lab index: what this case shares with the lab's other cases. New material "
        "seen in two cases is the strongest lead. Cases the report's maker may not open are "
        "named only by whom to ask.", body)]
    if links.get("state"):
        story.append(_p(links["state"], body))
    for other in links.get("others", []):
        lead = " — new material seen in both cases: the strongest lead" \
            if other["new_material"] else ""
        story += [_p(f"{other['case']} (owner {other['owner']}): {other['strength']}{lead}",
                     body),
                  _table(["Strength", "Shared", "Evidence"],
                         [[line["strength"], line["kind"], line["evidence"]]
                          for line in other["lines"]], [80, 80, 540])]
    story += [_p(message, body) for message in links.get("hidden", [])]
    story += [_p(f"Case {name} is in the lab index but no longer exists.", body)
              for name in links.get("missing", [])]
    return story


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in text)


def chunks(rows: Iterator[AppendixRow]) -> Iterator[list[AppendixRow]]:
    while chunk := list(islice(rows, VOLUME_ITEMS)):
        yield chunk


def write(job: ReportJob) -> tuple[ReportFile, ...]:
    """Write the report and its further appendix volumes (each atomically; all or none);
    returns them, the report first. Volumes of an earlier, larger report at this path are
    removed."""
    data, output, force, thumb = job.data, job.output, job.force, job.thumb
    stale = existing_volumes(output)
    if stale and not force:
        raise ReportError(f"{stale[0]} exists (a volume of an earlier report); give --force "
                          "to overwrite it")
    batches = chunks(job.rows)
    first = next(batches, [])
    volumes: list[Volume] = []
    try:
        for number, batch in enumerate(batches, 2):
            path = volume_path(output, number)
            count, digest = write_atomically(
                path, partial(write_volume, data, number, batch, thumb=thumb), True, ReportError)
            volumes.append(Volume(number, path, digest, count, batch[0].item.id,
                                  batch[-1].item.id))
        count, digest = write_atomically(
            output, lambda handle: write_report(data, first, volumes, handle, thumb), force,
            ReportError)
    except BaseException:
        for volume in volumes:  # a report is whole or absent
            volume.path.unlink(missing_ok=True)
        raise
    written = {v.path for v in volumes}
    for path in stale:  # volumes of an earlier, larger report at this path
        if path not in written:
            path.unlink(missing_ok=True)
    return (ReportFile(output, digest, count),
            *(ReportFile(v.path, v.sha256, v.items) for v in volumes))
