"""One verdict from many evidence lines, and what it may do to an item's review priority.

Verdicts, first rule that holds wins:

``ai_modified``
    a line of at least ``moderate`` strength points to AI editing of a picture that may be a
    real photograph (img2img, inpainting, a composite digital source type).
``ai_confirmed``
    a ``trusted`` line points to AI generation (a valid C2PA claim by a trusted signer).
``ai_indicated``
    an unsigned line of ``strong`` or ``moderate`` strength points to AI generation
    (generator metadata, an IPTC digital source type, a watermark, a classifier score).
``camera_original``
    a line of at least ``moderate`` strength points to a camera, and none of the above holds.
``unknown``
    anything else (``weak`` and ``info`` lines alone decide nothing).

Priority (``priority``) is separate from the verdict, because the verdict names what the
evidence claims while the priority must obey one rule: **no signal that is not
cryptographically trusted may lower an item's priority.** So:

``raise``
    AI modification of a possible photograph, or camera-original evidence — a real child may
    be in the picture. Unsigned AI claims do not take this away: a camera photo with a pasted
    generator chunk is ``ai_indicated`` but still ``raise``. Also a ``review`` line of at
    least ``moderate`` strength: a labelled classifier's ``raise`` label at or above its
    threshold (docs/classifiers.md). It raises only; it plays no part in the verdict.
``lower``
    only a ``trusted`` AI-generation claim, and only when nothing raises (so a classifier's
    ``raise`` beside a trusted AI claim gives ``raise``).
``neutral``
    everything else, ``ai_indicated`` included.
"""

from __future__ import annotations

from collections.abc import Iterable

from safeguard.provenance.evidence import Evidence

VERDICTS = ("ai_confirmed", "ai_indicated", "ai_modified", "camera_original", "unknown")
PRIORITIES = ("raise", "neutral", "lower")

_DECISIVE = frozenset({"trusted", "strong", "moderate"})


def verdict(lines: Iterable[Evidence]) -> str:
    lines = list(lines)
    if _any(lines, "ai_modified", _DECISIVE):
        return "ai_modified"
    if _any(lines, "ai", {"trusted"}):
        return "ai_confirmed"
    if _any(lines, "ai", {"strong", "moderate"}):
        return "ai_indicated"
    if _any(lines, "camera", _DECISIVE):
        return "camera_original"
    return "unknown"


def priority(lines: Iterable[Evidence]) -> str:
    lines = list(lines)
    if (_any(lines, "ai_modified", _DECISIVE) or _any(lines, "camera", _DECISIVE)
            or _any(lines, "review", _DECISIVE)):
        return "raise"
    if _any(lines, "ai", {"trusted"}):
        return "lower"
    return "neutral"


def _any(lines: list[Evidence], indicates: str, strengths: Iterable[str]) -> bool:
    wanted = frozenset(strengths)
    return any(line.indicates == indicates and line.strength in wanted for line in lines)
