"""The queue mode: three workers, each in its own scratch folder, grade a class through PostgreSQL.

A loopback PostgreSQL holds the queue; three `python -m course_grader queue worker` processes run
with their working directory elsewhere (standing in for three machines without the course folder);
one of them is killed with SIGKILL in the middle of a job. After `queue collect`, every grade,
log row and autograded notebook must equal what `python -m course_grader grade` gives for a copy
of the same class on one machine (timestamps and durations removed). Pure parts are tested below
without a database.
"""

from __future__ import annotations

import base64
import csv
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

import course
from grading_helpers import ASSIGNMENT, LIMITS, NOTEBOOK, grade_command, grading_env, make_class, require_sandbox
from hostile import Context

from course_grader import queue

CATALOGUE = importlib.import_module(f"hostile.{ASSIGNMENT}")
HOSTILE = ["not-json", "edited-test-cells", "reordered-cells", "writes-gradebook"]
REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------
# Without a database.

def test_digest_names_the_submission_and_changes_with_any_byte(tmp_path):
    (tmp_path / "a.ipynb").write_bytes(b"{}")
    one = queue.digest_of(queue.files_of(tmp_path))
    assert one == queue.digest_of(queue.files_of(tmp_path))
    (tmp_path / "a.ipynb").write_bytes(b"{ }")
    assert queue.digest_of(queue.files_of(tmp_path)) != one
    (tmp_path / "a.ipynb").write_bytes(b"{}")
    (tmp_path / "b.txt").write_bytes(b"")
    assert queue.digest_of(queue.files_of(tmp_path)) != one


def test_tar_round_trip_is_deterministic(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "x.bin").write_bytes(bytes(range(256)))
    (src / "y.txt").write_text("y")
    data = queue.tar_bytes(src)
    os.utime(src / "y.txt", (0, 12345))
    assert queue.tar_bytes(src) == data
    queue.untar(data, tmp_path / "dst")
    assert queue.files_of(tmp_path / "dst") == queue.files_of(src)
    assert base64.b64decode(queue.files_of(src)["y.txt"]) == b"y"


def test_progress_rate_eta_and_per_worker():
    rows = [{"started": 0.0, "finished": 10.0, "worker": "a"}, {"started": 0.0, "finished": 20.0, "worker": "b"},
            {"started": 10.0, "finished": None, "worker": "a"}, {"started": None, "finished": None, "worker": None}]
    p = queue.progress(rows, now=20.0)
    assert (p["total"], p["done"], p["running"]) == (4, 2, 1)
    assert p["rate"] == pytest.approx(0.1) and p["eta"] == pytest.approx(20.0)
    assert p["workers"]["a"]["seconds_per_job"] == 10.0 and p["workers"]["b"]["seconds_per_job"] == 20.0
    assert queue.progress([{"started": None, "finished": None, "worker": None}], now=5.0)["eta"] is None


# ---------------------------------------------------------------------------------------------
# With PostgreSQL and three workers.

@pytest.fixture(scope="module")
def postgres_url():
    from test_postgres_gradebook import postgres_url as fixture

    yield from fixture.__wrapped__()


def _class(root: Path) -> Path:
    root.mkdir()
    c = make_class(root)
    release = nbformat.read(c / "exercises" / ASSIGNMENT / NOTEBOOK, as_version=4)
    source = nbformat.read(c / "solutions" / ASSIGNMENT / NOTEBOOK, as_version=4)
    ctx = Context(release=release, source=source, course=c, port=9)
    for student in HOSTILE:
        built = CATALOGUE.HOSTILE[student]["build"](ctx)
        folder = c / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        if isinstance(built, bytes):
            (folder / NOTEBOOK).write_bytes(built)
        else:
            nbformat.write(built, folder / NOTEBOOK)
    return c


def _log(c: Path) -> dict[str, dict]:
    with open(c / "grading" / ASSIGNMENT / "log.csv", newline="") as f:
        return {r["student"]: {k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)}


def _autograded(c: Path) -> dict[str, list]:
    """{student: cells (type, source, outputs without execution counts and timings)}."""
    out = {}
    for path in sorted((c / "autograded").glob(f"*/{ASSIGNMENT}/{NOTEBOOK}")):
        nb = nbformat.read(path, as_version=4)
        cells = []
        for cell in nb.cells:
            outputs = []
            for o in cell.get("outputs", []):
                o = {k: v for k, v in o.items() if k != "execution_count"}
                # a print can reach the notebook as one stream output or as several, split wherever
                # the kernel flushed: the text counts, not where it was cut
                if o.get("output_type") == "stream" and outputs and outputs[-1].get("output_type") == "stream" \
                        and outputs[-1]["name"] == o["name"]:
                    outputs[-1] = dict(outputs[-1], text=outputs[-1]["text"] + o["text"])
                else:
                    outputs.append(o)
            cells.append((cell.cell_type, cell.source, cell.metadata.get("nbgrader"), outputs))
        out[path.parts[-3]] = cells
    return out


