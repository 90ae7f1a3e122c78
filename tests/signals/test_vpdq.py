"""vPDQ hashes: faithful to Meta's reference, robust to copies, exact PDQ kernel.

Videos are the public vpdq-reference test videos and benign videos generated at test time
(helpers shared with tests/media/test_video.py).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pdqhash
import pytest

from safeguard.config import Limits
from safeguard.matching.vpdq_match import compare, unique_hashes
from safeguard.signals.pdq import vector_to_hex
from safeguard.signals.pdq_kernel import FramePdq, pdq_rgb
from safeguard.signals.vpdq import FrameHash, VideoHashes, vpdq_from_source
from tests.helpers import scene
from tests.media.helpers import (
    REFERENCE_VIDEOS,
    VPDQ_REF,
    hamming,
    letterboxed,
    reference_hashes,
    scene_frames,
    write_video,
)

REFERENCE = {p.stem: p for p in REFERENCE_VIDEOS}


def unique(frames: list[FrameHash]) -> np.ndarray:
    return unique_hashes([f.pdq for f in frames], [f.quality for f in frames])


def matches(a: VideoHashes | list[FrameHash], b: VideoHashes | list[FrameHash]) -> bool:
    fa = a.frames if isinstance(a, VideoHashes) else a
    fb = b.frames if isinstance(b, VideoHashes) else b
    return compare(unique(fa), unique(fb)).passes()


def distances_to_reference(frames: list[FrameHash], name: str) -> np.ndarray:
    """For each frame hashed, the distance to the reference frame nearest in time (the
    reference files hash every frame)."""
    rows = reference_hashes(name)
    times = np.array([r[3] for r in rows])
    return np.array([hamming(f.pdq, rows[int(np.argmin(np.abs(times - f.t)))][2])
                     for f in frames])


# --------------------------------------------------------------------------- reference


@pytest.fixture(scope="module")
def reference_results() -> dict[tuple[str, bool], VideoHashes]:
    return {(name, letterbox): vpdq_from_source(path, Limits(), letterbox=letterbox)
            for name, path in REFERENCE.items() for letterbox in (False, True)}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_frames_match_the_reference_hashes(
        reference_results: dict[tuple[str, bool], VideoHashes], name: str) -> None:
    result = reference_results[name, False]
    distances = distances_to_reference(result.frames, name)
    share = float(np.mean(distances <= 16))
    assert share >= 0.95, (f"{name}: {share:.1%} of {len(distances)} frames within 16 bits "
                           f"(mean {distances.mean():.2f}, max {distances.max()})")
    assert result.error is None and result.uncropped is None
    assert [f.t for f in result.frames] == [float(k) for k in range(len(result.frames))]


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_frames_are_bit_identical_to_the_reference(
        reference_results: dict[tuple[str, bool], VideoHashes], name: str) -> None:
    """Stricter than the suite's 16 bits: the conversion flags and the float32 kernel
    reproduce the reference exactly. A failure after upgrading PyAV/FFmpeg means swscale's
    RGB conversion changed: re-measure (media/video.py's docstring)."""
    result = reference_results[name, False]
    rows = {round(r[3], 3): r for r in reference_hashes(name)}
    for frame in result.frames:
        _, quality, pdq, _ = rows[round(frame.t, 3)]
        assert (frame.pdq, frame.quality) == (pdq, quality), frame.t


@pytest.mark.parametrize("name", ["chair-22-sd-grey-bar", "chair-orig-22-sd-bar",
                                  "pattern-sd-grey-bar"])
def test_letterboxed_videos_keep_the_reference_hashes_as_uncropped(
        reference_results: dict[tuple[str, bool], VideoHashes], name: str) -> None:
    result = reference_results[name, True]
    assert result.uncropped is not None  # these are pillarboxed: bars were cut
    assert result.uncropped == reference_results[name, False].frames
    assert distances_to_reference(result.frames, name).mean() > 32  # cropped: other hashes


@pytest.mark.parametrize("letterbox", [True, False])
def test_reference_videos_match_as_published(
        reference_results: dict[tuple[str, bool], VideoHashes], letterbox: bool) -> None:
    def result(name: str) -> VideoHashes:
        return reference_results[name, letterbox]

    assert matches(result("chair-22-sd-grey-bar"), result("chair-orig-22-sd-bar"))
    assert matches(result("chair-orig-22-sd-bar"), result("chair-22-sd-grey-bar"))
    for other in ("pattern-sd-grey-bar", "doorknob-hd-no-bar"):
        for chair in ("chair-22-sd-grey-bar", "chair-orig-22-sd-bar"):
            assert not matches(result(other), result(chair))
            assert not matches(result(chair), result(other))


def test_stream_gives_the_same_hashes_as_the_path() -> None:
    path = REFERENCE["pattern-sd-grey-bar"]
    from_path = vpdq_from_source(path, Limits())
    from_stream = vpdq_from_source(io.BytesIO(path.read_bytes()), Limits())
    assert from_stream.frames == from_path.frames
    assert from_stream.keyframes == from_path.keyframes
    assert from_stream.metadata == from_path.metadata
    with path.open("rb") as f:
        f.seek(1000)  # wherever the stream stands, the whole video is read
        assert vpdq_from_source(f, Limits()).frames == from_path.frames


# --------------------------------------------------------------------------- copies


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, VideoHashes]:
    """An original benign video and copies of it, hashed with the defaults."""
    root = tmp_path_factory.mktemp("copies")
    frames = list(scene_frames(seconds=10, fps=15))
    made: dict[str, tuple[Path, Iterator[np.ndarray] | list[np.ndarray], dict]] = {
        "original": (root / "original.mp4", frames, {}),
        # 1.5 s cut from the start: every sampled frame is half a second off the original's
        "trimmed": (root / "trimmed.mp4", frames[22:], {}),
        "vp8": (root / "copy.webm", frames, {"codec": "libvpx", "bit_rate": 150_000}),
        "mjpeg": (root / "copy.avi", frames, {"codec": "mjpeg", "pix_fmt": "yuvj420p",
                                              "options": {"q": "12"}}),
        "mpeg4": (root / "copy.mkv", frames, {"codec": "mpeg4", "bit_rate": 300_000}),
        "letterboxed": (root / "letterboxed.mp4", list(letterboxed(frames, 40)), {}),
        "pillarboxed": (root / "pillarboxed.mp4",
                        [np.pad(f, ((0, 0), (48, 48), (0, 0))) for f in frames], {}),
        "other": (root / "other.mp4", list(scene_frames(seconds=10, fps=15, seed=9)), {}),
    }
    results = {}
    for name, (path, pictures, kw) in made.items():
        write_video(path, pictures, **kw)
        results[name] = vpdq_from_source(path, Limits())
    results["letterboxed, no removal"] = vpdq_from_source(root / "letterboxed.mp4", Limits(),
                                                          letterbox=False)
    return results


