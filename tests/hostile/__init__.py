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
