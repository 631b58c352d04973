"""Hostile and broken submissions, graded in one parallel batch next to honest ones.

The catalogue (tests/hostile/ex00_how_to_use.py) holds endless loops, dying kernels, memory and
fork bombs, huge output, files that are not notebooks, mangled structure and metadata, tampered
grading helpers, and code that reaches for the gradebook, other students' files, the
instructor's solutions and the network. One `make grade`-style batch grades them all with the
sandbox on; then every hostile entry must have exactly the scores the catalogue names and a
reason in the grading log, and no honest grade, no submitted file and not the gradebook may change.
Where several limits can stop an entry, which fires first depends on the machine's load, so the
reason may name any of them (see tests/hostile/__init__.py).
"""

from __future__ import annotations

import csv
import importlib
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest

import course
from grading_helpers import ASSIGNMENT, LIMITS, NOTEBOOK, WRONG, grade_command, require_sandbox, student_id
from hostile import Context, stopped_by

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("hostile-batch")]  # one graded batch for the module, on one worker
CATALOGUE = importlib.import_module(f"hostile.{ASSIGNMENT}")


class Listener:
    """A loopback TCP server that records whatever a submission manages to send out."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.sock.settimeout(0.5)
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    self.received.append(conn.recv(1024))
                except OSError:
                    self.received.append(b"(connected)")

    def close(self):
        self.running = False
        self.thread.join(timeout=5)
        self.sock.close()


class Batch:
    """A course with the catalogue submitted and graded once; what the tests inspect."""

    def __init__(self, root: Path):
        require_sandbox()
        self.course = course.make_course(root)
        course.nbgrader(self.course, "generate_assignment", ASSIGNMENT, "--force")
        release_nb = self.course / "exercises" / ASSIGNMENT / NOTEBOOK
        source_nb = self.course / "solutions" / ASSIGNMENT / NOTEBOOK
        self.listener = Listener()
        ctx = Context(nbformat.read(release_nb, as_version=4), nbformat.read(source_nb, as_version=4),
                      self.course.resolve(), self.listener.port)
        for student, entry in CATALOGUE.HOSTILE.items():
            built = entry["build"](ctx)
            folder = self.course / "submitted" / student / ASSIGNMENT
            folder.mkdir(parents=True)
            if isinstance(built, bytes):
                (folder / NOTEBOOK).write_bytes(built)
            elif isinstance(built, tuple) and built[0] == "symlink":
                (folder / NOTEBOOK).symlink_to(built[1])
            elif isinstance(built, tuple) and built[0] == "symlink-beside":
                nbformat.write(built[1], folder / NOTEBOOK)
                (folder / "notes.txt").symlink_to(built[2])
            else:
                nbformat.write(built, folder / NOTEBOOK)
        course.submit(self.course, "reference", ASSIGNMENT, NOTEBOOK, course.filled_submission(release_nb, source_nb))
        shutil.copytree(self.course / "exercises" / ASSIGNMENT, self.course / "submitted" / "untouched" / ASSIGNMENT)
        for name in CATALOGUE.HONEST[2:]:
            nb = course.filled_submission(release_nb, source_nb, WRONG[name]["cells"])
            course.submit(self.course, student_id(name), ASSIGNMENT, NOTEBOOK, nb)
        self.submitted_before = _files(self.course / "submitted")
        self.solutions_before = _files(self.course / "solutions")
        self.result = grade_command(self.course, "grade", ASSIGNMENT, "--jobs", "2", *LIMITS)
        self.listener.close()
        self.scores = course.scores(self.course, ASSIGNMENT)
        with open(self.course / "grading" / ASSIGNMENT / "log.csv", newline="") as f:
            self.log = {row["student"]: row for row in csv.DictReader(f)}

    def explain(self, student: str) -> str:
        return f"log row: {self.log.get(student)}\nbatch output:\n{self.result.stdout[-3000:]}\n{self.result.stderr[-2000:]}"


def _files(folder: Path) -> dict[str, bytes]:
    """{path: content} of every file under folder; a symbolic link's content is where it points."""
    return {str(p.relative_to(folder)): os.readlink(p).encode() if p.is_symlink() else p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_symlink() or p.is_file()}


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Batch:
    return Batch(tmp_path_factory.mktemp("hostile"))


def test_the_batch_finishes_with_its_checks_passed(batch):
    assert batch.result.returncode == 0, batch.explain("")
    graded = set(CATALOGUE.HOSTILE) | {"reference", "untouched"} | {student_id(n) for n in CATALOGUE.HONEST[2:]}
    assert graded <= set(batch.log), f"missing from the log: {graded - set(batch.log)}"


