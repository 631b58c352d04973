"""What the batch-grading tests share: the warm-up assignment, the grading limits, the sandbox
check, the `python -m course_grader` command and a class of wrong-solution submissions.

Test modules import these from here, never from one another.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import course

ASSIGNMENT = "ex00_how_to_use"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
WRONG = importlib.import_module(f"wrong_solutions.{ASSIGNMENT}").WRONG
# Short limits keep the endless loops of the hostile catalogue cheap; the honest notebooks graded
# in the same batch need a tenth of them (their slowest cell took under a second with both cores
# busy). A cell's time limit is wall-clock time, so batches of honest submissions alone use the
# course's own limits (nbgrader_config.py): their scores must not depend on the machine's speed.
LIMITS = ["--Execute.timeout=10", "--Sandbox.memory_mb=1536", "--Sandbox.cpu_seconds=300",
          "--GuardedExecute.guard_timeout=10"]
# A class of eight: the model answer and seven entries of the wrong-solution catalogue.
CLASS = ["reference", "sigmoid_naive_overflows", "dtanh_forgets_the_square", "numerical_gradient_one_sided",
         "sigmoid_calls_lstm_ref", "numerical_gradient_only_handles_vectors", "dsigmoid_off_by_a_factor_of_two",
         "sigmoid_upcasts_float32"]


def require_sandbox() -> None:
    """Skip (outside CI) or fail (in CI) when bubblewrap is missing: the catalogue must never run unsandboxed."""
    from course_grader.sandbox import Sandbox, probe

    reason = probe(Sandbox())
    if reason is None:
        return
    message = f"the grading sandbox does not start here ({reason}); `.ci/run` installs bubblewrap"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def grading_env() -> dict[str, str]:
    """The environment grading runs in: the venv's bin/ first on PATH (nbgrader runs `alembic`)."""
    return dict(os.environ, PATH=f"{course.BIN}{os.pathsep}{os.environ.get('PATH', '')}")


def grade_command(c: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """`python -m course_grader ARGS` in the course folder c; the timeout only catches a hang."""
    return subprocess.run([sys.executable, "-m", "course_grader", *args], cwd=c, env=grading_env(),
                          capture_output=True, text=True, timeout=timeout)


def student_id(name: str) -> str:
    """The student id a catalogue name is submitted under."""
    return name.replace("_", "-")


def make_class(root: Path) -> Path:
    """A course in root with the eight submissions of CLASS, generated and submitted."""
    c = course.make_course(root)
    course.nbgrader(c, "generate_assignment", ASSIGNMENT, "--force")
    release_nb = c / "exercises" / ASSIGNMENT / NOTEBOOK
    source_nb = c / "solutions" / ASSIGNMENT / NOTEBOOK
    for name in CLASS:
        cells = WRONG[name]["cells"] if name in WRONG else None
        course.submit(c, student_id(name), ASSIGNMENT, NOTEBOOK, course.filled_submission(release_nb, source_nb, cells))
    return c


def expected_scores(full: dict[str, float]) -> dict[str, dict[str, float]]:
    """{student: {test cell: score}} the catalogue predicts for CLASS, from the full marks of each cell."""
    out = {}
    for name in CLASS:
        loses = WRONG[name]["loses"] if name in WRONG else []
        out[student_id(name)] = {cell: 0.0 if cell in loses else top for cell, top in full.items()}
    return out
