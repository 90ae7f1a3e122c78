"""An E01 whose stored hash does not match its media is reported as a mismatch; a damaged
E01 is refused with one line naming what is damaged, never read as an empty, unverified
disk."""

from __future__ import annotations

import copy
import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pyewf
import pytest

from safeguard.errors import EvidenceError
from safeguard.evidence import diskimage
from safeguard.evidence.diskimage import DiskImageSource
from safeguard.evidence.images import open_media
from safeguard.evidence.images.ewf import EwfMedia
from tests.helpers import SHARED, CliResult

E01 = SHARED / "disk-images" / "ext2.E01"


@pytest.mark.parametrize(
    ("stored", "verification"),
    [
        ({"md5": "0" * 32}, "mismatch"),
        ({}, "not stored"),
    ],
)
def test_verification_verdicts(monkeypatch: pytest.MonkeyPatch, stored, verification) -> None:
    real = diskimage._image(E01)
    key = diskimage._key(E01)
    assert isinstance(real.media, EwfMedia)
    media = copy.copy(real.media)  # the same image, claiming other stored hashes
    media.stored = stored
    monkeypatch.setitem(diskimage._IMAGES, key, replace(real, media=media))
    details = DiskImageSource(E01).acquisition()
    assert details["verification"] == verification
    assert details["stored"] == stored
    assert details["computed"]["md5"] == real.media.stored["md5"]  # the media itself is intact


# ---- a damaged E01 is refused with one line, never read as an empty, unverified disk -------

#: the sections of ext2.E01: type, offset, size (descriptor included)
SECTIONS = [("header2", 13, 275), ("header2", 288, 275), ("header", 563, 180),
            ("volume", 743, 1128), ("sectors", 1871, 7703), ("table", 9574, 616),
            ("table2", 10190, 616), ("data", 10806, 1128), ("hash", 11934, 112),
            ("done", 12046, 0)]


def test_the_sections_are_where_the_tests_say() -> None:
    data = E01.read_bytes()
    for kind, offset, size in SECTIONS:
        descriptor = data[offset:offset + 76]
        assert descriptor[:16].rstrip(b"\0").decode() == kind
        assert int.from_bytes(descriptor[24:32], "little") == size
        assert zlib.adler32(descriptor[:72]) == int.from_bytes(descriptor[72:], "little")


def damaged(tmp_path: Path, change: Callable[[bytearray], None]) -> Path:
    data = bytearray(E01.read_bytes())
    change(data)
    path = tmp_path / "ext2.E01"
    path.write_bytes(bytes(data))
    return path


def refusal(cli: Callable[..., CliResult], path: Path) -> str:
    """The one line a scan of ``path`` is refused with (and nothing is recorded)."""
    assert cli("case", "create", "k").code == 0
    result = cli("scan", path, "--case", "k", "--workers", "1")
    assert result.code == 1, result.out
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    shown = cli("case", "show", "k", "--json").json()
    assert isinstance(shown, dict) and shown["evidence"] == []
    return result.err.removeprefix("error: ").rstrip("\n")


def set_field(data: bytearray, at: int, value: int) -> None:
    data[at:at + 8] = value.to_bytes(8, "little")


def fix_descriptor(data: bytearray, offset: int) -> None:
    data[offset + 72:offset + 76] = zlib.adler32(bytes(data[offset:offset + 72])).to_bytes(
        4, "little")


@pytest.mark.parametrize(("kind", "offset", "size"), SECTIONS)
def test_a_section_size_overwritten_is_refused(
    cli: Callable[..., CliResult], tmp_path: Path, kind: str, offset: int, size: int
) -> None:
    # issue 18: exit 0, media size 0, "not stored" and the MD5 of nothing (header sections),
    # or a verified disk that lost its stored hash (table, data, hash, done)
    path = damaged(tmp_path, lambda d: set_field(d, offset + 24, 0x3600000000000000 + offset))
    assert refusal(cli, path) == (f"corrupt EWF segment: ext2.E01 (the descriptor of its "
                                  f"'{kind}' section at offset {offset} does not match its "
                                  "checksum)")


