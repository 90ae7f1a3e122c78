"""ISO base media files: HEIC/HEIF/AVIF pictures and MP4, MOV and 3GP videos.

``ftyp`` must come first, with a brand this carver knows (the major brand, else the first
known compatible brand, names the format). Then the top-level boxes are walked by their
sizes (32-bit, or 64-bit when the size is 1); every box must be one a file of this kind holds
at its top level, so the walk stops at the first bytes that are not one — the file's true
end, since a box walk has no trailer. The file is whole when it holds its media: ``moov`` and
``mdat`` (a video), or ``meta`` and ``mdat`` (a HEIF picture); otherwise, or when a box runs
past the region end, it is partial, up to the last whole box.
"""

from __future__ import annotations

from safeguard.evidence.carving.base import Carved, Signature, Window, u32be

_HEIF = ("heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "msf1", "avif", "avis")
_BRANDS = {
    **{brand.encode(): "heif" for brand in _HEIF},
    **{brand.encode(): "mp4" for brand in (
        "isom", "iso2", "iso3", "iso4", "iso5", "iso6", "iso8", "iso9", "mp41", "mp42",
        "avc1", "M4V ", "M4VP", "dash", "mmp4", "f4v ", "MSNV", "NDAS", "XAVC")},
    b"qt  ": "mov",
    **{brand.encode(): "3gp" for brand in (
        "3gp4", "3gp5", "3gp6", "3gp7", "3gp8", "3gp9", "3gg6", "3gg9", "3ge6", "3ge7",
        "3gs7", "3g2a", "3g2b", "3g2c", "kddi")},
}
_TOP_LEVEL = frozenset({
    b"moov", b"mdat", b"meta", b"free", b"skip", b"wide", b"uuid", b"udta", b"moof",
    b"mfra", b"sidx", b"ssix", b"styp", b"emsg", b"prft", b"pdin", b"junk", b"pnot",
    b"PICT", b"idat", b"Xtra"})


def _brand_format(ftyp: bytes) -> str | None:
    major = _BRANDS.get(ftyp[8:12])
    if major is not None:
        return major
    for at in range(16, len(ftyp) - 3, 4):
        kind = _BRANDS.get(ftyp[at:at + 4])
        if kind is not None:
            return kind
    return None


class IsoBmffCarver:
    name = "isobmff"
    signatures = (Signature(b"ftyp", 4),)
    max_size = 1 << 40

    def validate(self, window: Window, start: int, limit: int) -> Carved | None:
        head = window.read(start, 8)
        size = u32be(head, 0) if len(head) == 8 else 0
        if not 16 <= size <= 4096 or size % 4 or start + size > limit:
            return None
        kind = _brand_format(window.read(start, size))
        if kind is None:
            return None
        pos = start + size
        seen: set[bytes] = set()
        reason: str | None = None
        while True:
            head = window.read(pos, 16) if pos + 8 <= limit else b""
            if len(head) < 8 or head[4:8] not in _TOP_LEVEL:
                break
            box, size = head[4:8], u32be(head, 0)
            if size == 1:
                size = int.from_bytes(head[8:16], "big") if len(head) == 16 else 0
                if size < 16:
                    break
            elif size == 0:  # "to the end of the file": the end is not known
                reason = f"box '{box.decode()}' at offset {pos} runs to the end of its file"
                break
            elif size < 8:
                break
            if pos + size > limit:
                reason = (f"box '{box.decode()}' at offset {pos} claims {size} bytes past the "
                          "region end")
                break
            seen.add(box)
            pos += size
        media = b"mdat" in seen and (b"moov" in seen or b"meta" in seen or b"moof" in seen)
        if reason is None and media:
            return Carved(kind, start, pos - start)
        if reason is None:
            reason = (f"no {'meta' if kind == 'heif' else 'moov'} and mdat before offset {pos}")
        return Carved(kind, start, pos - start, True, reason)
