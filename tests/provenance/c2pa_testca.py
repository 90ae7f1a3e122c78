"""A throwaway C2PA test PKI, built at test time, benign pictures signed with it, and the byte
flips that tamper with a signed picture.

``TestCA`` is an ES256 (P-256) root CA and a leaf claim-signing certificate with the profile
c2pa-rs checks: X.509 v3, not a CA, key usage ``digitalSignature`` (critical), an extended key
usage it accepts (``emailProtection`` plus the C2PA claim-signing OID), subject and authority
key identifiers. Nothing is written to disk and no timestamp authority is used (offline), so the
signatures carry no trusted time: validation uses the certificate's validity at read time.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import struct
from dataclasses import dataclass
from typing import Any

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

#: C2PA claim-signing extended key usage (C2PA 2.x, "id-kp-c2pa-claim-signing")
C2PA_CLAIM_SIGNING = x509.ObjectIdentifier("1.3.6.1.4.1.62558.2.1")

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
INGREDIENT = "ingredient_1"


def _name(org: str, cn: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "XX"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


@dataclass(frozen=True)
class TestCA:
    __test__ = False  # not a pytest test class

    root_pem: str
    leaf_pem: str
    key_pem: str  # PKCS#8 private key of the leaf

    @property
    def chain_pem(self) -> str:
        """What goes in the manifest: the leaf, then its issuer."""
        return self.leaf_pem + self.root_pem


def make_ca(org: str = "Safeguard Test PKI", leaf_cn: str = "Safeguard Test Signer",
            ocsp_url: str | None = None) -> TestCA:
    """A fresh root and leaf; ``ocsp_url`` puts an OCSP responder address in the leaf."""
    now = dt.datetime.now(dt.UTC)
    not_before, not_after = now - dt.timedelta(days=1), now + dt.timedelta(days=30)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
    root = (
        x509.CertificateBuilder()
        .subject_name(_name(org, "Test Root CA")).issuer_name(_name(org, "Test Root CA"))
        .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(root_ski, critical=False)
        .sign(root_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_builder = (
        x509.CertificateBuilder()
        .subject_name(_name("Safeguard Test Signers", leaf_cn)).issuer_name(root.subject)
        .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.EMAIL_PROTECTION, C2PA_CLAIM_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski),
                       critical=False)
    )
    if ocsp_url:
        responder = x509.AccessDescription(AuthorityInformationAccessOID.OCSP,
                                           x509.UniformResourceIdentifier(ocsp_url))
        leaf_builder = leaf_builder.add_extension(
            x509.AuthorityInformationAccess([responder]), critical=False)
    leaf = leaf_builder.sign(root_key, hashes.SHA256())
    key_pem = leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode("ascii")
    return TestCA(_pem(root), _pem(leaf), key_pem)


def manifest(source_type: str | None = "trainedAlgorithmicMedia",
             generator: str = "SafeguardTestGenerator",
             actions: tuple[str | dict[str, Any], ...] = ("c2pa.created",)) -> dict[str, Any]:
    """A manifest definition: the first action carries the IPTC digital source type; an
    action given as a dict is taken as it is."""
    acts: list[dict[str, Any]] = []
    for i, action in enumerate(actions):
        act: dict[str, Any] = {"action": action} if isinstance(action, str) else dict(action)
        if i == 0 and source_type:
            act["digitalSourceType"] = IPTC + source_type
        acts.append(act)
    return {
        "claim_generator_info": [{"name": generator, "version": "1.0"}],
        "title": "benign test picture",
        "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": acts}}],
    }


def _signer(ca: TestCA) -> c2pa.Signer:
    info = c2pa.C2paSignerInfo(b"es256", ca.chain_pem.encode(), ca.key_pem.encode(), None)
    return c2pa.Signer.from_info(info)


def sign(data: bytes, mime: str, ca: TestCA, definition: dict[str, Any] | None = None,
         remote_url: str | None = None, embed: bool = True,
         ingredient: tuple[str, bytes] | None = None) -> bytes:
    """``data`` (a benign picture of type ``mime``) with a C2PA manifest signed by ``ca``.

    ``remote_url`` records a remote-manifest reference in the asset; ``embed=False`` leaves the
    manifest store out of the asset (so only the remote reference is left). ``ingredient`` is
    (relationship, a signed JPEG) added under the label ``INGREDIENT`` for actions to name."""
    context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}},
                                      "verify": {"verify_after_sign": False}})
    try:
        with c2pa.Builder(json.dumps(definition or manifest()), context=context) as builder:
            if remote_url is not None:
                builder.set_remote_url(remote_url)
            if not embed:
                builder.set_no_embed()
            if ingredient is not None:
                relationship, picture = ingredient
                builder.add_ingredient(
                    json.dumps({"title": "ingredient.jpg", "relationship": relationship,
                                "label": INGREDIENT}), "image/jpeg", io.BytesIO(picture))
            signer = _signer(ca)
            try:
                out = io.BytesIO()
                builder.sign(signer, mime, io.BytesIO(data), out)
            finally:
                signer.close()
    finally:
        context.close()
    return out.getvalue()


# -- tampering -------------------------------------------------------------------------------

def flip(data: bytes, pos: int, mask: int = 0x01) -> bytes:
    return data[:pos] + bytes([data[pos] ^ mask]) + data[pos + 1:]


def jpeg_scan_byte(data: bytes) -> int:
    """A byte in the middle of the entropy-coded image data whose flip makes no marker."""
    sos = 2  # walk the segments: the manifest's random signature bytes may hold FF DA too
    while data[sos + 1] != 0xDA:
        sos += 2 + struct.unpack(">H", data[sos + 2:sos + 4])[0]
    start, end = sos + 2 + struct.unpack(">H", data[sos + 2:sos + 4])[0], data.rindex(b"\xff\xd9")
    pos = (start + end) // 2
    while data[pos] in (0xFE, 0xFF) or data[pos - 1] == 0xFF:
        pos += 1
    return pos
