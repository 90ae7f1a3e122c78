"""Video decoding: frame choice, metadata, letterbox, review strip, limits and bad input.

Every video here is made at test time with PyAV from benign generated pictures (smooth colour
fields and shapes, slowly panning) or is one of the public vpdq-reference test videos.
The helpers that make them are in tests/media/helpers.py, shared with tests/signals/test_vpdq.py.
"""

from __future__ import annotations

import io
import random
import struct
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from safeguard.config import Limits
from safeguard.errors import VideoError
from safeguard.media import video
from safeguard.media.strip import keyframe_strip, scene_keyframes
from safeguard.media.video import (
    FrameSampler,
    crop_black_bars,
    frame_rgb,
    open_video,
    video_metadata,
    video_stream,
)
from safeguard.signals.pdq_kernel import pdq_rgb
from safeguard.signals.vpdq import VideoHashes, vpdq_from_source
from tests.helpers import scene
from tests.media.helpers import (
    REFERENCE_VIDEOS,
    VPDQ_REF,
    H,
    W,
    hamming,
    scene_frames,
    video_bytes,
    write_video,
)

# --------------------------------------------------------------------------- helpers


def sample_times(source: Path | io.BytesIO, fps: float = 1.0, exact: bool = False,
                 limits: Limits | None = None) -> tuple[list[float], list[str], FrameSampler]:
    limits = limits or Limits()
    if isinstance(source, io.BytesIO):
        source.seek(0)
    container = open_video(source, limits)
    try:
        sampler = FrameSampler(container, video_stream(container, limits), limits, fps,
                               exact=exact)
        taken = [(s.t, pdq_rgb(frame_rgb(s.frame))[0]) for s in sampler]
    finally:
        container.close()
    return [t for t, _ in taken], [h for _, h in taken], sampler


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Benign test videos, made once for this module."""
    root = tmp_path_factory.mktemp("video")
    paths = {
        # x264 defaults (B-frames, long GOP), 10 s at 15 fps with cuts at 4 s and 7 s
        "h264": root / "h264.mp4",
        # short GOP (1 s) with B-frames: planning drops whole GOPs
        "h264_gop": root / "h264_gop.mp4",
        "mjpeg": root / "mjpeg.avi",
        "faststart": root / "faststart.mp4",
    }
    frames = list(scene_frames())
    write_video(paths["h264"], frames)
    write_video(paths["h264_gop"], frames, options={"g": "15", "bf": "2"})
    write_video(paths["mjpeg"], frames, codec="mjpeg", pix_fmt="yuvj420p")
    write_video(paths["faststart"], frames, container_options={"movflags": "+faststart"})
    return paths


# --------------------------------------------------------------------------- frame choice


def test_frames_taken_once_per_second_at_the_reference_frames(clips: dict[str, Path]) -> None:
    times, hashes, sampler = sample_times(clips["h264"])
    assert times == [float(k) for k in range(10)]
    assert sampler.error is None
    # frame k*15 of the source pictures: the same frames the reference's frame counter takes
    sources = list(scene_frames())
    for t, pdq in zip(times, hashes, strict=True):
        assert hamming(pdq, pdq_rgb(sources[int(t * 15)])[0]) <= 16


@pytest.mark.parametrize("name", ["h264", "h264_gop", "mjpeg"])
@pytest.mark.parametrize("fps", [1.0, 0.4, 3.0])
def test_planned_decoding_takes_exactly_the_frames_a_full_decode_takes(
        clips: dict[str, Path], name: str, fps: float) -> None:
    """Skipping non-reference frames and whole GOPs must not change a single bit."""
    full_times, full_hashes, _ = sample_times(clips[name], fps, exact=True)
    times, hashes, sampler = sample_times(clips[name], fps)
    assert (times, hashes) == (full_times, full_hashes)
    assert sampler.stats.planned
    assert sampler.stats.decoded < 150  # it did skip work
    if name != "h264":  # short GOPs / intra-only: whole runs of packets were never decoded
        assert sampler.stats.dropped > 0


@pytest.mark.parametrize("video", REFERENCE_VIDEOS, ids=lambda p: p.stem)
def test_planned_decoding_is_exact_on_the_reference_videos(video: Path) -> None:
    assert sample_times(video, exact=False)[:2] == sample_times(video, exact=True)[:2]


def test_variable_frame_rate_is_sampled_at_the_right_times(tmp_path: Path) -> None:
    """The frame on screen at each second is taken, whatever the frame count."""
    pts = [0, 100, 250, 1300, 1400, 2600, 2700, 2750, 4000, 4100]  # milliseconds
    pictures = [np.asarray(scene(500 + i, (160, 120))) for i in range(len(pts))]
    path = tmp_path / "vfr.mp4"
    write_video(path, pictures, pts=pts, time_base=Fraction(1, 1000), options={"bf": "2"})
    times, hashes, sampler = sample_times(path)
    # on screen at 0, 1, 2, 3, 4 s: the frames shown from 0, 0.25, 1.4, 2.75 and 4.0 s
    expected = [0, 2, 4, 7, 8]
    assert times == [pts[i] / 1000 for i in expected]
    for i, pdq in zip(expected, hashes, strict=True):
        distances = [hamming(pdq, pdq_rgb(p)[0]) for p in pictures]
        assert int(np.argmin(distances)) == i, distances
    assert sample_times(path, exact=True)[:2] == (times, hashes)
    assert sampler.stats.planned


def test_frame_rate_that_is_not_a_multiple_of_the_sampling_stays_on_real_time(
        tmp_path: Path) -> None:
    path = tmp_path / "ntsc.mp4"
    write_video(path, scene_frames(6, fps=30000 / 1001, cuts=()), fps=30000 / 1001)
    times, _, _ = sample_times(path)
    # 29.97 fps: the frame on screen at k s is frame floor(k * 29.97) (not 29 k, the
    # reference's integer step)
    assert [round(t * 30000 / 1001) for t in times] == [int(k * 30000 / 1001) for k in range(6)]


# --------------------------------------------------------------------------- metadata


def test_metadata_of_a_made_video_is_exact() -> None:
    data = video_bytes(scene_frames(3, cuts=()), fps=15,
                       metadata={"creation_time": "2024-05-06T07:08:09.000000Z",
                                 "com.apple.quicktime.make": "TestMake",
                                 "com.apple.quicktime.model": "TestModel 1",
                                 "location": "+51.5074-000.1278/"},
                       container_options={"movflags": "use_metadata_tags"})
    container = open_video(io.BytesIO(data), Limits())
    try:
        meta = video_metadata(container)
    finally:
        container.close()
    # the container's own description of itself (its stated length is metadata, not a timing)
    stated = {"duration": 3.0, "codec": "h264", "width": W, "height": H, "fps": 15.0,
              "frames": 45}
    assert {key: meta[key] for key in stated} == stated
    assert meta["creation_time"] == "2024-05-06T07:08:09.000000Z"
    assert (meta["make"], meta["model"]) == ("TestMake", "TestModel 1")
    assert meta["location"] == "+51.5074-000.1278/"
    assert meta["streams"] == meta["video_streams"] == 1
    assert meta["bit_rate"] > 0
    assert "audio_streams" not in meta and "rotation" not in meta  # only what exists


def test_metadata_of_a_reference_video() -> None:
    container = open_video(VPDQ_REF / "videos" / "doorknob-hd-no-bar.mp4", Limits())
    try:
        meta = video_metadata(container)
    finally:
        container.close()
    stated = {"width": 1280, "height": 720, "fps": 30.0, "codec": "h264", "duration": 4.309}
    assert {key: meta[key] for key in stated} == stated
    assert meta["audio_streams"] == 1 and meta["streams"] == 2


# --------------------------------------------------------------------------- letterbox


def test_crop_black_bars_removes_letterbox_and_pillarbox() -> None:
    content = np.asarray(scene(7, (200, 100)))
    boxed = np.pad(content, ((20, 24), (13, 9), (0, 0)))
    boxed[:20] = 9  # bars are rarely perfectly black after compression
    cropped = crop_black_bars(boxed)
    assert cropped.shape == content.shape
    assert np.array_equal(cropped, content)


def test_crop_black_bars_is_conservative() -> None:
    content = np.asarray(scene(8, (200, 100))).copy()
    assert crop_black_bars(content) is content  # nothing to cut: the same array
    black = np.zeros((100, 200, 3), np.uint8)
    assert crop_black_bars(black).shape == black.shape  # a black frame is not cropped away
    dark_top = content.copy()
    dark_top[:10, :150] = 0  # dark content reaching the edge, not a full bar
    assert crop_black_bars(dark_top).shape == content.shape
    grey = np.pad(content, ((20, 20), (0, 0), (0, 0)), constant_values=128)
    assert crop_black_bars(grey).shape == grey.shape  # grey bars are kept (documented)
    thin = np.pad(content, ((0, 0), (400, 400), (0, 0)))  # content under a quarter of the width
    assert crop_black_bars(thin).shape == thin.shape
    grey_picture = np.pad(np.asarray(scene(9, (80, 60)).convert("L")), ((10, 10), (0, 0)))
    assert crop_black_bars(grey_picture).shape == (60, 80)  # works on greyscale arrays too


# --------------------------------------------------------------------------- keyframes


def test_scene_keyframes_first_frame_and_cuts() -> None:
    thumbs = [np.full((16, 16), v, np.uint8) for v in (10, 10, 11, 200, 200, 201, 90, 90)]
    times = [float(i) for i in range(8)]
    assert scene_keyframes(times, thumbs, n=3) == [0.0, 3.0, 6.0]
    assert scene_keyframes(times, thumbs, n=8) == [0.0, 3.0, 6.0]  # small changes are not cuts
    assert scene_keyframes(times, thumbs, n=1) == [0.0]
    assert scene_keyframes([], [], n=4) == []


def test_video_keyframes_find_the_scene_cuts(clips: dict[str, Path]) -> None:
    result = vpdq_from_source(clips["h264"], Limits(), max_keyframes=3)
    assert result.keyframes == [0.0, 4.0, 7.0]
    assert len(vpdq_from_source(clips["h264"], Limits(), max_keyframes=2).keyframes) == 2


def _high_frequency_share(picture: Image.Image, width: int) -> float:
    """Mean share of spectral energy above 0.1 cycles/px in each ``width``-wide picture of a
    strip (Hann-windowed, so the pictures' borders do not count)."""
    shares = []
    for x in range(0, picture.width, width):
        a = np.asarray(picture.crop((x, 0, x + width, picture.height)), np.float32)
        a = (a - a.mean()) * np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1]))
        energy = np.abs(np.fft.fft2(a)) ** 2
        fy = np.abs(np.fft.fftfreq(a.shape[0]))[:, None]
        fx = np.abs(np.fft.fftfreq(a.shape[1]))[None, :]
        shares.append(energy[(fy > 0.1) | (fx > 0.1)].sum() / energy.sum())
    return float(np.mean(shares))


