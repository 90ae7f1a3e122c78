"""Every provenance check on one picture, and the verdict they add up to.

The cheap checks run on every picture, in the order of ``CHECKS``: C2PA (only when the bytes
can hold a manifest), generator metadata (text chunks, EXIF, XMP, stealth bits) and camera
origin. Each is a plug-in with a ``name`` (the signal of the ``error`` line it becomes when
it fails), the ``signals`` whose lines it writes (what :meth:`Checks.describe` lists as
``always``) and ``run``; the work is done in its own module. The watermark decoder and the
user's classifiers run when they are switched on (:class:`Checks`). One check that fails on
hostile bytes becomes an ``error`` line of its own signal; the others still run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Protocol

from PIL import Image

from safeguard.config import Provenance
from safeguard.errors import SafeguardError, one_line
from safeguard.provenance import verdict as verdicts
from safeguard.provenance.c2pa import C2paTrust, c2pa_evidence
from safeguard.provenance.camera import camera_evidence
from safeguard.provenance.classifier import Classifier, load_classifiers
from safeguard.provenance.evidence import Evidence
from safeguard.provenance.generators import generator_evidence
from safeguard.provenance.watermark import watermark_evidence
from safeguard.registry import Registry


@dataclass(frozen=True)
class Assessment:
    verdict: str
    priority: str
    evidence: tuple[Evidence, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "priority": self.priority,
                "evidence": [line.as_dict() for line in self.evidence]}


@dataclass(frozen=True)
class Picture:
    """One picture as the checks see it. ``image``: opened by ``open_picture`` (header
    only); ``camera``: its ``exif.camera_metadata``; ``pdq_hex``: its PDQ when it has one."""

    data: bytes
    image: Image.Image
    mime: str
    camera: dict[str, Any]
    pdq_hex: str | None


@dataclass(frozen=True)
class Checks:
    """The checks that run, with what they load (trust anchors, models) loaded once."""

    trust: C2paTrust | None = None
    watermark: bool = False
    classifiers: tuple[Classifier, ...] = field(default=())

    def describe(self) -> dict[str, Any]:
        """What the audit log and the report's methods section record about the checks."""
        return {
            "always": [signal for check in CHECKS for signal in check.signals],
            "watermark": self.watermark,
            "classifiers": [c.describe() for c in self.classifiers],
            "c2pa_trust": ({"file": self.trust.source,
                            "sha256": hashlib.sha256(self.trust.anchors_pem.encode()).hexdigest()}
                           if self.trust else None),
        }


class Check(Protocol):
    """A check every picture gets."""

    name: ClassVar[str]
    signals: ClassVar[tuple[str, ...]]

    def run(self, picture: Picture, checks: Checks) -> list[Evidence]:
        """The check's evidence lines; may raise (:func:`assess` records an ``error`` line)."""
        ...


class C2paCheck:
    """C2PA Content Credentials (``c2pa.py``), read only when the bytes can hold a manifest."""

    name: ClassVar[str] = "c2pa"
    signals: ClassVar[tuple[str, ...]] = ("c2pa",)

    def run(self, picture: Picture, checks: Checks) -> list[Evidence]:
        return c2pa_evidence(picture.data, picture.mime, checks.trust)


class GeneratorCheck:
    """Generator metadata (``generators/``): text chunks, EXIF, stealth bits, and the XMP
    claims (``xmp.py``), whose lines are signal ``xmp``."""

    name: ClassVar[str] = "generator"
    signals: ClassVar[tuple[str, ...]] = ("generator", "xmp")

    def run(self, picture: Picture, checks: Checks) -> list[Evidence]:
        return generator_evidence(picture.image, picture.data)


class CameraCheck:
    """Camera origin (``camera.py``): EXIF, the maker note and the embedded thumbnail."""

    name: ClassVar[str] = "camera"
    signals: ClassVar[tuple[str, ...]] = ("camera",)

    def run(self, picture: Picture, checks: Checks) -> list[Evidence]:
        return camera_evidence(picture.image, picture.camera, picture.pdq_hex)


CHECKS = Registry[Check]("provenance check", items=[
    C2paCheck(),
    GeneratorCheck(),
    CameraCheck(),
])


def load_checks(options: Provenance) -> Checks:
    """The checks ``options`` asks for; a missing or broken trust file or model is a
    SafeguardError here, before any item is read. Cached per process."""
    return _load_checks(options)


@cache
def _load_checks(options: Provenance) -> Checks:
    trust = C2paTrust.from_file(Path(options.c2pa_trust)) if options.c2pa_trust else None
    classifiers = tuple(load_classifiers([Path(p) for p in options.classifiers]))
    return Checks(trust=trust, watermark=options.watermark, classifiers=classifiers)


def assess(data: bytes, image: Image.Image, mime: str, camera: dict[str, Any],
           pdq_hex: str | None, checks: Checks) -> Assessment:
    """``image``: opened by ``open_picture`` (header only); ``camera``: its
    ``exif.camera_metadata``; ``pdq_hex``: its PDQ when it has one (for the thumbnail check)."""
    picture = Picture(data, image, mime, camera, pdq_hex)
    lines: list[Evidence] = []
    for check in CHECKS:
        lines += _guarded(check.name, check.run, picture, checks)
    if checks.watermark:
        lines += _guarded("watermark", watermark_evidence, image)
    for classifier in checks.classifiers:
        lines += _guarded("classifier", classifier.evidence, image)
    return Assessment(verdicts.verdict(lines), verdicts.priority(lines), tuple(lines))


def _guarded(signal: str, check: Callable[..., Iterable[Evidence]], *args: Any
             ) -> list[Evidence]:
    try:
        return list(check(*args))
    except SafeguardError as exc:
        return [Evidence(signal, "error", str(exc), "info")]
    except Exception as exc:  # a parser's own defect on hostile bytes: recorded, not fatal
        return [Evidence(signal, "error", one_line(exc, with_type=True), "info")]
