"""C2PA evidence, read offline, from benign generated pictures signed at test time with a
throwaway PKI (tests/provenance/c2pa_testca.py): trusted only under the user's anchors, never
trusted once a signed byte changes, never a network request, never an exception."""

from __future__ import annotations

import http.server
import io
import json
import os
import socket
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import c2pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from safeguard.errors import SafeguardError
from safeguard.provenance.c2pa import (
    MAX_LINES,
    C2paTrust,
    c2pa_evidence,
    may_have_c2pa,
    source_type_direction,
)
from safeguard.provenance.evidence import Evidence
from tests.helpers import jpeg_bytes, png_bytes, scene
from tests.provenance.c2pa_testca import (
    INGREDIENT,
    TestCA,
    flip,
    jpeg_scan_byte,
    make_ca,
    manifest,
    sign,
)

SIGNER = "Safeguard Test Signers / Safeguard Test Signer"  # organisation / common name
GENERATOR = "SafeguardTestGenerator 1.0"


def webp_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "WEBP", quality=80)
    return buf.getvalue()


PLAIN = {"image/jpeg": lambda: jpeg_bytes(scene(11)), "image/png": lambda: png_bytes(scene(12)),
         "image/webp": lambda: webp_bytes(scene(13))}


def line(field: str, value: object, strength: str = "info", indicates: str = "none") -> Evidence:
    return Evidence("c2pa", field, value, strength, indicates)  # type: ignore[arg-type]


def expected(state: str, strength: str, source: str = "trainedAlgorithmicMedia",
             indicates: str = "ai") -> list[Evidence]:
    """The lines of a picture signed by ``sign`` with the default ``manifest``."""
    return [line("validation_state", state),
            line("digitalSourceType", source, strength, indicates),
            line("signer", SIGNER),
            line("claim_generator", GENERATOR),
            line("action", "c2pa.created")]


def failure_codes(lines: list[Evidence]) -> list[str]:
    return [str(e.value).split(":", 1)[0] for e in lines if e.field == "failure"]


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return make_ca()


@pytest.fixture(scope="module")
def trust(ca: TestCA) -> C2paTrust:
    return C2paTrust(ca.root_pem, "test-anchors.pem")


@pytest.fixture(scope="module")
def signed(ca: TestCA) -> dict[str, bytes]:
    """A benign picture per type, signed as trainedAlgorithmicMedia (c2pa.created)."""
    return {mime: sign(make(), mime, ca) for mime, make in PLAIN.items()}


# --- validation state and strengths ----------------------------------------------------------

@pytest.mark.parametrize("mime", ["image/jpeg", "image/png", "image/webp"])
def test_trusted_valid_and_untrusted(mime: str, signed: dict[str, bytes], trust: C2paTrust
                                     ) -> None:
    data = signed[mime]
    assert c2pa_evidence(data, mime, trust) == expected("trusted", "trusted")
    assert c2pa_evidence(data, mime, None) == expected("valid", "strong")
    unrelated = C2paTrust(make_ca(org="Unrelated PKI").root_pem, "other.pem")
    assert c2pa_evidence(data, mime, unrelated) == expected("valid", "strong")
    # blank anchors trust nothing
    assert c2pa_evidence(data, mime, C2paTrust("  \n", "blank.pem")) == expected("valid", "strong")


def test_wrong_or_missing_mime_is_detected_from_the_bytes(signed: dict[str, bytes],
                                                          trust: C2paTrust) -> None:
    want = expected("trusted", "trusted")
    assert c2pa_evidence(signed["image/png"], "image/jpeg", trust) == want
    assert c2pa_evidence(signed["image/jpeg"], "", trust) == want
    assert c2pa_evidence(signed["image/jpeg"], "application/x-unknown", trust) == want
    assert c2pa_evidence(signed["image/jpeg"], "image/jpeg\x00", trust) == want


