"""Every evidence source module is registered once, in detection order; duplicates refused."""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
from pathlib import Path

import pytest

import safeguard.evidence as evidence_pkg
from safeguard.errors import EvidenceError
from safeguard.evidence import SOURCES, open_source
from safeguard.evidence.directory import DirectorySource
from safeguard.signals import PICTURE_SIGNALS, PdqSignal

NOT_SOURCES = {"base", "containers", "images"}  # the protocol, container readers, image formats


def test_every_source_module_is_registered() -> None:
    found = []
    for module_info in pkgutil.iter_modules(evidence_pkg.__path__):
        if module_info.name in NOT_SOURCES:
            continue
        module = importlib.import_module(f"safeguard.evidence.{module_info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and hasattr(cls, "detect") and hasattr(
                    cls, "open_item"):
                found.append(cls.name)
    assert sorted(found) == sorted(SOURCES.names())
    # disk images are recognised before the catch-all single-file source
    assert SOURCES.names() == ["directory", "diskimage", "file"]


def test_duplicate_registrations_are_refused() -> None:
    with pytest.raises(ValueError, match="evidence source 'directory' is registered already"):
        SOURCES.register(DirectorySource)
    with pytest.raises(ValueError, match="picture signal 'pdq' is registered already"):
        PICTURE_SIGNALS.register(PdqSignal())
    assert [s.name for s in PICTURE_SIGNALS] == ["exif", "pdq", "keypoints", "provenance"]


def test_the_messages_the_person_at_the_keyboard_sees(tmp_path: Path) -> None:
    with pytest.raises(EvidenceError) as caught:
        SOURCES.get("x")
    assert str(caught.value) == "no evidence source named 'x'"
    with pytest.raises(EvidenceError) as caught:
        open_source(tmp_path / "missing")
    assert str(caught.value) == f"evidence not found: {tmp_path / 'missing'}"
    os.mkfifo(tmp_path / "pipe")  # neither a folder nor a file: nothing opens it
    with pytest.raises(EvidenceError) as caught:
        open_source(tmp_path / "pipe")
    assert str(caught.value) == f"no evidence source can open {tmp_path / 'pipe'}"
    assert open_source(tmp_path).name == "directory"
