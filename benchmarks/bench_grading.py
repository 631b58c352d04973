"""Seconds per graded notebook: stock nbgrader against our sandboxed grader, measured in one run.

A class of identical students (copies of the ex02_rnn_bptt model answer) is graded

* by stock ``nbgrader autograde`` (serial, no sandbox, nbgrader's default preprocessors): the baseline;
* by ``python -m course_grader grade`` (the command behind ``make grade``: sandbox, guard, structure
  repair and limits all on) with 1 and with 2 local workers,

each in a fresh copy of the course with its own SQLite gradebook, and printed as seconds per
notebook and as the ratio to stock. With --profile, one worker's time per notebook is split into
its steps (kernel start in the sandbox, guard calls, structure repair, each preprocessor, the
gradebook) by timing those functions in-process. Not a timed test: it prints the numbers.

    .venv/bin/python benchmarks/bench_grading.py [--students 16] [--profile]
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import course  # noqa: E402  (the tests' helpers that build a course as an instructor has it)

ASSIGNMENT = "ex02_rnn_bptt"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
STOCK_CONFIG = """c = get_config()
c.CourseDirectory.root = "."
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.db_url = "sqlite:///gradebook.db"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "*.py", "*.md", "*.txt"]
c.Execute.timeout = 60
"""


def make_class(dest: Path, students: int, stock: bool = False) -> Path:
    dest.mkdir(parents=True)
    c = course.make_course(dest)
    if stock:  # nbgrader as shipped: its own Execute and preprocessors, no sandbox, no guard
        (c / "nbgrader_config.py").write_text(STOCK_CONFIG)
    course.nbgrader(c, "generate_assignment", ASSIGNMENT, "--force")
    nb = course.filled_submission(c / "exercises" / ASSIGNMENT / NOTEBOOK, c / "solutions" / ASSIGNMENT / NOTEBOOK)
    for i in range(students):
        course.submit(c, f"student{i:03d}", ASSIGNMENT, NOTEBOOK, nb)
    return c


def _env() -> dict:
    return dict(os.environ, PATH=f"{course.BIN}{os.pathsep}{os.environ.get('PATH', '')}")


def grade_stock(c: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run([str(course.BIN / "nbgrader"), "autograde", ASSIGNMENT], cwd=c, env=_env(),
                            capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"stock nbgrader failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return seconds


def grade_ours(c: Path, jobs: int) -> float:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "course_grader", "grade", ASSIGNMENT, "--jobs", str(jobs)],
                            cwd=c, env=_env(), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"grading failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    state = json.loads((c / "grading" / ASSIGNMENT / "state.json").read_text())
    assert sum(s["status"] == "graded" for s in state.values()) == len(state), "some notebooks were not graded"
    return seconds


# ---------------------------------------------------------------------------------------------
# The profile: one worker, in this process, with the steps timed.


def profile(c: Path, students: int) -> list[tuple[str, float, int]]:
    """[(step, seconds per notebook, calls per notebook)] for our grader on one worker."""
    from nbclient import NotebookClient
    from nbgrader.converters import Autograde, BaseConverter
    from nbgrader.utils import temp_attrs

    from course_grader import batch, execute, structure
    from course_grader.sandbox import SandboxedKernelManager

    totals: dict[str, list] = collections.defaultdict(lambda: [0.0, 0])

    def timed(owner, attr, label):
        original = getattr(owner, attr)

        @functools.wraps(original)
        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return original(*a, **kw)
            finally:
                totals[label][0] += time.perf_counter() - t
                totals[label][1] += 1
        setattr(owner, attr, wrapper)

    timed(NotebookClient, "start_new_kernel", "kernel start (sandbox + ipykernel imports)")
    timed(NotebookClient, "start_new_kernel_client", "kernel client connect / wait ready")
    timed(execute.GuardedExecute, "_install_guard", "guard install")
    timed(execute.GuardedExecute, "_guard_call", "guard calls (incl. install)")
    timed(SandboxedKernelManager, "kill_strays", "stray-process scan after each cell")
    timed(NotebookClient, "execute_cell", "cell execution (the notebook's own code)")
    timed(execute.GuardedExecute, "_cleanup_kernel", "kernel shutdown")
    timed(execute.GuardedExecute, "preprocess", "Execute step total")
    timed(structure.RestoreStructure, "preprocess", "structure repair (with gradebook queries)")
    timed(BaseConverter, "convert_single_notebook", "nbgrader convert_single_notebook total")
    timed(Autograde, "_init_preprocessors", "Autograde preprocessor setup")
    import nbgrader.preprocessors as pp
    for name in ("SaveAutoGrades", "OverwriteCells", "CheckCellMetadata", "DeduplicateIds", "ClearOutput",
                 "LimitOutput", "AssignLatePenalties", "OverwriteKernelspec", "IgnorePattern"):
        timed(getattr(pp, name), "preprocess", f"nbgrader {name}")
    timed(Autograde, "init_single_notebook_resources", "Autograde gradebook setup per notebook")
    timed(Autograde, "write_single_notebook", "writing the autograded notebook")
    timed(batch, "fingerprint", "digests (fingerprint)")

    cfg = batch.Course(c, [])
    here = os.getcwd()
    os.chdir(cfg.root)
    started = time.perf_counter()
    try:
        for i in range(students):
            with temp_attrs(cfg.coursedir, assignment_id=ASSIGNMENT, student_id=f"student{i:03d}"):
                app = Autograde(coursedir=cfg.coursedir, config=cfg.config)
                app.force = app.create_student = True
                app.log.setLevel("ERROR")
                t = time.perf_counter()
                app.start()
                totals["Autograde.start total (one student)"][0] += time.perf_counter() - t
                totals["Autograde.start total (one student)"][1] += 1
    finally:
        os.chdir(here)
    totals["wall per notebook"] = [time.perf_counter() - started, students]
    return sorted(((k, v[0] / students, v[1] / students) for k, v in totals.items()), key=lambda r: -r[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=16)
    parser.add_argument("--profile", action="store_true", help="also split one worker's time into steps")
    parser.add_argument("--profile-only", action="store_true")
    parser.add_argument("--no-queue", action="store_true", help="leave out the queue mode (needs PostgreSQL)")
    args = parser.parse_args()
    n = args.students
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        if args.profile or args.profile_only:
            rows = profile(make_class(Path(tmp) / "profile", min(n, 4)), min(n, 4))
            print(f"profile: our grader, one worker, {min(n, 4)} notebooks of {ASSIGNMENT} (s per notebook)")
            for label, s, calls in rows:
                print(f"  {label:<48} {s:7.3f}  ({calls:.0f} calls)")
            if args.profile_only:
                return
        stock = grade_stock(make_class(Path(tmp) / "stock", n, stock=True))
        one = grade_ours(make_class(Path(tmp) / "one", n), 1)
        two = grade_ours(make_class(Path(tmp) / "two", n), 2)
    print(f"{n} notebooks of {ASSIGNMENT}, one run, on a machine with {os.cpu_count()} cores")
    print(f"{'grader':<40} {'total s':>8} {'s / nb':>7} {'vs stock':>9}")
    for label, s in (("stock nbgrader autograde (serial)", stock), ("ours, sandboxed, 1 worker", one),
                     ("ours, sandboxed, 2 workers", two)):
        print(f"{label:<40} {s:>8.1f} {s / n:>7.2f} {s / stock:>8.2f}x")
    if args.no_queue:
        return
    # Queue mode: the same notebooks through PostgreSQL and 1, 2, 3 worker processes on this machine
    # (benchmarks/queue_bench.py, each on its own loopback PostgreSQL), and the queue's own cost.
    import queue_bench

    queue = {w: queue_bench.queue_seconds_per_notebook(w, n, ASSIGNMENT) for w in (1, 2, 3)}
    for w, s in queue.items():
        print(f"{f'queue mode, {w} worker(s)':<40} {s * n:>8.1f} {s:>7.2f} {s * n / stock:>8.2f}x")
    overhead = queue_bench.queue_overhead_ms(2000)
    print(f"queue overhead per job ({overhead['jobs']} no-op jobs): enqueue {overhead['enqueue_ms']:.2f} ms, "
          f"claim {overhead['claim_ms']:.2f} ms, complete {overhead['complete_ms']:.2f} ms")
    # A model, from these figures: 1,000 students x 8 assignments, each notebook costing what this
    # one costs (ex06 and ex07, which train a model, cost more), on machines like this one, each
    # running 2 workers; the course machine enqueues every job in turn.
    jobs, per_machine = 8000, min(queue[2], queue[1])
    enqueue = jobs * overhead["enqueue_ms"] / 1000
    print(f"model, {jobs:,} notebooks (1,000 students x 8 assignments), 2 workers per machine:")
    for machines in (1, 10, 50):
        wall = enqueue + jobs * per_machine / machines + jobs * (overhead["claim_ms"] + overhead["complete_ms"]) / 1000 / machines
        print(f"  {machines:>2} machine(s): {wall / 3600:6.2f} h")


if __name__ == "__main__":
    main()
