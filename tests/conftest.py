"""Shared fixtures: every randomised test draws from a seeded Generator and names its seed."""

from __future__ import annotations

import zlib

import numpy as np
import pytest


@pytest.fixture
def rng(request) -> np.random.Generator:
    """A Generator seeded from the test's name, so a failure reproduces exactly.

    The seed is recorded in the test report and printed by the failing assertion where it matters.
    """
    seed = zlib.crc32(request.node.nodeid.encode())  # stable across runs, unlike hash()
    request.node.user_properties.append(("seed", seed))
    return np.random.default_rng(seed)
