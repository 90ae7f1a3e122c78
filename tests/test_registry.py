"""The one registry type: order kept, duplicates refused, the kind's own error for a miss."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from safeguard.errors import EvidenceError
from safeguard.registry import Registry


@dataclass(frozen=True)
class Plugin:
    name: str
    magic: bytes = b""

    def detect(self, head: bytes) -> bool:
        return bool(self.magic) and head.startswith(self.magic)


def test_registered_in_order_and_found_by_name() -> None:
    zips, tars = Plugin("zip", b"PK"), Plugin("tar")
    registry = Registry[Plugin]("container reader", items=[zips, tars])
    assert registry.names() == ["zip", "tar"]
    assert list(registry) == [zips, tars]
    assert registry.get("tar") is tars
    assert "zip" in registry and "rar" not in registry
    assert len(registry) == 2


def test_a_second_plugin_of_one_name_is_refused() -> None:
    registry = Registry[Plugin]("container reader", items=[Plugin("zip")])
    with pytest.raises(ValueError, match=r"^container reader 'zip' is registered already$"):
        registry.register(Plugin("zip", b"PK"))
    assert registry.names() == ["zip"]


def test_a_missing_name_raises_the_kinds_error_naming_the_others() -> None:
    registry = Registry[Plugin]("evidence source", EvidenceError, [Plugin("directory")])
    with pytest.raises(EvidenceError) as missing:
        registry.get("rar")
    assert str(missing.value) == "no evidence source named 'rar' (one of directory)"
    worded = Registry[Plugin]("export format", EvidenceError, [Plugin("vics")],
                              missing=lambda name, names: f"no export format {name!r}")
    with pytest.raises(EvidenceError, match=r"^no export format 'x'$"):
        worded.get("x")
    with pytest.raises(LookupError):
        Registry[Plugin]("signal").get("pdq")


def test_detect_asks_in_registration_order() -> None:
    first, second = Plugin("a", b"AB"), Plugin("b", b"A")
    registry = Registry[Plugin]("kind", items=[first, second])
    assert registry.detect(b"ABC") is first
    assert registry.detect(b"AX") is second
    assert registry.detect(b"Z") is None


def test_deregister_and_a_plugin_without_a_name() -> None:
    registry = Registry[Plugin]("kind", items=[Plugin("a"), Plugin("b")])
    assert registry.deregister("a").name == "a"
    assert registry.names() == ["b"]
    registry.register(Plugin("a"))  # back, now last
    assert registry.names() == ["b", "a"]
    with pytest.raises(TypeError, match="needs a name"):
        registry.register(Plugin(""))
