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


@pytest.fixture(scope="session")
def book(tmp_path_factory):
    """The book, built once per test session as `make book` builds it (see book_build.py)."""
    import book_build

    return book_build.build_book(tmp_path_factory.mktemp("book"))

