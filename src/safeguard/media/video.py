"""Video decoding for hashing and review: bounded, read-only, one frame at a time.

Decoding is PyAV (FFmpeg). A video is opened from a path or from a seekable binary stream
(items inside archives and disk images arrive as streams; nothing is ever written to disk).

**Which frame is taken.** Sampling at ``fps`` frames per second defines target times
``T_k = k / fps`` (k = 0, 1, ...) measured from the first frame's presentation time. For each
target the frame taken is the one *on screen* at that time: the frame with the largest
presentation timestamp ``<= T_k + eps`` (``eps`` = 0.5 ms, or a quarter of the frame duration
when shorter: a timestamp rounded a hair late still counts). Each distinct frame is
reported once, at its own presentation time. Targets stop after the last frame. For a
constant-rate video whose rate is a multiple of ``fps`` (24, 25, 30, 50, 60 fps at 1 fps) these
are exactly the frames the vPDQ reference takes (frame numbers 0, r, 2r, ...); for NTSC rates
(29.97) the reference steps a fixed ``int(29.97) = 29`` frames and drifts 3 % from real time,
whereas Safeguard stays on real time; for variable-frame-rate files the timestamps, not frame
counts, decide (a still held for 5 s is one frame, taken once).

**Pixels.** A frame taken is converted to RGB24 as the reference's ``sws_scale`` does:
at its own size (no scaling), BT.601 coefficients whatever the stream's colour tags, the range
from the pixel format only (``yuvj*`` full, else limited: the reference ignores range tags),
and swscale flags ``POINT | ACCURATE_RND`` — with these, all 1,672 frames of the four
vpdq-reference test videos hash bit-identically to the published reference hashes (with
PyAV's default conversion only 6-86 % of them are identical, up to 76 bits off on featureless
frames). Frames that are not taken are never converted.

**Decoding only what is needed, exactly.** Packets are read ahead (up to 300 packets /
64 MiB) so that, from their timestamps alone, it is known before decoding which frames will be
taken. Frames that are not taken and that no other frame references are not decoded
(``skip_frame = NONREF``, H.264 and HEVC), and a whole run of packets with no frame taken is not
even sent to the decoder when it ends at a clean random-access point (an H.264/HEVC IDR picture,
or any frame of an intra-only codec such as MJPEG), after which no frame depends on anything
before. Every frame that is taken therefore decodes bit-identically to a decode of every frame
(tests check it). Other codecs and files without timestamps decode every frame (a file whose
timestamps stop midway switches to that from there); a frame whose successor in time is not
within the 300 packets read ahead is decoded and taken, to be safe. Seeking is never used for
hashing (it is not exact around open GOPs and edit lists); the review strip seeks.

**Memory.** Besides FFmpeg's own frames (the decoder's reference frames, 1.5 bytes a pixel
each, up to 16 for H.264), one taken frame is held as RGB (3 bytes a pixel) and PDQ works in
two float32 planes (8 bytes a pixel): about 30 MB beside the decoder at 1080p, 120 MB at 4K.

**Threads.** The decoder runs single-threaded (``DECODER_THREADS = 1``): the scan pool runs one
worker per core, and FFmpeg's threads, measured by benchmarks/video.py, used 1.2-1.8 CPU
seconds per wall second (outside one core's budget) for 1.1-1.7x the speed, and were no
faster when held to one core. swscale is held to one thread too.

**Limits.** A zero-length file, a file FFmpeg cannot open, a file without a video stream
(audio only; a cover picture does not count), or a declared resolution above
``Limits.max_image_pixels`` is a :class:`VideoError` before any frame is decoded; FFmpeg's own
decoders are also given ``max_pixels``, so stream probing cannot allocate a huge frame either.
Only demuxers of media containers are allowed (``format_whitelist``): playlists and scripts
(HLS, DASH, concat, image sequences) that would open other files or the network are refused.
While decoding, sampling stops — keeping the frames hashed so far and reporting why — at
``MAX_MEDIA_SECONDS`` of video (12 h), ``MAX_DECODED_FRAMES`` decoded frames (12 h at 120 fps),
a frame larger than the pixel limit (a mid-stream size change), ``MAX_DECODE_ERRORS`` packets
the decoder rejects, or 80 % of the item's time budget (``item_timeout`` plus
``timeout_per_mib`` per MiB of the file, the same budget the scan pool enforces), so a long
video ends with what was hashed instead of being killed with nothing. A file whose decoding
stops well short of its declared duration is reported as truncated.

**Damage.** FFmpeg conceals most damage in a stream (a flipped bit in a slice) rather than
rejecting the packet: the frame comes out, partly guessed from its neighbours, and only its
log says so. The sampler reads FFmpeg's error-level log while it decodes (libav's log level
is raised to ``ERROR`` for this; such messages are dropped, as before, where nothing reads
them) and a video whose decoder reported errors says so: ``damaged video data: the decoder
reported 13 errors (first: h264: error while decoding MB 0 43, bytestream 390)``. The frames
are still hashed; the note says to trust them less. A healthy file logs no error.

**Letterbox.** :func:`crop_black_bars` removes border rows/columns in which *every* pixel is
near-black (each channel <= ``threshold``), from each side independently, and only when what
remains is at least a quarter of each dimension (a dark frame is never cropped away). Grey,
coloured or blurred bars are not removed: a uniform *grey* row is too often content (sky, wall)
to be cut safely.

**Review.** The review strip (``strip.py``) picks its frames from the small greyscale
thumbnails made while hashing, and finds them again through the sampler's public
``packets``, ``frame_time``, ``origin`` and ``seek``.
"""

