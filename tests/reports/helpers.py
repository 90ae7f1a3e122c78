"""Helpers of the report tests: the PDF is read with poppler (pdftotext)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def poppler(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is missing: `make sysdeps` installs poppler-utils")
        pytest.skip(f"{tool} is not installed (make sysdeps installs poppler-utils)")
    return found


def pdf_text(path: Path) -> str:
    done = subprocess.run([poppler("pdftotext"), "-raw", str(path), "-"],
                          capture_output=True, text=True, check=True)
    return done.stdout