def test_keyframe_strip_is_a_small_grey_blurred_jpeg(clips: dict[str, Path]) -> None:
    times = [0.0, 4.0, 7.0]
    data = keyframe_strip(clips["h264"], times, height=96)
    strip = Image.open(io.BytesIO(data))
    assert strip.format == "JPEG" and strip.mode == "L"
    assert strip.size == (3 * 128, 96)  # 320x240 frames at 96 px high: 128 px wide each
    # the same frames unblurred, made here only to compare against
    sources = list(scene_frames())
    sharp = Image.new("L", strip.size)
    for i, t in enumerate(times):
        frame = Image.fromarray(sources[int(t * 15)]).convert("L").resize((128, 96))
        sharp.paste(frame, (128 * i, 0))
    blurred, unblurred = _high_frequency_share(strip, 128), _high_frequency_share(sharp, 128)
    assert blurred < 0.1 * unblurred, (blurred, unblurred)
    with pytest.raises(ValueError, match="blurred"):
        keyframe_strip(clips["h264"], times, blur_radius=0)


def test_keyframe_strip_from_a_stream_and_unknown_times(clips: dict[str, Path]) -> None:
    data = io.BytesIO(clips["h264_gop"].read_bytes())
    strip = Image.open(io.BytesIO(keyframe_strip(data, [0.0, 5.0, 99.0])))
    assert strip.size == (2 * 128, 96)  # 99 s is past the end: left out


