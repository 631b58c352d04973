"""Seconds per graded notebook, one worker against one worker per core, measured in one run.

A class of synthetic students (the warm-up ex00_how_to_use: the model answer and the entries of
the wrong-solution catalogue, in turn) is graded twice with `python -m course_grader
grade`, the command behind `make grade`: once with --jobs 1, once with --jobs N, each in a fresh
copy of the course with its own SQLite gradebook, both in the sandbox. Not a timed test: it
prints the numbers.

    .venv/bin/python benchmarks/bench_grading.py [--students 50] [--jobs N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import course  # noqa: E402  (the tests' helpers that build a course as an instructor has it)
from wrong_solutions.ex00_how_to_use import WRONG  # noqa: E402

ASSIGNMENT = "ex00_how_to_use"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"


def make_class(dest: Path, students: int) -> Path:
    dest.mkdir(parents=True)
    c = course.make_course(dest)
    course.nbgrader(c, "generate_assignment", ASSIGNMENT, "--force")
    release_nb = c / "exercises" / ASSIGNMENT / NOTEBOOK
    source_nb = c / "solutions" / ASSIGNMENT / NOTEBOOK
    kinds = [None, *WRONG]
    for i in range(students):
        kind = kinds[i % len(kinds)]
        nb = course.filled_submission(release_nb, source_nb, WRONG[kind]["cells"] if kind else None)
        course.submit(c, f"student{i:03d}", ASSIGNMENT, NOTEBOOK, nb)
    return c


def grade(c: Path, jobs: int) -> float:
    env = dict(os.environ, PATH=f"{course.BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "course_grader", "grade", ASSIGNMENT, "--jobs", str(jobs)],
                            cwd=c, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"grading failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    state = json.loads((c / "grading" / ASSIGNMENT / "state.json").read_text())
    assert sum(s["status"] == "graded" for s in state.values()) == len(state), "some notebooks were not graded"
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        serial_course = make_class(Path(tmp) / "serial", args.students)
        parallel_course = make_class(Path(tmp) / "parallel", args.students)
        serial = grade(serial_course, 1)
        parallel = grade(parallel_course, args.jobs)
    n = args.students
    print(f"{n} notebooks of {ASSIGNMENT}, sandboxed, on a machine with {os.cpu_count()} cores")
    print(f"{'workers':>8} {'total s':>9} {'s / notebook':>13}")
    print(f"{1:>8} {serial:>9.1f} {serial / n:>13.2f}")
    print(f"{args.jobs:>8} {parallel:>9.1f} {parallel / n:>13.2f}")
    print(f"speed-up with {args.jobs} workers: {serial / parallel:.2f}x")


if __name__ == "__main__":
    main()
