"""A Sphinx extension of this book: the chapters' figures are drawn whatever MPLBACKEND says.

The chapters draw their figures with ``plt.show()``, which in a Jupyter kernel emits the figure
as an image because ipykernel picks matplotlib's inline backend, but only when the environment
does not name a backend already (ipykernel's kernelapp). The kernels that execute the chapters
inherit this process's environment, so a caller with ``MPLBACKEND=Agg`` (common on headless
machines and in CI) would get a book without figures, and the build would stop at the first
reference to one ("undefined label: fig-..."). This extension removes MPLBACKEND from the
environment for the duration of the build, before any kernel starts, so every kernel chooses
its backend as a fresh Jupyter kernel does; the caller's value is put back when the build ends.

_config.yml puts this folder on the path (``sphinx: local_extensions``) and enables the
extension (``sphinx: config: extensions``), so ``make book``, ``jupyter-book build .`` and the
tests' build (tests/book_build.py, whose test_book checks it with MPLBACKEND=Agg set) all load it.
"""

from __future__ import annotations

import os

_callers: list[str] = []  # the caller's MPLBACKEND, if any, while the build runs


def _restore(app, exception) -> None:
    if _callers:
        os.environ["MPLBACKEND"] = _callers.pop()


def setup(app):
    if "MPLBACKEND" in os.environ:
        _callers.append(os.environ.pop("MPLBACKEND"))
    app.connect("build-finished", _restore)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
