"""Every evidence source module is registered once, in detection order; duplicates refused."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import safeguard.evidence as evidence_pkg
from safeguard.evidence import SOURCES, SourceRegistry
from safeguard.evidence.directory import DirectorySource
from safeguard.signals import PICTURE_SIGNALS, PdqSignal, SignalRegistry

NOT_SOURCES = {"base", "archive"}  # the protocol, and the container readers


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
        SourceRegistry([DirectorySource, DirectorySource])
    with pytest.raises(ValueError, match="signal registered twice: pdq"):
        SignalRegistry([PdqSignal(), PdqSignal()])
    assert [s.name for s in PICTURE_SIGNALS] == ["exif", "pdq", "provenance"]