from __future__ import annotations

import io
import logging
import math
import os
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, BinaryIO, Literal

import av
import av.container
import av.logging
import av.video.stream
import numpy as np
from av.video.frame import VideoFrame
from av.video.reformatter import Interpolation

from safeguard.config import Limits
from safeguard.errors import VideoError, one_line, os_reason

Source = str | os.PathLike[str] | BinaryIO

# FFmpeg's errors reach the sampler's log capture (see "Damage"); outside one they are
# dropped, as PyAV's default level (None) drops them, never printed on a terminal
av.logging.set_level(av.logging.ERROR)
av.logging.set_skip_repeated(False)  # a repeat's count would be logged later, in another item
logging.getLogger("libav").addHandler(logging.NullHandler())
logging.getLogger("libav").propagate = False
#: what FFmpeg is told to skip decoding: nothing, or frames no other frame refers to
SkipFrame = Literal["DEFAULT", "NONREF"]

#: sampling stops after this much video (media time)
MAX_MEDIA_SECONDS = 12 * 3600
#: ... or after decoding this many frames (12 h at 120 fps)
MAX_DECODED_FRAMES = MAX_MEDIA_SECONDS * 120
#: ... or after the decoder rejected this many packets
MAX_DECODE_ERRORS = 32
#: ... or after this share of the item's time budget (the scan pool kills at 100 %)
TIME_BUDGET_SHARE = 0.8
#: packets read ahead of the decoder to plan which frames to decode
LOOKAHEAD_PACKETS = 300
LOOKAHEAD_BYTES = 64 * 1024 * 1024
#: packets searched on each side for a frame's successor in time (H.264's DPB holds <= 16)
REORDER_WINDOW = 32
#: FFmpeg decoder threads (1: the scan pool runs one worker per core; benchmarks/video.py
#: measures other values)
DECODER_THREADS = 1
#: decoding that ends this short of the declared duration is reported as truncated
TRUNCATION_SLACK = 0.9

#: demuxers of media containers (FFmpeg short names); playlists, scripts and image sequences
#: that open other files (hls, dash, concat, image2, ...) are not on it
FORMAT_WHITELIST = (
    "mov", "mp4", "matroska", "webm", "avi", "flv", "mpegts", "mpeg", "mpegvideo", "asf",
    "ogg", "rm", "h264", "hevc", "m4v", "mjpeg", "ivf", "nut", "mxf", "dv", "yuv4mpegpipe",
    "obu", "vc1", "wtv", "nsv", "h261", "h263", "cavsvideo", "avs", "flic", "bink", "smk",
    "gif", "apng", "amv", "dirac", "vvc", "mpjpeg", "lxf", "gxf", "xmv", "thp",
)

#: the reference's conversion to RGB24 (see the module docstring)
RGB_FLAGS = Interpolation.POINT | Interpolation.ACCURATE_RND

#: container / stream tags reported as metadata, in order of preference per key
_TAGS = {
    "creation_time": ("creation_time", "com.apple.quicktime.creationdate", "date"),
    "make": ("com.apple.quicktime.make", "make", "com.android.manufacturer", "manufacturer"),
    "model": ("com.apple.quicktime.model", "model", "com.android.model"),
    "software": ("com.apple.quicktime.software", "software", "com.android.version"),
    "location": ("com.apple.quicktime.location.ISO6709", "location", "location-eng"),
    "encoder": ("encoder", "encoded_by"),
    "title": ("title",),
    "comment": ("comment",),
}
_MAX_TAG_CHARS = 512


