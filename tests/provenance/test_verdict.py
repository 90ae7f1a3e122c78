"""The verdict rules and the priority rule: nothing unsigned may lower an item's priority."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safeguard.provenance.evidence import (
    INDICATES,
    MAX_VALUE_CHARS,
    STRENGTHS,
    Evidence,
    clean_text,
    redact,
)
from safeguard.provenance.verdict import priority, verdict

TRUSTED_AI = Evidence("c2pa", "digitalSourceType", "trainedAlgorithmicMedia", "trusted", "ai")
UNSIGNED_AI = Evidence("generator", "generator", "AUTOMATIC1111", "strong", "ai")
XMP_AI = Evidence("xmp", "DigitalSourceType", "trainedAlgorithmicMedia", "moderate", "ai")
IMG2IMG = Evidence("generator", "mode", "img2img", "strong", "ai_modified")
CAMERA = Evidence("camera", "origin", "consistent camera original", "moderate", "camera")
MAKE = Evidence("camera", "make", "DemoCam", "weak", "camera")
INCONCLUSIVE = Evidence("classifier", "demo.score", 0.6, "weak", "ai")
SERIAL = Evidence("camera", "serial_number", "X1", "info")


@pytest.mark.parametrize(("lines", "expected_verdict", "expected_priority"), [
    ([], "unknown", "neutral"),
    ([SERIAL], "unknown", "neutral"),
    ([MAKE, INCONCLUSIVE], "unknown", "neutral"),
    ([TRUSTED_AI], "ai_confirmed", "lower"),
    ([UNSIGNED_AI], "ai_indicated", "neutral"),
    ([XMP_AI], "ai_indicated", "neutral"),
    ([IMG2IMG, UNSIGNED_AI], "ai_modified", "raise"),
    ([TRUSTED_AI, IMG2IMG], "ai_modified", "raise"),
    ([CAMERA, MAKE], "camera_original", "raise"),
    # a camera photo with a pasted generator chunk: the claim is told, the priority kept
    ([CAMERA, UNSIGNED_AI], "ai_indicated", "raise"),
    # a trusted AI claim beside camera signs: only trusted evidence decides, and it says AI,
    # but the camera signs still keep the item up
    ([TRUSTED_AI, CAMERA], "ai_confirmed", "raise"),
])
def test_verdict_and_priority(lines: list[Evidence], expected_verdict: str,
                              expected_priority: str) -> None:
    assert verdict(lines) == expected_verdict
    assert priority(lines) == expected_priority


lines_st = st.lists(st.builds(Evidence, st.sampled_from(["c2pa", "generator", "camera"]),
                              st.text(max_size=8), st.none(), st.sampled_from(STRENGTHS),
                              st.sampled_from(INDICATES)), max_size=8)


@settings(deadline=None)
@given(lines_st, lines_st)
def test_unsigned_lines_never_lower_priority(base: list[Evidence],
                                             added: list[Evidence]) -> None:
    """Adding any lines that are not ``trusted`` never moves an item down the queue."""
    rank = {"lower": 0, "neutral": 1, "raise": 2}
    untrusted = [line for line in added if line.strength != "trusted"]
    assert rank[priority(base + untrusted)] >= rank[priority(base)]
    assert (priority(base + untrusted) == "lower") <= (priority(base) == "lower")


def test_only_trusted_lines_lower() -> None:
    for strength in STRENGTHS[1:]:
        line = Evidence("c2pa", "digitalSourceType", "x", strength, "ai")
        assert priority([line]) == "neutral"


def test_evidence_is_checked_and_bounded() -> None:
    with pytest.raises(ValueError, match="unknown evidence strength: 'sure'"):
        Evidence("x", "y", 1, "sure")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown evidence direction: 'up'"):
        Evidence("x", "y", 1, "info", "up")  # type: ignore[arg-type]
    long = Evidence("generator", "prompt", "a" * (MAX_VALUE_CHARS + 10), "info")
    assert long.value == "a" * MAX_VALUE_CHARS + "…"
    assert Evidence.from_dict(long.as_dict()) == long
    assert clean_text(b" Demo\x00Cam \xff") == "DemoCam \ufffd"
    assert clean_text(12) is None
    assert clean_text("  \x00 ") is None


def test_redact_hides_prompts_only() -> None:
    lines = [Evidence("generator", "prompt", "a red bicycle", "info").as_dict(),
             Evidence("generator", "negative_prompt", "blurry", "info").as_dict(),
             Evidence("generator", "model", "demo-model", "info").as_dict()]
    assert [line["value"] for line in redact(lines)] == [
        "[hidden: 13 characters]", "[hidden: 6 characters]", "demo-model"]
    assert lines[0]["value"] == "a red bicycle"  # the stored evidence is not changed