@pytest.mark.parametrize(("source", "indicates"), [
    ("compositeWithTrainedAlgorithmicMedia", "ai_modified"),
    ("compositeSynthetic", "ai_modified"),
    ("algorithmicMedia", "ai"),
    ("digitalCapture", "camera"),
    ("digitalCreation", "none"),
])
def test_digital_source_types(source: str, indicates: str, ca: TestCA, trust: C2paTrust
                              ) -> None:
    data = sign(jpeg_bytes(scene(3)), "image/jpeg", ca, manifest(source))
    assert c2pa_evidence(data, "image/jpeg", trust) == expected(
        "trusted", "trusted", source, indicates)
    assert c2pa_evidence(data, "image/jpeg", None) == expected(
        "valid", "strong", source, indicates)


def test_source_type_direction_vocabulary() -> None:
    assert {name: source_type_direction(name) for name in [
        "trainedAlgorithmicMedia", "algorithmicMedia", "compositeWithTrainedAlgorithmicMedia",
        "compositeSynthetic", "digitalCapture", "computationalCapture", "negativeFilm",
        "compositeCapture", "composite", "algorithmicallyEnhanced", "humanEdits",
        "screenCapture", "TRAINEDALGORITHMICMEDIA"]} == {
        "trainedAlgorithmicMedia": "ai", "algorithmicMedia": "ai",
        "compositeWithTrainedAlgorithmicMedia": "ai_modified",
        "compositeSynthetic": "ai_modified", "digitalCapture": "camera",
        "computationalCapture": "camera", "negativeFilm": "camera",
        "compositeCapture": "camera", "composite": "none", "algorithmicallyEnhanced": "none",
        "humanEdits": "none", "screenCapture": "none", "TRAINEDALGORITHMICMEDIA": "ai"}


def test_unknown_vocabulary_is_kept_whole_and_points_nowhere(ca: TestCA, trust: C2paTrust
                                                             ) -> None:
    other = "https://example.invalid/vocab/trainedAlgorithmicMedia"
    definition = manifest(None, actions=({"action": "c2pa.created", "digitalSourceType": other},))
    data = sign(jpeg_bytes(scene(4)), "image/jpeg", ca, definition)
    assert c2pa_evidence(data, "image/jpeg", trust)[1] == line(
        "digitalSourceType", other, "trusted", "none")


def test_ingredients_are_never_trusted(ca: TestCA, trust: C2paTrust,
                                       signed: dict[str, bytes]) -> None:
    ai_parent = signed["image/jpeg"]
    edit = manifest(None, generator="TestEditor", actions=(
        {"action": "c2pa.opened", "parameters": {"ingredientIds": [INGREDIENT]}},
        {"action": "c2pa.edited", "softwareAgent": {"name": "TestBrush", "version": "2"}}))
    data = sign(jpeg_bytes(scene(5)), "image/jpeg", ca, edit, ingredient=("parentOf", ai_parent))
    assert c2pa_evidence(data, "image/jpeg", trust) == [
        line("validation_state", "trusted"),
        line("signer", SIGNER),
        line("claim_generator", "TestEditor 1.0"),
        line("software_agent", "TestBrush 2"),
        line("action", "c2pa.opened"),
        line("action", "c2pa.edited"),
        line("ingredient.digitalSourceType", "trainedAlgorithmicMedia", "strong", "ai"),
    ]
    # an AI component placed into a human-made picture makes it AI-modified
    collage = manifest("digitalCreation", actions=(
        "c2pa.created", {"action": "c2pa.placed", "parameters": {"ingredientIds": [INGREDIENT]}}))
    data = sign(jpeg_bytes(scene(6)), "image/jpeg", ca, collage,
                ingredient=("componentOf", ai_parent))
    lines = c2pa_evidence(data, "image/jpeg", trust)
    assert lines[1] == line("digitalSourceType", "digitalCreation", "trusted", "none")
    assert lines[-1] == line("ingredient.digitalSourceType", "trainedAlgorithmicMedia",
                             "strong", "ai_modified")


