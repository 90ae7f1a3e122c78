"""The hash-set format tests' fixtures; their builders are in ``helpers.py``."""

from __future__ import annotations

import random

import pytest


@pytest.fixture
def rng() -> random.Random:
    return random.Random(20240611)
