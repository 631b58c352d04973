"""`make grade` grades a folder of submissions on several workers, and an interrupted batch resumes.

A class of eight is graded with two workers; the batch is interrupted (Ctrl-C) once three
students are done, then run again with `make grade`, which must grade only the rest, give every
student the scores the wrong-solution catalogue predicts, and leave the submissions untouched.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import course
from test_hostile_submissions import ASSIGNMENT, LIMITS, NOTEBOOK, require_sandbox

pytestmark = pytest.mark.slow
WRONG = importlib.import_module(f"wrong_solutions.{ASSIGNMENT}").WRONG
CLASS = ["reference", "sigmoid_naive_overflows", "dtanh_forgets_the_square", "numerical_gradient_one_sided",
         "sigmoid_calls_lstm_ref", "numerical_gradient_only_handles_vectors", "dsigmoid_off_by_a_factor_of_two",
         "sigmoid_upcasts_float32"]


def make_class(root: Path) -> Path:
    """A course with the eight submissions of CLASS, generated and submitted."""
    c = course.make_course(root)
    course.nbgrader(c, "generate_assignment", ASSIGNMENT, "--force")
    release_nb = c / "exercises" / ASSIGNMENT / NOTEBOOK
    source_nb = c / "solutions" / ASSIGNMENT / NOTEBOOK
    for name in CLASS:
        cells = WRONG[name]["cells"] if name in WRONG else None
        course.submit(c, name.replace("_", "-"), ASSIGNMENT, NOTEBOOK, course.filled_submission(release_nb, source_nb, cells))
    return c


def expected_scores(full: dict[str, float]) -> dict[str, dict[str, float]]:
    """{student: {test cell: score}} the catalogue predicts, from the full marks of each cell."""
    out = {}
    for name in CLASS:
        loses = WRONG[name]["loses"] if name in WRONG else []
        out[name.replace("_", "-")] = {cell: 0.0 if cell in loses else top for cell, top in full.items()}
    return out


def test_make_grade_runs_in_parallel_and_an_interrupted_batch_finishes_the_rest(tmp_path):
    require_sandbox()
    c = make_class(tmp_path)
    env = dict(os.environ, PATH=f"{course.BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env = {k: v for k, v in env.items() if k not in ("MAKEFLAGS", "MAKELEVEL")}
    submitted_before = {p: p.read_bytes() for p in (c / "submitted").rglob("*") if p.is_file()}
    first = subprocess.Popen([sys.executable, "-m", "lstm_ref.instructor", "grade", ASSIGNMENT, "--jobs", "2", *LIMITS],
                             cwd=c, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    state_file = c / "grading" / ASSIGNMENT / "state.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and first.poll() is None:
        if state_file.exists() and len(json.loads(state_file.read_text())) >= 3:
            break
        time.sleep(0.2)
    first.send_signal(signal.SIGINT)  # what Ctrl-C does
    output, _ = first.communicate(timeout=120)
    done_first = json.loads(state_file.read_text())
    assert 3 <= len(done_first) < len(CLASS), f"interrupted too late or too early: {sorted(done_first)}\n{output}"

    # the documented command, with the Makefile and the venv as an instructor has them
    shutil.copy2(course.ROOT / "Makefile", c / "Makefile")
    shutil.copy2(course.ROOT / "pyproject.toml", c / "pyproject.toml")
    os.symlink(sys.prefix, c / ".venv")
    second = subprocess.run(["make", "-o", ".venv/.installed", "grade", f"ASSIGNMENT={ASSIGNMENT}", "JOBS=2",
                             f"GRADE_FLAGS={' '.join(LIMITS)}"], cwd=c, env=env, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert f"{len(done_first)} submission(s) already graded and unchanged: skipped" in second.stdout
    assert f"grading {len(CLASS) - len(done_first)} submission(s)" in second.stdout

    scores = course.scores(c, ASSIGNMENT)
    full = {cell: top for cell, (_, top) in scores["reference"].items()}
    got = {s: {cell: score for cell, (score, _) in cells.items()} for s, cells in scores.items()}
    assert got == expected_scores(full)
    state = json.loads(state_file.read_text())
    assert {s["status"] for s in state.values()} == {"graded"} and len(state) == len(CLASS)
    assert {p: p.read_bytes() for p in (c / "submitted").rglob("*") if p.is_file()} == submitted_before
    # both workers of the first run graded someone
    logs = [(c / "grading" / ASSIGNMENT / f"worker-{i}.log").read_text() for i in range(2)]
    assert all("Autograding" in log for log in logs)