@pytest.mark.parametrize("student", sorted(CATALOGUE.HOSTILE))
def test_hostile_submission_gets_the_right_score_and_a_readable_reason(batch, student):
    entry = CATALOGUE.HOSTILE[student]
    cells = batch.scores.get(student)
    assert cells, f"{student} has no grades\n{batch.explain(student)}"
    loses = set(cells) if entry["loses"] == "all" else set(entry["loses"])
    wrong = {cell: score for cell, (score, top) in cells.items() if score != (0 if cell in loses else top)}
    assert not wrong, f"{student}: cells with the wrong score {wrong} (must lose {sorted(loses)})\n{batch.explain(student)}"
    row = batch.log[student]
    assert row["status"] == entry.get("status", "graded"), batch.explain(student)
    text = " | ".join([row["reasons"], row["flags"]])
    assert re.search(entry["reason"], text), f"{student}: no reason matching {entry['reason']!r}\n{batch.explain(student)}"


def test_a_limit_reason_names_the_cell_and_one_of_its_limits():
    """The catalogue's patterns for entries that more than one limit can stop, on reasons as the log writes them."""
    pattern = stopped_by("derivatives", "processes", "time")
    for reason in ("answer cell derivatives raised BlockingIOError: [Errno 11] Resource temporarily unavailable",
                   "ex00_how_to_use: derivatives: timed out after 10 s",
                   "ex00_how_to_use: derivatives: timed out and the kernel ignored the interrupt"):
        assert re.search(pattern, f"x | {reason} | y"), reason
    for reason in ("ex00_how_to_use: test_derivatives_visible: timed out after 10 s",  # another cell
                   "answer cell derivatives raised MemoryError",  # a limit not named
                   "ex00_how_to_use: derivatives: the kernel exited with status 3",
                   "answer cell derivatives raised NameError | test_sigmoid_visible: timed out after 10 s"):
        assert not re.search(pattern, reason), reason


def test_honest_submissions_keep_their_grades(batch):
    top = {cell: t for cell, (_, t) in batch.scores["reference"].items()}
    expected = {"reference": top, "untouched": {cell: 0 for cell in top}}
    for name in CATALOGUE.HONEST[2:]:
        expected[student_id(name)] = {cell: 0 if cell in WRONG[name]["loses"] else t for cell, t in top.items()}
    got = {s: {cell: score for cell, (score, _) in batch.scores[s].items()} for s in expected}
    assert got == expected


def test_no_submitted_or_instructor_file_changes_and_nothing_gets_out(batch):
    assert _files(batch.course / "submitted") == batch.submitted_before
    assert _files(batch.course / "solutions") == batch.solutions_before
    planted = [str(p) for p in batch.course.rglob("*") if p.is_file() and "PWNED" in p.name]
    assert not planted, f"files planted by submissions: {planted}"
    for student in ["reference", "untouched"]:
        text = (batch.course / "autograded" / student / ASSIGNMENT / NOTEBOOK).read_text()
        assert "PWNED" not in text
    assert batch.listener.received == [], "a submission reached the network"


def test_the_gradebook_stays_valid_and_was_backed_up(batch):
    from course_grader.batch import gradebook_problems

    assert gradebook_problems(f"sqlite:///{batch.course / 'gradebook.db'}", ASSIGNMENT, sorted(batch.log)) == []
    backups = list((batch.course / "grading" / "backups").glob(f"gradebook-{ASSIGNMENT}-*.db"))
    assert len(backups) == 1 and backups[0].stat().st_size > 0


def test_huge_output_is_cut_and_the_graded_notebooks_stay_small(batch):
    for student in ("huge-output-many-lines", "huge-output-one-message"):
        size = (batch.course / "autograded" / student / ASSIGNMENT / NOTEBOOK).stat().st_size
        assert size < 1_000_000, f"{student}'s graded notebook is {size} bytes"


def test_a_second_run_grades_nothing_again_and_changes_nothing(batch):
    again = grade_command(batch.course, "grade", ASSIGNMENT, "--jobs", "2", *LIMITS)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "grading 0 submission(s)" in again.stdout
    assert course.scores(batch.course, ASSIGNMENT) == batch.scores


