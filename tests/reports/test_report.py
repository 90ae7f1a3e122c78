"""`safeguard report`: the HTML and PDF case report of a graded benign case — its findings,
methods, review and appendix (exact values), escaping, the empty case, an existing file,
the role check, PDF volumes, blurred thumbnails only on request, and its SHA256 in the
audit chain. The PDF is opened with poppler (pdftoppm renders page 1, pdftotext reads it)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import subprocess
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from sqlalchemy import select

from safeguard.accounts.store import Accounts
from safeguard.audit import log as audit
from safeguard.config import load_settings
from safeguard.reports import pdf as pdf_writer
from safeguard.reports.pdf import printable
from safeguard.review.thumbs import safe_thumbnail
from safeguard.store.cases import open_case
from safeguard.store.models import AuditEvent
from tests.exports.helpers import ODD, digests
from tests.helpers import CliResult
from tests.reports.helpers import pdf_text, poppler

SHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
PASSWORD = "correct horse battery"
#: graded (trusted or resolved) pictures of the `graded` case; d.png is disputed
GRADED = {"a.jpg": "A", "a-copy.jpg": "A", "a-small.jpg": "A", "b.png": "C", ODD: "B",
          "e.png": "not-indecent"}

#: the last line of a report or export in a home without a lab key
NO_CHECKPOINT = "rests on no signed checkpoint: no lab key signs this case's audit log"


def events(home: Path, case: str, action: str) -> list[AuditEvent]:
    with open_case(load_settings(home), case).engine.connect() as conn:
        return list(conn.execute(select(AuditEvent).where(AuditEvent.action == action)
                                 .order_by(AuditEvent.seq)).all())


class Cells(HTMLParser):
    """Text of every table row of the appendix, and every tag seen."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.rows: list[list[str]] = []
        self.text: list[str] = []
        self._in_items = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "table" and dict(attrs).get("class") == "items":
            self._in_items = True
        elif tag == "tr" and self._in_items:
            self.rows.append([])
        elif tag in ("td", "th") and self._in_items:
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._in_items = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse(html: str) -> Cells:
    cells = Cells()
    cells.feed(html)
    return cells


