"""The vPDQ rule: do two videos match, and where?

As in the vPDQ reference (ThreatExchange ``vpdq``): frames of quality below the minimum
are dropped, each video's frame hashes are de-duplicated, then

- the query share is the fraction of the query's unique hashes within ``distance`` of some
  hash of the reference, and
- the reference share is the fraction of the reference's unique hashes within ``distance``
  of some hash of the query.

Two videos match when both shares reach their thresholds (defaults 80 % and 80 %): a
trimmed copy keeps a high query share, a short clip inside a long video does not make the
long one match, and re-encoding moves hashes by a few bits only.

The reference compares videos hashed at the same rate. A known video may come hashed at
every frame (as the reference's files are) while a scan samples one frame a second, so
both sides are first brought to the coarser of the two rates (:func:`resample`: the frame
nearest each tick); otherwise the known video's share counts frames the scan never looked
at (measured on the reference chair videos: 28 % at 30 fps against 1 fps, 100 % resampled).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from safeguard.signals.pdq import MIN_MATCH_QUALITY

DEFAULT_QUERY_SHARE = 0.8
DEFAULT_REFERENCE_SHARE = 0.8
DEFAULT_DISTANCE = 31


@dataclass(frozen=True)
class VideoMatch:
    query_share: float
    reference_share: float
    query_frames: int  # unique usable query hashes
    reference_frames: int

    def passes(self, query_share: float = DEFAULT_QUERY_SHARE,
               reference_share: float = DEFAULT_REFERENCE_SHARE) -> bool:
        return (self.query_frames > 0 and self.reference_frames > 0
                and self.query_share >= query_share
                and self.reference_share >= reference_share)


def unique_hashes(hashes: Sequence[str], qualities: Sequence[int] | None = None,
                  min_quality: int = MIN_MATCH_QUALITY) -> np.ndarray:
    """The distinct usable hashes as an ``(n, 32)`` uint8 array, in first-seen order."""
    keep = [h for i, h in enumerate(hashes)
            if qualities is None or qualities[i] >= min_quality]
    distinct = list(dict.fromkeys(keep))
    if not distinct:
        return np.empty((0, 32), np.uint8)
    return np.frombuffer(bytes.fromhex("".join(distinct)), np.uint8).reshape(-1, 32)


def near(a: np.ndarray, b: np.ndarray, distance: int) -> np.ndarray:
    """Boolean ``(len(a), len(b))``: which pairs are within ``distance`` bits."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)), bool)
    x = a.view(np.uint64)[:, None, :] ^ b.view(np.uint64)[None, :, :]
    close: np.ndarray = np.bitwise_count(x).sum(axis=2) <= distance
    return close


def compare(query: np.ndarray, reference: np.ndarray,
            distance: int = DEFAULT_DISTANCE) -> VideoMatch:
    """Both shares for two sets of unique frame hashes (see :func:`unique_hashes`)."""
    pairs = near(query, reference, distance)
    q = int(pairs.any(axis=1).sum()) if len(query) else 0
    r = int(pairs.any(axis=0).sum()) if len(reference) else 0
    return VideoMatch(
        query_share=q / len(query) if len(query) else 0.0,
        reference_share=r / len(reference) if len(reference) else 0.0,
        query_frames=len(query), reference_frames=len(reference))


def frame_step(frames: Sequence[tuple[float, str, int]]) -> float:
    """The usual spacing of a video's frames, in seconds (1.0 when it cannot be told)."""
    times = sorted({t for t, _, _ in frames})
    steps = np.diff(times)
    steps = steps[steps > 0]
    return float(np.median(steps)) if len(steps) else 1.0


def resample(frames: Sequence[tuple[float, str, int]], step: float
             ) -> list[tuple[float, str, int]]:
    """The frame nearest each tick ``0, step, 2·step …`` up to the last frame's time."""
    ordered = sorted(frames)
    if not ordered or step <= 0:
        return list(ordered)
    times = np.array([t for t, _, _ in ordered])
    ticks = np.arange(times[0], times[-1] + step / 2, step)
    right = np.clip(np.searchsorted(times, ticks), 1, len(times) - 1) if len(times) > 1 \
        else np.zeros(len(ticks), int)
    left = np.maximum(right - 1, 0)
    nearest = np.where(np.abs(times[left] - ticks) <= np.abs(times[right] - ticks), left, right)
    return [ordered[i] for i in dict.fromkeys(nearest.tolist())]


def compare_frames(query: Sequence[tuple[float, str, int]],
                   reference: Sequence[tuple[float, str, int]],
                   distance: int = DEFAULT_DISTANCE) -> VideoMatch:
    """:func:`compare` for two videos' (seconds, hex, quality) frames, at a common rate."""
    step = max(frame_step(query), frame_step(reference))
    mine, theirs = resample(query, step), resample(reference, step)
    return compare(unique_hashes([v for _, v, _ in mine], [q for _, _, q in mine]),
                   unique_hashes([v for _, v, _ in theirs], [q for _, _, q in theirs]),
                   distance)


def segments(times: Sequence[float], gap: float) -> list[tuple[float, float]]:
    """Runs of matched frame times as (start, end), joining frames at most ``gap`` apart."""
    runs: list[tuple[float, float]] = []
    for t in sorted(times):
        if runs and t - runs[-1][1] <= gap + 1e-6:
            runs[-1] = (runs[-1][0], t)
        else:
            runs.append((t, t))
    return runs


def parse_frames(text: str) -> list[tuple[float, str, int]]:
    """Frames from the vPDQ reference layout — one line per frame,
    ``frame_number,quality,pdq_hex,seconds`` — as (seconds, hex, quality); lines that do
    not parse are skipped (the hash-set reader counts them)."""
    frames = []
    for line in text.splitlines():
        parts = line.strip().split(",")
        if len(parts) != 4:
            continue
        try:
            quality, value, t = int(parts[1]), parts[2].strip().lower(), float(parts[3])
        except ValueError:
            continue
        if len(value) == 64 and all(c in "0123456789abcdef" for c in value):
            frames.append((t, value, quality))
    return frames


def format_frames(frames: Sequence[tuple[float, str, int]]) -> str:
    """The vPDQ reference layout of (seconds, hex, quality) frames."""
    return "\n".join(f"{n},{quality},{value},{t:.3f}"
                     for n, (t, value, quality) in enumerate(frames))
