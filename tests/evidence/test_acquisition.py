"""An E01 whose stored hash does not match its media is reported as a mismatch."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest

from safeguard.evidence import diskimage
from safeguard.evidence.diskimage import DiskImageSource
from safeguard.evidence.images.ewf import EwfMedia
from tests.helpers import SHARED

E01 = SHARED / "disk-images" / "ext2.E01"


@pytest.mark.parametrize(
    ("stored", "verification"),
    [
        ({"md5": "0" * 32}, "mismatch"),
        ({}, "not stored"),
    ],
)
def test_verification_verdicts(monkeypatch: pytest.MonkeyPatch, stored, verification) -> None:
    real = diskimage._image(E01)
    key = diskimage._key(E01)
    assert isinstance(real.media, EwfMedia)
    media = copy.copy(real.media)  # the same image, claiming other stored hashes
    media.stored = stored
    monkeypatch.setitem(diskimage._IMAGES, key, replace(real, media=media))
    details = DiskImageSource(E01).acquisition()
    assert details["verification"] == verification
    assert details["stored"] == stored
    assert details["computed"]["md5"] == real.media.stored["md5"]  # the media itself is intact
