"""C2PA Content Credentials, read offline: validation state, signer, actions, source type.

A picture's embedded C2PA manifest store is read with c2pa-python (c2pa-rs) from memory,
with every network path of the SDK closed (see ``_settings``): no remote manifest fetch, no
OCSP fetch, no CAWG identity resolution, and an empty network allow-list on top. A manifest
that lives only at a remote URL is therefore not read; its URL is recorded instead.

Trust comes only from anchors the user configures (``C2paTrust.from_file``); Safeguard ships
none. Without anchors a manifest can at best be ``valid`` (its signature and hashes hold, but
nobody vouches for the signer), and only ``trusted`` lets a digital source type be a
``trusted`` evidence line.

Lines, all ``signal="c2pa"`` (at most ``MAX_LINES`` per file, texts cut short):

``validation_state``    ``trusted`` | ``valid`` | ``invalid``; info
``digitalSourceType``   short IPTC name; direction by ``source_type_direction``; strength
                        ``trusted`` / ``strong`` / ``moderate`` for a trusted / valid / invalid
                        manifest (an invalid one is still an unsigned claim)
``signer``              ``organisation / common name`` of the signing certificate (c2pa-rs
                        calls the organisation ``issuer``); info
``signing_time``        the signature's (timestamped) time, when there is one; info
``claim_generator``     the claiming software; info
``software_agent``      the software an action names (e.g. a generator); info
``failure``             ``code: explanation`` per failure of the active manifest; info
``action``              each distinct action, e.g. ``c2pa.created``; info
``ingredient.digitalSourceType``
                        a direct ingredient's source type: at most ``strong`` (its trust is
                        not the active manifest's), ``moderate`` when the store is invalid
                        or an ingredient failed validation; a ``parentOf`` ingredient keeps
                        its direction, any other AI ingredient makes the asset ``ai_modified``
``ingredient.failure``  a failure code of an ingredient's manifest; info
``remote_manifest``     the URL of a manifest that was not fetched (offline); info
``error``               a store that cannot be read, one line; info
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import c2pa

from safeguard.errors import SafeguardError, one_line, os_reason
from safeguard.provenance.evidence import Evidence, Indicates, Strength, clean_text

SIGNAL = "c2pa"
MAX_LINES = 50
_MAX_TEXT = 200  # one value
_MAX_FAILURES = 10
_MAX_ACTIONS = 12
_MAX_SOURCE_TYPES = 8
_MAX_INGREDIENTS = 8  # direct ingredients looked at
_MAX_INGREDIENT_TYPES = 6
_MAX_INGREDIENT_FAILURES = 4
_MAX_GENERATORS = 3
_MAX_AGENTS = 3
_MAX_TRUST_FILE = 16 * 1024 * 1024

#: the code c2pa-rs gives a signer no anchor vouches for: what ``valid`` means, not a failure
UNTRUSTED = "signingCredential.untrusted"
TRUSTED = "signingCredential.trusted"

# IPTC digital source type vocabulary (https://cv.iptc.org/newscodes/digitalsourcetype/);
# C2PA adds a few of its own under http://c2pa.org/digitalsourcetype/ (none of them AI media)
_SOURCE_TYPE_PREFIXES = (
    "http://cv.iptc.org/newscodes/digitalsourcetype/",
    "https://cv.iptc.org/newscodes/digitalsourcetype/",
    "http://c2pa.org/digitalsourcetype/",
    "https://c2pa.org/digitalsourcetype/",
)
_AI = frozenset({"trainedalgorithmicmedia", "algorithmicmedia"})
_AI_MODIFIED = frozenset({"compositewithtrainedalgorithmicmedia", "compositesynthetic"})
_CAMERA = frozenset({"digitalcapture", "computationalcapture", "negativefilm", "positivefilm",
                     "print", "compositecapture"})

_STATES = {"trusted": "trusted", "valid": "valid", "invalid": "invalid"}
_SOURCE_STRENGTH: dict[str, Strength] = {"trusted": "trusted", "valid": "strong",
                                         "invalid": "moderate"}

_PEM_CERT = re.compile(
    rb"-----BEGIN CERTIFICATE-----\s*(.*?)\s*-----END CERTIFICATE-----", re.DOTALL)
_REMOTE_URL = re.compile(r"\burl\s+(\S+)")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


@dataclass(frozen=True)
class C2paTrust:
    """Trust anchors for C2PA signers: a PEM bundle of root/intermediate CA certificates."""

    anchors_pem: str
    source: str

    @classmethod
    def from_file(cls, path: Path) -> C2paTrust:
        """The certificates in the PEM file ``path`` (other PEM blocks, e.g. keys, are left
        out). SafeguardError when the file is missing, unreadable, too large or holds no
        certificate c2pa can load."""
        path = Path(path)
        try:
            with path.open("rb") as f:
                raw = f.read(_MAX_TRUST_FILE + 1)
        except FileNotFoundError:
            raise SafeguardError(f"C2PA trust-anchor file not found: {path}") from None
        except IsADirectoryError:
            raise SafeguardError(f"C2PA trust-anchor file is a directory: {path}") from None
        except OSError as exc:
            raise SafeguardError(
                f"C2PA trust-anchor file cannot be read: {path}: {os_reason(exc)}") from None
        if len(raw) > _MAX_TRUST_FILE:
            raise SafeguardError(f"C2PA trust-anchor file is larger than 16 MiB: {path}")
        blocks = []
        for n, match in enumerate(_PEM_CERT.finditer(raw), 1):
            try:
                der = base64.b64decode(b"".join(match.group(1).split()), validate=True)
            except (binascii.Error, ValueError):
                der = b""
            if not der.startswith(b"\x30"):
                raise SafeguardError(
                    f"C2PA trust-anchor file holds a damaged PEM certificate (number {n}): {path}")
            body = base64.encodebytes(der).decode("ascii")
            blocks.append(f"-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n")
        if not blocks:
            raise SafeguardError(f"C2PA trust-anchor file holds no PEM certificate: {path}")
        trust = cls("".join(blocks), str(path))
        try:  # the SDK's own check of the bundle, so a bad one fails here and not per file
            c2pa.Settings.from_dict(_settings(trust)).close()
        except Exception as exc:
            raise SafeguardError(
                f"C2PA trust-anchor file is not accepted by c2pa: {path}: {one_line(exc)}"
            ) from None
        return trust


def may_have_c2pa(data: bytes) -> bool:
    """Whether ``data`` could hold C2PA Content Credentials: the JUMBF label ``c2pa`` that
    every embedded manifest store carries in the clear (JPEG APP11, PNG caBX, WebP/RIFF C2PA,
    TIFF, GIF, BMFF uuid, SVG ``c2pa:manifest``, compressed stores too), or an XMP
    ``dcterms:provenance`` reference to a remote manifest. Two memchr-class scans."""
    return b"c2pa" in data or b"provenance" in data


def c2pa_evidence(data: bytes, mime: str, trust: C2paTrust | None) -> list[Evidence]:
    """The C2PA evidence lines of one picture (module docstring); [] when it has no
    manifest. Never raises: a store that cannot be read gives one ``error`` line."""
    if not may_have_c2pa(data):
        return []
    try:
        store = _read_store(data, mime, trust)
    except Exception as exc:  # hostile bytes: anything the SDK raises is a value here
        return _failed_read(exc)
    if store is None:
        return []
    try:
        return _lines(store, trust)[:MAX_LINES]
    except Exception as exc:  # a store shaped unlike any manifest JSON
        return [_line("error", f"unreadable manifest store: {one_line(exc)}")]


def source_type_direction(short_name: str) -> Indicates:
    """Which way an IPTC digital source type (its last URI segment) points."""
    name = short_name.lower()
    if name in _AI:
        return "ai"
    if name in _AI_MODIFIED or (
            name.startswith("composite") and ("algorithmic" in name or "synthetic" in name)):
        return "ai_modified"
    if name in _CAMERA:
        return "camera"
    return "none"


# --- reading ---------------------------------------------------------------------------------

def _settings(trust: C2paTrust | None) -> dict[str, Any]:
    """c2pa-rs settings for an offline read (keys as in c2pa-rs 0.91 ``settings::Settings``):

    ``verify.remote_manifest_fetch=false``  a manifest referenced by URL is not fetched
    ``verify.ocsp_fetch=false``             no OCSP request (stapled responses still count)
    ``core.allowed_network_hosts=[]``       the SDK's HTTP resolvers may reach no host at all
    ``core.decode_identity_assertions=false``  CAWG identity assertions (did:web resolution,
                                            which ignores the allow-list) are not decoded
    ``verify.verify_after_reading/verify_trust=true``  validate, and check the signer's chain
    ``trust.trust_anchors``                 the user's anchors; nothing else is trusted
    """
    return {
        "verify": {"verify_after_reading": True, "verify_trust": True,
                   "remote_manifest_fetch": False, "ocsp_fetch": False},
        "core": {"allowed_network_hosts": [], "decode_identity_assertions": False},
        "trust": {"trust_anchors": _anchors(trust),
                  "user_anchors": None, "allowed_list": None},
    }


def _anchors(trust: C2paTrust | None) -> str | None:
    """The PEM bundle to trust, or None (nothing trusted) for no or blank anchors."""
    if trust is None or not isinstance(trust.anchors_pem, str) or not trust.anchors_pem.strip():
        return None
    return trust.anchors_pem


def _read_store(data: bytes, mime: str, trust: C2paTrust | None) -> dict[str, Any] | None:
    """The manifest store as c2pa's JSON, validated; None when there is none.

    A fresh Context per read (about 0.1 ms): no shared or thread-local SDK state, nothing to
    carry across a fork, and the trust anchors are exactly the ones passed in."""
    fmt = mime.strip() if isinstance(mime, str) and "\x00" not in mime else None
    fmt = fmt or None  # no type: c2pa tells it from the bytes (it does so for a wrong one too)
    context = c2pa.Context.from_dict(_settings(trust))
    try:
        try:
            reader = c2pa.Reader(fmt, io.BytesIO(data), context=context)
        except (c2pa.C2paError.ManifestNotFound, c2pa.C2paError.NotSupported):
            return None
        with reader:
            store = json.loads(reader.json())
    finally:
        context.close()
    if not isinstance(store, dict):
        raise ValueError("manifest store is not a JSON object")
    return store


def _failed_read(exc: BaseException) -> list[Evidence]:
    message = one_line(exc)
    if isinstance(exc, c2pa.C2paError.RemoteManifest) or message.startswith("Remote"):
        match = _REMOTE_URL.search(message)
        return [_line("remote_manifest", match.group(1) if match else message)]
    return [_line("error", message)]


# --- lines -----------------------------------------------------------------------------------

def _line(field: str, value: Any, strength: Strength = "info",
          indicates: Indicates = "none") -> Evidence:
    """An evidence line with its text on one line: control and bidi-override characters and
    runs of blanks become one space, then ``clean_text`` cuts it to ``_MAX_TEXT``."""
    text = " ".join(_CONTROL.sub(" ", value).split()) if isinstance(value, str) else None
    return Evidence(SIGNAL, field, clean_text(text, _MAX_TEXT), strength, indicates)


def _lines(store: dict[str, Any], trust: C2paTrust | None) -> list[Evidence]:
    manifests = _dict(store.get("manifests"))
    active = _dict(manifests.get(_text(store.get("active_manifest")) or ""))
    if not active:
        return [_line("error", "manifest store has no active manifest")]
    results = _dict(store.get("validation_results"))
    failures = _failures(store, results)
    state = _state(store, results, failures, trust)
    out = [_line("validation_state", state)]

    strength = _SOURCE_STRENGTH[state]
    for name in _take(_source_types(active), _MAX_SOURCE_TYPES):
        short, direction = _source_type(name)
        out.append(_line("digitalSourceType", short, strength, direction))
    out += _signer(active)
    out += [_line("claim_generator", g) for g in _take(_generators(active), _MAX_GENERATORS)]
    out += [_line("software_agent", a) for a in _take(_agents(active), _MAX_AGENTS)]
    shown = [f for f in failures if not (state == "valid" and f[0] == UNTRUSTED)]
    out += [_line("failure", f"{code}: {why}" if why else code)
            for code, why in shown[:_MAX_FAILURES]]
    out += [_line("action", a) for a in _take(_action_names(active), _MAX_ACTIONS)]
    out += _ingredients(active, manifests, results, state)
    return out


def _state(store: dict[str, Any], results: dict[str, Any], failures: list[tuple[str, str]],
           trust: C2paTrust | None) -> str:
    """trusted / valid / invalid, decided by the active manifest alone.

    c2pa-rs also turns the store's ``validation_state`` to Invalid for an ingredient's
    failure; here that only weakens the ingredient's own lines. ``trusted`` needs c2pa-rs's
    ``signingCredential.trusted`` on the active manifest, no failure, and anchors of our own.
    Without results for the active manifest (older JSON) the store's state is used, unknown or
    missing states counting as invalid."""
    if any(code != UNTRUSTED for code, _ in failures):
        return "invalid"
    active = results.get("activeManifest")
    if isinstance(active, dict):
        success = _list(active.get("success"))
        trusted = any(_dict(e).get("code") == TRUSTED for e in success[:200])
        state = "trusted" if trusted else "valid"
    else:
        state = _STATES.get((_text(store.get("validation_state")) or "").lower(), "invalid")
        if results and state == "trusted":  # results that say nothing of the active manifest
            state = "valid"
    if state == "trusted" and (_anchors(trust) is None or failures):
        return "valid"
    return state


def _failures(holder: dict[str, Any], results: dict[str, Any]) -> list[tuple[str, str]]:
    """(code, explanation) of each failure of the active manifest of ``holder`` (the store,
    or an ingredient): from its validation results, or older JSON's flat list of problems."""
    if results:
        return _codes(_dict(results.get("activeManifest")).get("failure"))
    return _codes(holder.get("validation_status"))


