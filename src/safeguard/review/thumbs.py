"""Safe-view pictures, made on the server with Pillow (docs/review.md).

Every picture a reviewer sees is, by default, greyscale and Gaussian-blurred here, before
it leaves the server: the browser never holds more than the blurred version unless the
reviewer reveals the item, which :func:`record_reveal` writes to the case and its audit log.
Outputs are fresh JPEGs with no metadata (no EXIF, XMP, ICC profile or comment).

Blur levels (``BLUR_LEVELS``) are the Gaussian radius as a fraction of the thumbnail's longer
side, so a level looks the same at every size: 0 none, 1 light (1.2 %), 2 medium (3 %),
3 strong (6 %, the default; about 15 px on a 256 px thumbnail).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from PIL import Image, ImageOps
from sqlalchemy import Connection, insert, select

from safeguard.audit import log as audit
from safeguard.config import Limits
from safeguard.errors import PictureError, VideoError, one_line
from safeguard.media.images import open_picture
from safeguard.media.safeview import colour, greyscale, safe_view
from safeguard.review.grading import ReviewError, writing
from safeguard.store.cases import Case
from safeguard.store.models import AuditEvent, Item, Reveal

#: blur level -> Gaussian radius as a fraction of the thumbnail's longer side
BLUR_LEVELS: dict[int, float] = {0: 0.0, 1: 0.012, 2: 0.03, 3: 0.06}
BLUR_NAMES: dict[int, str] = {0: "none", 1: "light", 2: "medium", 3: "strong"}
DEFAULT_BLUR = 3
#: what a reveal shows: a revealed picture, the original bytes, a revealed video strip, or a
#: safe-view thumbnail served unblurred (the viewer's blur level is 0, none)
REVEAL_KINDS = ("thumbnail", "original", "strip", "sharp")
#: height of each frame in a video strip, in pixels
STRIP_HEIGHT = 96
SAFE_QUALITY = 80
REVEALED_QUALITY = 85
MIN_SIZE, MAX_SIZE = 16, 2048
#: the default limits (a frozen dataclass: shared safely)
DEFAULT_LIMITS = Limits()


def safe_thumbnail(data: bytes, blur: int = DEFAULT_BLUR, size: int = 256,
                   limits: Limits = DEFAULT_LIMITS) -> bytes:
    """The safe-view JPEG of a picture: EXIF orientation applied, greyscale, fitted in
    ``size`` x ``size`` (never enlarged), blurred at ``blur`` level, quality 80, no
    metadata. ReviewError for an unreadable picture or one over the limits."""
    radius = _radius(blur)
    picture = _decode(data, size, limits, "L")
    with _converting():
        fitted = _fit(greyscale(picture), size)
        return _jpeg(safe_view(fitted, radius * max(fitted.size)), SAFE_QUALITY)


def revealed_thumbnail(data: bytes, size: int = 512, limits: Limits = DEFAULT_LIMITS
                       ) -> bytes:
    """One revealed picture: colour, unblurred, EXIF orientation applied, fitted in ``size``
    x ``size``, no metadata. Record the reveal with :func:`record_reveal`."""
    picture = _decode(data, size, limits, "RGB")
    with _converting():
        return _jpeg(_fit(colour(picture), size), REVEALED_QUALITY)


def video_strip(data: bytes, times: Sequence[float], blur: int = DEFAULT_BLUR,
                limits: Limits = DEFAULT_LIMITS) -> bytes:
    """A JPEG strip of the video's frames at ``times`` (seconds), side by side, each 96 px
    high, greyscale and blurred at ``blur`` level (of the frame height). A strip is always
    blurred: level 0 gives level 1. ReviewError when no frame can be rendered."""
    from safeguard.media.strip import keyframe_strip  # PyAV loads only when a strip is asked

    level = max(1, _level(blur))
    radius = BLUR_LEVELS[level] * STRIP_HEIGHT
    try:
        return keyframe_strip(io.BytesIO(data), times, height=STRIP_HEIGHT, blur_radius=radius,
                              limits=limits, quality=SAFE_QUALITY)
    except VideoError as exc:
        raise ReviewError(f"no video strip: {exc}") from None
    except ValueError as exc:
        raise ReviewError(f"no video strip: {one_line(exc)}") from None


def record_reveal(case: Case, reviewer: str, item_id: int, what: str = "thumbnail") -> None:
    """A reviewer saw ``item_id`` unblurred (``what``: thumbnail, original, strip or sharp):
    one row in ``reveals`` and one ``review.reveal`` audit event, in one transaction."""
    if what not in REVEAL_KINDS:
        raise ReviewError(f"unknown reveal {what!r} (known: {', '.join(REVEAL_KINDS)})")
    if not isinstance(reviewer, str) or not reviewer.strip():
        raise ReviewError("reviewer name is empty")
    with writing(case) as conn:
        if conn.execute(select(Item.id).where(Item.id == item_id)).first() is None:
            raise ReviewError(f"no item {item_id} in case {case.name!r}")
        now = audit.utc_now()
        conn.execute(insert(Reveal), {"item_id": item_id, "reviewer": reviewer, "what": what,
                                      "at": now})
        audit.append(conn, "review.reveal", f"item {item_id}",
                     {"reviewer": reviewer, "item": item_id, "what": what}, reviewer)


def record_blur(case: Case, reviewer: str, blur: int) -> bool:
    """Write ``reviewer``'s blur level into the case's audit chain (``review.blur``: the level,
    its name and the previous level) when it differs from the last one recorded there
    (everyone starts at the default, strong); True when an event was written. The setting is
    the reviewer's own, kept with their account: this records, in each case they view, the
    level they see its pictures at."""
    level = _level(blur)
    if not isinstance(reviewer, str) or not reviewer.strip():
        raise ReviewError("reviewer name is empty")
    with case.engine.connect() as conn:
        if _recorded_blur(conn, reviewer) == level:
            return False
    with writing(case) as conn:
        previous = _recorded_blur(conn, reviewer)  # again, under the write lock
        if previous == level:
            return False
        audit.append(conn, "review.blur", reviewer,
                     {"reviewer": reviewer, "blur": level, "level": BLUR_NAMES[level],
                      "previous": previous}, reviewer)
    return True


def _recorded_blur(conn: Connection, reviewer: str) -> int:
    details = conn.execute(select(AuditEvent.details)
                           .where(AuditEvent.action == "review.blur",
                                  AuditEvent.actor == reviewer)
                           .order_by(AuditEvent.seq.desc()).limit(1)).scalar()
    if details is None:
        return DEFAULT_BLUR
    level = json.loads(details).get("blur")
    return level if level in BLUR_LEVELS else DEFAULT_BLUR


# --- helpers ---------------------------------------------------------------------------------


@contextmanager
def _converting() -> Iterator[None]:
    """A picture mode or size Pillow cannot convert is a ReviewError, not a crash."""
    try:
        yield
    except Exception as exc:
        raise ReviewError(f"cannot show the picture: {one_line(exc, with_type=True)}"
                          ) from None


def _level(blur: int) -> int:
    if isinstance(blur, bool) or blur not in BLUR_LEVELS:
        raise ReviewError(f"blur level must be one of {', '.join(map(str, BLUR_LEVELS))}, "
                          f"not {blur!r}")
    return blur


def _radius(blur: int) -> float:
    return BLUR_LEVELS[_level(blur)]


def _decode(data: bytes, size: int, limits: Limits, mode: str) -> Image.Image:
    """The picture's first frame, decoded (JPEGs DCT-scaled toward ``size``), orientation
    applied; decompression bombs and unreadable pictures are ReviewError."""
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ReviewError(f"thumbnail size must be {MIN_SIZE}..{MAX_SIZE} px, not {size!r}")
    try:
        img = open_picture(data, limits.max_image_pixels)
    except PictureError as exc:
        raise ReviewError(f"cannot show the picture: {exc}") from None
    try:
        if img.format == "JPEG":
            img.draft(mode, (size, size))  # DCT scaling: never smaller than asked
        img.seek(0)
        img.load()
    except Exception as exc:
        text = str(exc)
        if "truncated" in text or "broken data stream" in text:
            raise ReviewError(f"cannot show the picture: truncated: {one_line(exc)}"
                              ) from None
        raise ReviewError(f"cannot show the picture: {one_line(exc, with_type=True)}"
                          ) from None
    try:
        oriented = ImageOps.exif_transpose(img)
    except Exception:  # a malformed orientation tag: shown as stored
        oriented = None
    return oriented if oriented is not None else img


def _fit(img: Image.Image, size: int) -> Image.Image:
    img.thumbnail((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return img


def _jpeg(img: Image.Image, quality: int) -> bytes:
    """A fresh image (no info, EXIF, ICC or XMP carried over) saved as a baseline JPEG."""
    clean = Image.frombytes(img.mode, img.size, img.tobytes())
    out = io.BytesIO()
    clean.save(out, "JPEG", quality=quality)
    return out.getvalue()
