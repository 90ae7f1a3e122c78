"""Settings: one place for defaults and limits.

Values come from, in order of precedence: command-line options, environment variables
(``SAFEGUARD_HOME``, ``SAFEGUARD_DATABASE_URL``), the home folder's ``config.toml``
(``[limits]`` table, keys as in :class:`Limits`; ``[matching]``, keys as in
:class:`Matching`; ``[video]``, keys as in :class:`Video`; ``[provenance]``, keys as in
:class:`Provenance`; ``[review]``, keys as in :class:`Review`; ``[scan]``, keys as in
:class:`Scanning`), then the defaults below.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from safeguard.errors import SafeguardError

#: how PDQ decodes JPEGs: the reference hasher's full decode, or DCT-scaled (docs/pdq.md)
PdqMethod = Literal["reference", "fast"]

T = TypeVar("T")

MiB = 1024 * 1024
GiB = 1024 * MiB


@dataclass(frozen=True)
class Limits:
    """Limits that keep hostile evidence from exhausting the machine.

    Every limit that is hit becomes an item error naming the limit; nothing stops the scan.
    """

    #: nested containers below the evidence (``a.zip!b.zip!c.jpg`` is depth 2)
    max_archive_depth: int = 5
    #: members read from one container; the rest are recorded as one error on the container
    max_archive_members: int = 200_000
    #: uncompressed bytes of one member
    max_member_bytes: int = 8 * GiB
    #: uncompressed bytes read out of one container in all
    max_archive_total_bytes: int = 256 * GiB
    #: uncompressed : compressed ratio above which a member is treated as a bomb ...
    max_compression_ratio: float = 200.0
    #: ... once it has produced at least this many bytes (small files compress well)
    ratio_check_after_bytes: int = 16 * MiB
    #: a nested container is read in memory (never extracted to disk) up to this size
    max_nested_archive_bytes: int = 2 * GiB
    #: pictures above this many bytes get digests but no decode
    max_picture_bytes: int = 512 * MiB
    #: decoded pixels above this are a decompression bomb (Pillow's own error threshold)
    max_image_pixels: int = 178_956_970
    #: seconds one item may take in a worker before it is killed and recorded as an error
    item_timeout: float = 120.0
    #: extra seconds a container earns per MiB of its size (its members share the clock)
    timeout_per_mib: float = 1.0


@dataclass(frozen=True)
class Matching:
    """How scanned items are matched against the hash library (docs/matching.md)."""

    #: largest PDQ Hamming distance (of 256 bits) that is a match
    pdq_threshold: int = 31
    #: the category scheme every hash set's categories are mapped into (docs/categories.md)
    scheme: str = "uk"
    #: vPDQ rule: share of the scanned video's frames that must match the known video ...
    vpdq_query_share: float = 0.8
    #: ... and share of the known video's frames that must match the scanned one
    vpdq_reference_share: float = 0.8


@dataclass(frozen=True)
class Video:
    """How videos are hashed (docs/video.md)."""

    #: frames hashed per second of video
    fps: float = 1.0
    #: drop a frame within this many bits of the last kept one (0: keep every sampled frame)
    prune: int = 0
    #: remove black letterbox / pillarbox bars before hashing each frame
    letterbox: bool = True
    #: keyframes chosen for the review strip
    keyframes: int = 8
    #: a video inside an archive is read into memory to decode it, up to this many bytes
    max_member_bytes: int = 1 * GiB


@dataclass(frozen=True)
class Provenance:
    """Which provenance checks a scan runs beyond the cheap ones (docs/provenance.md)."""

    #: decode Stable Diffusion invisible watermarks (costs a full decode of each picture)
    watermark: bool = False
    #: TOML descriptions of user-supplied ONNX classifiers (docs/classifiers.md)
    classifiers: tuple[str, ...] = ()
    #: PEM file of the C2PA trust anchors the user trusts (none are shipped)
    c2pa_trust: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "classifiers", tuple(self.classifiers))


@dataclass(frozen=True)
class Review:
    """The review web app (docs/review.md)."""

    #: independent agreeing grades after which a grade is trusted
    consensus: int = 2
    #: largest request body the app accepts (form posts, JSON), in bytes
    max_body_bytes: int = 64 * 1024
    #: a gap between two review requests longer than this does not count as time in review
    idle_seconds: int = 300
    #: reverse proxies (addresses or networks) whose ``X-Forwarded-For`` and
    #: ``X-Forwarded-Proto`` name the client; from anyone else those headers are ignored
    trusted_proxies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        given: Any = self.trusted_proxies
        if isinstance(given, str):
            given = (given,)
        if not isinstance(given, list | tuple):
            raise SafeguardError("[review] trusted_proxies: give a list of IP addresses or "
                                 "networks")
        proxies = tuple(given)
        for proxy in proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except (TypeError, ValueError):
                raise SafeguardError(f"[review] trusted_proxies: {proxy!r} is not an IP "
                                     "address or network") from None
        object.__setattr__(self, "trusted_proxies", proxies)


@dataclass(frozen=True)
class Scanning:
    """What a scan enumerates beyond the files themselves (docs/scanning.md)."""

    #: carve pictures and videos out of disk images' unallocated and unpartitioned space
    carve: bool = True
    #: read NTFS volumes' shadow copies (one more walk of the volume per store)
    shadow_copies: bool = True
    #: a unit's watch list of terms (a text file, one term a line, relative to the home
    #: folder): prompts, captions and model metadata naming one raise their items in review
    #: (docs/ai-toolchain.md); none is shipped
    watch_list: str | None = None


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str | None
    limits: Limits
    matching: Matching = Matching()
    video: Video = Video()
    provenance: Provenance = Provenance()
    review: Review = Review()
    scanning: Scanning = Scanning()

    @property
    def cases_dir(self) -> Path:
        return self.home / "cases"


def default_home() -> Path:
    env = os.environ.get("SAFEGUARD_HOME")
    return Path(env).expanduser() if env else Path("~/.safeguard").expanduser()


def load_settings(home: Path | None = None) -> Settings:
    home = (home or default_home()).expanduser().absolute()
    limits, matching, video, provenance = Limits(), Matching(), Video(), Provenance()
    review, scanning = Review(), Scanning()
    config_file = home / "config.toml"
    if config_file.is_file():
        try:
            config = tomllib.loads(config_file.read_text("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SafeguardError(f"{config_file}: not valid TOML: {exc}") from None
        limits = _table(config_file, config, "limits", limits, "limit")
        matching = _table(config_file, config, "matching", matching, "matching setting")
        video = _table(config_file, config, "video", video, "video setting")
        provenance = _table(config_file, config, "provenance", provenance,
                            "provenance setting")
        review = _table(config_file, config, "review", review, "review setting")
        scanning = _table(config_file, config, "scan", scanning, "scan setting")
        # files named in config.toml are relative to the home folder
        provenance = replace(
            provenance,
            classifiers=tuple(str(home / Path(p).expanduser()) for p in provenance.classifiers),
            c2pa_trust=(str(home / Path(provenance.c2pa_trust).expanduser())
                        if provenance.c2pa_trust else None),
        )
        if scanning.watch_list:
            scanning = replace(scanning,
                               watch_list=str(home / Path(scanning.watch_list).expanduser()))
    return Settings(
        home=home,
        database_url=os.environ.get("SAFEGUARD_DATABASE_URL") or None,
        limits=limits,
        matching=matching,
        video=video,
        provenance=provenance,
        review=review,
        scanning=scanning,
    )


def _table(config_file: Path, config: dict[str, Any], name: str, default: T, what: str) -> T:
    table = config.get(name, {})
    unknown = sorted(set(table) - {f.name for f in fields(default)})  # type: ignore[arg-type]
    if unknown:
        raise SafeguardError(f"{config_file}: unknown {what}(s): {', '.join(unknown)}")
    return replace(default, **table)  # type: ignore[type-var]
