"""The priority function: the tier of every verdict, new, known and known-good, and the sort
key; and docs/triage.md saying the same."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from safeguard.hashsets.categories import load_schemes
from safeguard.provenance.evidence import Evidence
from safeguard.provenance.verdict import PRIORITIES, VERDICTS, priority, verdict
from safeguard.triage import TIERS, priority_key, tier

DOC = Path(__file__).resolve().parents[2] / "docs" / "triage.md"

CAMERA = Evidence("camera", "origin", "consistent camera original", "moderate", "camera")
GENERATOR = Evidence("generator", "generator", "AUTOMATIC1111", "strong", "ai")
IMG2IMG = Evidence("generator", "mode", "img2img", "strong", "ai_modified")
TRUSTED = Evidence("c2pa", "digitalSourceType", "trainedAlgorithmicMedia", "trusted", "ai")
WEAK = Evidence("camera", "make", "DemoCam", "weak", "camera")

#: evidence lines -> (verdict, priority) the provenance module gives, and the tier when new
ROWS = [
    ([CAMERA], "camera_original", "raise", "new-raise"),
    ([IMG2IMG], "ai_modified", "raise", "new-raise"),
    ([IMG2IMG, TRUSTED], "ai_modified", "raise", "new-raise"),
    ([GENERATOR, CAMERA], "ai_indicated", "raise", "new-raise"),  # pasted chunk: still raise
    ([GENERATOR], "ai_indicated", "neutral", "new"),
    ([WEAK], "unknown", "neutral", "new"),
    ([], "unknown", "neutral", "new"),
    ([TRUSTED], "ai_confirmed", "lower", "new-lower"),
]


def name(value: int | None) -> str | None:
    return None if value is None else TIERS[value]


@pytest.mark.parametrize(("lines", "expect_verdict", "expect_priority", "new"), ROWS)
def test_every_verdict_new_known_and_known_good(lines: list[Evidence], expect_verdict: str,
                                                expect_priority: str, new: str) -> None:
    assert (verdict(lines), priority(lines)) == (expect_verdict, expect_priority)
    assert name(tier(False, False, expect_priority)) == new
    assert name(tier(True, False, expect_priority)) == "known"
    assert tier(False, True, expect_priority) is None
    assert tier(True, True, expect_priority) is None  # known-good wins over any other set


def test_the_table_covers_every_verdict() -> None:
    assert {row[1] for row in ROWS} == set(VERDICTS)
    assert TIERS == ("new-raise", "new", "new-lower", "known")


def test_no_verdict_and_unknown_values_are_neutral() -> None:
    assert name(tier(False, False, None)) == "new"  # videos, pictures not assessed
    assert name(tier(False, False, "neutral")) == "new"
    assert name(tier(False, False, "something new")) == "new"  # never lowers
    assert name(tier(True, False, None)) == "known"


def test_unsigned_lines_never_push_an_item_down() -> None:
    for lines, _, _, new in ROWS:
        for extra in ([GENERATOR], [WEAK], [GENERATOR, WEAK]):
            got = tier(False, False, priority(lines + extra))
            assert got is not None and got <= TIERS.index(new)


def test_camera_original_before_ai_indicated_before_ai_confirmed_before_known() -> None:
    uk = load_schemes(None).get("uk")
    series = [  # (label, tier, severity, size, first item): shuffled
        ("known C", tier(True, False, "raise"), uk.rank("C"), 9, 1),
        ("ai_confirmed", tier(False, False, "lower"), 0, 1, 2),
        ("known A", tier(True, False, None), uk.rank("A"), 1, 3),
        ("ai_indicated", tier(False, False, "neutral"), 0, 1, 4),
        ("camera_original", tier(False, False, "raise"), 0, 1, 5),
        ("known B", tier(True, False, "neutral"), uk.rank("B"), 1, 6),
        ("known uncategorised", tier(True, False, None), uk.rank("uncategorised"), 5, 7),
    ]
    ordered = sorted(series, key=lambda s: priority_key(*s[1:]))  # type: ignore[arg-type]
    assert [s[0] for s in ordered] == [
        "camera_original", "ai_indicated", "ai_confirmed", "known A", "known B", "known C",
        "known uncategorised"]


def test_within_a_tier_larger_series_then_lower_ids_first() -> None:
    keys = [priority_key(1, 0, 1, 3), priority_key(1, 0, 4, 9), priority_key(1, 0, 1, 2),
            priority_key(0, 0, 1, 50)]
    assert sorted(keys) == [(0, 0, -1, 50), (1, 0, -4, 9), (1, 0, -1, 2), (1, 0, -1, 3)]


def _table(section: str) -> list[list[str]]:
    text = DOC.read_text().split(section, 1)[1]
    rows = []
    for line in text.splitlines():
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip().strip("`") for c in line.strip("|").split("|")]
        if cells[0] not in ("---", "tier", "verdict"):
            rows.append(cells)
    return rows


def test_docs_give_the_same_tiers() -> None:
    tiers = _table("## Priority")
    assert [(row[0], row[1]) for row in tiers[:4]] == [
        (str(i + 1), n) for i, n in enumerate(TIERS)]
    verdicts = _table("Every verdict")
    assert {row[0] for row in verdicts} == set(VERDICTS) | {"(none)"}
    for documented_verdict, prio, new, known, good in verdicts:
        given = None if prio == "(none)" else prio
        assert given is None or given in PRIORITIES
        assert name(tier(False, False, given)) == new, documented_verdict
        assert name(tier(True, False, given)) == known, documented_verdict
        assert tier(False, True, given) is None and good == "not queued"
    assert re.search(r"`ai_indicated`.*is \*\*not\*\* placed below", DOC.read_text(), re.S)
