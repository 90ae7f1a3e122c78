"""Safe-view pictures: greyscale, fitted, blurred by level, metadata stripped, bounded."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from safeguard.audit import log as audit
from safeguard.config import Limits
from safeguard.review.grading import ReviewError
from safeguard.review.thumbs import (
    BLUR_LEVELS,
    BLUR_NAMES,
    record_blur,
    revealed_thumbnail,
    safe_thumbnail,
    video_strip,
)
from safeguard.store.models import AuditEvent
from tests.helpers import jpeg_bytes, png_bytes, scene, small_video
from tests.review import case_with_items


def checkerboard(size: int = 256, square: int = 8) -> Image.Image:
    y, x = np.mgrid[0:size, 0:size]
    board = (((x // square) + (y // square)) % 2 * 255).astype(np.uint8)
    return Image.fromarray(np.stack([board, board // 2, 255 - board], axis=2), "RGB")


def decoded(data: bytes) -> Image.Image:
    assert data[:2] == b"\xff\xd8"
    img = Image.open(io.BytesIO(data))
    assert img.format == "JPEG"
    img.load()
    return img


def detail(img: Image.Image) -> float:
    """High-frequency energy: mean absolute difference between neighbouring pixels."""
    a = np.asarray(img.convert("L"), np.float64)
    return float(np.abs(np.diff(a, axis=0)).mean() + np.abs(np.diff(a, axis=1)).mean())


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels (and holds almost nothing)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def test_blur_levels_are_documented_fractions() -> None:
    assert BLUR_LEVELS == {0: 0.0, 1: 0.012, 2: 0.03, 3: 0.06}
    assert BLUR_NAMES == {0: "none", 1: "light", 2: "medium", 3: "strong"}


def test_safe_thumbnail_is_a_grey_fitted_jpeg() -> None:
    img = decoded(safe_thumbnail(jpeg_bytes(scene(1, (640, 480)))))
    assert (img.mode, img.size) == ("L", (256, 192))
    img = decoded(safe_thumbnail(png_bytes(scene(2, (100, 300))), size=64))
    assert (img.mode, img.size) == ("L", (21, 64))
    small = decoded(safe_thumbnail(png_bytes(scene(3, (40, 30)))))  # never enlarged
    assert small.size == (40, 30)


def test_blur_grows_with_the_level() -> None:
    data = png_bytes(checkerboard())
    measures = [detail(decoded(safe_thumbnail(data, blur=level))) for level in range(4)]
    assert measures[0] > measures[1] > measures[2] > measures[3]
    assert measures[3] < measures[0] / 10


def test_revealed_thumbnail_is_colour_and_sharp() -> None:
    data = png_bytes(checkerboard(600))
    img = decoded(revealed_thumbnail(data))
    assert (img.mode, img.size) == ("RGB", (512, 512))
    assert detail(img) > detail(decoded(safe_thumbnail(data, blur=1, size=512)))


def test_exif_orientation_applied_and_no_metadata_out() -> None:
    source = Image.fromarray(np.asarray(scene(4, (200, 100))), "RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to show
    exif[0x010F] = "SecretMake"
    exif[0x9286] = "a private comment"
    data = jpeg_bytes(source, exif=exif.tobytes(), comment=b"jpeg comment")
    for output in (safe_thumbnail(data), revealed_thumbnail(data)):
        img = decoded(output)
        assert img.size == (100, 200)
        assert dict(img.getexif()) == {}
        assert not {"exif", "icc_profile", "comment", "xmp"} & set(img.info)
        assert b"Exif" not in output and b"SecretMake" not in output
        assert b"jpeg comment" not in output


def test_other_picture_modes() -> None:
    rgba = scene(5, (64, 64)).convert("RGBA")
    rgba.putalpha(128)
    grey16 = Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16))
    palette = scene(6, (64, 64)).convert("P")
    for picture in (rgba, grey16, palette, scene(7, (64, 64)).convert("CMYK")):
        buffer = io.BytesIO()
        picture.save(buffer, "TIFF" if picture.mode == "CMYK" else "PNG")
        assert decoded(safe_thumbnail(buffer.getvalue())).mode == "L"
        assert decoded(revealed_thumbnail(buffer.getvalue())).mode == "RGB"


@pytest.mark.parametrize(
    ("data", "limits", "message"),
    [
        (jpeg_bytes(scene(8))[:2000], Limits(), "cannot show the picture: truncated: "),
        (png_bytes(scene(9))[:300], Limits(), "cannot show the picture: truncated: "),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, Limits(),
         "cannot show the picture: not a readable picture: "),
        (b"plain text, not a picture", Limits(),
         "cannot show the picture: not a readable picture: "),
        (png_header(100_000, 100_000), Limits(),
         "cannot show the picture: decompression bomb: 100000x100000 = 10000000000 pixels "
         "exceeds the limit of 178956970"),
        (png_bytes(scene(10, (100, 100))), Limits(max_image_pixels=1000),
         "cannot show the picture: decompression bomb: 100x100 = 10000 pixels exceeds the "
         "limit of 1000"),
    ],
)
def test_unreadable_and_bomb_pictures(data: bytes, limits: Limits, message: str) -> None:
    for make in (safe_thumbnail, revealed_thumbnail):
        with pytest.raises(ReviewError) as info:
            make(data, limits=limits)
        assert str(info.value).startswith(message)
        assert "\n" not in str(info.value)


def test_bad_arguments() -> None:
    data = png_bytes(scene(11, (32, 32)))
    with pytest.raises(ReviewError) as info:
        safe_thumbnail(data, blur=7)
    assert str(info.value) == "blur level must be one of 0, 1, 2, 3, not 7"
    with pytest.raises(ReviewError) as info:
        safe_thumbnail(data, size=100_000)
    assert str(info.value) == "thumbnail size must be 16..2048 px, not 100000"


def test_video_strip_of_blurred_grey_keyframes() -> None:
    video = small_video(seconds=3, fps=10, size=(160, 120))
    strips = {level: decoded(video_strip(video, [0.0, 1.0, 2.0], blur=level))
              for level in range(4)}
    for img in strips.values():
        assert (img.mode, img.size) == ("L", (3 * 128, 96))
    measures = [detail(strips[level]) for level in (1, 2, 3)]
    assert measures[0] > measures[1] > measures[2]
    # a strip is never unblurred: level 0 is level 1
    assert np.array_equal(np.asarray(strips[0]), np.asarray(strips[1]))


def test_video_strip_of_something_else_is_a_review_error() -> None:
    with pytest.raises(ReviewError) as info:
        video_strip(png_bytes(scene(12)), [0.0])
    assert str(info.value).startswith("no video strip: ")
    with pytest.raises(ReviewError) as info:
        video_strip(small_video(seconds=1), [])
    assert str(info.value) == "no video strip: no keyframe times"


def test_a_change_of_blur_level_is_recorded_once_in_the_case(tmp_path: Path) -> None:
    """The level a reviewer sees a case at is in its audit chain whenever it changes from the
    last one recorded there (everyone starts at strong, unrecorded)."""
    case = case_with_items(tmp_path)
    assert record_blur(case, "alice", 3) is False  # the default: nothing to record
    assert record_blur(case, "alice", 0) is True
    assert record_blur(case, "alice", 0) is False
    assert record_blur(case, "bob", 2) is True
    assert record_blur(case, "alice", 3) is True
    with case.engine.connect() as conn:
        rows = conn.execute(select(AuditEvent.actor, AuditEvent.object, AuditEvent.details)
                            .where(AuditEvent.action == "review.blur")
                            .order_by(AuditEvent.seq)).all()
        assert audit.verify(conn).ok
    assert [(actor, obj, json.loads(details)) for actor, obj, details in rows] == [
        ("alice", "alice", {"reviewer": "alice", "blur": 0, "level": "none", "previous": 3}),
        ("bob", "bob", {"reviewer": "bob", "blur": 2, "level": "medium", "previous": 3}),
        ("alice", "alice", {"reviewer": "alice", "blur": 3, "level": "strong", "previous": 0})]
    with pytest.raises(ReviewError) as info:
        record_blur(case, "alice", 4)
    assert str(info.value) == "blur level must be one of 0, 1, 2, 3, not 4"
