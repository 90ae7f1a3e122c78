"""The keypoint signal: copies cropped or overlaid match, different pictures do not, flat
pictures have no keypoints, and the stored form round-trips and refuses malformed bytes."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from safeguard.signals.keypoints import (
    KEEP,
    MAGIC,
    MIN_INLIERS,
    SIDE,
    Keypoints,
    describe,
    frame_size,
    verify,
)
from tests.signals.helpers import crop_area, overlay_box, pixels, textured_scene


def keypoints_of(img: Image.Image) -> Keypoints:
    found = describe(pixels(img), img.size)
    assert found is not None
    return found


@pytest.fixture(scope="module")
def original() -> Image.Image:
    return textured_scene(1)


@pytest.fixture(scope="module")
def described(original: Image.Image) -> Keypoints:
    return keypoints_of(original)


def test_describe_keeps_at_most_keep_keypoints_in_the_frame(described: Keypoints) -> None:
    assert len(described) == KEEP
    assert (described.width, described.height) == (SIDE, 240)  # 480x360 -> long side 320
    assert described.points.dtype == np.float32 and described.points.shape == (KEEP, 2)
    assert described.descriptors.dtype == np.uint8 and described.descriptors.shape == (KEEP, 32)
    assert described.points[:, 0].min() >= 0 and described.points[:, 0].max() <= SIDE
    assert described.points[:, 1].min() >= 0 and described.points[:, 1].max() <= 240
    # points are multiples of 1/128 px, so the stored form gives them back exactly
    assert np.array_equal(described.points * 128, np.rint(described.points * 128))


def test_describe_is_deterministic(original: Image.Image, described: Keypoints) -> None:
    assert keypoints_of(original) == described


@pytest.mark.parametrize("share", [0.02, 0.05, 0.10])
@pytest.mark.parametrize("centred", [False, True])
def test_cropped_copy_matches(original: Image.Image, described: Keypoints, share: float,
                              centred: bool) -> None:
    assert verify(described, keypoints_of(crop_area(original, share, centred))) >= MIN_INLIERS


@pytest.mark.parametrize("share", [0.02, 0.05, 0.10])
def test_copy_with_a_box_over_it_matches(original: Image.Image, described: Keypoints,
                                         share: float) -> None:
    assert verify(described, keypoints_of(overlay_box(original, share))) >= MIN_INLIERS


def test_cropped_and_overlaid_copy_matches(original: Image.Image, described: Keypoints) -> None:
    copy = overlay_box(crop_area(original, 0.10), 0.10)
    assert verify(described, keypoints_of(copy)) >= MIN_INLIERS


def test_resized_copy_described_from_its_squashed_sample_matches(original: Image.Image,
                                                                 described: Keypoints) -> None:
    """A scan passes the PDQ sample (squashed to a square) with the true size."""
    big = original.resize((960, 720), Image.Resampling.LANCZOS)
    square = big.resize((512, 512), Image.Resampling.NEAREST)
    assert verify(described, describe(pixels(square), big.size)) >= MIN_INLIERS  # type: ignore[arg-type]


def test_verify_is_symmetric(original: Image.Image, described: Keypoints) -> None:
    copy = keypoints_of(crop_area(original, 0.05, centred=True))
    assert verify(described, copy) == verify(copy, described) > 0


@pytest.mark.parametrize("seeds", [(1, 2), (1, 3), (2, 3), (4, 5)])
def test_different_pictures_do_not_match(seeds: tuple[int, int]) -> None:
    a, b = (keypoints_of(textured_scene(s)) for s in seeds)
    assert verify(a, b) == 0


def test_two_pictures_under_the_same_box_do_not_match() -> None:
    a, b = (keypoints_of(overlay_box(textured_scene(s), 0.10)) for s in (6, 7))
    assert verify(a, b) == 0


@pytest.mark.parametrize("shape", [(300, 400, 3), (512, 512, 3), (40, 40, 3)])
def test_flat_picture_has_no_keypoints(shape: tuple[int, int, int]) -> None:
    assert describe(np.full(shape, 128, np.uint8)) is None


def test_gradient_and_empty_pictures_have_no_keypoints() -> None:
    ramp = np.tile(np.linspace(0, 255, 256, dtype=np.uint8)[None, :, None], (200, 1, 3))
    assert describe(ramp) is None
    assert describe(np.zeros((0, 10, 3), np.uint8)) is None


def test_grey_pixels_are_accepted(original: Image.Image, described: Keypoints) -> None:
    grey = keypoints_of(original.convert("L"))
    assert verify(described, grey) >= MIN_INLIERS


@pytest.mark.parametrize("bad", [np.zeros((10, 10, 3), np.float32), np.zeros((10, 10, 4), np.uint8),
                                 np.zeros(10, np.uint8)])
def test_describe_refuses_other_arrays(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"^pixels must be uint8"):
        describe(bad)


def test_frame_keeps_the_aspect() -> None:
    assert frame_size(1600, 1004) == (320, 201)
    assert frame_size(100, 400) == (80, 320)
    assert frame_size(100000, 1) == (320, 1)


# --------------------------------------------------------------------------- stored form


def test_round_trip_is_exact(described: Keypoints) -> None:
    data = described.to_bytes()
    assert data[:5] == MAGIC + b"\x01"
    assert len(data) == 12 + 36 * KEEP == 9228
    back = Keypoints.from_bytes(data)
    assert back == described
    assert np.array_equal(back.points, described.points)
    assert np.array_equal(back.descriptors, described.descriptors)
    assert back.to_bytes() == data
    assert back.hull_area == described.hull_area


def small_blob(n: int = 20, width: int = SIDE, height: int = 200) -> bytes:
    rng = np.random.default_rng(n)
    points = (rng.integers(0, 128 * height, (n, 2)) / 128).astype(np.float32)
    descriptors = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    return Keypoints(points, descriptors, width, height).to_bytes()


@pytest.mark.parametrize(("mangle", "message"), [
    (lambda d: d[:7], "keypoints: 7 bytes, shorter than the 12-byte header"),
    (lambda d: b"XXXX" + d[4:], "keypoints: magic b'XXXX', expected b'SGKP'"),
    (lambda d: d[:4] + b"\x02" + d[5:], "keypoints: version 2, this Safeguard reads 1"),
    (lambda d: d[:5] + b"\x01" + d[6:], "keypoints: reserved byte is 1, expected 0"),
    (lambda d: d[:6] + struct.pack("<H", 0) + d[8:], "keypoints: count 0 outside 1..256"),
    (lambda d: d[:6] + struct.pack("<H", 257) + d[8:], "keypoints: count 257 outside 1..256"),
    (lambda d: d[:6] + struct.pack("<H", 21) + d[8:],
     "keypoints: 732 bytes, expected 768 for 21 keypoints"),
    (lambda d: d[:6] + struct.pack("<H", 19) + d[8:],
     "keypoints: 732 bytes, expected 696 for 19 keypoints"),
    (lambda d: d[:-1], "keypoints: 731 bytes, expected 732 for 20 keypoints"),
    (lambda d: d + b"\x00", "keypoints: 733 bytes, expected 732 for 20 keypoints"),
    (lambda d: d[:8] + struct.pack("<HH", 321, 200) + d[12:],
     "keypoints: frame 321x200 is not a 320-px frame"),
    (lambda d: d[:8] + struct.pack("<HH", 300, 200) + d[12:],
     "keypoints: frame 300x200 is not a 320-px frame"),
    (lambda d: d[:8] + struct.pack("<HH", 320, 0) + d[12:],
     "keypoints: frame 320x0 is not a 320-px frame"),
    (lambda d: d[:12] + struct.pack("<HH", 0, 200 * 128 + 1) + d[16:],
     "keypoints: a point lies outside the 320x200 frame"),
])
def test_malformed_bytes_are_refused_with_one_line(mangle: object, message: str) -> None:
    data = small_blob()
    assert len(data) == 732
    with pytest.raises(ValueError) as caught:
        Keypoints.from_bytes(mangle(data))  # type: ignore[operator]
    assert str(caught.value) == message


def test_to_bytes_refuses_what_it_cannot_store() -> None:
    empty = Keypoints(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8), SIDE, 100)
    with pytest.raises(ValueError, match=r"^0 keypoints cannot be stored"):
        empty.to_bytes()
    with pytest.raises(ValueError, match=r"^descriptors must be"):
        Keypoints(np.zeros((2, 2), np.float32), np.zeros((3, 32), np.uint8), SIDE, 100)


@settings(deadline=None, max_examples=300)
@given(st.binary(max_size=2000))
def test_from_bytes_fuzz_arbitrary(data: bytes) -> None:
    try:
        back = Keypoints.from_bytes(data)
    except ValueError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("keypoints: ")
    else:
        assert back.to_bytes() == data


@settings(deadline=None, max_examples=300)
@given(st.integers(0, 731), st.integers(0, 255), st.integers(0, 40))
def test_from_bytes_fuzz_mutated(position: int, value: int, cut: int) -> None:
    data = bytearray(small_blob())
    data[position] = value
    blob = bytes(data[: len(data) - cut])
    try:
        back = Keypoints.from_bytes(blob)
    except ValueError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("keypoints: ")
    else:
        assert back.to_bytes() == blob
        assert len(back) <= KEEP
