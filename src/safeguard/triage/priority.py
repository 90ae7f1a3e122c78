"""The review queue's priority: which tier an item falls in, and how series are ordered.

The table (docs/triage.md, checked by a test)::

    tier  name       which items
    0     new-raise  no hash-set match; provenance priority ``raise`` (camera-original
                     evidence, AI modification of a possible photograph, or a classifier
                     label whose effect is ``raise``), or raised by
                     the AI-toolchain analysis (a training picture, a watch-list hit)
    1     new        no hash-set match; provenance ``neutral`` or none (``unknown``,
                     ``ai_indicated``, pictures without a verdict, videos)
    2     new-lower  no hash-set match; provenance ``lower`` (a trusted C2PA AI claim)
    3     known      matched a hash set that is not ``known_good`` or ``model``: awaiting
                     confirmation
    -     (none)     matched a ``known_good`` set: never queued

The provenance *priority*, not the verdict, picks the tier: the verdict names what the
evidence claims, the priority obeys the rule that no signal that is not cryptographically
trusted may lower an item (``safeguard.provenance.verdict``). So ``ai_indicated`` (unsigned
generator metadata anyone can write or paste) stays with the other new material, and a
camera photo with a pasted generator chunk keeps ``raise``.

A series (``safeguard.triage.series``) takes the best (lowest) tier of its queued items;
:func:`priority_key` orders series.
"""

from __future__ import annotations

#: tier names, first to last in review order; ``tier()`` returns an index into this
TIERS: tuple[str, ...] = ("new-raise", "new", "new-lower", "known")

NEW_RAISE, NEW, NEW_LOWER, KNOWN = range(len(TIERS))

_BY_PRIORITY = {"raise": NEW_RAISE, "neutral": NEW, "lower": NEW_LOWER}


def tier(known: bool, known_good: bool, provenance_priority: str | None) -> int | None:
    """The tier of one item, or ``None`` when it is not queued (a ``known_good`` match).

    ``known``: a match in a set of any purpose but ``known_good``; ``provenance_priority``:
    the item's provenance ``priority`` (``raise`` | ``neutral`` | ``lower``), ``None`` when it
    has none (videos, pictures not assessed). A value this module does not know is treated as
    ``neutral``: only a trusted claim may lower an item."""
    if known_good:
        return None
    if known:
        return KNOWN
    return _BY_PRIORITY.get(provenance_priority or "neutral", NEW)


def priority_key(tier: int, severity_rank: int, series_size: int,
                 first_item_id: int) -> tuple[int, int, int, int]:
    """The sort key of a series in the queue, smallest first:

    1. ``tier``: the best (lowest) tier of the series' queued items;
    2. ``severity_rank`` descending: the rank, in the case's category scheme, of the most
       severe category any queued item matched (0 when none matched; a match without a
       category, or with one the scheme does not know, ranks as ``uncategorised``);
    3. ``series_size`` descending: queued items in the series;
    4. ``first_item_id``: the lowest queued item id, so the order is total and stable.
    """
    return (tier, -severity_rank, -series_size, first_item_id)
