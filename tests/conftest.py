"""Shared fixtures: every randomised test draws from a seeded Generator and names its seed."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng(request) -> np.random.Generator:
    """A Generator seeded from the test's name, so a failure reproduces exactly.

    The seed is attached to the test report (``-ra`` shows it on failure).
    """
    seed = abs(hash(request.node.nodeid)) % (2**32)
    request.node.user_properties.append(("seed", seed))
    return np.random.default_rng(seed)