# --------------------------------------------------------------------------- opening


def open_video(source: Source, limits: Limits) -> av.container.InputContainer:
    """Open a video for reading (path or seekable binary stream); VideoError if FFmpeg cannot."""
    if isinstance(source, str | os.PathLike):
        try:
            size: int | None = os.stat(source).st_size
        except OSError as exc:
            raise VideoError(f"cannot read the file: {os_reason(exc)}") from None
        target: Any = os.fspath(source)
    else:
        size = _stream_size(source)
        target = source
    if size == 0:
        raise VideoError("empty file (0 bytes)")
    options = {
        "format_whitelist": ",".join(FORMAT_WHITELIST),
        "protocol_whitelist": "file",
        "max_pixels": str(limits.max_image_pixels),  # FFmpeg's decoders, probing included
        "threads": "1",
    }
    try:
        container = av.open(target, "r", options=options, metadata_errors="replace")
    except av.FFmpegError as exc:
        raise VideoError(f"not a readable video: {_ffmpeg_reason(exc)}") from None
    except (OSError, ValueError, UnicodeError, MemoryError) as exc:
        raise VideoError(f"not a readable video: {one_line(exc, with_type=True)}") from None
    if not isinstance(container, av.container.InputContainer):  # pragma: no cover
        container.close()
        raise VideoError("not a readable video")
    return container


def video_stream(container: av.container.InputContainer,
                 limits: Limits) -> av.video.stream.VideoStream:
    """The first video stream (the reference's choice), checked against the pixel limit before
    anything is decoded; a cover picture of an audio file does not count as video."""
    streams = [s for s in container.streams.video
               if not s.disposition & av.stream.Disposition.attached_pic]
    if not streams:
        kinds = sorted({s.type for s in container.streams})
        if "audio" in kinds:
            raise VideoError("no video stream (audio only)")
        raise VideoError(f"no video stream (streams: {', '.join(kinds) or 'none'})")
    stream = streams[0]
    if stream.codec_context is None:  # a codec FFmpeg does not know (a damaged codec tag)
        raise VideoError("video stream has no decoder (unknown or damaged codec tag)")
    width, height = stream.codec_context.width, stream.codec_context.height
    if width <= 0 or height <= 0:
        # FFmpeg leaves 0x0 when it cannot tell, or when its decoder refused a declared size
        # above max_pixels while probing
        raise VideoError(f"video stream has no usable size ({width}x{height}): missing, or "
                         f"above the limit of {limits.max_image_pixels} pixels")
    if width * height > limits.max_image_pixels:
        raise VideoError(
            f"huge declared resolution: {width}x{height} = {width * height} pixels per frame "
            f"exceeds the limit of {limits.max_image_pixels}")
    return stream


def _stream_size(stream: BinaryIO) -> int | None:
    """Size of a seekable stream (its position is kept); None when it cannot tell."""
    try:
        position = stream.tell()
        size = stream.seek(0, io.SEEK_END)
        stream.seek(position)
        return size
    except (OSError, ValueError, AttributeError):
        return None


def _source_size(source: Source) -> int | None:
    if isinstance(source, str | os.PathLike):
        try:
            return os.stat(source).st_size
        except OSError:
            return None
    return _stream_size(source)


def time_budget(source: Source, limits: Limits) -> float:
    """Seconds of decoding allowed for this item: a share of the scan pool's hard limit."""
    size = _source_size(source) or 0
    hard = limits.item_timeout + size / (1024 * 1024) * limits.timeout_per_mib
    return TIME_BUDGET_SHARE * hard if hard > 0 else math.inf


def _ffmpeg_reason(exc: BaseException) -> str:
    strerror = getattr(exc, "strerror", None)
    text = strerror if isinstance(strerror, str) and strerror else one_line(exc)
    if text.startswith("Invalid argument"):
        return "unrecognised or unsupported container format"
    return text


# --------------------------------------------------------------------------- metadata