@pytest.mark.parametrize("name", ["trimmed", "vp8", "mjpeg", "mpeg4", "letterboxed",
                                  "pillarboxed"])
def test_copies_match_the_original(copies: dict[str, VideoHashes], name: str) -> None:
    copy, original = copies[name], copies["original"]
    result = compare(unique(copy.frames), unique(original.frames))
    assert result.passes(), result
    assert compare(unique(original.frames), unique(copy.frames)).passes()
    assert copy.error is None


def test_letterbox_removal_brings_a_letterboxed_copy_back_to_the_original(
        copies: dict[str, VideoHashes]) -> None:
    original = copies["original"].frames
    removed = copies["letterboxed"].frames
    kept = copies["letterboxed, no removal"].frames
    assert copies["letterboxed"].uncropped == kept  # the whole frames are kept too
    near_removed = np.mean([hamming(a.pdq, b.pdq) for a, b in zip(removed, original,
                                                                  strict=True)])
    near_kept = np.mean([hamming(a.pdq, b.pdq) for a, b in zip(kept, original, strict=True)])
    assert near_removed < 12 and near_kept > 2 * near_removed, (near_removed, near_kept)


def test_a_different_video_does_not_match(copies: dict[str, VideoHashes]) -> None:
    for name in ("original", "vp8", "letterboxed"):
        assert not matches(copies["other"], copies[name])
        assert not matches(copies[name], copies["other"])


