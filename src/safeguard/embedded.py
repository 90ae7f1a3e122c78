"""An embedded item's context in words: what it is to the file it was found in, and what
that file says of it, in one line for the review app, the reports and ``items``.

The scan keeps an embedded item's ``context`` as JSON (docs/json.md): its ``relation`` to
its container and the container's own words for it (an e-mail's sender and subject, a
thumbnail's cache id and original path, a database cell's table and row). The item's path
already names its chain of parents (``disk.E01`` → ``p2/…/thumbcache_256.db`` →
``!0123abcd….jpg``); this line says what the last link is.
"""

from __future__ import annotations

from typing import Any

from safeguard.text import visible

#: the longest context line (the path carries the rest)
MAX_LINE = 240
#: keys shown by the generic form, in this order, when a relation has no form of its own
_GENERIC = ("document", "page", "object", "cache", "cache_id", "table", "column", "rowid",
            "filename", "folder", "offset")


def container_name(path: str) -> str:
    """The file name of the container an item sits in: ``a/b/mail.eml!1-x.jpg`` gives
    ``mail.eml``; "" for a top-level item."""
    parent, bang, _ = path.rpartition("!")
    if not bang:
        return ""
    return parent.rpartition("!")[2].rpartition("/")[2]


def context_line(path: str, context: dict[str, Any] | None) -> str | None:
    """One line saying what an embedded item is (None when it has no context)."""
    if not context:
        return None
    relation = str(context.get("relation") or "embedded")
    where = container_name(path)
    head = f"{relation} {where}".rstrip() if where else relation
    words: list[str] = []
    if relation == "attachment of e-mail":
        if context.get("subject"):
            words.append(f"subject {_quoted(context['subject'])}")
        for key, label in (("from", "from"), ("to", "to"), ("date", "sent")):
            if context.get(key):
                words.append(f"{label} {_shown(context[key])}")
    elif relation == "thumbnail in cache":
        for key, label in (("cache_id", "cache id"), ("size", "size"),
                           ("original_name", "of"), ("original_path", "of")):
            if context.get(key):
                words.append(f"{label} {_shown(context[key])}")
        if context.get("original_path") and context.get("original_present") is False:
            words.append("which is no longer on the disk")
    elif relation == "cell of database":
        for key in ("table", "column", "rowid"):
            if context.get(key) is not None:
                words.append(f"{'row' if key == 'rowid' else key} {_shown(context[key])}")
    else:
        words = [f"{key} {_shown(context[key])}" for key in _GENERIC
                 if context.get(key) not in (None, "")][:4]
    line = visible(" ".join((head + (": " + ", ".join(words) if words else "")).split()))
    return line if len(line) <= MAX_LINE else line[:MAX_LINE - 1].rstrip() + "…"


def _shown(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "; ".join(map(str, value))
    return str(value)


def _quoted(value: Any) -> str:
    return f"“{_shown(value)}”"