def video_metadata(container: av.container.InputContainer) -> dict[str, Any]:
    """Container and first-video-stream facts that exist in the file, nothing invented:
    ``format``, ``duration`` (seconds), ``codec``, ``width``, ``height``, ``fps`` (average),
    ``frames`` (declared), ``pix_fmt``, ``bit_rate``, ``streams`` and per-kind counts, and the
    tags ``creation_time``, ``make``, ``model``, ``software``, ``location``, ``encoder``,
    ``title``, ``comment`` (container tags first, then the video stream's). The display
    rotation lives in the frames' side data: see :func:`frame_rotation`."""
    meta: dict[str, Any] = {"format": container.format.name}
    if container.duration is not None and container.duration > 0:
        meta["duration"] = round(container.duration / av.time_base, 6)
    video = [s for s in container.streams.video
             if not s.disposition & av.stream.Disposition.attached_pic]
    stream = video[0] if video else None
    if stream is not None:
        cc = stream.codec_context
        if "duration" not in meta and stream.duration and stream.time_base:
            meta["duration"] = round(float(stream.duration * stream.time_base), 6)
        meta["codec"] = cc.name
        meta["width"], meta["height"] = cc.width, cc.height
        rate = stream.average_rate or stream.guessed_rate
        if rate:
            meta["fps"] = round(float(rate), 6)
        if stream.frames:
            meta["frames"] = int(stream.frames)
        if cc.pix_fmt:
            meta["pix_fmt"] = cc.pix_fmt
    if container.bit_rate:
        meta["bit_rate"] = int(container.bit_rate)
    meta["streams"] = len(container.streams)
    for kind in ("video", "audio", "subtitle"):
        count = sum(1 for s in container.streams if s.type == kind)
        if count:
            meta[f"{kind}_streams"] = count
    tag_sources = [container.metadata] + ([stream.metadata] if stream is not None else [])
    for key, names in _TAGS.items():
        for tags in tag_sources:
            value = _tag(tags, names)
            if value:
                meta[key] = value
                break
    return meta


def _tag(tags: dict[str, str], names: Sequence[str]) -> str | None:
    lowered = {k.lower(): v for k, v in tags.items()}
    for name in names:
        value = lowered.get(name.lower())
        if value and value.strip():
            return value.strip()[:_MAX_TAG_CHARS]
    return None


def frame_rotation(frame: VideoFrame) -> int:
    """Counter-clockwise degrees the player turns this frame (its display matrix; phones
    filming upright store landscape pixels and 90 or 270 here). Hashes ignore it, as the
    reference does: they are of the stored pixels."""
    try:
        return round(frame.rotation) % 360
    except (AttributeError, TypeError, ValueError, OverflowError):
        return 0


# --------------------------------------------------------------------------- pixels


def frame_rgb(frame: VideoFrame) -> np.ndarray:
    """A decoded frame as the vPDQ reference's RGB24 pixels (see the module docstring): YUV
    is read as BT.601, limited range unless the pixel format is a ``yuvj`` one."""
    name = frame.format.name
    color_range = "JPEG" if name.startswith("yuvj") else "MPEG" if name.startswith("yuv") else None
    return frame.to_ndarray(format="rgb24", src_colorspace="ITU601", interpolation=RGB_FLAGS,
                            src_color_range=color_range, threads=1)


def crop_black_bars(rgb: np.ndarray, threshold: int = 24) -> np.ndarray:
    """``rgb`` without its letterbox / pillarbox bars: border rows and columns whose every pixel
    has all channels <= ``threshold``. Each side is measured on its own; nothing is cropped
    when less than a quarter of the height or width would remain (a dark or black frame).
    Returns a view (no copy); works on ``(h, w)`` greyscale arrays too."""
    height, width = rgb.shape[:2]
    if height < 4 or width < 4:
        return rgb
    top = _bar(rgb, threshold, axis=0, reverse=False)
    if top >= height:
        return rgb
    bottom = _bar(rgb, threshold, axis=0, reverse=True)
    left = _bar(rgb, threshold, axis=1, reverse=False)
    right = _bar(rgb, threshold, axis=1, reverse=True)
    if not (top or bottom or left or right):
        return rgb
    if height - top - bottom < height / 4 or width - left - right < width / 4:
        return rgb
    return rgb[top:height - bottom, left:width - right]


