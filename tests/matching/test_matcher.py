"""Matching against the library: exact digests, PDQ with dihedral variants, quality, sets."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from safeguard.config import load_settings
from safeguard.hashsets.entry import HashEntry
from safeguard.hashsets.library import Library
from safeguard.matching.lookup import lookup_hashes, parse_hashes
from safeguard.matching.matcher import Matcher, Query
from safeguard.signals.pdq import DIHEDRAL_NAMES, pdq_from_bytes
from tests.hashsets.helpers import ListFormat
from tests.helpers import jpeg_bytes, png_bytes, scene


def _pdq(img: Image.Image) -> tuple[str, ...]:
    result = pdq_from_bytes(png_bytes(img), 10**8, "reference")
    assert result is not None
    return result.dihedral


def flip(hex_value: str, bits: int) -> str:
    value = int(hex_value, 16) ^ ((1 << bits) - 1)
    return f"{value:064x}"


@pytest.fixture
def library(home: Path, tmp_path: Path) -> Library:
    return Library(load_settings(home))


def load(library: Library, tmp_path: Path, name: str, given: list[HashEntry],
         **options: object) -> None:
    path = tmp_path / f"{name}.txt"
    path.write_text(name)
    library.import_file(path, name, format=ListFormat(given), **options)  # type: ignore[arg-type]


def test_any_one_equal_digest_is_a_match(library: Library, tmp_path: Path) -> None:
    load(library, tmp_path, "bad", [
        HashEntry(md5="a" * 32, category="A", media_id="m1"),
        HashEntry(sha1="b" * 40, category="B"),
        HashEntry(sha256="c" * 64, category="C")])
    hits = Matcher(library).match([
        Query(md5="a" * 32, sha1="0" * 40), Query(sha1="b" * 40), Query(sha256="c" * 64),
        Query(md5="d" * 32, sha1="e" * 40, sha256="f" * 64)])
    assert [(h.query, h.signal, h.distance, h.category, h.set.name) for h in hits] == [
        (0, "md5", 0, "A", "bad"), (1, "sha1", 0, "B", "bad"), (2, "sha256", 0, "C", "bad")]
    assert hits[0].media_id == "m1"
    assert hits[0].as_dict() == {
        "set": "bad", "version": None, "purpose": "known_bad", "signal": "md5", "distance": 0,
        "variant": None, "category": "A", "category_given": "A", "scheme": "uk",
        "media_id": "m1", "series": None, "details": None}


def test_pdq_threshold_is_inclusive(library: Library, tmp_path: Path) -> None:
    ref = _pdq(scene(1))[0]
    load(library, tmp_path, "bad", [HashEntry(pdq=ref, category="A")])
    queries = [Query(pdq=(flip(ref, 31),)), Query(pdq=(flip(ref, 32),)), Query(pdq=(ref,))]
    assert [(h.query, h.distance) for h in Matcher(library).match(queries)] == [(0, 31), (2, 0)]
    assert [(h.query, h.distance) for h in Matcher(library, 32).match(queries)] == [
        (0, 31), (1, 32), (2, 0)]
    assert [h.query for h in Matcher(library, 0).match(queries)] == [2]


def test_rotated_and_mirrored_copies_match_through_their_variants(library: Library,
                                                                  tmp_path: Path) -> None:
    original = scene(7, (400, 300))
    load(library, tmp_path, "bad", [HashEntry(pdq=_pdq(original)[0], category="A")])
    rotated = _pdq(original.transpose(Image.Transpose.ROTATE_90))
    mirrored = _pdq(original.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    other = _pdq(scene(8, (400, 300)))
    hits = Matcher(library).match([Query(pdq=rotated, pdq_quality=100),
                                   Query(pdq=mirrored, pdq_quality=100),
                                   Query(pdq=other, pdq_quality=100)])
    # the as-stored hashes are ~128 bits apart; the variant that undoes the lossless turn or
    # mirror is the original's own hash (each variant is hashed from the transformed pixels)
    assert [(h.query, h.variant, h.distance) for h in hits] == [
        (0, "rotate270", 0), (1, "flipy", 0)]


def test_a_framed_copy_matches_through_its_trimmed_hashes(library: Library,
                                                          tmp_path: Path) -> None:
    original = scene(9, (400, 300))
    load(library, tmp_path, "bad", [HashEntry(pdq=_pdq(original)[0], category="A")])
    canvas = Image.new("RGB", (400, 500), "black")
    canvas.paste(original.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (0, 100))
    copy = pdq_from_bytes(png_bytes(canvas), 10**8)
    assert copy.trimmed is not None
    whole = Query(pdq=copy.dihedral, pdq_quality=copy.hash.quality)
    both = Query(pdq=copy.dihedral, pdq_quality=copy.hash.quality,
                 pdq_trimmed=copy.trimmed.dihedral, pdq_trimmed_quality=copy.trimmed.hash.quality)
    weak = Query(pdq=copy.dihedral, pdq_quality=copy.hash.quality,
                 pdq_trimmed=copy.trimmed.dihedral, pdq_trimmed_quality=49)
    hits = Matcher(library).match([whole, both, weak])
    assert [(h.query, h.signal, h.variant) for h in hits] == [(1, "pdq", "trim_flipy")]
    assert hits[0].distance <= 8


def test_low_quality_and_all_zero_hashes_are_never_pdq_matched(library: Library,
                                                               tmp_path: Path) -> None:
    ref = _pdq(scene(3))[0]
    load(library, tmp_path, "bad", [HashEntry(pdq=ref), HashEntry(md5="1" * 32, pdq="0" * 64)])
    hits = Matcher(library).match([Query(pdq=(ref,), pdq_quality=49),
                                   Query(pdq=("0" * 64,)),
                                   Query(pdq=(ref,), pdq_quality=50)])
    assert [h.query for h in hits] == [2]


def test_every_set_is_matched_and_conflicting_categories_all_kept(library: Library,
                                                                  tmp_path: Path) -> None:
    load(library, tmp_path, "uk-set", [HashEntry(md5="a" * 32, category="A")], version="3")
    load(library, tmp_path, "other", [HashEntry(md5="a" * 32, category="B")])
    load(library, tmp_path, "nsrl-ish", [HashEntry(md5="a" * 32)], purpose="known_good")
    hits = Matcher(library).match([Query(md5="a" * 32)])
    assert sorted((h.set.name, h.set.version, h.set.purpose, h.category) for h in hits) == [
        ("nsrl-ish", None, "known_good", None), ("other", None, "known_bad", "B"),
        ("uk-set", "3", "known_bad", "A")]


def test_an_empty_library_matches_nothing(library: Library) -> None:
    assert Matcher(library).match([Query(md5="a" * 32, pdq=("1" * 64,))]) == []


def test_lookup_takes_any_hash_kind_and_tries_64_digits_as_both(library: Library,
                                                                tmp_path: Path) -> None:
    ref = _pdq(scene(5))[0]
    load(library, tmp_path, "bad", [HashEntry(md5="a" * 32, category="A"),
                                    HashEntry(sha256="c" * 64, category="C"),
                                    HashEntry(pdq=ref, category="B")])
    values = parse_hashes([("  AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA ", "argument 1"),
                           ("c" * 64, "argument 2"), (flip(ref, 5), "argument 3"),
                           ("a" * 32, "argument 4")])
    assert values == ["a" * 32, "c" * 64, flip(ref, 5)]
    found = lookup_hashes(library, values)
    assert [(m["query"], m["signal"], m["distance"], m["category"]) for m in found] == [
        ("a" * 32, "md5", 0, "A"), ("c" * 64, "sha256", 0, "C"), (flip(ref, 5), "pdq", 5, "B")]


def test_lookup_refuses_what_is_not_a_hash() -> None:
    from safeguard.errors import HashSetError

    with pytest.raises(HashSetError, match=r"not an MD5, SHA1, SHA256, PDQ or model hash: 'abc' "
                                           r"\(line 3 of f.txt\)"):
        parse_hashes([("a" * 32, "line 1 of f.txt"), ("abc", "line 3 of f.txt")])
    with pytest.raises(HashSetError, match=r"'g{32}'"):
        parse_hashes([("g" * 32, "argument 1")])


def test_jpeg_copy_matches_its_png_original(library: Library, tmp_path: Path) -> None:
    img = scene(11, (640, 480))
    load(library, tmp_path, "bad", [HashEntry(pdq=_pdq(img)[0], category="A")])
    copy = pdq_from_bytes(jpeg_bytes(img, quality=60), 10**8, "reference")
    assert copy is not None
    hits = Matcher(library).match([Query(pdq=copy.dihedral, pdq_quality=copy.hash.quality)])
    assert len(hits) == 1 and hits[0].variant == DIHEDRAL_NAMES[0]


def test_a_set_replaced_while_a_matcher_holds_it_still_matches(library: Library,
                                                               tmp_path: Path) -> None:
    load(library, tmp_path, "bad", [HashEntry(md5="a" * 32, category="A")], version="1")
    matcher = Matcher(library)
    load(library, tmp_path, "bad", [HashEntry(md5="b" * 32, category="B")], version="2")
    assert [(h.set.version, h.signal) for h in matcher.match([Query(md5="a" * 32)])] == [
        ("1", "md5")]
    assert [(h.set.version, h.category) for h in Matcher(library).match(
        [Query(md5="b" * 32)])] == [("2", "B")]