def _codes(entries: Any) -> list[tuple[str, str]]:
    out: dict[str, str] = {}
    for entry in _list(entries)[:200]:
        entry = _dict(entry)
        code = _text(entry.get("code"), 80)
        if code and code not in out:
            out[code] = _text(entry.get("explanation"), 120) or ""
    return list(out.items())


def _assertions(manifest: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    out = []
    for assertion in _list(manifest.get("assertions"))[:1000]:
        assertion = _dict(assertion)
        label = _text(assertion.get("label"), 100) or ""
        if label == prefix or label.startswith(prefix + ".") or label.startswith(prefix + "__"):
            out.append(_dict(assertion.get("data")))
    return out


def _actions(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for data in _assertions(manifest, "c2pa.actions"):
        out += [_dict(a) for a in _list(data.get("actions"))[:1000]]
    return out


def _action_names(manifest: dict[str, Any]) -> list[str]:
    return [name for a in _actions(manifest) if (name := _text(a.get("action"), 100))]


def _source_types(manifest: dict[str, Any]) -> list[str]:
    """digitalSourceType values: on actions, and in an IPTC photo-metadata assertion."""
    out = [t for a in _actions(manifest) if (t := _text(a.get("digitalSourceType"), 300))]
    for data in _assertions(manifest, "stds.iptc"):
        value = data.get("Iptc4xmpExt:DigitalSourceType")
        if (t := _text(value, 300)):
            out.append(t)
    return out


def _source_type(value: str) -> tuple[str, Indicates]:
    """(short name, direction) of a digital source type URI; an unknown vocabulary is kept
    whole and points nowhere."""
    for prefix in _SOURCE_TYPE_PREFIXES:
        if value.startswith(prefix):
            short = value[len(prefix):].strip("/")
            if short and "/" not in short:
                return short, source_type_direction(short)
    return value, "none"


def _signer(manifest: dict[str, Any]) -> list[Evidence]:
    info = _dict(manifest.get("signature_info"))
    issuer, name = _text(info.get("issuer"), 100), _text(info.get("common_name"), 100)
    parts = [p for p in (issuer, name) if p]
    if len(parts) == 2 and parts[0] == parts[1]:
        parts = parts[:1]
    out = [_line("signer", " / ".join(parts))] if parts else []
    if (time := _text(info.get("time"), 60)):
        out.append(_line("signing_time", time))
    return out


def _generators(manifest: dict[str, Any]) -> list[str]:
    out = []
    for info in _list(manifest.get("claim_generator_info"))[:20]:
        info = _dict(info)
        name, version = _text(info.get("name"), 100), _text(info.get("version"), 40)
        if name:
            out.append(f"{name} {version}" if version else name)
    if (legacy := _text(manifest.get("claim_generator"), 150)):
        out.append(legacy)
    return out


def _agents(manifest: dict[str, Any]) -> list[str]:
    out = []
    for action in _actions(manifest):
        agent = action.get("softwareAgent")
        if isinstance(agent, dict):  # v2: a generator-info map
            name, version = _text(agent.get("name"), 100), _text(agent.get("version"), 40)
            agent = f"{name} {version}" if name and version else name
        if (text := _text(agent, 150)):
            out.append(text)
    return out


def _ingredients(active: dict[str, Any], manifests: dict[str, Any], results: dict[str, Any],
                 state: str) -> list[Evidence]:
    """Source types of the active manifest's direct ingredients, then their failures. Never
    ``trusted``: the state is about the active manifest's signature only."""
    delta_failures = [code for d in _list(results.get("ingredientDeltas"))[:200]
                      for code, _ in _codes(_dict(_dict(d).get("validationDeltas")).get("failure"))
                      if code != UNTRUSTED]
    types: list[Evidence] = []
    failed: list[str] = list(delta_failures)
    for ingredient in _list(active.get("ingredients"))[:_MAX_INGREDIENTS]:
        ingredient = _dict(ingredient)
        own = [code for code, _ in _failures(ingredient, _dict(
            ingredient.get("validation_results"))) if code != UNTRUSTED]
        failed += own
        manifest = _dict(manifests.get(_text(ingredient.get("active_manifest")) or ""))
        if not manifest or manifest is active:
            continue
        weak = state == "invalid" or bool(delta_failures) or bool(own)
        strength: Strength = "moderate" if weak else "strong"
        parent = _text(ingredient.get("relationship")) == "parentOf"
        for name in _source_types(manifest)[:_MAX_SOURCE_TYPES]:
            short, direction = _source_type(name)
            if not parent:
                direction = "ai_modified" if direction in ("ai", "ai_modified") else "none"
            types.append(_line("ingredient.digitalSourceType", short, strength, direction))
    return (list(dict.fromkeys(types))[:_MAX_INGREDIENT_TYPES]
            + [_line("ingredient.failure", c) for c in _take(failed, _MAX_INGREDIENT_FAILURES)])


# --- hostile JSON helpers --------------------------------------------------------------------

def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any, limit: int = _MAX_TEXT) -> str | None:
    return clean_text(value, limit) if isinstance(value, str) else None


def _take(values: list[str], limit: int) -> list[str]:
    """The first ``limit`` distinct values, in order."""
    return list(dict.fromkeys(values))[:limit]