def test_a_failed_ingredient_leaves_the_active_state_alone(ca: TestCA, trust: C2paTrust,
                                                          signed: dict[str, bytes]) -> None:
    """c2pa-rs calls the whole store Invalid for an ingredient's failure; only the active
    manifest decides the state here, the ingredient's own lines are weakened instead."""
    parent = signed["image/jpeg"]
    tampered = flip(parent, jpeg_scan_byte(parent))
    edit = manifest(None, generator="TestEditor", actions=(
        {"action": "c2pa.opened", "parameters": {"ingredientIds": [INGREDIENT]}}, "c2pa.edited"))
    data = sign(jpeg_bytes(scene(5)), "image/jpeg", ca, edit, ingredient=("parentOf", tampered))
    lines = c2pa_evidence(data, "image/jpeg", trust)
    assert lines[0] == line("validation_state", "trusted")
    assert lines[-2:] == [
        line("ingredient.digitalSourceType", "trainedAlgorithmicMedia", "moderate", "ai"),
        line("ingredient.failure", "assertion.dataHash.mismatch")]


def test_texts_are_one_short_line_and_lines_are_capped(ca: TestCA, trust: C2paTrust) -> None:
    actions = ("c2pa.created", *[f"com.example.step{i}" for i in range(30)])
    definition = manifest(generator="Gen\n\u202eerated\t" + "x" * 500, actions=actions)
    lines = c2pa_evidence(sign(jpeg_bytes(scene(6)), "image/jpeg", ca, definition),
                          "image/jpeg", trust)
    generator = next(e.value for e in lines if e.field == "claim_generator")
    assert generator == "Gen erated " + "x" * 88 + "… 1.0"  # name cut at 100, then version
    assert [e.value for e in lines if e.field == "action"] == [
        "c2pa.created", *[f"com.example.step{i}" for i in range(11)]]
    assert len(lines) <= MAX_LINES


# --- tampering -------------------------------------------------------------------------------

def _png_chunk(data: bytes, kind: bytes) -> tuple[int, int]:
    """(start, end) of the first ``kind`` chunk's data."""
    pos = 8
    while pos < len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        if data[pos + 4:pos + 8] == kind:
            return pos + 8, pos + 8 + length
        pos += 12 + length
    raise AssertionError(f"no {kind!r} chunk")


def _store_range(data: bytes, mime: str) -> tuple[int, int]:
    """Where the embedded manifest store lies: the JPEG APP11 segments or PNG caBX chunk."""
    if mime == "image/png":
        return _png_chunk(data, b"caBX")
    first = data.index(b"\xff\xeb")
    pos = first
    while data[pos:pos + 2] == b"\xff\xeb":
        pos += 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]
    return first, pos