# --------------------------------------------------------------------------- options


def test_prune_drops_near_duplicates_of_the_last_kept_frame(tmp_path: Path) -> None:
    still = np.asarray(scene(3, (160, 120)))
    moving = list(scene_frames(seconds=3, fps=10, cuts=(), size=(160, 120), seed=4))
    path = tmp_path / "still_then_cut.mp4"
    write_video(path, [still] * 40 + moving, fps=10)
    every = vpdq_from_source(path, Limits())
    pruned = vpdq_from_source(path, Limits(), prune=10)
    assert len(every.frames) == 7
    assert [f.t for f in pruned.frames][:2] == [0.0, 4.0]  # the still is kept once
    for dropped in set(every.frames) - set(pruned.frames):
        kept_before = [f for f in pruned.frames if f.t < dropped.t][-1]
        assert hamming(dropped.pdq, kept_before.pdq) <= 10
    assert set(pruned.keyframes) <= {f.t for f in pruned.frames}


def test_sampling_rate_option(tmp_path: Path) -> None:
    path = tmp_path / "rate.mp4"
    write_video(path, scene_frames(seconds=4, fps=10, cuts=()), fps=10)
    assert [f.t for f in vpdq_from_source(path, Limits(), fps=2.5).frames] == \
        [0.0, 0.4, 0.8, 1.2, 1.6, 2.0, 2.4, 2.8, 3.2, 3.6]
    with pytest.raises(ValueError):
        vpdq_from_source(path, Limits(), fps=0)


# --------------------------------------------------------------------------- PDQ kernel


def _pictures() -> Iterator[np.ndarray]:
    rng = np.random.default_rng(0)
    for i in range(40):
        h, w = (int(x) for x in rng.integers(5, 700, 2))
        if i % 3 == 0:
            yield rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        else:
            yield np.asarray(scene(i, (w, h)))
    yield np.zeros((64, 64, 3), np.uint8)  # flat: quality 0
    yield np.asarray(scene(99, (1920, 1080)))


@pytest.mark.parametrize("picture", list(_pictures()), ids=lambda a: "x".join(map(str, a.shape)))
def test_kernel_is_bit_identical_to_pdqhash(picture: np.ndarray) -> None:
    """Given pdqhash's float64 luma, the numba kernel reproduces pdqhash exactly; with the
    reference's float32 luma (the default) it stays within 2 bits."""
    vector, quality = pdqhash.compute(picture)
    expected = vector_to_hex(vector)
    assert pdq_rgb(picture, float64_luma=True) == (expected, quality)
    pdq, q32 = pdq_rgb(picture)
    assert hamming(pdq, expected) <= 2 and abs(q32 - quality) <= 1


def test_kernel_on_views_and_tiny_pictures() -> None:
    picture = np.asarray(scene(5, (300, 200)))
    view = picture[17:180, 9:290]
    hasher = FramePdq()
    pdq, quality, thumb = hasher(view)
    assert (pdq, quality) == pdq_rgb(np.ascontiguousarray(view))
    assert thumb.shape == (16, 16) and thumb.dtype == np.uint8
    assert hasher(picture)[:2] == pdq_rgb(picture)  # buffers follow the size
    assert pdq_rgb(np.zeros((4, 100, 3), np.uint8)) == ("0" * 64, 0)
    assert vector_to_hex(pdqhash.compute(np.zeros((4, 100, 3), np.uint8))[0]) == "0" * 64


def test_reference_hash_files_are_there() -> None:
    assert len(REFERENCE) == 4 and (VPDQ_REF / "hashes").is_dir()
