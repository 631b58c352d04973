"""Shared fixtures: every randomised test draws from a seeded Generator and names its seed; the
built book, made once per test session however many xdist workers share it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

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


SHARED_BUILD = "LONG_MEMORY_SHARED_BOOK_BUILD"  # the folder of a build every xdist worker reads
BUILD_WAIT = 2700  # seconds a worker waits for the shared build before it gives up
_BUILD_KEY = pytest.StashKey[tuple]()  # (process, folder) of the shared build, in the controller


def pytest_configure(config):
    """In the controller of a parallel run of the whole suite, start building the book at once.

    The build takes minutes of one core; started here, it overlaps with the tests that need no
    book on both workers, and no worker builds a copy of its own.
    """
    if os.environ.get("PYTEST_XDIST_WORKER") or not getattr(config.option, "numprocesses", None):
        return
    if (config.option.markexpr or "").strip():  # a selection such as -m "not slow" needs no book
        return
    folder = Path(tempfile.mkdtemp(prefix="long-memory-book-"))
    log = open(folder / "build.log", "w")
    process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("book_build.py")), str(folder)],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    os.environ[SHARED_BUILD] = str(folder)  # the workers start after this and inherit it
    config.stash[_BUILD_KEY] = (process, folder)


def pytest_unconfigure(config):
    process, folder = config.stash.get(_BUILD_KEY, (None, None))
    if process is None:
        return
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    shutil.rmtree(folder, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    """The tests of the built book run last: while the shared build runs, the workers have the
    other tests to do, instead of both waiting for the book at the start."""
    items.sort(key=lambda item: "book" in getattr(item, "fixturenames", ()))  # stable: order kept otherwise


@pytest.fixture(scope="session")
def book(tmp_path_factory):
    """The book, built once per test session as `make book` builds it (see book_build.py)."""
    import book_build

    shared = os.environ.get(SHARED_BUILD)
    if not shared:
        return book_build.build_book(tmp_path_factory.mktemp("book"))
    folder, deadline = Path(shared), time.monotonic() + BUILD_WAIT
    while not (folder / "build.json").exists():
        if (folder / "failed.txt").exists() or time.monotonic() > deadline:
            log = (folder / "build.log").read_text()[-3000:] if (folder / "build.log").exists() else ""
            reason = (folder / "failed.txt").read_text() if (folder / "failed.txt").exists() else "it did not finish"
            pytest.fail(f"the shared book build failed: {reason}\n{log}")
        time.sleep(2)
    return book_build.Build.from_json((folder / "build.json").read_text())

