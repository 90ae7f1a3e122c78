"""Whatever bytes a reader is given, it ends in valid entries or a HashSetError, never in
another exception."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safeguard.errors import HashSetError
from safeguard.hashsets.entry import HashEntry, ImportReport
from safeguard.hashsets.formats import FORMATS
from safeguard.hashsets.formats.base import DIGEST_LENGTHS
from tests.hashsets.formats.helpers import ICSE_COLUMNS

HEX = frozenset(string.hexdigits.lower())
FUZZ = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

PREFIXES = {
    "vics": [b"", b'{"@odata.context": "x#Media", "value": [', b'{"value": [{"Media": [{"MD5":',
             b'\xef\xbb\xbf{"value": [{"MD5": "'],
    "icse": [b"", ";".join(ICSE_COLUMNS).encode() + b"\r\n", b"MD5;SHA1\n0123456789abcdef"],
    "text": [b"", b"md5,category\n", b"0123456789abcdef0123456789abcdef,", b"\xff\xfe"],
    "pdq-text": [b"", b"hash,quality,filename\n"],
    "nsrl": [b"", b"SQLite format 3\x00"],
}


def check(entries: list[HashEntry], report: ImportReport) -> None:
    assert report.entries == len(entries)
    for entry in entries:
        digests = {kind: getattr(entry, kind) for kind in DIGEST_LENGTHS}
        assert any(digests.values())
        for kind, value in digests.items():
            assert value is None or (len(value) == DIGEST_LENGTHS[kind] and set(value) <= HEX)
        assert isinstance(entry.position, str)
        assert entry.category is None or entry.category == entry.category.strip()


def run(path: Path, fmt: str, data: bytes, strict: bool) -> None:
    path.write_bytes(data)
    report = ImportReport()
    try:
        entries = list(FORMATS.get(fmt).read(path, report, strict))
    except HashSetError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    check(entries, report)


@pytest.mark.parametrize("fmt", sorted(PREFIXES))
@FUZZ
@given(data=st.data())
def test_random_bytes(tmp_path: Path, fmt: str, data: st.DataObject) -> None:
    prefix = data.draw(st.sampled_from(PREFIXES[fmt]))
    body = data.draw(st.binary(max_size=300))
    strict = data.draw(st.booleans())
    run(tmp_path / "fuzz.bin", fmt, prefix + body, strict)


@FUZZ
@given(lines=st.lists(st.one_of(
    st.text(alphabet="0123456789abcdefABCDEF", min_size=30, max_size=66),
    st.text(alphabet="0123456789abcdef,;\t #\"x:pdq5", max_size=80),
    st.text(max_size=40)), max_size=30), newline=st.sampled_from(["\n", "\r\n", "\r"]))
def test_text_like_lines(tmp_path: Path, lines: list[str], newline: str) -> None:
    data = newline.join(lines).encode("utf-8", "surrogatepass")
    for fmt in ("text", "pdq-text", "icse"):
        run(tmp_path / "fuzz.txt", fmt, data, strict=False)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(alphabet="0123456789abcdefAB", max_size=70) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["MD5", "SHA1", "Tags", "MediaFiles", "Category",
                                       "AlternativeHashes", "HashName", "HashValue", "Media",
                                       "IsDistributed", "x"]), children, max_size=5),
    max_leaves=20)


@FUZZ
@given(value=json_values, cases=st.booleans())
def test_vics_like_json(tmp_path: Path, value: object, cases: bool) -> None:
    import json

    media = value if isinstance(value, list) else [value]
    doc = {"value": [{"Media": media}] if cases else media}
    run(tmp_path / "fuzz.json", "vics", json.dumps(doc).encode(), strict=False)