def test_without_the_sandbox_the_stolen_solution_would_have_earned_full_marks(tmp_path):
    """The reads-solutions entry is a real attack: unsandboxed, it copies the model answer."""
    require_sandbox()
    c = course.make_course(tmp_path)
    course.nbgrader(c, "generate_assignment", ASSIGNMENT, "--force")
    release_nb = c / "exercises" / ASSIGNMENT / NOTEBOOK
    ctx = Context(nbformat.read(release_nb, as_version=4),
                  nbformat.read(c / "solutions" / ASSIGNMENT / NOTEBOOK, as_version=4), c.resolve(), 9)
    course.submit(c, "thief", ASSIGNMENT, NOTEBOOK, CATALOGUE.HOSTILE["reads-solutions"]["build"](ctx))
    result = grade_command(c, "grade", ASSIGNMENT, "--Sandbox.enabled=False")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WITHOUT the sandbox" in result.stdout
    sigmoid = {cell: score for cell, (score, top) in course.scores(c, ASSIGNMENT)["thief"].items() if "sigmoid" in cell}
    assert sigmoid == {"test_sigmoid_visible": 1.0, "test_sigmoid_hidden": 2.0}


def test_grading_refuses_to_start_without_the_sandbox(tmp_path):
    c = course.make_course(tmp_path)
    course.nbgrader(c, "generate_assignment", ASSIGNMENT, "--force")
    shutil.copytree(c / "exercises" / ASSIGNMENT, c / "submitted" / "someone" / ASSIGNMENT)
    result = grade_command(c, "grade", ASSIGNMENT, "--Sandbox.bwrap=/nonexistent/bwrap")
    assert result.returncode == 2
    assert "refuses" in result.stdout and "--Sandbox.enabled=False" in result.stdout
    # nbgrader itself refuses as well, notebook by notebook, and grades nothing
    plain = course.nbgrader(c, "autograde", ASSIGNMENT, "--Sandbox.bwrap=/nonexistent/bwrap", check=False)
    assert plain.returncode != 0
    assert "refuses to run students' code outside the sandbox" in plain.stdout + plain.stderr
    assert not list((c / "autograded").rglob("*.ipynb"))


_PROBE = r"""
import json, os, socket, sys
course, port = sys.argv[1], int(sys.argv[2])
out = {"uid": os.getuid(), "sees": [p for p in ("gradebook.db", "submitted", "solutions", "nbgrader_config.py")
                                    if os.path.exists(os.path.join(course, p))]}
with open("/tmp/work/scratch.txt", "w") as f:
    out["scratch"] = f.write("mine") == 4
out["wrote"] = []
for path in ("/usr/lib/evil", os.path.join(os.path.dirname(os.__file__), "evil.py"), os.path.join(course, "evil")):
    try:
        open(path, "w").close()
        out["wrote"].append(path)
    except OSError:
        pass
try:
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    out["network"] = True
except OSError:
    out["network"] = False
limits = {line[:26].strip(): line[26:].split()[:2] for line in open("/proc/self/limits")}
out["limits"] = {k: limits[k] for k in ("Max cpu time", "Max address space", "Max processes", "Max file size")}
out["processes"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
print(json.dumps(out))
"""


def test_the_sandbox_hides_the_course_has_no_network_and_sets_the_limits(tmp_path, monkeypatch):
    """The sandbox itself, without nbgrader: what a process inside can see, write and reach."""
    require_sandbox()
    import json

    from course_grader.sandbox import Sandbox, build_command

    c = course.make_course(tmp_path)
    for name in ("gradebook.db", "submitted/someone/x.ipynb"):
        (c / name).parent.mkdir(parents=True, exist_ok=True)
        (c / name).write_text("secret")
    monkeypatch.chdir(c)  # the grader runs from the course folder
    box = Sandbox()
    listener = Listener()
    try:
        shared = tmp_path / "shared"
        shared.mkdir()
        cmd = build_command([sys.executable, "-c", _PROBE, str(c.resolve()), str(listener.port)], box, shared_dir=str(shared))
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    finally:
        listener.close()
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["sees"] == [] and seen["scratch"] and seen["wrote"] == []
    assert seen["network"] is False and listener.received == []
    if os.geteuid() == 0:
        assert seen["uid"] == box.sandbox_uid() != 0
    mb = 1024 * 1024
    assert seen["limits"] == {
        "Max cpu time": [str(box.cpu_seconds), str(box.cpu_seconds + 5)],
        "Max address space": [str(box.memory_mb * mb)] * 2,
        "Max processes": [str(box.processes)] * 2,
        "Max file size": [str(box.file_mb * mb)] * 2,
    }
    assert seen["processes"] == [1, 2]  # bubblewrap's init and the process itself: nothing of the host
    assert not (c / "evil").exists()