# --------------------------------------------------------------------------- bad input


def test_zero_length_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(VideoError, match="empty file"):
        vpdq_from_source(path, Limits())
    with pytest.raises(VideoError, match="empty file"):
        vpdq_from_source(io.BytesIO(), Limits())


def test_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_bytes(b"just some text, not a video\n" * 20)
    with pytest.raises(VideoError, match="not a readable video"):
        vpdq_from_source(path, Limits())


def test_audio_only_file(tmp_path: Path) -> None:
    path = tmp_path / "audio.m4a"
    out = av.open(str(path), "w")
    stream: Any = out.add_stream("aac", rate=44100)
    for i in range(20):
        samples = np.sin(np.arange(1024, dtype=np.float32) * (0.01 + i * 1e-3))[None, :]
        frame = av.AudioFrame.from_ndarray(samples.astype(np.float32), format="fltp",
                                           layout="mono")
        frame.sample_rate, frame.pts = 44100, i * 1024
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    with pytest.raises(VideoError, match=r"no video stream \(audio only\)"):
        vpdq_from_source(path, Limits())


def _bits_flipped(data: bytes, count: int = 20, seed: int = 1) -> bytes:
    """``data`` with ``count`` single bits flipped in its last three quarters (the sample
    data of a moov-first MP4), at places fixed by ``seed``."""
    rng = random.Random(seed)
    damaged = bytearray(data)
    for _ in range(count):
        at = rng.randrange(len(damaged) // 4, len(damaged))
        damaged[at] ^= 1 << rng.randrange(8)
    return bytes(damaged)


def test_damage_ffmpeg_conceals_is_reported_with_the_frames() -> None:
    """A flipped bit inside a slice is concealed by FFmpeg (the frame still comes out, partly
    guessed) and only logged: the frames are all hashed, and the error says the data was
    damaged. The healthy file reports nothing."""
    data = REFERENCE_VIDEOS[0].read_bytes()
    damaged = vpdq_from_source(io.BytesIO(_bits_flipped(data)), Limits())
    healthy = vpdq_from_source(io.BytesIO(data), Limits())  # after: nothing carried over
    assert healthy.error is None
    assert len(damaged.frames) == len(healthy.frames) == 23
    assert damaged.error is not None
    assert damaged.error.startswith("damaged video data: the decoder reported ")
    assert " errors (first: h264: " in damaged.error and len(damaged.error) <= 160


def test_truncated_file_keeps_frames_so_far_or_refuses(clips: dict[str, Path],
                                                       tmp_path: Path) -> None:
    # moov at the end (FFmpeg's default): half a file has no index at all
    half = tmp_path / "half.mp4"
    data = clips["h264"].read_bytes()
    half.write_bytes(data[:len(data) // 2])
    with pytest.raises(VideoError, match="not a readable video"):
        vpdq_from_source(half, Limits())
    # moov first (faststart): the frames before the cut are hashed, and the cut reported
    data = clips["faststart"].read_bytes()
    half.write_bytes(data[:len(data) // 2])
    result = vpdq_from_source(half, Limits())
    assert 2 <= len(result.frames) < 10
    assert result.error is not None and "truncated" in result.error
    full = vpdq_from_source(clips["faststart"], Limits())
    assert result.frames == full.frames[:len(result.frames)]
    # cut inside the first frame: nothing to hash
    half.write_bytes(data[:4096])
    with pytest.raises(VideoError):
        vpdq_from_source(half, Limits())


def test_corrupt_bytes_in_the_middle(clips: dict[str, Path], tmp_path: Path) -> None:
    data = bytearray(clips["faststart"].read_bytes())
    middle = len(data) // 2
    data[middle:middle + 3000] = np.random.default_rng(1).integers(0, 256, 3000,
                                                                   np.uint8).tobytes()
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(bytes(data))
    result = vpdq_from_source(path, Limits())
    clean = vpdq_from_source(clips["faststart"], Limits())
    assert len(result.frames) >= 5
    # frames before the damage are untouched
    assert result.frames[:3] == clean.frames[:3]


def test_wrong_extension_is_decoded_by_content(clips: dict[str, Path], tmp_path: Path) -> None:
    disguised = tmp_path / "holiday.jpg"
    disguised.write_bytes(clips["h264"].read_bytes())
    assert vpdq_from_source(disguised, Limits()).frames == \
        vpdq_from_source(clips["h264"], Limits()).frames


def _huge_sps_h264() -> bytes:
    """A valid small H.264 stream (Annex B) whose SPS declares 13440x13440 pixels: far above
    the default limit, yet only a few kB of data."""
    buf = io.BytesIO()
    write_video(buf, scene_frames(1, cuts=(), size=(64, 48)), fmt="h264",
                options={"profile": "baseline"})
    data = buf.getvalue()
    start = data.index(b"\x00\x00\x00\x01\x67") + 4
    end = data.index(b"\x00\x00\x01", start)
    sps = _rewrite_sps_size(data[start:end], 840, 840)  # macroblocks of 16 px
    return data[:start] + sps + data[end:]


def _rewrite_sps_size(nal: bytes, mbs_wide: int, mbs_high: int) -> bytes:
    rbsp = bytearray()
    zeros = 0
    for byte in nal[1:]:  # drop emulation prevention bytes
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        rbsp.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    bits = "".join(f"{b:08b}" for b in rbsp)
    pos = 24  # profile_idc, constraint flags, level_idc

    def ue() -> int:
        nonlocal pos
        n = bits.index("1", pos) - pos
        value = int(bits[pos + n:pos + 2 * n + 1], 2) - 1
        pos += 2 * n + 1
        return value

    assert rbsp[0] == 66, "baseline profile expected"
    ue(), ue()  # seq_parameter_set_id, log2_max_frame_num_minus4
    if ue() == 0:  # pic_order_cnt_type
        ue()
    ue()  # max_num_ref_frames
    pos += 1  # gaps_in_frame_num_value_allowed_flag
    size_at = pos
    ue(), ue()  # pic_width_in_mbs_minus1, pic_height_in_map_units_minus1

    def code(value: int) -> str:
        binary = f"{value + 1:b}"
        return "0" * (len(binary) - 1) + binary

    rest = bits[pos:].rstrip("0")[:-1]  # without the rbsp stop bit and padding
    new = bits[:size_at] + code(mbs_wide - 1) + code(mbs_high - 1) + rest + "1"
    new += "0" * (-len(new) % 8)
    out = bytearray([nal[0]])
    zeros = 0
    for byte in int(new, 2).to_bytes(len(new) // 8, "big"):
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def test_huge_declared_resolution_is_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "huge.h264"
    path.write_bytes(_huge_sps_h264())
    with pytest.raises(VideoError, match=r"huge declared resolution: 13440x13440"):
        vpdq_from_source(path, Limits())
    # in a fresh process: refusing it must not have allocated a frame (271 MB at this size)
    probe = (
        "import resource, sys\n"
        "from safeguard.config import Limits\n"
        "from safeguard.errors import VideoError\n"
        "from safeguard.media.video import open_video, video_stream\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "container = open_video(sys.argv[1], Limits())\n"
        "try:\n"
        "    video_stream(container, Limits())\n"
        "except VideoError as exc:\n"
        "    print(exc)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True,
                         text=True, check=True, timeout=60).stdout.splitlines()
    assert out[0].startswith("huge declared resolution")
    assert int(out[1]) < 100, f"grew by {out[1]} MiB while refusing"


def test_huge_declared_mjpeg_size_is_refused(tmp_path: Path) -> None:
    """An MJPEG AVI whose headers and frames claim 14000x14000: FFmpeg's decoder is given the
    pixel limit while probing, so the size is refused before any frame is allocated."""
    buf = io.BytesIO()
    write_video(buf, scene_frames(0.4, cuts=(), size=(64, 48)), fmt="avi", codec="mjpeg",
                pix_fmt="yuvj420p")
    data = bytearray(buf.getvalue())
    at = data.find(b"\xff\xc0")
    while at >= 0:  # SOF0: height then width
        struct.pack_into(">HH", data, at + 5, 14000, 14000)
        at = data.find(b"\xff\xc0", at + 2)
    struct.pack_into("<II", data, data.find(b"avih") + 8 + 32, 14000, 14000)
    struct.pack_into("<ii", data, data.find(b"strf") + 8 + 4, 14000, 14000)
    with pytest.raises(VideoError, match="limit of 178956970"):
        vpdq_from_source(io.BytesIO(bytes(data)), Limits())


def test_limits_stop_with_the_frames_so_far(clips: dict[str, Path],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    small = Limits(max_image_pixels=W * H - 1)
    with pytest.raises(VideoError, match="huge declared resolution"):
        vpdq_from_source(clips["h264"], small)
    hurried = Limits(item_timeout=1e-9, timeout_per_mib=0.0)
    with pytest.raises(VideoError, match="no frame could be decoded: stopped by the time limit"):
        vpdq_from_source(clips["h264"], hurried)
    monkeypatch.setattr(video, "MAX_MEDIA_SECONDS", 4.5)
    result = vpdq_from_source(clips["h264"], Limits())
    assert [f.t for f in result.frames] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert result.error == "stopped at 4.5 s of video (limit)"


# --------------------------------------------------------------------------- fuzz


def _outcome(data: bytes) -> VideoHashes | None:
    try:
        return vpdq_from_source(io.BytesIO(data), Limits(item_timeout=2.0))
    except VideoError:
        return None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_fuzz_random_bytes_end_in_video_error_or_result(data: bytes) -> None:
    _outcome(data)


@pytest.fixture(scope="module")
def small_mp4() -> bytes:
    return video_bytes(scene_frames(2, cuts=(1.0,), size=(96, 64)), fps=10,
                       options={"g": "5"})


@settings(max_examples=40, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                min_size=1, max_size=24))
@example(flips=[(0.8899820469491296, 0)])  # a zeroed codec tag: a stream with no decoder
def test_fuzz_flipped_bytes_end_in_video_error_or_result(
        small_mp4: bytes, flips: list[tuple[float, int]]) -> None:
    data = bytearray(small_mp4)
    for where, value in flips:
        data[int(where * len(data))] = value
    result = _outcome(bytes(data))
    if result is not None:
        assert result.frames and all(len(f.pdq) == 64 for f in result.frames)


def test_display_rotation_is_reported_and_the_stored_pixels_hashed(tmp_path: Path) -> None:
    frames = list(scene_frames(2, cuts=(), size=(160, 120)))
    upright, turned = tmp_path / "upright.mp4", tmp_path / "turned.mp4"
    write_video(upright, frames)
    out = av.open(str(turned), "w")
    stream: Any = out.add_stream("libx264", rate=15)
    stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
    stream.set_display_rotation(90)
    for pixels in frames:
        for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, "rgb24")):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    result = vpdq_from_source(turned, Limits())
    assert result.metadata["rotation"] == 90
    # the stored (unrotated) pixels are hashed: each frame lands on the upright video's, up
    # to the few bits two separate x264 encodes of the same frames differ by (rotated 90
    # degrees it would be ~128 bits away)
    plain = vpdq_from_source(upright, Limits()).frames
    assert [f.t for f in result.frames] == [f.t for f in plain]
    assert max(hamming(a.pdq, b.pdq) for a, b in zip(result.frames, plain, strict=True)) <= 8
    assert "rotation" not in vpdq_from_source(upright, Limits()).metadata