def _bar(rgb: np.ndarray, threshold: int, axis: int, reverse: bool) -> int:
    """Count of consecutive near-black lines from one edge (rows for axis 0, columns for 1)."""
    length = rgb.shape[axis]
    first = rgb.take(length - 1 if reverse else 0, axis=axis)
    if first.max() > threshold:
        return 0  # the common case: one line looked at
    half = length // 2 + 1
    part = rgb[length - half:] if axis == 0 and reverse else rgb[:half] if axis == 0 else (
        rgb[:, length - half:] if reverse else rgb[:, :half])
    other = tuple(a for a in range(part.ndim) if a != axis)
    dark = part.max(axis=other) <= threshold
    if reverse:
        dark = dark[::-1]
    bright = np.flatnonzero(~dark)
    return int(bright[0]) if len(bright) else length


# --------------------------------------------------------------------------- sampling


@dataclass(frozen=True)
class SampledFrame:
    t: float  # presentation time, seconds from the first frame
    frame: VideoFrame  # decoded, not converted; convert with frame_rgb()


@dataclass
class _Entry:
    packet: av.Packet
    pts: int | None  # None: no timestamp, or a packet FFmpeg decodes but discards
    clean_key: bool  # a random-access point nothing later refers past
    size: int
    selected: bool | None = None  # is its frame taken? None: not known yet


@dataclass
class SamplingStats:
    packets: int = 0
    decoded: int = 0
    skipped_nonref: int = 0  # packets sent with skip_frame=NONREF
    dropped: int = 0  # packets never sent to the decoder
    decode_errors: int = 0
    #: errors FFmpeg logged while decoding (damage it concealed), and the first one
    logged_errors: int = 0
    first_logged: str = ""
    planned: bool = False
    last_t: float = 0.0
    notes: list[str] = field(default_factory=list)


