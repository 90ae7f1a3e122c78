"""E-mail (``containers/mail.py``): single messages (EML) and mailboxes (MBOX), built here
with the standard library's ``email`` package from benign generated pictures and neutral
addresses. The attachments' exact names, sizes, SHA256 and context, read by the readers and
through the real scan; detection; and damaged input, each with its exact line: a missing
boundary parameter or closing boundary, damaged base64, a forwarded-message depth bomb, the
limits; and a fuzz test of both readers."""

from __future__ import annotations

import base64
import hashlib
import io
import re
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safeguard.config import Limits
from safeguard.errors import ArchiveError
from safeguard.evidence.containers import CONTAINERS, detect_container, iter_members
from safeguard.evidence.containers.mail import EmlReader, MboxReader
from tests.helpers import CliResult, jpeg_bytes, png_bytes, scene

Cli = Callable[..., CliResult]
LIMITS = Limits()
PHOTO = jpeg_bytes(scene(71))
INLINE = png_bytes(scene(72, (64, 48)))
FORWARDED = jpeg_bytes(scene(73, (160, 120)))
DATE = "Wed, 01 May 2024 12:00:00 +0200"
#: what the outer message says of its attachments
CONTEXT = {
    "from": "Alice Example <alice@example.org>",
    "to": "bob@example.org, Carol <carol@example.org>",
    "cc": "dave@example.org",
    "date": DATE,
    "subject": "Héllo, pictures",
    "message_id": "<1@example.org>",
    "date_utc": "2024-05-01T10:00:00Z",
}
INNER_CONTEXT = {"from": "erin@example.org", "date": "Tue, 30 Apr 2024 08:00:00 -0000",
                 "subject": "The garden", "date_utc": "2024-04-30T08:00:00Z"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def inner_message() -> EmailMessage:
    inner = EmailMessage()
    inner["From"] = "erin@example.org"
    inner["Subject"] = "The garden"
    inner["Date"] = "Tue, 30 Apr 2024 08:00:00 -0000"
    inner.set_content("A photo of the garden.\n")
    inner.add_attachment(FORWARDED, "image", "jpeg", filename="garden/1.jpg")
    return inner


def message() -> EmailMessage:
    """A message with a JPEG attachment, an inline PNG without a name and a forwarded
    message holding a JPEG."""
    outer = EmailMessage()
    outer["From"] = "Alice Example <alice@example.org>"
    outer["To"] = "bob@example.org, Carol <carol@example.org>"
    outer["Cc"] = "dave@example.org"
    outer["Subject"] = "Héllo, pictures"
    outer["Date"] = DATE
    outer["Message-ID"] = "<1@example.org>"
    outer.set_content("See attached.\n")
    outer.add_attachment(PHOTO, "image", "jpeg", filename="photo.jpg")
    outer.add_attachment(INLINE, "image", "png", disposition="inline")
    outer.add_attachment(inner_message(), filename="fwd.eml")
    return outer


EML = bytes(message())
#: the members of EML: name, data, context
EXPECTED = [
    ("1-photo.jpg", PHOTO, {**CONTEXT, "filename": "photo.jpg", "content_type": "image/jpeg"}),
    ("2-part.png", INLINE, {**CONTEXT, "content_type": "image/png"}),
    ("3-fwd.eml/1-garden_1.jpg", FORWARDED,
     {**INNER_CONTEXT, "filename": "garden/1.jpg", "content_type": "image/jpeg"}),
]


def mbox(*messages: bytes) -> bytes:
    """An mboxrd mailbox of ``messages`` ("From " lines in them quoted)."""
    out = b""
    for number, raw in enumerate(messages):
        quoted = re.sub(rb"(?m)^(>*From )", rb">\1", raw)
        out += (f"From alice@example.org Wed May  {number + 1} 10:00:00 2024\n".encode()
                + quoted.rstrip(b"\n") + b"\n\n")
    return out


def read(kind: str, data: bytes, limits: Limits = LIMITS) -> list[tuple[Any, ...]]:
    """Every member: (name, size, sha256 of its data or None, error, context)."""
    out = []
    for member in iter_members(kind, io.BytesIO(data), limits, "x"):
        digest = sha256(member.stream.read()) if member.stream is not None else None
        out.append((member.name, member.size, digest, member.error, member.context))
    return out


def read_then_error(kind: str, data: bytes,
                    limits: Limits = LIMITS) -> tuple[list[tuple[Any, ...]], str]:
    """The members read before the container's error, and the error."""
    out: list[tuple[Any, ...]] = []
    with pytest.raises(ArchiveError) as info:
        for member in iter_members(kind, io.BytesIO(data), limits, "x"):
            digest = sha256(member.stream.read()) if member.stream is not None else None
            out.append((member.name, member.size, digest, member.error, member.context))
    return out, str(info.value)


def rows(expected: list[tuple[str, bytes, dict[str, str]]],
         prefix: str = "") -> list[tuple[Any, ...]]:
    return [(prefix + name, len(data), sha256(data), None, context)
            for name, data, context in expected]


# --- reading ---------------------------------------------------------------------------------


def test_an_eml_s_attachments_inline_pictures_and_forwarded_message() -> None:
    assert read("e-mail", EML) == rows(EXPECTED)


def test_the_same_names_on_every_read() -> None:
    assert [r[0] for r in read("e-mail", EML)] == [r[0] for r in read("e-mail", EML)]


def test_a_mailbox_s_messages_and_their_attachments() -> None:
    second = EmailMessage()
    second["From"] = "bob@example.org"
    second["To"] = "alice@example.org"
    second["Subject"] = "From the beach"  # a "From " line in its body is quoted too
    second["Date"] = "Thu, 02 May 2024 09:30:00 +0000"
    second.set_content("From the beach, two pictures.\n")
    second.add_attachment(PHOTO, "image", "jpeg", filename="beach.jpg")
    box = mbox(EML, bytes(second))
    assert MboxReader().detect(box[:8192])
    beach = {"from": "bob@example.org", "to": "alice@example.org",
             "date": "Thu, 02 May 2024 09:30:00 +0000", "subject": "From the beach",
             "date_utc": "2024-05-02T09:30:00Z", "filename": "beach.jpg",
             "content_type": "image/jpeg"}
    assert read("mailbox", box) == [
        *rows(EXPECTED, "1/"), ("2/1-beach.jpg", len(PHOTO), sha256(PHOTO), None, beach)]


def test_mboxrd_quoting_of_a_text_attachment_is_undone() -> None:
    note = EmailMessage()
    note["From"] = "alice@example.org"
    note["Subject"] = "A note"
    note.set_content("body\n")
    note.add_attachment("line one\nFrom here on\n", filename="note.txt")
    [(name, size, digest, error, _)] = read("mailbox", mbox(bytes(note)))
    text = b"line one\nFrom here on\n"
    assert (name, size, digest, error) == ("1/1-note.txt", len(text), sha256(text), None)


def test_rfc_2047_and_2231_names_and_a_long_name() -> None:
    mail = EmailMessage()
    mail["From"] = "=?utf-8?q?Z=C3=B6e?= <zoe@example.org>"
    mail["Subject"] = "x" * 300
    mail.set_content("hi\n")
    mail.add_attachment(PHOTO, "image", "jpeg", filename="Ünïcode €.jpg")
    mail.add_attachment(PHOTO, "image", "jpeg", filename="n" * 150 + ".jpeg")
    [first, second] = read("e-mail", bytes(mail))
    assert first[0] == "1-Ünïcode €.jpg"
    assert first[4] == {"from": "Zöe <zoe@example.org>", "subject": "x" * 199 + "…",
                        "filename": "Ünïcode €.jpg", "content_type": "image/jpeg"}
    assert second[0] == "2-" + "n" * 95 + ".jpeg"


def test_a_message_that_is_a_picture() -> None:
    raw = (b"From: alice@example.org\r\nSubject: only a picture\r\nContent-Type: image/png\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(INLINE))
    assert read("e-mail", raw) == [
        ("1-part.png", len(INLINE), sha256(INLINE), None,
         {"from": "alice@example.org", "subject": "only a picture",
          "content_type": "image/png"})]


# --- detection -------------------------------------------------------------------------------


@pytest.mark.parametrize("head", [
    EML,
    b"\xef\xbb\xbf\r\n" + EML,
    b"Received: from a by b\r\n\tid 1\r\nReceived: from c\r\n\r\nbody",
    b"message-id: <x@example.org>\nSUBJECT: hi\n\nbody",
])
def test_an_eml_is_known_by_its_headers(head: bytes) -> None:
    assert detect_container(head[:8192], "x.bin") == "e-mail"


@pytest.mark.parametrize("head", [
    b"Subject: hello\n\nOnly one known header.",
    b"Dear Bob,\nFrom: me\nTo: you\n",
    b"<html><head><title>From: To:</title></head></html>",
    b'{"From": "alice", "To": "bob"}',
    b"from x import y\nimport os\nTo: 1\n",
    b"From: a\nTo: b\nthis line is no header\n\n",
    b"\x00From: a\nTo: b\n\n",
    b"From the desk of Alice\nTo: Bob\n\nText.",
    b"",
])
def test_not_an_e_mail(head: bytes) -> None:
    assert detect_container(head) is None


def test_an_mbox_is_a_mailbox_not_an_eml() -> None:
    box = mbox(EML)
    assert not EmlReader().detect(box[:8192])
    assert detect_container(box[:8192]) == "mailbox"
    assert not MboxReader().detect(EML[:8192])


def test_asked_before_tar_and_thumbnail_caches() -> None:
    order = [reader.name for reader in CONTAINERS]
    assert order.index("mailbox") < order.index("e-mail") < order.index("tar")


# --- damage ----------------------------------------------------------------------------------


def test_no_closing_boundary_keeps_the_parts_and_says_so() -> None:
    cut = EML[:EML.rindex(b"\n--")] + b"\n"  # the outer closing boundary, gone
    members, error = read_then_error("e-mail", cut)
    assert members == rows(EXPECTED)
    assert error == ("damaged e-mail: no closing MIME boundary: the last part is read to the "
                     "end of the message")


def test_a_missing_boundary_parameter_is_recovered_and_said() -> None:
    broken = EML.replace(b'boundary="', b'x-boundary="', 1)
    assert read_then_error("e-mail", broken) == (
        rows(EXPECTED), "damaged e-mail: a multipart part has no boundary parameter: its "
                        "parts are read by its first boundary line")
    bare = (b"From: alice@example.org\nSubject: s\nContent-Type: multipart/mixed\n\n"
            b"no boundary line at all\n")
    assert read_then_error("e-mail", bare) == (
        [], "damaged e-mail: a multipart part has no boundary parameter: its parts are not "
            "read")


def test_a_boundary_never_met_in_a_mailbox_names_the_message() -> None:
    at = EML.index(b'boundary="') + len(b'boundary="')
    broken = EML[:at] + b"Q" + EML[at + 1:]
    members, error = read_then_error("mailbox", mbox(EML, broken))
    assert members == rows(EXPECTED, "1/") + rows(EXPECTED, "2/")
    assert error == ("damaged mailbox: message 2: a multipart part's boundary is never met: "
                     "its parts are read by its first boundary line")
    lost = broken.replace(b"\n--=", b"\n__=")  # and no boundary line to read them by
    members, error = read_then_error("mailbox", mbox(EML, lost))
    assert members == rows(EXPECTED, "1/")
    assert error == ("damaged mailbox: message 2: a multipart part's boundary is never met: "
                     "its parts are not read")


def photo_body(encoded: bytes) -> bytes:
    """EML with the base64 of its first attachment replaced by ``encoded``."""
    body = base64.encodebytes(PHOTO)
    assert EML.count(body) == 1
    return EML.replace(body, encoded)


def test_base64_with_stray_characters_is_decoded_leniently_and_said() -> None:
    body = base64.encodebytes(PHOTO)
    members, error = read_then_error("e-mail", photo_body(body[:100] + b"*%" + body[100:]))
    assert members == rows(EXPECTED)  # the picture is whole
    assert error == ("damaged e-mail: damaged base64 in attachment '1-photo.jpg': decoded "
                     "leniently, ignoring characters that are not base64")


def test_cut_base64_is_decoded_leniently_and_said() -> None:
    body = base64.encodebytes(PHOTO).replace(b"\n", b"")
    members, error = read_then_error("e-mail", photo_body(body[:1002] + b"\n"))
    cut = base64.b64decode(body[:1000]) + base64.b64decode(body[1000:1002] + b"==")
    assert members[0][:4] == ("1-photo.jpg", len(cut), sha256(cut), None)
    assert members[1:] == rows(EXPECTED)[1:]
    assert error == ("damaged e-mail: damaged base64 in attachment '1-photo.jpg': decoded "
                     "leniently, its padding is wrong (a cut attachment?)")


def test_base64_that_cannot_be_decoded_is_the_member_s_error() -> None:
    body = base64.encodebytes(PHOTO).replace(b"\n", b"")
    members = read("e-mail", photo_body(body[:1001] + b"\n"))
    assert members[0] == ("1-photo.jpg", None, None, "damaged base64: cannot be decoded (its "
                          "length is one more than a multiple of 4)", EXPECTED[0][2])
    assert members[1:] == rows(EXPECTED)[1:]


def test_damaged_quoted_printable_is_said() -> None:
    raw = (b"From: alice@example.org\nSubject: qp\nContent-Type: application/octet-stream\n"
           b"Content-Disposition: attachment; filename=a.bin\n"
           b"Content-Transfer-Encoding: quoted-printable\n\nab=3Dc=ZZd\n")
    members, error = read_then_error("e-mail", raw)
    assert [m[:4] for m in members] == [("1-a.bin", 9, sha256(b"ab=c=ZZd\n"), None)]
    assert error == ("damaged e-mail: damaged quoted-printable in attachment '1-a.bin': "
                     "decoded leniently, '=' not followed by two hex digits kept as is")


def nested(levels: int) -> bytes:
    """A message forwarding a message forwarding ... ``levels`` deep, a picture at the
    bottom."""
    mail = inner_message()
    for _ in range(levels):
        outer = EmailMessage()
        outer["From"] = "alice@example.org"
        outer["Subject"] = "Fwd"
        outer.set_content("fwd\n")
        outer.add_attachment(mail)
        mail = outer
    return bytes(mail)


def test_forwarded_messages_nested_within_the_limit_are_read() -> None:
    [(name, size, digest, error, _)] = read("e-mail", nested(24))
    assert name == "1-message.eml/" * 24 + "1-garden_1.jpg"
    assert (size, digest, error) == (len(FORWARDED), sha256(FORWARDED), None)


def test_a_depth_bomb_is_stopped_at_the_mime_depth_limit() -> None:
    too_deep = ("damaged e-mail: MIME parts nested deeper than 50 levels: the parts below "
                "are not read")
    assert read_then_error("e-mail", nested(25)) == ([], too_deep)


def test_a_depth_bomb_too_deep_to_parse_is_one_line() -> None:
    part = b"From: a@example.org\nSubject: s\nContent-Type: message/rfc822\n\n"
    too_deep = "MIME parts nested deeper than 50 levels: the parts below are not read"
    assert read_then_error("e-mail", part * 5000 + b"x\n") == ([], too_deep)
    assert read("mailbox", mbox(part * 5000 + b"x\n", EML)) == [
        ("1", None, None, too_deep, None), *rows(EXPECTED, "2/")]


def test_limits() -> None:
    assert read_then_error("e-mail", EML, Limits(max_member_bytes=1000)) == (
        [], "e-mail not read: larger than max_member_bytes=1000")
    assert read_then_error("e-mail", EML, Limits(max_archive_members=3)) == (
        rows(EXPECTED)[:1], "more than 3 MIME parts: over max_archive_members=3")
    small = Limits(max_member_bytes=len(EML) + 100)
    big = EmailMessage()
    big["From"] = "alice@example.org"
    big["Subject"] = "big"
    big.set_content("x\n")
    big.add_attachment(jpeg_bytes(scene(74, (640, 480))), "image", "jpeg", filename="big.jpg")
    members = read("mailbox", mbox(bytes(big), EML), small)
    assert members == [("1", None, None, f"message not read: larger than "
                        f"max_member_bytes={len(EML) + 100}", None), *rows(EXPECTED, "2/")]


# --- the real scan ---------------------------------------------------------------------------


def test_attachments_through_the_scan(cli: Cli, tmp_path: Path) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "holiday.eml").write_bytes(EML)
    (evidence / "Inbox").write_bytes(mbox(EML))
    assert cli("case", "create", "c").code == 0
    result = cli("scan", evidence, "--case", "c", "--workers", "1")
    assert result.code == 0, result.err
    items = {r["path"]: r for r in cli("items", "c", "--json").json_lines()}
    for container, prefix in (("holiday.eml", ""), ("Inbox", "1/")):
        path = container
        assert items[path]["error"] is None
        for name, data, context in EXPECTED:
            item = items[f"{path}!{prefix}{name}"]
            assert (item["sha256"], item["size"], item["error"], item["container"]) == (
                sha256(data), len(data), None, path)
            assert item["context"] == {"relation": "attachment of e-mail", **context}


def test_damage_through_the_scan(cli: Cli, tmp_path: Path) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "cut.eml").write_bytes(EML[:EML.rindex(b"\n--")] + b"\n")
    assert cli("case", "create", "c").code == 0
    assert cli("scan", evidence, "--case", "c", "--workers", "1").code == 0
    items = {r["path"]: r for r in cli("items", "c", "--json").json_lines()}
    path = "cut.eml"
    assert items[path]["error"] == ("damaged e-mail: no closing MIME boundary: the last part "
                                    "is read to the end of the message")
    assert items[f"{path}!1-photo.jpg"]["sha256"] == sha256(PHOTO)


