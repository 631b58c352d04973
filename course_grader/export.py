"""Grades out of the gradebook, in the files a learning-management system imports.

``python -m course_grader export --lms canvas`` (``make export LMS=canvas``) writes
``grading/export/canvas.csv``; ``--lms moodle`` writes ``grading/export/moodle.csv``. Both hold one
row per student of the gradebook and one column per assignment (all released assignments, or the
ones named), with each student's total score, manual grades included.

* Canvas (Grades > Import): the columns Student, ID, SIS User ID, SIS Login ID and Section
  identify the student; the student id nbgrader knows (the LMS login that ``zip_collect`` reads
  from Canvas's file names) is the SIS Login ID, and a stored LMS user id is the ID. A second row,
  "Points Possible", gives each assignment's maximum.
* Moodle (Grades > Import > CSV file): an identifying column to map at import (Username, the
  nbgrader student id; Email address if the gradebook has it) and one column per assignment.

A student with no submission of an assignment gets an empty cell (Canvas and Moodle leave the
grade as it is), never a zero: a missing hand-in is the instructor's call, not the exporter's.
A student whose grading failed on the grader's side is not exported for that assignment.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from .batch import GRADER_FAULT, STATE_DIR, Course

LMS = ("canvas", "moodle")


def gradebook_table(course: Course, assignments: list[str] | None = None) -> tuple[list[dict], list[str], dict]:
    """(students, assignment names, {assignment: max score}) with each student's score per assignment.

    Each student is a dict: id, first_name, last_name, email, lms_user_id and scores {assignment:
    float or None}; None where there is no submission or its grading ended in a grader fault.
    """
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(course.db_url) as gb:
        names = assignments or [a.name for a in sorted(gb.assignments, key=lambda a: a.name)]
        maxima = {name: float(gb.find_assignment(name).max_score) for name in names}
        faults = {name: _grader_faults(course, name) for name in names}
        students = []
        for s in sorted(gb.students, key=lambda s: s.id):
            scores = {}
            for name in names:
                try:
                    sub = gb.find_submission(name, s.id)
                    scores[name] = None if s.id in faults[name] else float(sub.score)
                except MissingEntry:
                    scores[name] = None
            students.append({"id": s.id, "first_name": s.first_name or "", "last_name": s.last_name or "",
                             "email": s.email or "", "lms_user_id": s.lms_user_id or "", "scores": scores})
    return students, names, maxima


def _grader_faults(course: Course, assignment: str) -> set[str]:
    path = course.root / STATE_DIR / assignment / "state.json"
    if not path.exists():
        return set()
    return {s for s, entry in json.loads(path.read_text()).items() if entry.get("status") == GRADER_FAULT}


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def export_grades(course: Course, lms: str, assignments: list[str] | None = None) -> Path:
    """Write grading/export/<lms>.csv for "canvas" or "moodle"; return its path."""
    if lms not in LMS:
        raise ValueError(f"lms must be one of {LMS}; got {lms!r}.")
    students, names, maxima = gradebook_table(course, assignments)
    folder = course.root / STATE_DIR / "export"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{lms}.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if lms == "canvas":
            writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *names])
            writer.writerow(["Points Possible", "", "", "", "", *(f"{maxima[n]:g}" for n in names)])
            for s in students:
                full = ", ".join(p for p in (s["last_name"], s["first_name"]) if p) or s["id"]
                writer.writerow([full, s["lms_user_id"], "", s["id"], "", *(_score(s["scores"][n]) for n in names)])
        else:
            writer.writerow(["Username", "Email address", "First name", "Last name", *names])
            for s in students:
                writer.writerow([s["id"], s["email"], s["first_name"], s["last_name"],
                                 *(_score(s["scores"][n]) for n in names)])
    return path
