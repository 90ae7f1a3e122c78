"""An E01 whose stored hash does not match its media is reported as a mismatch."""

from __future__ import annotations

from dataclasses import replace

import pytest

from safeguard.evidence import diskimage
from safeguard.evidence.diskimage import DiskImageSource
from tests.conftest import SHARED

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
    monkeypatch.setitem(diskimage._IMAGES, key, replace(real, stored=stored))
    details = DiskImageSource(E01).acquisition()
    assert details["verification"] == verification
    assert details["stored"] == stored
    assert details["computed"]["md5"] == real.stored["md5"]  # the media itself is intact