def test_changed_pixel_byte_is_invalid(signed: dict[str, bytes], trust: C2paTrust) -> None:
    jpeg = signed["image/jpeg"]
    start, end = _png_chunk(signed["image/png"], b"IDAT")
    for mime, data in [("image/jpeg", flip(jpeg, jpeg_scan_byte(jpeg))),
                       ("image/png", flip(signed["image/png"], (start + end) // 2))]:
        lines = c2pa_evidence(data, mime, trust)
        assert lines[:2] == [line("validation_state", "invalid"),
                             line("digitalSourceType", "trainedAlgorithmicMedia", "moderate", "ai")]
        assert failure_codes(lines) == ["assertion.dataHash.mismatch"]
        assert all(e.strength != "trusted" for e in lines)


def test_changed_signature_is_invalid(signed: dict[str, bytes], trust: C2paTrust) -> None:
    data = signed["image/jpeg"]
    box = data.rindex(b"c2pa.signature")
    signature = data.index(b"\xf6\x58\x40", box) + 3  # nil payload, then a 64-byte string
    lines = c2pa_evidence(flip(data, signature + 10), "image/jpeg", trust)
    assert lines[0] == line("validation_state", "invalid")
    assert failure_codes(lines) == ["claimSignature.mismatch"]
    assert all(e.strength != "trusted" for e in lines)


# --- malformed stores ------------------------------------------------------------------------

C2PA_STORE_UUID = bytes.fromhex("6332706100110010800000aa00389b71")


def _jumbf_store(rest: bytes, jumd_length: int | None = None) -> bytes:
    """A JUMBF superbox labelled as a C2PA manifest store, with ``rest`` as its content."""
    jumd_body = C2PA_STORE_UUID + b"\x03c2pa\x00"
    jumd = struct.pack(">I", jumd_length or 8 + len(jumd_body)) + b"jumd" + jumd_body
    return struct.pack(">I", 8 + len(jumd) + len(rest)) + b"jumb" + jumd + rest


def _with_app11(jpeg: bytes, payload: bytes) -> bytes:
    segment = b"JP\x02\x11\x00\x00\x00\x01" + payload
    return jpeg[:2] + b"\xff\xeb" + struct.pack(">H", len(segment) + 2) + segment + jpeg[2:]


def _with_cabx(png: bytes, payload: bytes) -> bytes:
    chunk = struct.pack(">I", len(payload)) + b"caBX" + payload
    return png[:33] + chunk + struct.pack(">I", zlib.crc32(b"caBX" + payload)) + png[33:]


def _one_error(lines: list[Evidence]) -> None:
    assert len(lines) == 1, lines
    (only,) = lines
    assert (only.signal, only.field, only.strength, only.indicates) == (
        "c2pa", "error", "info", "none")
    assert isinstance(only.value, str) and only.value and "\n" not in only.value
    assert len(only.value) <= 201


def test_malformed_stores_give_one_error_line(signed: dict[str, bytes], trust: C2paTrust
                                              ) -> None:
    jpeg, png = signed["image/jpeg"], signed["image/png"]
    start, end = _store_range(jpeg, "image/jpeg")
    noise = bytes(range(256)) * 4
    cases = {
        "truncated inside the store": (jpeg[:(start + end) // 2], "image/jpeg"),
        "store cut short, picture intact": (
            _with_app11(jpeg_bytes(scene(7)), jpeg[start + 12:(start + end) // 2]),
            "image/jpeg"),
        "random content in an APP11 store": (
            _with_app11(jpeg_bytes(scene(7)), _jumbf_store(noise)), "image/jpeg"),
        "random content in a caBX store": (
            _with_cabx(png_bytes(scene(8)), _jumbf_store(noise)), "image/png"),
        "random caBX chunk": (_with_cabx(png_bytes(scene(8)), b"c2pa" + noise), "image/png"),
        "huge declared JUMBF length (JPEG)": (
            _with_app11(jpeg_bytes(scene(7)), _jumbf_store(noise, 0xFFFFFFF0)), "image/jpeg"),
        "huge declared JUMBF length (PNG)": (
            _with_cabx(png_bytes(scene(8)), _jumbf_store(noise, 0x7FFFFFFF)), "image/png"),
    }
    for name, (data, mime) in cases.items():
        assert may_have_c2pa(data), name
        _one_error(c2pa_evidence(data, mime, trust))
    # the real store's own descriptor given a huge length
    jumd = png.index(b"jumd")
    _one_error(c2pa_evidence(png[:jumd - 4] + b"\xff\xff\xff\xf0" + png[jumd:], "image/png",
                             trust))


def test_plain_bytes_in_an_app11_segment_are_no_manifest(trust: C2paTrust) -> None:
    data = _with_app11(jpeg_bytes(scene(9)), b"c2pa" + bytes(range(256)))
    assert c2pa_evidence(data, "image/jpeg", trust) == []


# --- prefilter -------------------------------------------------------------------------------

def test_may_have_c2pa(signed: dict[str, bytes], ca: TestCA) -> None:
    for mime, data in signed.items():
        assert may_have_c2pa(data), mime
        assert c2pa_evidence(data, mime, None) != []
    compressed = c2pa.Context.from_dict({"core": {"prefer_compress_manifests": True}})
    try:  # a brotli-compressed store keeps its "c2pa" label in the clear
        builder = c2pa.Builder(json.dumps(manifest()), context=compressed)
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(
            b"es256", ca.chain_pem.encode(), ca.key_pem.encode(), None))
        out = io.BytesIO()
        builder.sign(signer, "image/jpeg", io.BytesIO(jpeg_bytes(scene(10))), out)
    finally:
        compressed.close()
    assert b"brob" in out.getvalue() and may_have_c2pa(out.getvalue())
    assert c2pa_evidence(out.getvalue(), "image/jpeg", None)[0] == line("validation_state",
                                                                        "valid")
    for mime, make in PLAIN.items():
        plain = make()
        assert not may_have_c2pa(plain), mime
        assert c2pa_evidence(plain, mime, None) == []
    assert not may_have_c2pa(b"")
    assert c2pa_evidence(b"", "image/jpeg", None) == []


# --- offline ---------------------------------------------------------------------------------

class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        self.send_response(404)
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def local_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server recording every request it gets (c2pa-rs's HTTP client is
    native, so only a real listener can see whether it went to the network)."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    handler = type("Handler", (_Recorder,), {"requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", handler.requests
    finally:
        server.shutdown()
        server.server_close()


def _sdk_read(data: bytes, config: dict) -> None:
    """Read with the SDK's own (networked) settings, ignoring the outcome."""
    context = c2pa.Context.from_dict(config)
    try:
        c2pa.Reader("image/jpeg", io.BytesIO(data), context=context).close()
    except c2pa.C2paError:
        pass
    finally:
        context.close()


def test_nothing_goes_to_the_network(local_server: tuple[str, list[str]],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    base, requests = local_server
    ca = make_ca(ocsp_url=f"{base}/ocsp")  # the signer names an OCSP responder
    trust = C2paTrust(ca.root_pem, "anchors.pem")
    picture = jpeg_bytes(scene(14))
    embedded = sign(picture, "image/jpeg", ca)
    remote_only = sign(picture, "image/jpeg", ca, remote_url=f"{base}/manifest.c2pa",
                       embed=False)
    assert may_have_c2pa(remote_only)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    with monkeypatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket.socket, "connect_ex", refuse)
        patch.setattr(socket, "getaddrinfo", refuse)
        patch.setattr(socket, "create_connection", refuse)
        assert c2pa_evidence(embedded, "image/jpeg", trust) == expected("trusted", "trusted")
        assert c2pa_evidence(remote_only, "image/jpeg", trust) == [
            line("remote_manifest", f"{base}/manifest.c2pa")]
    assert requests == []

    # the controls: the SDK left to its defaults fetches both, and the server sees it
    _sdk_read(embedded, {"verify": {"ocsp_fetch": True}, "trust": {"trust_anchors": ca.root_pem}})
    _sdk_read(remote_only, {})
    assert len(requests) == 2  # an OCSP GET (base64 request in the path), then the manifest
    assert requests[0] != "/manifest.c2pa"
    assert requests[1] == "/manifest.c2pa"


# --- fuzz ------------------------------------------------------------------------------------

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture(scope="module")
def fuzz_target(ca: TestCA, trust: C2paTrust) -> dict[str, object]:
    out: dict[str, object] = {}
    for mime, data in [("image/jpeg", sign(jpeg_bytes(scene(15, (96, 64))), "image/jpeg", ca)),
                       ("image/png", sign(png_bytes(scene(16, (48, 32))), "image/png", ca))]:
        out[mime] = (data, _store_range(data, mime), c2pa_evidence(data, mime, trust))
    return out


@FUZZ
@given(mime=st.sampled_from(["image/jpeg", "image/png"]), data=st.data())
def test_fuzzed_signed_files(mime: str, data: st.DataObject, fuzz_target: dict[str, object],
                             trust: C2paTrust) -> None:
    original, (start, end), original_lines = fuzz_target[mime]  # type: ignore[misc]
    assert original_lines[0] == line("validation_state", "trusted")
    anywhere = st.integers(0, len(original) - 1)
    in_store = st.integers(start, end - 1)
    edits = data.draw(st.lists(st.tuples(st.one_of(in_store, anywhere), st.integers(0, 255)),
                               max_size=6))
    mutated = bytearray(original)
    for pos, value in edits:
        mutated[pos] = value
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(original))))
    tail = data.draw(st.sampled_from([b"", b"\x00", b"c2pa"]))
    result = bytes(mutated[:cut]) + tail

    lines = c2pa_evidence(result, mime, trust)

    assert len(lines) <= MAX_LINES
    assert all(isinstance(e, Evidence) and e.signal == "c2pa" for e in lines)
    if any(e.strength == "trusted" for e in lines):
        # c2pa signs the claim and hashes the asset, not every byte of the store: a byte of
        # the unprotected COSE padding or an outer box length may change and stay trusted.
        # What must hold: every byte outside the store is the original, and so is all that
        # the evidence reports.
        assert len(result) == len(original)
        changed = [i for i in range(len(original)) if result[i] != original[i]]
        assert all(start <= i < end for i in changed)
        assert lines == original_lines


def test_fuzz_control_padding_is_not_signed(fuzz_target: dict[str, object],
                                            trust: C2paTrust) -> None:
    """Why the fuzz property allows a trusted result for changed bytes: the COSE padding
    (zeros before the signature) is outside what the signature covers."""
    original, _, original_lines = fuzz_target["image/jpeg"]  # type: ignore[misc]
    box = original.rindex(b"c2pa.signature")
    pad = original.index(b"\xf6\x58\x40", box) - 8
    assert original[pad] == 0
    assert c2pa_evidence(flip(original, pad), "image/jpeg", trust) == original_lines


# --- trust file ------------------------------------------------------------------------------

def test_trust_from_file(tmp_path: Path, ca: TestCA, signed: dict[str, bytes]) -> None:
    path = tmp_path / "anchors.pem"
    other = make_ca(org="Unrelated PKI")
    path.write_text("comment line\n" + other.root_pem + ca.key_pem + ca.root_pem)
    trust = C2paTrust.from_file(path)
    assert trust.source == str(path)
    assert trust.anchors_pem.count("-----BEGIN CERTIFICATE-----") == 2
    assert "PRIVATE KEY" not in trust.anchors_pem
    assert c2pa_evidence(signed["image/jpeg"], "image/jpeg", trust) == expected("trusted",
                                                                                "trusted")


def test_trust_file_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(SafeguardError) as err:
        C2paTrust.from_file(missing)
    assert str(err.value) == f"C2PA trust-anchor file not found: {missing}"

    empty = tmp_path / "empty.pem"
    empty.write_text("no certificates here\n-----BEGIN PRIVATE KEY-----\nAAAA\n"
                     "-----END PRIVATE KEY-----\n")
    with pytest.raises(SafeguardError) as err:
        C2paTrust.from_file(empty)
    assert str(err.value) == f"C2PA trust-anchor file holds no PEM certificate: {empty}"

    damaged = tmp_path / "damaged.pem"
    damaged.write_text("-----BEGIN CERTIFICATE-----\n!!not base64!!\n-----END CERTIFICATE-----\n")
    with pytest.raises(SafeguardError) as err:
        C2paTrust.from_file(damaged)
    assert str(err.value) == (
        f"C2PA trust-anchor file holds a damaged PEM certificate (number 1): {damaged}")

    with pytest.raises(SafeguardError) as err:
        C2paTrust.from_file(tmp_path)
    assert str(err.value) == f"C2PA trust-anchor file is a directory: {tmp_path}"

    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked.pem"
        locked.write_text("x")
        locked.chmod(0)
        with pytest.raises(SafeguardError) as err:
            C2paTrust.from_file(locked)
        assert str(err.value) == (
            f"C2PA trust-anchor file cannot be read: {locked}: permission denied")