class FrameSampler:
    """Iterate the frames taken at ``fps`` (see the module docstring), one at a time.

    After iteration, ``error`` holds why sampling stopped early or what went wrong on the way
    (None when the whole video decoded cleanly) and ``stats`` what was done. ``exact=True``
    decodes every frame (no planning): the reference the fast path is tested against.
    """

    def __init__(self, container: av.container.InputContainer,
                 stream: av.video.stream.VideoStream, limits: Limits, fps: float = 1.0, *,
                 budget: float = math.inf, exact: bool = False) -> None:
        if not fps > 0 or not math.isfinite(fps):
            raise ValueError("fps must be a positive number")
        self.container, self.stream, self.limits = container, stream, limits
        self.fps = float(fps)
        self.deadline = time.monotonic() + budget
        self.exact = exact
        self.error: str | None = None
        self.stats = SamplingStats()
        self.time_base: Fraction = stream.time_base or Fraction(1, 90000)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        self.nominal_rate = float(rate) if rate and 0 < float(rate) < 1e4 else 25.0
        self.eps = min(0.25 / self.nominal_rate, 0.0005)
        cc = stream.codec_context
        cc.thread_count = DECODER_THREADS
        cc.thread_type = "NONE" if DECODER_THREADS == 1 else "AUTO"
        self.codec = cc
        self.can_skip_nonref = cc.name in ("h264", "hevc")
        self.is_clean_key = _clean_key_test(cc)
        # planning pays only where frames can be skipped or dropped; elsewhere every frame is
        # decoded and chosen as it comes out
        self.can_plan = self.can_skip_nonref or self.is_clean_key is not None
        self._wanted: set[int] = set()  # pts of planned frames not yet decoded
        self._horizon: int | None = None  # the largest pts planned
        self._origin: int | None = None
        self._last_packet_pts: int | None = None
        self._eof = False
        self._window: deque[_Entry] = deque()
        self._window_bytes = 0
        self._recent: deque[int] = deque(maxlen=REORDER_WINDOW)
        self._planned = False
        self._stopped = False  # a limit stopped sampling

    # -- time ---------------------------------------------------------------------------

    def _t(self, pts: int) -> float:
        assert self._origin is not None
        return float((pts - self._origin) * self.time_base)

    def _covers_target(self, t: float, t_next: float | None) -> bool:
        """Is the frame at ``t`` (the next frame at ``t_next``; None: it is the last) on
        screen at a target time, i.e. is some ``T_k`` in ``[t - eps, t_next - eps)``?"""
        k = max(0, math.ceil((t - self.eps) * self.fps - 1e-9))
        target = k / self.fps
        if t_next is None:
            return target <= t + self.eps
        return target < t_next - self.eps

    @property
    def origin(self) -> int | None:
        """The first frame's presentation timestamp (in ``time_base`` units); None until it
        is known."""
        return self._origin

    def frame_time(self, frame: VideoFrame) -> float | None:
        """Seconds from the first frame to a decoded ``frame`` (None when it has no
        timestamp); the first timestamped frame seen sets the origin when it is not known."""
        if frame.pts is None:
            return None
        if self._origin is None:
            self._origin = frame.pts
        return self._t(frame.pts)

    def seek(self, t: float) -> None:
        """Move the container back to the keyframe at or before ``t`` seconds from the first
        frame: :meth:`packets` continues from there. ValueError before the origin is known;
        FFmpeg's and OS errors pass through."""
        if self._origin is None:
            raise ValueError("the first frame's time is not known yet")
        self.container.seek(self._origin + int(t / self.time_base), stream=self.stream,
                            backward=True)

    # -- iteration ----------------------------------------------------------------------

    def __iter__(self) -> Iterator[SampledFrame]:
        try:
            yield from self._run()
        finally:
            if self.stats.logged_errors:
                count = self.stats.logged_errors
                self._note(f"damaged video data: the decoder reported {count} "
                           f"error{'s' if count > 1 else ''} "
                           f"(first: {self.stats.first_logged})")
            self._note_truncation()

    def _run(self) -> Iterator[SampledFrame]:
        self._packets = self.packets()
        selector = _Selector(self)
        self._planned = self.can_plan and not self.exact
        self._fill()
        if self._planned:
            times = [e.pts for e in self._window if e.pts is not None]
            if times:
                self._origin = min(times)
                selector.origin_known = True
            else:
                self._planned = False
        self.stats.planned = self._planned
        drop_left = hold_off = 0
        while self._fill():
            entry = self._window.popleft()
            self._window_bytes -= entry.size
            mode: SkipFrame = "DEFAULT"
            if self._planned and entry.pts is not None:
                if entry.selected is None:
                    entry.selected = self._selection(entry.pts, -1)
                if entry.selected is None:  # look further ahead, else take it to be safe
                    entry.selected = self._selection(entry.pts, -1, LOOKAHEAD_PACKETS)
                    entry.selected = True if entry.selected is None else entry.selected
                if entry.selected:
                    self._wanted.add(entry.pts)
                if self._horizon is None or entry.pts > self._horizon:
                    self._horizon = entry.pts
                if entry.selected is False:
                    if drop_left == 0 and hold_off == 0 and self.is_clean_key is not None:
                        drop_left, hold_off = self._droppable_run()
                    if drop_left > 0:
                        drop_left -= 1
                        self.stats.dropped += 1
                        self._recent.append(entry.pts)
                        continue
                    hold_off = max(0, hold_off - 1)
                    if self.can_skip_nonref:
                        mode = "NONREF"
                        self.stats.skipped_nonref += 1
                else:
                    hold_off = max(0, hold_off - 1)
            elif self._planned and self.can_skip_nonref:
                mode = "NONREF"  # a packet whose frame FFmpeg discards (edit-list pre-roll)
            else:
                drop_left = 0
            if entry.pts is not None:
                self._recent.append(entry.pts)
            stop = yield from self._decode(entry.packet, mode, selector)
            if stop:
                return
        stop = yield from self._decode(None, "DEFAULT", selector)
        if not stop:
            yield from selector.finish()

    def _fill(self) -> bool:
        """Read packets ahead up to the lookahead limits; False when none is left."""
        window = self._window
        while (not self._eof and len(window) < LOOKAHEAD_PACKETS
               and self._window_bytes < LOOKAHEAD_BYTES):
            packet = next(self._packets, None)
            if packet is None:
                self._eof = True
                break
            pts = None if packet.is_discard else packet.pts
            if pts is None and not packet.is_discard:
                self._planned = False  # no timestamps: decode everything from here on
            if pts is not None and (self._last_packet_pts is None or pts > self._last_packet_pts):
                self._last_packet_pts = pts
            clean = False
            if packet.is_keyframe and self.is_clean_key is not None:
                try:
                    clean = self.is_clean_key(memoryview(packet))
                except (ValueError, IndexError, TypeError):
                    clean = False
            window.append(_Entry(packet, pts, clean, packet.size))
            self._window_bytes += packet.size
        return bool(window)

    def packets(self) -> Iterator[av.Packet]:
        """The stream's packets in decoding order from where the container stands, counted in
        ``stats``; a demuxing error ends them, noted in ``error``."""
        try:
            demuxed = self.container.demux(self.stream)
            while True:
                with av.logging.Capture(local=True) as logged:
                    packet = next(demuxed, None)
                self._count_logged(logged)
                if packet is None:
                    return
                if packet.size == 0 and packet.pts is None:
                    continue  # PyAV's end-of-stream marker; flushing is done explicitly
                self.stats.packets += 1
                yield packet
        except av.FFmpegError as exc:
            self._note(f"demuxing stopped: {_ffmpeg_reason(exc)}")
        except (OSError, ValueError, MemoryError) as exc:
            self._note(f"demuxing stopped: {one_line(exc, with_type=True)}")

    def _selection(self, pts: int, index: int, reach: int = REORDER_WINDOW) -> bool | None:
        """Is the frame of the packet at window ``index`` (-1: the head just taken out) taken?
        Decided from timestamps alone: its successor in presentation order is looked for among
        the packets around it in decoding order. None when it is not in sight."""
        window = self._window
        successor: int | None = None
        for other in self._recent:
            if other > pts and (successor is None or other < successor):
                successor = other
        lo, hi = max(0, index - REORDER_WINDOW), min(len(window), index + 1 + reach)
        for i in range(lo, hi):
            later = window[i].pts
            if later is not None and later > pts and (successor is None or later < successor):
                successor = later
        if successor is None and not (self._eof and hi == len(window)):
            return None
        t = self._t(pts)
        if t > MAX_MEDIA_SECONDS:
            return True  # decoded, so that sampling stops there with its message
        return self._covers_target(t, None if successor is None else self._t(successor))

    def _droppable_run(self) -> tuple[int, int]:
        """``(n, 0)``: the head and the next ``n - 1`` packets may be dropped — none of them is
        taken and a clean keyframe (or the end) follows; ``(0, k)``: do not ask again for
        ``k`` packets."""
        for i, entry in enumerate(self._window):
            if entry.clean_key:
                return i + 1, 0
            if entry.pts is None:
                return 0, i + 1
            if entry.selected is None:
                entry.selected = self._selection(entry.pts, i)
            if entry.selected is not False:
                return 0, i + 1
        if self._eof:
            return len(self._window) + 1, 0  # the tail after the last frame taken
        return 0, 8  # no clean keyframe in sight yet

    def _decode(self, packet: av.Packet | None, mode: SkipFrame,
                selector: _Selector) -> Generator[SampledFrame, None, bool]:
        """Send one packet (None: flush); yield the frames taken. Returns True to stop."""
        if self.codec.skip_frame != mode:
            self.codec.skip_frame = mode
        try:
            with av.logging.Capture(local=True) as logged:
                frames = self.codec.decode(packet)
            self._count_logged(logged)
        except av.FFmpegError as exc:
            self.stats.decode_errors += 1
            if self.stats.decode_errors == 1:
                self._note(f"decode error: {_ffmpeg_reason(exc)}")
            if self.stats.decode_errors >= MAX_DECODE_ERRORS:
                return self._stop(f"stopped after {MAX_DECODE_ERRORS} decode errors")
            return False
        except MemoryError:
            return self._stop("stopped: out of memory decoding a frame")
        for frame in frames:
            self.stats.decoded += 1
            if frame.width * frame.height > self.limits.max_image_pixels:
                return self._stop(f"stopped: a frame of {frame.width}x{frame.height} exceeds "
                                  f"the limit of {self.limits.max_image_pixels} pixels")
            if (self._horizon is not None and frame.pts is not None
                    and frame.pts <= self._horizon):  # planned: chosen from the timestamps
                if frame.pts in self._wanted:
                    self._wanted.discard(frame.pts)
                    t = self._t(frame.pts)
                    self.stats.last_t = t
                    if t > MAX_MEDIA_SECONDS:
                        return self._stop(f"stopped at {MAX_MEDIA_SECONDS} s of video (limit)")
                    yield SampledFrame(round(t, 6), frame)
                continue  # else a reference frame, decoded only for the frames after it
            yield from selector.push(frame)
            if selector.stopped:
                return True
        if self.stats.decoded >= MAX_DECODED_FRAMES:
            return self._stop(f"stopped after {MAX_DECODED_FRAMES} decoded frames (limit)")
        if time.monotonic() > self.deadline:
            return self._stop(
                f"stopped by the time limit after {self.stats.last_t:.1f} s of video")
        return False

    def _count_logged(self, logged: Sequence[tuple[int, str, str]]) -> None:
        for level, name, message in logged:
            if level <= av.logging.ERROR:
                self.stats.logged_errors += 1
                if not self.stats.first_logged:
                    self.stats.first_logged = f"{name}: {' '.join(message.split())}"

    def _stop(self, message: str) -> bool:
        self._stopped = True
        self._note(message)
        return True

    def _note(self, message: str) -> None:
        self.stats.notes.append(message)
        self.error = "; ".join(self.stats.notes)

    def _note_truncation(self) -> None:
        """A file whose packets end well before its declared duration was cut short."""
        declared = self.container.duration
        if (self._stopped or self._origin is None or self._last_packet_pts is None
                or declared is None or declared <= 0):
            return
        seconds = declared / av.time_base
        reached = self._t(self._last_packet_pts) + 1 / self.nominal_rate
        if reached < seconds * TRUNCATION_SLACK - 1.0:
            self._note(f"truncated: frames end at {reached:.1f} s of {seconds:.1f} s declared")


