"""invisible-watermark's reference encoder (watermark_marking.py), loaded once for the tests:
``MAX_DCT`` is None when it cannot be loaded, and the tests that need it carry
``needs_reference``; ``mark`` marks a benign BGR picture with one of Safeguard's payloads
(``P``, by name) and ``pil`` turns the result into a Pillow picture."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from safeguard.provenance.watermark import PAYLOADS, Payload
from tests.provenance.watermark_marking import INSTALL_HINT, load_reference_encoder
from tests.provenance.watermark_marking import mark as _mark

P = {p.name: p for p in PAYLOADS}


MAX_DCT = load_reference_encoder()
needs_reference = pytest.mark.skipif(
    MAX_DCT is None,
    reason=f"invisible-watermark's imwatermark/maxDct.py cannot be loaded ({INSTALL_HINT} "
           "to run the cross-checks)")


def mark(bgr: np.ndarray, payload: Payload, how: str) -> np.ndarray:
    assert MAX_DCT is not None
    return _mark(MAX_DCT, bgr, payload.bits, how)


def pil(bgr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1]), "RGB")
