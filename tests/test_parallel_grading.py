"""`make grade` grades a folder of submissions on several workers, and an interrupted batch resumes.

A class of eight is graded with two workers and interrupted with SIGINT (what Ctrl-C sends) at a
fixed point: right after the third graded student is recorded. Then `make grade` runs again and
must grade only the other five, on both workers, give every student the scores the
wrong-solution catalogue predicts, and leave the submissions untouched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest

import course
from grading_helpers import ASSIGNMENT, CLASS, expected_scores, grading_env, make_class, require_sandbox, student_id

pytestmark = pytest.mark.slow
STOP_AFTER = 3  # graded students recorded before the interrupt

# `python -m course_grader ARGS`, except that right after the STOP_AFTER-th finished student
# is recorded (in state.json, by the batch's own on_result) the process sends itself SIGINT: a
# real Ctrl-C, delivered at a known point of the batch instead of after some wall-clock time.
INTERRUPTING = """
import os, signal, sys
from course_grader import batch
from course_grader.cli import main

# a shell that starts a job in the background starts it with SIGINT ignored: be a foreground Ctrl-C
signal.signal(signal.SIGINT, signal.default_int_handler)
stop_after = int(sys.argv[1])
run_workers = batch.run_workers


def interrupted_run_workers(course, assignment, students, jobs, student_timeout, on_result, **kw):
    recorded = []

    def record_then_interrupt(result):
        on_result(result)
        recorded.append(result["student"])
        if len(recorded) == stop_after:
            os.kill(os.getpid(), signal.SIGINT)

    return run_workers(course, assignment, students, jobs, student_timeout, record_then_interrupt, **kw)


batch.run_workers = interrupted_run_workers
sys.exit(main(sys.argv[2:]))
"""


def graded_by_worker(log: str) -> set[str]:
    """The students a worker's log says it autograded (nbgrader logs "Autograding <notebook path>")."""
    return set(re.findall(rf"Autograding \S*?\bautograded/([^/\s]+)/{ASSIGNMENT}/", log))


def test_make_grade_runs_in_parallel_and_an_interrupted_batch_finishes_the_rest(tmp_path):
    require_sandbox()
    c = make_class(tmp_path)
    everyone = {student_id(name) for name in CLASS}
    env = {k: v for k, v in grading_env().items() if k not in ("MAKEFLAGS", "MAKELEVEL")}
    submitted_before = {p: p.read_bytes() for p in (c / "submitted").rglob("*") if p.is_file()}
    script = tmp_path / "interrupting_grade.py"
    script.write_text(INTERRUPTING)
    first = subprocess.run([sys.executable, str(script), str(STOP_AFTER), "grade", ASSIGNMENT, "--jobs", "2"],
                           cwd=c, env=env, capture_output=True, text=True, timeout=900)
    output = first.stdout[-3000:] + first.stderr[-3000:]
    # a KeyboardInterrupt that nothing catches ends Python by SIGINT itself: what a shell sees after Ctrl-C
    assert first.returncode == -signal.SIGINT, f"the first batch exited {first.returncode}, not by its interrupt:\n{output}"
    state_file = c / "grading" / ASSIGNMENT / "state.json"
    done_first = json.loads(state_file.read_text())
    assert len(done_first) == STOP_AFTER, f"the interrupted batch recorded {sorted(done_first)}\n{output}"
    assert {s["status"] for s in done_first.values()} == {"graded"}, done_first
    worker_logs = [c / "grading" / ASSIGNMENT / f"worker-{i}.log" for i in range(2)]
    logged_first = [len(log.read_text()) if log.exists() else 0 for log in worker_logs]

    # the documented command, with the Makefile and the venv as an instructor has them
    shutil.copy2(course.ROOT / "Makefile", c / "Makefile")
    shutil.copy2(course.ROOT / "pyproject.toml", c / "pyproject.toml")
    os.symlink(sys.prefix, c / ".venv")
    second = subprocess.run(["make", "-o", ".venv/.installed", "grade", f"ASSIGNMENT={ASSIGNMENT}", "JOBS=2"],
                            cwd=c, env=env, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert f"{STOP_AFTER} submission(s) already graded and unchanged: skipped" in second.stdout, second.stdout
    assert f"grading {len(CLASS) - STOP_AFTER} submission(s) of {ASSIGNMENT} on 2 worker(s)" in second.stdout, second.stdout

    scores = course.scores(c, ASSIGNMENT)
    full = {cell: top for cell, (_, top) in scores["reference"].items()}
    got = {s: {cell: score for cell, (score, _) in cells.items()} for s, cells in scores.items()}
    assert got == expected_scores(full)
    state = json.loads(state_file.read_text())
    assert {s["status"] for s in state.values()} == {"graded"} and set(state) == everyone
    assert {p: p.read_bytes() for p in (c / "submitted").rglob("*") if p.is_file()} == submitted_before
    # Both workers of `make grade` graded someone, and between them exactly the rest. Each of the
    # two is handed a student when it starts and the batch ends only when all five are graded,
    # so this holds whatever the machine's speed. (The logs are appended to: the part after the
    # first run's is the second run's.)
    second_run = [graded_by_worker(log.read_text()[start:]) for log, start in zip(worker_logs, logged_first)]
    assert all(second_run), f"a worker of `make grade` graded nobody: {second_run}"
    assert set().union(*second_run) == everyone - set(done_first), second_run
