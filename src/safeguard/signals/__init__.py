"""Signals computed from an item's bytes, registered in one table.

Digests (``crypto``) and the content type (``content_type``) are taken from every item as
its bytes stream past. Picture signals run on each picture's bytes in the order of
``PICTURE_SIGNALS`` (a :class:`~safeguard.registry.Registry`: a duplicate name is refused),
sharing one opened image and the fields filled so far through :class:`PictureContext`; each
returns the item fields it fills (an :class:`~safeguard.records.ItemRecord`: a field name the
store does not know is a type error) and raises ``ItemError`` for what it cannot compute. A
new picture signal is a module plus one line in ``PICTURE_SIGNALS``.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from PIL import Image

from safeguard.config import Limits, PdqMethod, Provenance
from safeguard.errors import PictureError
from safeguard.media.images import DecodedPicture, decode_for_pdq, open_picture
from safeguard.provenance.assess import assess, load_checks
from safeguard.provenance.camera import device_key
from safeguard.provenance.exif import camera_metadata
from safeguard.records import ItemRecord
from safeguard.registry import Registry
from safeguard.signals import keypoints, pdq


class PictureContext:
    """One picture's bytes, opened once (header only) for every signal that asks, and the
    fields the signals before have filled (``fields``)."""

    def __init__(self, data: bytes, limits: Limits, pdq_method: PdqMethod, mime: str = "",
                 provenance: Provenance | None = None) -> None:
        self.data = data
        self.limits = limits
        self.pdq_method = pdq_method
        self.mime = mime
        self.provenance = provenance or Provenance()
        self.fields: ItemRecord = {}
        self._image: Image.Image | PictureError | None = None
        self._decoded: DecodedPicture | PictureError | None = None

    @property
    def image(self) -> Image.Image:
        """The opened picture; a picture that cannot be opened raises the same error to
        every signal that asks."""
        if self._image is None:
            try:
                self._image = open_picture(self.data, self.limits.max_image_pixels)
            except PictureError as exc:
                self._image = exc
        if isinstance(self._image, PictureError):
            raise self._image
        return self._image

    @property
    def decoded(self) -> DecodedPicture:
        """The picture decoded for PDQ (``media.images.decode_for_pdq``: its 512-px sample
        and full decode), once for every signal that asks; a picture that cannot be decoded
        raises the same error to each."""
        if self._decoded is None:
            try:
                self._decoded = decode_for_pdq(self.data, self.limits.max_image_pixels,
                                               self.pdq_method, self.image)
            except PictureError as exc:
                self._decoded = exc
        if isinstance(self._decoded, PictureError):
            raise self._decoded
        return self._decoded

    def release(self) -> None:
        """Drop the full decode (big for a large picture) once PDQ, its one reader, has cut
        the picture's borders from it; the 512-px sample stays for the signals after."""
        if isinstance(self._decoded, DecodedPicture):
            self._decoded.full = None


class PictureSignal(Protocol):
    name: ClassVar[str]

    def compute(self, picture: PictureContext) -> ItemRecord: ...


class PdqSignal:
    name: ClassVar[str] = "pdq"

    def compute(self, picture: PictureContext) -> ItemRecord:
        result = pdq.hash_pixels(picture.decoded, picture.pdq_method)
        picture.release()
        fields: ItemRecord = {
            "pdq": result.hash.hex,
            "pdq_quality": result.hash.quality,
            "pdq_dihedral": ",".join(result.dihedral),
            "pdq_method": result.method,
            "width": result.width,
            "height": result.height,
        }
        if result.trimmed is not None:
            fields["pdq_trimmed"] = result.trimmed.as_dict()
        return fields


class KeypointSignal:
    """The crop- and overlay-tolerant second signal (``signals/keypoints.py``), from the
    same 512-px sample PDQ hashed; series use it, hash sets never do."""

    name: ClassVar[str] = "keypoints"

    def compute(self, picture: PictureContext) -> ItemRecord:
        decoded = picture.decoded
        found = keypoints.describe(decoded.pixels, (decoded.width, decoded.height))
        return {"keypoints": found.to_bytes()} if found is not None else {}


class CameraSignal:
    name: ClassVar[str] = "exif"

    def compute(self, picture: PictureContext) -> ItemRecord:
        image = picture.image
        fields: ItemRecord = {"width": image.size[0], "height": image.size[1]}
        camera = camera_metadata(image)
        if camera:
            fields["exif"] = camera
        return fields


class ProvenanceSignal:
    """AI-generation and camera-origin evidence and its verdict (docs/provenance.md); runs
    after ``exif`` and ``pdq``, whose fields it reads."""

    name: ClassVar[str] = "provenance"

    def compute(self, picture: PictureContext) -> ItemRecord:
        camera = picture.fields.get("exif") or {}
        result = assess(picture.data, picture.image, picture.mime, camera,
                        picture.fields.get("pdq"), load_checks(picture.provenance))
        fields: ItemRecord = {"provenance": result.as_dict(), "verdict": result.verdict}
        device = device_key(camera)
        if device:
            fields["device"] = device
        return fields


PICTURE_SIGNALS = Registry[PictureSignal]("picture signal", items=[
    CameraSignal(),
    PdqSignal(),
    KeypointSignal(),
    ProvenanceSignal(),
])