def test_a_size_that_misses_the_next_section_is_refused_checksum_or_not(
    cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    def change(data: bytearray) -> None:
        set_field(data, 743 + 24, 1000)
        fix_descriptor(data, 743)

    assert refusal(cli, damaged(tmp_path, change)) == (
        "corrupt EWF segment: ext2.E01 (its 'volume' section at offset 743 says 1000 bytes, "
        "but the next section is at offset 1871)")


def test_a_next_offset_past_the_end_is_corrupt_not_truncated(
    cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    # "truncated … a section at offset 3891110078048108544 is missing" before
    path = damaged(tmp_path, lambda d: set_field(d, 288 + 16, 3891110078048108544))
    assert refusal(cli, path) == ("corrupt EWF segment: ext2.E01 (the descriptor of its "
                                  "'header2' section at offset 288 does not match its "
                                  "checksum)")


def test_a_file_that_ends_early_is_truncated(tmp_path: Path) -> None:
    with pytest.raises(EvidenceError) as cut_in_a_section:
        open_media(damaged(tmp_path, lambda d: d.__delitem__(slice(5000, None))))
    assert str(cut_in_a_section.value) == ("truncated EWF segment: ext2.E01 (5000 bytes, its "
                                           "'sectors' section at offset 1871 runs to 9574)")
    with pytest.raises(EvidenceError) as cut_in_a_descriptor:
        open_media(damaged(tmp_path, lambda d: d.__delitem__(slice(9600, None))))
    assert str(cut_in_a_descriptor.value) == ("truncated EWF segment: ext2.E01 (9600 bytes, a "
                                              "section at offset 9574 is cut short)")


@pytest.mark.parametrize(
    ("at", "message"),
    [
        (13 + 76 + 2, "its 'header2' section at offset 13 holds damaged compressed data"),
        (743 + 76 + 16, "its 'volume' section at offset 743 does not match its checksum"),
        (9574 + 76 + 4, "its 'table' section at offset 9574 does not match its checksum"),
        (10806 + 76 + 8, "its 'data' section at offset 10806 does not match its checksum"),
        (11934 + 76 + 3, "its 'hash' section at offset 11934 does not match its checksum"),
    ],
)
def test_damaged_section_data_is_named(
    cli: Callable[..., CliResult], tmp_path: Path, at: int, message: str
) -> None:
    # before: libewf's call chain, 500 characters with checksums in hex
    path = damaged(tmp_path, lambda d: d.__setitem__(at, d[at] ^ 0x5A))
    assert refusal(cli, path) == f"corrupt EWF segment: ext2.E01 ({message})"


def test_a_consistent_volume_of_no_sectors_is_refused(tmp_path: Path) -> None:
    """The net behind the checks: libewf reads a volume section that says 0 sectors (its
    checksum put right) as a disk of 0 bytes."""

    def change(data: bytearray) -> None:
        for offset in (743, 10806):  # volume, and its copy in data
            body = offset + 76
            data[body + 16:body + 24] = bytes(8)
            data[body + 1048:body + 1052] = zlib.adler32(
                bytes(data[body:body + 1048])).to_bytes(4, "little")

    with pytest.raises(EvidenceError) as err:
        open_media(damaged(tmp_path, change))
    assert str(err.value) == "damaged EWF image: ext2.E01 (it gives no media size)"


def test_a_stored_hash_libewf_does_not_read_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    real = pyewf.handle

    class Forgetful:
        """libewf's handle, losing the stored hash as it did past a bad descriptor."""

        def __init__(self) -> None:
            self._handle = real()

        def __getattr__(self, name: str) -> object:
            return getattr(self._handle, name)

        def get_hash_values(self) -> dict[str, str]:
            return {}

    monkeypatch.setattr(pyewf, "handle", Forgetful)
    with pytest.raises(EvidenceError) as err:
        open_media(E01)
    assert str(err.value) == ("damaged EWF image: ext2.E01 (it stores a hash of the media, but "
                              "libewf reads none)")


def test_a_hash_of_zeros_is_a_hash_not_stored(tmp_path: Path) -> None:
    def change(data: bytearray) -> None:
        body = 11934 + 76
        data[body:body + 16] = bytes(16)
        data[body + 32:body + 36] = zlib.adler32(bytes(data[body:body + 32])).to_bytes(
            4, "little")

    media = open_media(damaged(tmp_path, change))
    assert isinstance(media, EwfMedia)
    assert media.stored == {}
    assert media.acquisition("ext2.E01")["verification"] == "not stored"


def test_the_intact_images_still_verify() -> None:
    for name in ("ext2.E01", "ext2.split.E01"):
        media = open_media(SHARED / "disk-images" / name)
        assert media.acquisition(name)["verification"] == "verified"