# --- fuzz ------------------------------------------------------------------------------------


FUZZ_LIMITS = Limits(max_archive_members=500)
SEEDS = {"e-mail": EML, "mailbox": mbox(EML, nested(3))}


@settings(max_examples=50, deadline=None)
@given(kind=st.sampled_from(sorted(SEEDS)),
       edits=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(1, 255),
                                st.sampled_from(["flip", "cut", "newline", "dash"])),
                      min_size=1, max_size=8))
def test_damaged_mail_raises_nothing_but_archive_error(
    kind: str, edits: list[tuple[int, int, str]]
) -> None:
    """Bytes flipped, cut, or new lines and boundary dashes put in: members, member errors
    or one-line ArchiveErrors, never another exception."""
    data = bytearray(SEEDS[kind])
    for offset, mask, edit in edits:
        at = offset % max(len(data), 1)
        if edit == "flip" and data:
            data[at] ^= mask
        elif edit == "cut":
            del data[at:]
        else:
            data[at:at] = b"\n" if edit == "newline" else b"\n--"
    try:
        reader = CONTAINERS.get(kind)  # not iter_members: its net would hide other errors
        for member in reader.members(io.BytesIO(bytes(data)), FUZZ_LIMITS, "x"):
            assert member.error is None or "\n" not in member.error
            assert len(member.name) < 2000
            if member.stream is not None:
                member.stream.read()
    except ArchiveError as exc:
        assert "\n" not in str(exc) and len(str(exc)) <= 160
