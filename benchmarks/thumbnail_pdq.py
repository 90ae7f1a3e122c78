"""How far a thumbnail's PDQ hash lies from its source picture's: the distance a thumbnail
cache's entry (Windows thumbcache 96/256/1024 px, Thumbs.db 96 px, Android's 512 px
mini-thumbnails) keeps to the original, on benign pictures, against the matching threshold.

    .venv/bin/python benchmarks/thumbnail_pdq.py [--scenes 60]

Sources: the distinct photographs of ../shared/testdata/pdq-reference (bridge, the modes
photo, misc) and ``--scenes`` generated scenes at 1600x1200 (tests/helpers.scene). Each is
shrunk so its long side is the thumbnail size (Pillow, Lanczos, as Windows' and Android's
scalers are bicubic or better) and saved as JPEG quality 90, as the caches store them; the
thumbnail is hashed as a scan hashes it. The table gives, per size, the median, 90th
percentile and largest distance and the share within the default threshold (31 bits).
Nothing is timed.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from PIL import Image
from tests.helpers import SHARED, scene

from safeguard.config import Limits, Matching
from safeguard.signals.pdq import hamming, pdq_from_bytes

SIZES = (96, 256, 512, 1024)
PHOTOS = ("bridge-mods/aaa-orig.jpg", "modes/original.jpg", "misc/small.jpg", "misc/c.png")


def _jpeg(img: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    img.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def thumbnail(img: Image.Image, size: int) -> bytes:
    small = img.copy()
    small.thumbnail((size, size), Image.Resampling.LANCZOS)
    return _jpeg(small)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenes", type=int, default=60)
    args = parser.parse_args()
    sources: list[Image.Image] = []
    for rel in PHOTOS:
        path = SHARED / "pdq-reference" / rel
        if path.exists():
            sources.append(Image.open(path).convert("RGB"))
    sources += [scene(1000 + n, (1600, 1200)) for n in range(args.scenes)]
    limit = Limits().max_image_pixels
    threshold = Matching().pdq_threshold
    full = [pdq_from_bytes(_jpeg(img, 95), limit).hash.hex for img in sources]
    print(f"thumbnail PDQ distance to its source: {len(sources)} pictures "
          f"({len(sources) - args.scenes} photographs, {args.scenes} generated scenes)")
    print(f"{'long side':>10} {'median':>7} {'p90':>5} {'max':>5} {'<= ' + str(threshold):>7}")
    for size in SIZES:
        distances = sorted(hamming(pdq_from_bytes(thumbnail(img, size), limit).hash.hex, whole)
                           for img, whole in zip(sources, full, strict=True))
        p90 = distances[int(0.9 * (len(distances) - 1))]
        within = sum(d <= threshold for d in distances) / len(distances)
        print(f"{size:>8}px {statistics.median(distances):>7.0f} {p90:>5} {distances[-1]:>5} "
              f"{within:>7.0%}")


if __name__ == "__main__":
    main()