class _Selector:
    """Takes decoded frames in presentation order and yields those on screen at a target."""

    def __init__(self, sampler: FrameSampler) -> None:
        self.s = sampler
        self.pending: tuple[VideoFrame, float] | None = None
        self.origin_known = False
        self.stopped = False
        self.last_t: float | None = None

    def _frame_t(self, frame: VideoFrame) -> float:
        s = self.s
        if frame.pts is None:
            return (self.last_t + 1 / s.nominal_rate) if self.last_t is not None else 0.0
        if not self.origin_known:
            s._origin = frame.pts
            self.origin_known = True
        return s._t(frame.pts)

    def push(self, frame: VideoFrame) -> Iterator[SampledFrame]:
        t = self._frame_t(frame)
        if self.last_t is not None and t <= self.last_t:
            if frame.pts is not None:
                return  # out-of-order or repeated timestamp: ignored
            t = self.last_t + 1 / self.s.nominal_rate
        self.last_t = t
        self.s.stats.last_t = t
        if t > MAX_MEDIA_SECONDS:
            self.stopped = self.s._stop(f"stopped at {MAX_MEDIA_SECONDS} s of video (limit)")
            return
        if self.pending is not None:
            previous, pt = self.pending
            if self.s._covers_target(pt, t):
                yield SampledFrame(round(pt, 6), previous)
        self.pending = (frame, t)

    def finish(self) -> Iterator[SampledFrame]:
        if self.pending is not None and not self.stopped:
            frame, t = self.pending
            if self.s._covers_target(t, None):
                yield SampledFrame(round(t, 6), frame)
        self.pending = None