def test_html_report_states_findings_methods_and_review(
        cli: Callable[..., CliResult], graded: dict, home: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = cli("report", "k", "--format", "html", "--out", out)
    assert result.code == 0, result.err
    sha = hashlib.sha256(out.read_bytes()).hexdigest()
    assert result.out.splitlines() == [
        f"wrote the html report of case k to {out} (6 item records in the appendix)",
        f"sha256 {sha}", NO_CHECKPOINT]
    html = out.read_text("utf-8")
    page = parse(html)
    # self-contained: no script, no fetched resource, a CSP forbidding both
    assert not [tag for tag, _ in page.tags if tag in ("script", "link", "iframe", "img")]
    [csp] = [a["content"] for t, a in page.tags if t == "meta"
             and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp == "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    # the odd name is escaped, never markup
    assert "<script>alert(1)" not in html
    assert r"say &#34;hi&#34;, &lt;script&gt;alert(1)&lt;script&gt;\nnext line" in html
    text = " ".join(" ".join(page.text).split())
    assert "Graded categories (reviewers' consensus) Category Items A 3 B 1 C 1 " \
           "not-indecent 1" in text
    assert "Consensus Items ungraded 0 pending 0 trusted 5 disputed 1 resolved 1" in text
    assert "Reviewer Grades Resolutions Undone First Last exa 0 1 0" in text
    assert "Items 8 Pictures and videos 7 Known (matched a known-bad hash set) 0 " \
           "Known good only 0 New (no match) 7" in text
    evidence = str(graded["ev"])
    assert f"By evidence Evidence Items Pictures Videos Known Graded Errors {evidence} " \
           "8 7 0 0 7 0" in text
    # the appendix: one row per graded item, in item order, with its exact hashes
    rows = page.rows[1:]
    ids = graded["ids"]
    assert [int(r[0]) for r in rows] == sorted(ids[name] for name in GRADED)
    by_id = {int(r[0]): r for r in rows}
    for name, category in GRADED.items():
        row = by_id[ids[name]]
        md5, sha1, sha256 = digests(graded["files"][name])
        record = graded["records"][name]
        assert row[1].split("\n")[0] == record["path"].replace("\n", r"\n")
        assert row[2].split("\n") == [f"MD5 {md5}", f"SHA1 {sha1}", f"SHA256 {sha256}",
                                      f"PDQ {record['pdq']}"]
        status = "resolved" if name == "e.png" else "trusted"
        assert row[4].split("\n")[0] == f"{category} ({status})"
        graders = "rev1, rev2, exa (resolved)" if name == "e.png" else "rev1, rev2"
        assert row[5] == graders
        assert f"modified {record['mtime']}" in row[3]


def test_report_sha256_is_in_the_audit_chain(cli: Callable[..., CliResult], graded: dict,
                                             home: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "one.html", tmp_path / "two.pdf"
    assert cli("report", "k", "--format", "html", "--out", first).code == 0
    assert cli("report", "k", "--format", "pdf", "--out", second, "--json").code == 0
    reported = events(home, "k", "case.reported")
    assert [json.loads(e.details)["sha256"] for e in reported] == [
        hashlib.sha256(first.read_bytes()).hexdigest(),
        hashlib.sha256(second.read_bytes()).hexdigest()]
    details = json.loads(reported[0].details)
    assert details == {
        "format": "html", "path": str(first.absolute()), "sha256": details["sha256"],
        "items": 6, "appendix": "findings", "thumbnails": False,
        "audit_events_reflected": reported[0].seq - 1, "volumes": []}
    assert cli("audit", "verify", "k").code == 0
    # the second report lists the first among earlier outputs, with its SHA256
    assert details["sha256"] in pdf_text(second).replace("\n", " ")


def test_pdf_report_opens_and_shows_exact_values(cli: Callable[..., CliResult], graded: dict,
                                                 tmp_path: Path) -> None:
    out = tmp_path / "report.pdf"
    result = cli("report", "k", "--format", "pdf", "--out", out)
    assert result.code == 0, result.err
    assert out.read_bytes().startswith(b"%PDF-")
    SHOTS.mkdir(parents=True, exist_ok=True)
    target = SHOTS / "report-page1"
    subprocess.run([poppler("pdftoppm"), "-png", "-r", "80", "-f", "1", "-l", "1",
                    "-singlefile", str(out), str(target)], check=True)
    with Image.open(f"{target}.png") as page:
        assert page.size == (936, 662)  # landscape A4 (842 x 595 pt) at 80 dpi
        assert page.convert("L").getextrema()[0] < 64  # text was drawn
    text = pdf_text(out)
    flat = " ".join(text.split())
    assert "Case report: k" in flat
    assert "Consensus Items ungraded 0 pending 0 trusted 5 disputed 1 resolved 1" in flat
    for name in GRADED:
        md5, sha1, sha256 = digests(graded["files"][name])
        assert f"MD5 {md5}" in flat and f"SHA1 {sha1}" in flat
        assert f"SHA256 {sha256}" in flat
    # the odd name's newline is shown as an escape, never as a line break
    assert r'say "hi", <script>alert(1)<script>\nnext line;=1+1' in text
    assert "graded by rev1, rev2, exa (resolved)" in flat


def test_case_with_nothing_graded_says_so(cli: Callable[..., CliResult], home: Path,
                                          tmp_path: Path) -> None:
    assert cli("case", "create", "empty").code == 0
    html, pdf = tmp_path / "r.html", tmp_path / "r.pdf"
    assert cli("report", "empty", "--format", "html", "--out", html).code == 0
    assert cli("report", "empty", "--format", "pdf", "--out", pdf).code == 0
    page = " ".join(" ".join(parse(html.read_text()).text).split())
    assert "No items have been graded in this case (no trusted or resolved category)." in page
    assert "No items: no item has been graded and none matched a known-bad hash set" in page
    assert "No evidence has been added to this case." in page
    text = " ".join(pdf_text(pdf).split())
    assert "No items have been graded in this case (no trusted or resolved category)." in text
    assert "No items: no item has been graded and none matched a known-bad hash set." in text


def test_existing_output_is_refused_without_force(cli: Callable[..., CliResult], graded: dict,
                                                  home: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.pdf"
    out.write_bytes(b"an earlier file")
    result = cli("report", "k", "--format", "pdf", "--out", out)
    assert result.code == 1
    assert result.err.strip() == f"error: {out} exists; give --force to overwrite it"
    assert out.read_bytes() == b"an earlier file"
    assert events(home, "k", "case.reported") == []
    assert cli("report", "k", "--format", "pdf", "--out", out, "--force").code == 0
    assert out.read_bytes().startswith(b"%PDF-")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".report")] == []


def test_bad_format_and_scope(cli: Callable[..., CliResult], graded: dict, tmp_path: Path
                              ) -> None:
    result = cli("report", "k", "--format", "docx", "--out", tmp_path / "r.docx")
    assert (result.code, result.err.strip()) == (
        1, "error: no report format 'docx' (one of html, pdf)")
    result = cli("report", "k", "--format", "pdf", "--out", tmp_path / "r.pdf",
                 "--appendix", "some")
    assert (result.code, result.err.strip()) == (
        1, "error: no appendix scope 'some' (one of findings, graded, all)")
    assert list(tmp_path.glob("r.*")) == []


def test_report_needs_the_examiner_role(cli: Callable[..., CliResult], graded: dict,
                                        home: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    accounts = Accounts(load_settings(home))
    accounts.add_user("rev1", "reviewer", PASSWORD)
    accounts.add_user("aud", "auditor", PASSWORD)
    accounts.add_user("exa", "examiner", PASSWORD)
    accounts.add_user("other", "examiner", PASSWORD)
    for name in ("rev1", "aud", "exa"):
        accounts.grant(name, "k")
    out = tmp_path / "r.html"
    for name, reason in (("rev1", "has the role reviewer: reports need the examiner or "
                                  "admin role"),
                         ("aud", "has the role auditor: reports need the examiner or admin "
                                 "role"),
                         ("other", "is not on case 'k'")):
        monkeypatch.setenv("SAFEGUARD_ACTOR", name)
        result = cli("report", "k", "--format", "html", "--out", out)
        assert (result.code, result.err.strip()) == (1, f"error: user {name!r} {reason}")
        assert not out.exists()
    assert events(home, "k", "case.reported") == []
    monkeypatch.setenv("SAFEGUARD_ACTOR", "exa")
    assert cli("report", "k", "--format", "html", "--out", out).code == 0
    [event] = events(home, "k", "case.reported")
    assert event.actor == "exa"


def test_large_appendix_goes_into_volumes(cli: Callable[..., CliResult], graded: dict,
                                          home: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf_writer, "VOLUME_ITEMS", 2)
    out = tmp_path / "big.pdf"
    result = cli("report", "k", "--format", "pdf", "--out", out, "--appendix", "all",
                 "--json")
    assert result.code == 0, result.err
    found = result.json()
    names = [Path(f["path"]).name for f in found["files"]]
    assert names == ["big.pdf", "big.appendix-002.pdf", "big.appendix-003.pdf",
                     "big.appendix-004.pdf"]
    assert [f["items"] for f in found["files"]] == [2, 2, 2, 1]
    for f in found["files"]:
        assert f["sha256"] == hashlib.sha256(Path(f["path"]).read_bytes()).hexdigest()
    text = " ".join(pdf_text(out).split())
    assert "7 records in 4 volumes" in text
    for f in found["files"][1:]:
        assert f"{Path(f['path']).name}" in text and f["sha256"] in text
    [event] = events(home, "k", "case.reported")
    assert json.loads(event.details)["volumes"] == [
        {"path": f["path"], "sha256": f["sha256"], "items": f["items"]}
        for f in found["files"][1:]]
    # a later, smaller report at the same path: refused without --force (volumes exist),
    # and with it the stale volumes go
    monkeypatch.setattr(pdf_writer, "VOLUME_ITEMS", 4)
    result = cli("report", "k", "--format", "pdf", "--out", out, "--appendix", "all",
                 "--force")
    assert result.code == 0, result.err
    assert sorted(p.name for p in tmp_path.glob("big*")) == ["big.appendix-002.pdf",
                                                             "big.pdf"]
    out.unlink()
    result = cli("report", "k", "--format", "pdf", "--out", out)
    assert result.code == 1
    assert result.err.strip() == (f"error: {tmp_path / 'big.appendix-002.pdf'} exists (a "
                                  "volume of an earlier report); give --force to overwrite it")


def test_thumbnails_only_on_request_and_blurred(cli: Callable[..., CliResult], graded: dict,
                                                tmp_path: Path) -> None:
    plain, thumbs = tmp_path / "plain.html", tmp_path / "thumbs.html"
    assert cli("report", "k", "--format", "html", "--out", plain).code == 0
    assert "<img" not in plain.read_text()
    assert cli("report", "k", "--format", "html", "--out", thumbs, "--thumbnails").code == 0
    sources = [a["src"] for t, a in parse(thumbs.read_text()).tags if t == "img"]
    # exactly the review app's strongly blurred greyscale view of each item, in item order
    names = sorted(GRADED, key=graded["ids"].get)
    assert sources == ["data:image/jpeg;base64," + base64.b64encode(
        safe_thumbnail(graded["files"][name], 3, 128)).decode() for name in names]
    for src in sources:
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as img:
            assert img.mode == "L" and max(img.size) == 128
            assert not img.info.get("exif")
    pdf = tmp_path / "thumbs.pdf"
    assert cli("report", "k", "--format", "pdf", "--out", pdf, "--thumbnails").code == 0
    images = subprocess.run([poppler("pdfimages"), "-list", str(pdf)], capture_output=True,
                            text=True, check=True).stdout.splitlines()[2:]
    assert len(images) == 6 and all(line.split()[5] == "gray" for line in images)


def test_printable_escapes_what_the_font_cannot_show() -> None:
    assert printable("IMG_0001.jpg") == "IMG_0001.jpg"
    assert printable("café") == "café"
    assert printable("a\nb\tc") == r"a\nb\tc"
    assert printable("Жук") == r"\u0416\u0443\u043a"
    assert printable("evil\u202egpj.exe") == r"evil\u202egpj.exe"
    assert printable("\U0001f600") == r"\U0001f600"
    assert printable("a\u00a0b") == r"a\xa0b"
    assert printable(None) == ""


@settings(deadline=None)
@given(st.text(max_size=40))
def test_printable_output_is_drawable(text: str) -> None:
    shown = printable(text)
    drawable = pdf_writer._fonts()
    assert all(ord(c) in drawable and (c == " " or c.isprintable()) for c in shown)
    # nothing is lost: every character is there or escaped
    if all(ord(c) in drawable and c.isprintable() and not c.isspace() for c in text):
        assert shown == text


def test_report_is_audited_with_the_actor_and_state(cli: Callable[..., CliResult],
                                                    graded: dict, home: Path,
                                                    tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    assert cli("report", "k", "--format", "html", "--out", out).code == 0
    with open_case(load_settings(home), "k").engine.connect() as conn:
        head = conn.execute(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
        assert audit.verify(conn).ok
    assert head.action == "case.reported"
    html = out.read_text()
    before = re.search(r"audit event (\d+), hash <span class=\"hex\">([0-9a-f]{64})", html)
    assert before is not None and int(before.group(1)) == head.seq - 1
    assert json.loads(head.details)["audit_events_reflected"] == head.seq - 1
