"""A Sphinx extension of this book: figures are numbered within their chapter, "Fig. 4.1",
"Fig. 4.2", ..., as the equations restart on every page, instead of across the whole book.

Sphinx numbers the figures of the whole book in one sequence (in
``sphinx.environment.collectors.toctree``, ``assign_figure_numbers``, run on the
``env-get-updated`` event) and stores each figure's number as a tuple in
``env.toc_fignumbers[docname]["figure"][figure_id]``. Both places that print a number read it
from there: the caption ("Fig. 10") in the HTML writer and the text of every ``{numref}`` link
in the std domain. Numbering the toctree (``numbered: true``) would also give the figures
chapter numbers, but from the toctree's own count, so chapter 0 would become 1, and it would
number every section title as well.

This extension runs on the same event just after Sphinx (a higher priority number) and gives
each figure of a chapter page ``book/NN_slug`` the number ``(NN, k)``, k counting the page's
figures from 1 in the order Sphinx numbered them (the order of the page). A page without the
NN_ prefix (glossary, instructor guide) keeps Sphinx's own number.
"""

from __future__ import annotations

import re

from sphinx.util import logging

logger = logging.getLogger(__name__)

# The chapter number is the two-digit prefix of the page's file name: book/04_lstm_forward -> 4.
CHAPTER = re.compile(r"(?:^|/)(\d\d)_[^/]+$")
FIGTYPES = ("figure",)  # tables and code listings keep Sphinx's numbering


def chapter_number(docname: str) -> int | None:
    """The chapter of a page ("book/04_lstm_forward" -> 4), or None for an unnumbered page."""
    match = CHAPTER.search(docname)
    return int(match.group(1)) if match else None


def renumber(toc_fignumbers: dict[str, dict[str, dict[str, tuple[int, ...]]]]) -> list[str]:
    """Rewrite, in place, every chapter page's figure numbers to (chapter, k); returns the changed pages."""
    changed = []
    for docname, figtypes in toc_fignumbers.items():
        chapter = chapter_number(docname)
        if chapter is None:
            continue
        for figtype in FIGTYPES:
            numbers = figtypes.get(figtype)
            if not numbers:
                continue
            # Sphinx counted the page's figures in document order: keep that order
            ordered = sorted(numbers, key=numbers.__getitem__)
            renumbered = {figure_id: (chapter, k) for k, figure_id in enumerate(ordered, start=1)}
            if renumbered != numbers:
                figtypes[figtype] = renumbered
                changed.append(docname)
    return changed


def _on_env_get_updated(app, env) -> list[str]:
    renumber(env.toc_fignumbers)
    # No page to add: Sphinx has compared its fresh book-wide numbers, (k,), with the ones kept
    # from the last build, ours, (N, k); they always differ on a chapter with figures, so Sphinx
    # has already listed every such page to be written again.
    return []


def setup(app):
    # Sphinx's toctree collector assigns the numbers on this event at the default priority, 500
    app.connect("env-get-updated", _on_env_get_updated, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
