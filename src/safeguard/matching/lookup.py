"""``safeguard lookup``: given hashes against the library, without scanning anything.

A 32-digit hex value is looked up as MD5, 40 as SHA1, and 64 both as SHA256 and as PDQ
(the two cannot be told apart by their text) — and, in model hash sets, as a model file's
SHA256 or tensor SHA256. PDQ values are matched as given, with no dihedral variants and no
quality (an all-zero PDQ never matches). An 8-digit value is a legacy model hash, 10 an
AutoV2, 12 a LoRA's or embedding's short hash: looked up in model hash sets as a picture's
``Model hash`` is (signal ``model_hash``, field ``lookup``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from safeguard.errors import HashSetError
from safeguard.hashsets.entry import normalise_hex
from safeguard.hashsets.library import Library
from safeguard.matching.matcher import Matcher, Query
from safeguard.matching.model_hashes import NamedHash

#: hex digits a looked-up value may have: model hashes (8, 10, 12), MD5, SHA1, SHA256/PDQ
LENGTHS = (8, 10, 12, 32, 40, 64)


def parse_hashes(values: Sequence[tuple[str, str]]) -> list[str]:
    """Normalised hex values from (text, where) pairs; an invalid one is an error naming
    where it was given. Repeats are looked up once."""
    parsed: dict[str, None] = {}
    for text, where in values:
        value = normalise_hex(text)
        if value is None or len(value) not in LENGTHS:
            raise HashSetError(f"not an MD5, SHA1, SHA256, PDQ or model hash: "
                               f"{text.strip()[:80]!r} ({where})")
        parsed[value] = None
    return list(parsed)


def _query(value: str) -> Query:
    if len(value) == 32:
        return Query(md5=value)
    if len(value) == 40:
        return Query(sha1=value)
    if len(value) < 32:
        return Query(named_models=(NamedHash("lookup", value),))
    return Query(sha256=value, pdq=(value,), model_hashes=(("tensor_sha256", value),))


def lookup_hashes(library: Library, values: Sequence[str],
                  pdq_threshold: int | None = None) -> list[dict[str, Any]]:
    """One record per match: the query, the set and version, the signal and distance, the
    category (mapped into the library's scheme, and as the set gave it)."""
    matcher = Matcher(library, pdq_threshold)
    hits = matcher.match([_query(value) for value in values])
    return [{"query": values[hit.query], **hit.as_dict()} for hit in hits]
