"""Helpers that run nbgrader on a temporary copy of the course, as an instructor would."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SOLUTION_MARKERS = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.MULTILINE)


def assignments() -> list[str]:
    """Every assignment in solutions/, sorted."""
    return sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir() and not p.name.startswith("."))


def make_course(dest: Path) -> Path:
    """Copy what nbgrader needs (config, solutions/, exercises/) into dest; return dest."""
    shutil.copy(ROOT / "nbgrader_config.py", dest / "nbgrader_config.py")
    for folder in ("solutions", "exercises"):
        if (ROOT / folder).exists():
            shutil.copytree(ROOT / folder, dest / folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return dest


def nbgrader(course: Path, *args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run `nbgrader ARGS` in the course folder with the venv's bin/ first on PATH (for alembic)."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    result = subprocess.run(
        [str(BIN / "nbgrader"), *args], cwd=course, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(f"nbgrader {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def notebooks(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(folder.glob("*.ipynb"))}


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def filled_submission(release_nb: Path, source_nb: Path, replacements: dict[str, str] | None = None):
    """The student version with every solution cell answered from the instructor's source.

    replacements maps a solution cell's grade_id to the source a (wrong) student wrote instead.
    """
    release = nbformat.read(release_nb, as_version=4)
    answers = {grade_id(c): c.source for c in nbformat.read(source_nb, as_version=4).cells}
    replacements = replacements or {}
    unknown = set(replacements) - {grade_id(c) for c in release.cells}
    assert not unknown, f"catalogue names cells the notebook does not have: {unknown}"
    for cell in release.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            gid = meta["grade_id"]
            cell.source = replacements.get(gid, SOLUTION_MARKERS.sub("", answers[gid]))
    return release


def submit(course: Path, student: str, assignment: str, nb_name: str, nb) -> None:
    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / nb_name)


def scores(course: Path, assignment: str) -> dict[str, dict[str, tuple[float, float]]]:
    """{student: {grade cell id: (score, max score)}} for the autograded cells, from the gradebook."""
    from nbgrader.api import Gradebook

    out: dict[str, dict[str, tuple[float, float]]] = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for sub in gb.assignment_submissions(assignment):
            cells = {}
            for nb in sub.notebooks:
                for grade in nb.grades:
                    if grade.cell.cell_type == "code":  # autograded test cells
                        cells[grade.name] = (grade.score, grade.max_score)
            out[sub.student.id] = cells
    return out


def strip_volatile(nb_json: dict) -> dict:
    """A notebook's JSON without what nbgrader may vary between runs (none so far)."""
    return copy.deepcopy(nb_json)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())
