"""The lab key: the Ed25519 key pair that signs a case's audit checkpoints.

``safeguard key create`` writes the private key as unencrypted PKCS#8 PEM with mode 0600,
never inside a case folder, and its public key beside it (``NAME.pub``, SubjectPublicKeyInfo
PEM). Safeguard signs with the key ``SAFEGUARD_LAB_KEY`` names, else with
``HOME/keys/lab-ed25519.pem`` when that exists; with neither, nothing is signed. A key's
fingerprint is the SHA-256 of its 32 raw public-key bytes, in hex (the first 16 hex digits
are its short form in reports).
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from safeguard.errors import AuditError

#: the environment variable naming the lab key's file (it wins over the home's key)
LAB_KEY_ENV = "SAFEGUARD_LAB_KEY"
KEY_FILE = "lab-ed25519.pem"
#: digits of a fingerprint that reports and the CLI show
SHORT = 16


def default_key_path(home: Path) -> Path:
    """Where ``safeguard key create`` puts the lab key of a home by default."""
    return home / "keys" / KEY_FILE


def key_path(home: Path) -> Path:
    """The lab key Safeguard signs with for ``home``: ``SAFEGUARD_LAB_KEY``, else the
    home's default."""
    configured = os.environ.get(LAB_KEY_ENV)
    return Path(configured).expanduser().absolute() if configured else default_key_path(home)


def public_path(private: Path) -> Path:
    """The public key file beside a private key: ``lab-ed25519.pem`` → ``lab-ed25519.pub``."""
    if private.suffix == ".pem":
        return private.with_suffix(".pub")
    return private.with_name(private.name + ".pub")


@dataclass(frozen=True)
class PublicKey:
    """An Ed25519 public key: its 32 raw bytes."""

    raw: bytes

    @classmethod
    def from_hex(cls, text: str) -> PublicKey:
        raw = bytes.fromhex(text)
        if len(raw) != 32:
            raise ValueError("an Ed25519 public key has 32 bytes")
        return cls(raw)

    @property
    def hex(self) -> str:
        return self.raw.hex()

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    @property
    def short(self) -> str:
        return self.fingerprint[:SHORT]

    def verifies(self, signature: bytes, message: bytes) -> bool:
        """Whether ``signature`` is this key's over ``message``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class LabKey:
    """The lab's private key, loaded from ``path``."""

    path: Path
    private: Ed25519PrivateKey

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw))

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)


def _public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def create_key(path: Path, cases_dir: Path) -> LabKey:
    """A new lab key written to ``path`` (mode 0600) and its public key beside it; refused
    inside ``cases_dir`` and when either file exists (a key is never overwritten)."""
    path = path.expanduser().absolute()
    public = public_path(path)
    if path.resolve().is_relative_to(cases_dir.resolve()):
        raise AuditError(f"{path} is inside the case folders ({cases_dir}): keep the lab "
                         "key outside them, so that a copied case never carries it")
    for existing in (path, public):
        if existing.exists() or existing.is_symlink():
            raise AuditError(f"{existing} exists already: a lab key is never overwritten "
                             "(the cases it signed need its public key)")
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise AuditError(f"{path} exists already: a lab key is never overwritten (the cases "
                         "it signed need its public key)") from None
    except OSError as exc:
        raise AuditError(f"cannot write {path}: {(exc.strerror or str(exc)).lower()}") from None
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)  # whatever the umask
        handle.write(pem)
    try:
        with open(public, "xb") as handle:
            handle.write(_public_pem(private.public_key()))
    except OSError as exc:
        path.unlink()
        raise AuditError(f"cannot write {public}: {(exc.strerror or str(exc)).lower()}"
                         ) from None
    return LabKey(path, private)


_LOADED: dict[tuple[str, int, int, int], LabKey] = {}


def load_lab_key(path: Path) -> LabKey:
    """The private key in ``path``; refused when others can read the file or it holds no
    Ed25519 private key in PEM."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise AuditError(f"lab key {path} does not exist") from None
    except OSError as exc:
        raise AuditError(f"cannot read lab key {path}: "
                         f"{(exc.strerror or str(exc)).lower()}") from None
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise AuditError(f"lab key {path} is open to others (mode {mode:o}): make it "
                         f"private with: chmod 600 {path}")
    stamp = (str(path), info.st_ino, info.st_mtime_ns, info.st_size)
    if stamp in _LOADED:
        return _LOADED[stamp]
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise AuditError(f"cannot read lab key {path}: "
                         f"{(exc.strerror or str(exc)).lower()}") from None
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditError(f"lab key {path} is not an unencrypted Ed25519 private key in PEM")
    _LOADED[stamp] = LabKey(path, key)
    return _LOADED[stamp]


def load_public_key(path: Path) -> PublicKey:
    """The public key of a PEM file holding an Ed25519 public key (``NAME.pub``) or a
    private one."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AuditError(f"cannot read key {path}: {(exc.strerror or str(exc)).lower()}"
                         ) from None
    key: object = None
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            private = None
        if isinstance(private, Ed25519PrivateKey):
            key = private.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise AuditError(f"{path} holds no Ed25519 key in PEM")
    return PublicKey(key.public_bytes(serialization.Encoding.Raw,
                                      serialization.PublicFormat.Raw))


def find_lab_key(home: Path) -> LabKey | None:
    """The lab key Safeguard signs with for ``home``, or None when there is none: the
    home's default file is absent and ``SAFEGUARD_LAB_KEY`` is not set. A key named by
    ``SAFEGUARD_LAB_KEY`` that is missing, or any key that cannot be used, is an error."""
    path = key_path(home)
    if not os.environ.get(LAB_KEY_ENV) and not (path.exists() or path.is_symlink()):
        return None
    if not path.exists() and os.environ.get(LAB_KEY_ENV):
        raise AuditError(f"{LAB_KEY_ENV} names {path}, which does not exist")
    return load_lab_key(path)
