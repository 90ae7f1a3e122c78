"""Midjourney: a ``Description`` (PNG text chunk or EXIF ImageDescription) ending in
``Job ID: <uuid>``, with the ``Author``.

Mode: a prompt that starts with an image URL (an image prompt) → img2img with that URL as
source.
"""

from __future__ import annotations

import re
from typing import ClassVar

from safeguard.provenance.generators.base import SHORT_TEXT, Lines, TextFields

_JOB_ID = re.compile(r"Job ID:\s*([0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})")


class Midjourney:
    """The ``Description`` field (and its ``Author``)."""

    name: ClassVar[str] = "midjourney"
    keys: ClassVar[frozenset[str]] = frozenset({"description", "author"})

    def read_texts(self, lines: Lines, fields: TextFields) -> None:
        if (item := fields.entry("description")) is not None:
            read_description(lines, item[1], item[0], fields.text("author"))


def read_description(lines: Lines, text: str, where: str, author: str | None) -> None:
    """The lines of a description that carries a Midjourney job ID; nothing otherwise."""
    if len(text) > SHORT_TEXT or (match := _JOB_ID.search(text)) is None:
        return
    lines.generator("Midjourney", where)
    caption = text[:match.start()].strip()
    lines.add("caption", caption)
    lines.add("job_id", match.group(1))
    lines.add("author", author)
    version = re.search(r"--(v|version|niji)\s+([\d.]{1,8})\b", caption)
    if version:
        lines.add("version", ("niji " if version.group(1) == "niji" else "") + version.group(2))
    image_prompt = re.match(r"<?(https?://[^\s>]{1,2048})>?\s", caption)
    if image_prompt:
        lines.mode("img2img", image_prompt.group(1))
