"""Hostile and broken submissions, and what grading must make of them.

Each catalogue module (named after an assignment) defines ``HOSTILE``: {student id: entry}, where
an entry has

* ``build``: a function of a :class:`Context` returning the submitted file (a notebook, or bytes
  for a file that is not one);
* ``loses``: the test cells that must score zero (every other autograded cell keeps full marks),
  or ``"all"``;
* ``reason``: a regular expression the student's row of the grading log must match, i.e. the
  reason an instructor reads;
* ``status`` (optional): ``"failed"`` when the file cannot be graded at all (default ``"graded"``).

Where more than one limit can stop a submission (a fork bomb meets the process limit, or the
cell's time limit first on a loaded machine), which one fires first depends on the machine's
speed, not on the grader. The entry then asserts only the outcome: the same scores, and a reason
naming whichever of those limits stopped the cell (:func:`stopped_by`).

Code that would harm the machine if it ever ran outside the sandbox (fork and memory bombs)
first checks that it runs in its own PID namespace, where the kernel has a small pid.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

SOLUTION_MARKERS = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.MULTILINE)
# dangerous code runs only where the kernel is one of the first processes of its own namespace
IN_SANDBOX_ONLY = (
    "import os\n"
    "if os.getpid() > 50:\n"
    "    raise RuntimeError('refusing to run this outside the grading sandbox')\n"
)

# How the grading log names each limit that can stop a cell (course_grader.execute and
# course_grader.batch.describe write these reasons).
LIMIT_REASONS = {
    # Execute.timeout: the event "<cell>: timed out after N s" (or "... and the kernel ignored the
    # interrupt"), and on an answer cell "answer cell <cell> raised CellTimeoutError"
    "time": r"timed out|CellTimeoutError",
    # Sandbox.processes (RLIMIT_NPROC): fork() fails with EAGAIN
    "processes": r"BlockingIOError|Resource temporarily unavailable",
    # Sandbox.memory_mb (RLIMIT_AS): an allocation fails
    "memory": r"MemoryError",
}


def stopped_by(cell: str, *limits: str) -> str:
    """A reason pattern: one reason about `cell` names one of `limits` (keys of LIMIT_REASONS).

    The log joins its reasons with " | ", so the cell and the limit must be in the same one;
    the cell's name must stand alone (``derivatives`` does not match ``test_derivatives_visible``).
    """
    unknown = set(limits) - set(LIMIT_REASONS)
    assert limits and not unknown, f"unknown limits {sorted(unknown)}; known: {sorted(LIMIT_REASONS)}"
    return rf"(?<!\w){re.escape(cell)}(?!\w)[^|]*(?:{'|'.join(LIMIT_REASONS[name] for name in limits)})"


@dataclass
class Context:
    """What a catalogue entry builds its submission from."""

    release: nbformat.NotebookNode  # the student version
    source: nbformat.NotebookNode  # the instructor's version
    course: Path  # the course folder being graded (the hostile code aims at it)
    port: int  # a loopback port where the test listens for anything sent out

    def answer(self, grade_id: str) -> str:
        """The instructor's answer for a solution cell, without the solution markers."""
        for cell in self.source.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
                return SOLUTION_MARKERS.sub("", cell.source)
        raise KeyError(grade_id)

    def filled(self, **replacements: str) -> nbformat.NotebookNode:
        """The release with every solution cell answered; replacements: {grade_id: source}."""
        nb = copy.deepcopy(self.release)
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("solution") and cell.cell_type == "code":
                cell.source = replacements.get(meta["grade_id"], self.answer(meta["grade_id"]))
        return nb


def cell_index(nb, grade_id: str) -> int:
    for i, cell in enumerate(nb.cells):
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return i
    raise KeyError(grade_id)
