"""Give a submission back the shape of the released notebook before it is graded.

Students delete, reorder, duplicate and rename cells, edit test cells and nbgrader's cell
metadata, by accident or not. nbgrader alone puts back the source of an edited test cell, but a
renamed or re-flagged test cell makes it reject the whole notebook, and a test cell moved above
the code it tests fails. :class:`RestoreStructure` (the first sanitizing step of autograding, see
nbgrader_config.py) rebuilds the notebook from the gradebook's record of the assignment:

* every cell the assignment defines is present once, in the released order, with nbgrader's
  metadata and cell type as released; the instructor's cells (text, set-up, tests) with the
  released source; a deleted one is put back (a deleted answer cell is not: it would replace the
  student's definitions by the stub);
* the student's answers keep their source; when a cell appears twice the last copy counts
  (as in nbgrader) and the other copies run as ordinary cells;
* cells the assignment does not define (the student's own, renamed or invented ones) keep their
  code and place after the cell they followed, but lose any nbgrader metadata, so they can
  neither earn nor cost points.

Each repair is recorded in the notebook's metadata (``lm_structure``) and the grading log.
:func:`scan_source` lists code in a submission that reaches into the interpreter, for a human.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell
from nbgrader.api import Gradebook
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor

from .translate import released_translations


@dataclass
class CellSpec:
    """What the gradebook records of one cell of the assignment."""

    name: str
    cell_type: str
    locked: bool
    source: str
    grade: bool = False
    solution: bool = False
    task: bool = False
    points: float | None = None

    def released_source(self) -> str:
        """The source as students received it: without the hidden tests."""
        cell = new_code_cell(source=self.source)
        ClearHiddenTests()._remove_hidden_test_region(cell)
        return cell.source

    def metadata(self) -> dict:
        meta = {"grade": self.grade, "grade_id": self.name, "locked": self.locked, "schema_version": 3,
                "solution": self.solution, "task": self.task}
        if self.points is not None:
            meta["points"] = self.points
        return meta


def _grade_id(cell) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta.get("grade_id") if isinstance(meta, dict) else None


def _retype(cell, cell_type: str):
    if cell.get("cell_type") == cell_type:
        return cell
    make = new_code_cell if cell_type == "code" else new_markdown_cell
    new = make(source=cell.get("source", ""), metadata=cell.get("metadata", {}))
    if "id" in cell:
        new["id"] = cell["id"]
    return new


def _plain(cell):
    cell = copy.deepcopy(cell)
    cell.get("metadata", {}).pop("nbgrader", None)
    return cell


def restore_structure(cells: list, specs: list[CellSpec],
                      translations: dict[str, set[str]] | None = None) -> tuple[list, list[str]]:
    """The submission's cells in the released structure, and a list of the repairs made.

    cells: the submitted notebook's cells; specs: the assignment's cells in released order;
    translations: grade_id -> the released translations of a cell's text (the Chinese student
    version's instructions), which are as released, not edits.
    """
    translations = translations or {}
    by_name = {s.name: s for s in specs}
    repairs: list[str] = []
    last = {}
    for i, cell in enumerate(cells):
        gid = _grade_id(cell)
        if gid in by_name:
            last[gid] = i
    # Walk the submission: known cells anchor the student's own cells that follow them.
    leading: list = []
    attached: dict[str, list] = {s.name: [] for s in specs}
    anchor = None
    submitted_order = []
    for i, cell in enumerate(cells):
        gid = _grade_id(cell)
        if gid in by_name and last[gid] == i:
            anchor = gid
            submitted_order.append(gid)
            continue
        if gid in by_name:
            repairs.append(f"cell {gid!r} appears more than once: the last copy counts, the others run ungraded")
        elif "nbgrader" in cell.get("metadata", {}):
            what = f"{gid!r}" if gid else "without a grade id"
            repairs.append(f"a cell {what} is not part of the assignment (renamed or added?): it runs ungraded")
        (attached[anchor] if anchor else leading).append(_plain(cell))
    released = [s.name for s in specs if s.name in last]
    if submitted_order != released:
        repairs.append("cells were moved: they are graded in the released order")
    out = list(leading)
    for spec in specs:
        if spec.name in last:
            cell = _retype(copy.deepcopy(cells[last[spec.name]]), spec.cell_type)
            old = cell.get("metadata", {}).get("nbgrader", {})
            new = spec.metadata()
            if {k: old.get(k) for k in new if k != "schema_version"} != {k: v for k, v in new.items() if k != "schema_version"}:
                repairs.append(f"the nbgrader metadata of {spec.name!r} was changed: restored")
            if cells[last[spec.name]].get("cell_type") != spec.cell_type:
                repairs.append(f"{spec.name!r} was turned into a {cells[last[spec.name]].get('cell_type')} cell: restored")
            if spec.locked and cell.get("source") != spec.source:
                submitted = cell.get("source", "").rstrip()
                if submitted != spec.released_source().rstrip() and submitted not in translations.get(spec.name, ()):
                    repairs.append(f"the locked cell {spec.name!r} was edited: the released version runs")
                cell["source"] = spec.source
            cell.setdefault("metadata", {})["nbgrader"] = new
            out.append(cell)
        elif spec.locked or spec.grade:
            make = new_code_cell if spec.cell_type == "code" else new_markdown_cell
            out.append(make(source=spec.source, metadata={"nbgrader": spec.metadata()}))
            repairs.append(f"cell {spec.name!r} was deleted: put back as released")
        else:
            repairs.append(f"the answer cell {spec.name!r} was deleted")
        out.extend(attached[spec.name])
    return out, repairs


def assignment_specs(db_url: str, assignment: str, notebook: str, order_from: str | None = None) -> list[CellSpec]:
    """The assignment's cells from the gradebook, in the order of the notebook order_from (if given)."""
    with Gradebook(db_url) as gb:
        nb = gb.find_notebook(notebook, assignment)
        grades = {c.name: c.max_score for c in nb.grade_cells}
        solutions = {c.name for c in nb.solution_cells}
        tasks = {c.name: c.max_score for c in nb.task_cells}
        specs = {c.name: CellSpec(c.name, c.cell_type, bool(c.locked), c.source or "", grade=c.name in grades,
                                  solution=c.name in solutions, task=c.name in tasks,
                                  points=grades.get(c.name, tasks.get(c.name)))
                 for c in nb.source_cells}
    order = []
    if order_from and os.path.exists(order_from):
        order = [g for g in (_grade_id(c) for c in nbformat.read(order_from, as_version=4).cells) if g in specs]
    return [specs[n] for n in order] + [s for n, s in specs.items() if n not in order]