# --------------------------------------------------------------------------- clean keyframes


def _clean_key_test(cc: Any) -> Callable[[memoryview], bool] | None:
    """A test telling whether a keyframe packet starts a clean random-access point (nothing
    after it refers to anything before it), or None when the codec is not known to allow it."""
    codec = cc.codec
    if codec.intra_only:
        return lambda data: True
    extradata = bytes(cc.extradata or b"")
    if cc.name == "h264":
        length_size = (extradata[4] & 3) + 1 if len(extradata) > 6 and extradata[0] == 1 else 0
        return lambda data: 5 in _nal_types(data, length_size, lambda b: b & 0x1F)
    if cc.name == "hevc":
        length_size = (extradata[21] & 3) + 1 if len(extradata) > 22 and extradata[0] == 1 else 0
        return lambda data: bool(
            {19, 20} & _nal_types(data, length_size, lambda b: (b >> 1) & 0x3F))
    return None


def _nal_types(data: memoryview, length_size: int, kind: Callable[[int], int],
               limit: int = 64) -> set[int]:
    """NAL unit types in a packet: length-prefixed (MP4/MKV) or Annex B start codes (TS)."""
    types: set[int] = set()
    n = len(data)
    if length_size:
        pos = 0
        while pos + length_size < n and len(types) < limit:
            size = int.from_bytes(data[pos:pos + length_size], "big")
            if size <= 0:
                break
            types.add(kind(data[pos + length_size]))
            pos += length_size + size
        return types
    raw = bytes(data[:1 << 20])
    start = raw.find(b"\x00\x00\x01")
    while start >= 0 and start + 3 < len(raw) and len(types) < limit:
        types.add(kind(raw[start + 3]))
        start = raw.find(b"\x00\x00\x01", start + 3)
    return types