def _worker(url: str, where: Path, name: str) -> subprocess.Popen:
    where.mkdir(parents=True)
    env = dict(grading_env(), PYTHONPATH=str(REPO), GRADING_QUEUE_URL=url, GRADING_WORKER_NAME=name,
               GRADING_QUEUE_LEASE="6")
    return subprocess.Popen([sys.executable, "-m", "course_grader", "queue", "worker", "--scratch", str(where)],
                            cwd=where, env=env, stdout=open(where / "out.log", "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


@pytest.mark.slow
def test_three_workers_one_killed_give_the_single_machine_grades(postgres_url, tmp_path):
    require_sandbox()
    url, _ = postgres_url
    one = _class(tmp_path / "one")
    many = tmp_path / "many"
    shutil.copytree(one, many, symlinks=True)  # the same class, graded through the queue
    single = grade_command(one, "grade", ASSIGNMENT, "--jobs", "2", *LIMITS)
    assert single.returncode == 0, single.stdout[-3000:]

    env = dict(grading_env(), GRADING_QUEUE_URL=url)
    run = lambda *a: subprocess.run([sys.executable, "-m", "course_grader", "queue", *a], cwd=many, env=env,  # noqa: E731
                                    capture_output=True, text=True, timeout=600)
    queued = run("enqueue", ASSIGNMENT, *LIMITS)
    assert queued.returncode == 0, queued.stdout + queued.stderr
    again = run("enqueue", ASSIGNMENT, *LIMITS)
    assert "queued 0 submission" in again.stdout, again.stdout  # the same submissions are never queued twice
    workers = [_worker(url, tmp_path / f"machine{i}", f"machine{i}") for i in range(3)]
    killed = False
    import psycopg

    deadline = time.monotonic() + 600
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            while time.monotonic() < deadline:
                running = conn.execute("SELECT worker FROM grading_job WHERE started IS NOT NULL AND finished IS NULL "
                                       "AND worker = 'machine0'").fetchall()
                if running and not killed:
                    time.sleep(1.0)  # mid-job
                    os.killpg(workers[0].pid, signal.SIGKILL)
                    killed = True
                left = conn.execute("SELECT count(*) FROM grading_job WHERE finished IS NULL").fetchone()[0]
                # a job's result row is written inside the task, before Procrastinate marks the job
                # succeeded: wait for both, or the last job can still read 'doing'
                open_jobs = conn.execute("SELECT count(*) FROM procrastinate_jobs "
                                         "WHERE status IN ('todo', 'doing')").fetchone()[0]
                if left == 0 and open_jobs == 0:
                    break
                time.sleep(0.5)
            jobs = conn.execute("SELECT status, attempts FROM procrastinate_jobs").fetchall()
            results = conn.execute("SELECT count(*) FROM grading_result").fetchone()[0]
            workers_seen = {w for (w,) in conn.execute("SELECT worker FROM grading_job").fetchall()}
    finally:
        for w in workers:
            try:
                os.killpg(w.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            w.wait()
    logs = "\n".join((tmp_path / f"machine{i}" / "out.log").read_text()[-2000:] for i in range(3))
    assert killed, logs
    assert left == 0, logs
    assert "put back in the queue" in logs
    assert results == len(os.listdir(many / "submitted")), logs  # one result per submission, none twice
    assert all(s == "succeeded" for s, _ in jobs), (jobs, logs)
    assert "machine0" not in workers_seen or len(workers_seen) >= 2
    status = run("status")
    assert status.returncode == 0 and "graded" in status.stdout, status.stdout + status.stderr

    collected = run("collect", ASSIGNMENT, *LIMITS)
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert course.scores(many, ASSIGNMENT) == course.scores(one, ASSIGNMENT)
    assert _log(many) == _log(one)
    assert _autograded(many) == _autograded(one)

    # state.json as the single machine keeps it, so that a later `make grade` (FAILED=1, STUDENT=id)
    # on the course machine starts from what the queue graded
    def _state(c: Path) -> dict:
        entries = json.loads((c / "grading" / ASSIGNMENT / "state.json").read_text())
        return {s: (e["status"], e["retry"]) for s, e in entries.items()}
    assert _state(many) == _state(one)
    regrade = grade_command(many, "grade", ASSIGNMENT, *LIMITS)
    unchanged = [line for line in regrade.stdout.splitlines() if "already graded and unchanged" in line]
    assert unchanged and unchanged[0].startswith(f"{len(_state(one))} submission(s)"), regrade.stdout[-3000:]