def symlinks_in(folder: str) -> list[str]:
    """Symbolic links in a submission, as 'name -> target'.

    nbgrader copies a submission's files with the grader's permissions, following links, so a
    link to the gradebook or to the solutions would hand their content to the student's code.
    """
    found = [f"{os.path.basename(folder)} -> {os.readlink(folder)}"] if os.path.islink(folder) else []
    for base, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(base, name)
            if os.path.islink(path):
                found.append(f"{os.path.relpath(path, folder)} -> {os.readlink(path)}")
    return found


class RestoreStructure(NbGraderPreprocessor):
    """Sanitizing step: rebuild a submission in the released structure (see the module doc)."""

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        coursedir = CourseDirectory(config=self.config)
        submitted = coursedir.format_path(coursedir.submitted_directory, info["student"], info["assignment"])
        links = symlinks_in(submitted)
        if links:
            raise ValueError(f"the submission contains symbolic links ({', '.join(links[:3])}); only regular "
                             "files are graded")
        source = os.path.join(coursedir.format_path(coursedir.source_directory, ".", info["assignment"]),
                              f"{info['notebook']}.ipynb")
        specs = assignment_specs(info["db_url"], info["assignment"], info["notebook"], order_from=source)
        translations = released_translations(Path(coursedir.root), info["assignment"], info["notebook"])
        nb.cells, repairs = restore_structure(nb.cells, specs, translations)
        for text in repairs:
            self.log.warning("%s/%s: %s", info["student"], info["notebook"], text)
        nb.metadata["lm_structure"] = repairs
        return nb, resources


# ---------------------------------------------------------------------------------------------
# A look at the code, for the instructor (nothing here changes a grade).

_SUSPICIOUS = [
    (r"\bget_ipython\b|\bIPython\b", "reaches into IPython"),
    (r"\bsys\.modules\b|\bimportlib\b|__import__", "manipulates imports"),
    (r"\bctypes\b|\bcffi\b", "uses ctypes"),
    (r"\bsettrace\b|\bsetprofile\b", "installs a tracer"),
    (r"\bbuiltins\b|__builtins__", "touches builtins"),
    (r"\bgrading\.\w+\s*=(?!=)|\bnp\.\w+\s*=(?!=)|\bnumpy\.\w+\s*=(?!=)", "reassigns a grading or numpy function"),
    (r"\bos\.(_exit|kill|fork|system|exec\w*|spawn\w*)\b|\bsubprocess\b|\bmultiprocessing\b", "starts or ends processes"),
    (r"\bsocket\b|\burllib\b|\brequests\b|\bhttp\.client\b", "uses the network"),
    (r"\bthreading\b|\b_thread\b", "starts threads"),
    (r"\bopen\s*\(|\bshutil\b|\bos\.(remove|unlink|rename|walk|listdir|scandir)\b|\bpathlib\b|\bglob\b", "works with files"),
    (r"\bzmq\b|\bjupyter_client\b|\bipykernel\b", "talks to the kernel machinery"),
]


def scan_source(nb) -> list[str]:
    """Phrases naming the suspicious things the student's cells do, e.g. 'uses ctypes (cell 5)'."""
    found = {}
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("locked") and not meta.get("solution"):
            continue  # the instructor's own code
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        for pattern, what in _SUSPICIOUS:
            if re.search(pattern, source):
                found.setdefault(what, []).append(index)
    return [f"{what} (cell {', '.join(map(str, idx[:4]))})" for what, idx in found.items()]
