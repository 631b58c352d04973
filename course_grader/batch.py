"""Grade a whole folder of submissions: in parallel, resumable, and with nothing lost.

``make grade ASSIGNMENT=ex02_rnn_bptt`` (or ``python -m course_grader grade ...``) runs,
from the course root:

1. refuse unless the sandbox starts (or the instructor opted out, ``--Sandbox.enabled=False``);
2. back the gradebook up (``grading/backups/``) and fingerprint every submitted file;
3. check each submission is a notebook at all: a file that is not JSON or not a notebook is
   not handed to nbgrader but scored zero, with the reason;
4. autograde the others with nbgrader's own Autograde, in ``--jobs`` worker processes that each
   take the next student; a student whose grading outlives ``--student-timeout`` is stopped and
   scored zero; a failure on the grader's side (a kernel that does not start, a worker that
   dies, nbgrader raising) is retried once and, if it persists, the student is left ungraded
   with the reason, never scored zero; the others go on;
5. record each finished student in ``grading/<assignment>/state.json``, so that a batch that
   was interrupted can be run again and grades only what is left, including every student the
   grader failed (``--force`` regrades all);
6. afterwards check that no submitted file changed, that the gradebook is intact and that every
   student has every autograded cell scored, and write ``grading/<assignment>/log.csv``: one row
   per student with the score and the reasons an instructor can read (failed tests and their
   messages, repairs of the notebook's structure, kernel deaths, tampering, code worth a look).

The exit status is 0 when the batch finished and the checks passed, even if some submissions
were not gradable notebooks (they are in the log); 1 when a check failed or a student is left
ungraded by a grader fault; 2 when grading refused to start.
"""

from __future__ import annotations

import collections
import csv
import datetime as dt
import hashlib
import io
import json
import logging
import os
import re
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from traitlets.config import Config
from traitlets.config.loader import KVArgParseConfigLoader, PyFileConfigLoader

STATE_DIR = "grading"


def load_config(root: Path, overrides: list[str]) -> Config:
    """The course's nbgrader_config.py with command-line overrides (--Class.trait=value) on top."""
    cfg = Config()
    if (root / "nbgrader_config.py").exists():
        cfg = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    if overrides:
        cfg.merge(KVArgParseConfigLoader(argv=list(overrides)).load_config())
    return cfg


@dataclass
class Course:
    """Where things are, as nbgrader_config.py (and the overrides) say."""

    root: Path
    overrides: list[str] = field(default_factory=list)

    def __post_init__(self):
        from nbgrader.coursedir import CourseDirectory

        self.root = Path(self.root).resolve()
        self.config = load_config(self.root, self.overrides)
        here = os.getcwd()
        os.chdir(self.root)
        try:
            self.coursedir = CourseDirectory(config=self.config)
            self.coursedir.root = str(self.root)
        finally:
            os.chdir(here)

    @property
    def db_url(self) -> str:
        url = self.coursedir.db_url
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            url = f"sqlite:///{self.root / url[len('sqlite:///'):]}"
        return url

    def folder(self, kind: str, student: str, assignment: str) -> Path:
        name = {"submitted": self.coursedir.submitted_directory, "autograded": self.coursedir.autograded_directory,
                "feedback": self.coursedir.feedback_directory}[kind]
        return self.root / name / student / assignment

    def students(self, assignment: str) -> list[str]:
        base = self.root / self.coursedir.submitted_directory
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if (p / assignment).is_dir() and not p.name.startswith("."))

    def state_dir(self, assignment: str | None = None) -> Path:
        path = self.root / STATE_DIR / (assignment or "")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def sandbox_enabled(self) -> bool:
        from .sandbox import Sandbox

        return Sandbox(config=self.config).enabled


# ---------------------------------------------------------------------------------------------
# The gradebook: backup, integrity, zero scores for what could not be graded.


def backup_gradebook(db_url: str, dest: Path, tag: str) -> Path:
    """A consistent copy of the gradebook in dest; returns the file written.

    SQLite: the online backup API (safe while other processes use the file). PostgreSQL:
    ``pg_dump`` in its custom format (restore with ``pg_restore``).
    """
    dest.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    if db_url.startswith("sqlite:///"):
        path = Path(db_url[len("sqlite:///"):])
        out = dest / f"gradebook-{tag}-{stamp}.db"
        src, dst = sqlite3.connect(path), sqlite3.connect(out)
        with dst:
            src.backup(dst)
        src.close()
        dst.close()
        return out
    out = dest / f"gradebook-{tag}-{stamp}.dump"
    url = re.sub(r"^postgresql\+\w+://", "postgresql://", db_url)  # pg_dump knows no driver names
    result = subprocess.run(["pg_dump", "--format=custom", f"--file={out}", url], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"pg_dump failed: {result.stderr.strip()}")
    return out


def gradebook_problems(db_url: str, assignment: str | None = None, students: list[str] = ()) -> list[str]:
    """What is wrong with the gradebook: not a database, or a student's autograded cells unscored."""
    from nbgrader.api import Gradebook, MissingEntry

    problems = []
    if db_url.startswith("sqlite:///"):
        path = Path(db_url[len("sqlite:///"):])
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                verdict = db.execute("PRAGMA integrity_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            return [f"{path} is not a valid SQLite database: {exc}"]
        if verdict != "ok":
            return [f"SQLite integrity check of {path}: {verdict}"]
    try:
        with Gradebook(db_url) as gb:
            for student in students:
                try:
                    sub = gb.find_submission(assignment, student)
                except MissingEntry:
                    problems.append(f"{student} has no submission of {assignment} in the gradebook")
                    continue
                for nb in sub.notebooks:
                    for grade in nb.grades:
                        if grade.cell.cell_type == "code" and grade.auto_score is None and grade.manual_score is None:
                            problems.append(f"{student}: {grade.name} has no score")
    except Exception as exc:  # the gradebook cannot even be opened
        problems.append(f"the gradebook cannot be read: {type(exc).__name__}: {exc}")
    return problems


def zero_submission(db_url: str, assignment: str, student: str, reason: str, timestamp: str | None = None) -> None:
    """Score every cell of a submission that could not be graded zero, with the reason as comment."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gb:
        gb.update_or_create_student(student)
        if timestamp:
            sub = gb.update_or_create_submission(assignment, student, timestamp=timestamp)
        else:
            sub = gb.update_or_create_submission(assignment, student)
        for nb in sub.notebooks:
            for grade in nb.grades:
                grade.auto_score = 0
                grade.needs_manual_grade = False
            for comment in nb.comments:
                comment.auto_comment = f"Not graded: {reason}"
        gb.db.commit()


# ---------------------------------------------------------------------------------------------
# Submissions: fingerprints and a first look.


def fingerprint(paths: list[Path]) -> dict[str, str]:
    """{path: sha256 of the file} for every file under the given folders."""
    out = {}
    for base in paths:
        if not base.exists():
            continue
        for path in sorted(p for p in base.rglob("*") if p.is_symlink() or p.is_file()):
            content = f"symlink to {os.readlink(path)}".encode() if path.is_symlink() else path.read_bytes()
            out[str(path)] = hashlib.sha256(content).hexdigest()
    return out


def preflight(path: Path) -> str | None:
    """None if path is a notebook nbgrader can read; otherwise why it is not, for the log."""
    if not path.exists():
        return f"no file {path.name}"
    raw = path.read_bytes()
    if not raw.strip():
        return f"{path.name} is empty (0 bytes of notebook)"
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return f"{path.name} is not a notebook: not valid JSON ({str(exc)[:120]})"
    try:
        nb = nbformat.reads(raw.decode(), as_version=4)
        nbformat.validate(nb)
    except Exception as exc:
        return f"{path.name} is JSON but not a valid notebook ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})"
    if not isinstance(data, dict):
        return f"{path.name} is not a notebook"
    return None


def _timestamp(folder: Path) -> str | None:
    path = folder / "timestamp.txt"
    return path.read_text().strip() if path.exists() else None


# ---------------------------------------------------------------------------------------------
# The worker: grades one student after another with nbgrader's Autograde, in this process.


def worker_main(argv: list[str]) -> int:
    """Read student ids from stdin, autograde each, write one JSON line per student to stdout."""
    assignment, overrides = argv[0], argv[1:]
    results = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything else printed goes to the log, never into the protocol
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(levelname)s] %(message)s", stream=sys.stderr,
                        force=True)
    from nbgrader.converters import Autograde
    from nbgrader.utils import temp_attrs

    course = Course(Path.cwd(), overrides)
    os.chdir(course.root)
    _warm_up(course)
    for line in sys.stdin:
        student = line.strip()
        if not student:
            continue
        started = time.monotonic()
        buffer = io.StringIO()
        handler = logging.StreamHandler(buffer)
        handler.setLevel(logging.WARNING)
        result = {"student": student}
        with temp_attrs(course.coursedir, assignment_id=assignment, student_id=student):
            app = Autograde(coursedir=course.coursedir, config=course.config)
            app.force = True
            app.create_student = True
            app.log.addHandler(handler)
            try:
                app.start()
                result["success"] = True
            except BaseException as exc:  # nbgrader raises NbGraderException after logging why
                result["success"] = False
                result["error"] = f"{type(exc).__name__}: {exc}"
            finally:
                app.log.removeHandler(handler)
        result["log"] = buffer.getvalue()[-4000:]
        result["seconds"] = round(time.monotonic() - started, 2)
        results.write(json.dumps(result) + "\n")
    # Every kernel is stopped and every result written: leave at once. An orderly exit tears down
    # nbgrader, SQLAlchemy and ZeroMQ for over half a second, which the batch would wait for.
    results.close()
    sys.stderr.flush()
    os._exit(0)


def _warm_up(course: Course) -> None:
    """What a worker would otherwise do in its first student's time: the modules grading imports
    on first use, and the sandbox probe (its verdict is kept for the worker's lifetime)."""
    import nbclient  # noqa: F401
    import nbconvert.exporters  # noqa: F401
    from nbgrader.converters import Autograde  # noqa: F401

    from . import execute, structure  # noqa: F401
    from .sandbox import Sandbox, probe

    box = Sandbox(config=course.config)
    if box.enabled:
        probe(box)  # a failure is reported again, and in full, by the first kernel that starts


class _Forked:
    """A worker forked from the batch process, for what subprocess.Popen gives the batch: pid,
    stdin, stdout, poll() and wait(). It starts with nbgrader imported and the sandbox probed
    instead of spending two seconds of a core on both (see _Worker)."""

    def __init__(self, argv: list[str], cwd: Path, log_fd: int, tmpdir: str):
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the batch's code
            code = 1
            try:
                os.setsid()  # as start_new_session: the batch's Ctrl-C is the batch's to handle
                os.dup2(in_r, 0)
                os.dup2(out_w, 1)
                os.dup2(log_fd, 2)
                for fd in [int(f) for f in os.listdir("/proc/self/fd")]:
                    if fd > 2:  # above all the other workers' pipes: their end of file is the batch's to give
                        try:
                            os.close(fd)
                        except OSError:
                            pass
                sys.stdin = open(0, closefd=False)
                sys.stdout = open(1, "w", buffering=1, closefd=False)
                sys.stderr = open(2, "w", buffering=1, closefd=False)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                os.chdir(cwd)
                os.environ["TMPDIR"] = tmpdir
                tempfile.tempdir = tmpdir  # the kernels' sockets go there
                code = worker_main(argv)
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code or 0)
        os.close(in_r)
        os.close(out_w)
        self.pid, self.returncode = pid, None
        self.stdin, self.stdout = open(in_w, "w"), open(out_r)

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                done, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                done, status = self.pid, 0
            if done:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout)
            time.sleep(0.01)
        return self.returncode


def _can_fork() -> bool:
    """Whether a worker may be forked from this process: nbgrader is imported and no other thread
    runs (a thread's locks would stay held in the child). Queue mode calls grade() from a worker
    thread, and its workers are started as new processes instead."""
    import threading

    return "nbgrader.converters" in sys.modules and threading.active_count() == 1 and sys.platform == "linux"


class _Worker:
    def __init__(self, root: Path, assignment: str, overrides: list[str], index: int, tmpdir: str):
        logs = root / STATE_DIR / assignment
        logs.mkdir(parents=True, exist_ok=True)
        log = open(logs / f"worker-{index}.log", "a")
        if _can_fork():
            self.process = _Forked([assignment, *overrides], root, log.fileno(), tmpdir)
        else:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "course_grader.batch", "--worker", assignment, *overrides],
                cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                start_new_session=True, env=dict(os.environ, TMPDIR=tmpdir),  # the kernels' sockets go there
            )
        log.close()
        self.student: str | None = None
        self.deadline = 0.0

    def send(self, student: str, timeout: float) -> None:
        self.student, self.deadline = student, time.monotonic() + timeout
        self.process.stdin.write(student + "\n")
        self.process.stdin.flush()

    def stop(self, kill: bool = False) -> None:
        if kill:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        else:
            try:
                self.process.stdin.close()
            except OSError:
                pass
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


class Workers:
    """The worker processes of one batch, and the temporary folder their kernels use.

    A worker started as a new process spends two seconds of a core on Python, nbgrader and the
    sandbox probe. grade() forks them from itself once it has all three (see _Forked), before it
    backs up the gradebook and reads the submissions; those it turns out not to need are stopped
    unused.
    """

    def __init__(self, root: Path, assignment: str, overrides: list[str], count: int = 0, keep: bool = False):
        self.root, self.assignment, self.overrides = Path(root), assignment, list(overrides)
        self.keep = keep  # serve several batches (close() ends them)
        # what the workers' kernels leave in their temporary folder, even when killed, goes with it
        self.tmpdir = tempfile.mkdtemp(prefix="lm-batch-")
        self.started = [self.spawn(i) for i in range(count)]

    def spawn(self, index: int) -> _Worker:
        return _Worker(self.root, self.assignment, self.overrides, index, self.tmpdir)

    def take(self, count: int) -> list[_Worker]:
        """count workers, the ones already started first; the other started ones are stopped
        (or, with keep, kept for a later batch)."""
        alive = [w for w in self.started if w.process.poll() is None]
        workers, rest = alive[:count], alive[count:]
        self.started = rest if self.keep else []
        if not self.keep:
            for w in rest:
                w.stop()
        return workers + [self.spawn(i) for i in range(len(workers), count)]

    def give_back(self, workers: list[_Worker]) -> None:
        """Idle workers a batch is done with, kept running for the next batch (queue mode)."""
        self.started = [w for w in workers if w.process.poll() is None] + self.started

    def close(self) -> None:
        for w in self.started:
            w.stop()
        self.started = []
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def run_workers(course: Course, assignment: str, students: list[str], jobs: int, student_timeout: float, on_result,
                pool: Workers | None = None):
    """Grade students on `jobs` worker processes; call on_result(result dict) as each finishes.

    pool: workers started ahead for this batch (see Workers), stopped when it ends; with
    pool.keep set, the idle ones are given back to it instead, for the next batch.
    """
    queue = collections.deque(students)
    retried: set[str] = set()
    pool = pool or Workers(course.root, assignment, course.overrides)
    spawn = pool.spawn
    workers = pool.take(min(jobs, len(queue)))
    try:
        while queue or any(w.student for w in workers):
            for w in workers:
                if w.student is None and queue:
                    w.send(queue.popleft(), student_timeout)
            busy = {w.process.stdout: w for w in workers if w.student}
            ready, _, _ = select.select(list(busy), [], [], 1.0)
            for stream in ready:
                w = busy[stream]
                line = stream.readline()
                student, w.student = w.student, None
                result = json.loads(line) if line else {
                    "student": student, "success": False, "error": "the grading process died", "log": ""}
                if not line:
                    w.stop(kill=True)
                    workers[workers.index(w)] = spawn(workers.index(w))
                if not result["success"] and student not in retried:
                    retried.add(student)  # a busy gradebook or a kernel that failed to start: try once more
                    queue.append(student)
                    continue
                on_result(result)
            for i, w in enumerate(workers):
                if w.student and time.monotonic() > w.deadline:
                    student = w.student
                    w.stop(kill=True)
                    on_result({"student": student, "success": False, "log": "", "timed_out": True,
                               "error": f"grading took longer than {student_timeout:.0f} s and was stopped"})
                    workers[i] = spawn(i)
    finally:
        if pool.keep:
            for w in workers:
                if w.student:  # interrupted mid-student
                    w.stop(kill=True)
            pool.give_back([w for w in workers if not w.student])
        else:
            for w in workers:
                w.stop(kill=bool(w.student))
            pool.close()


# ---------------------------------------------------------------------------------------------
# The log: one row per student, with reasons.


def _first_line(text: str, limit: int = 240) -> str:
    text = " ".join(str(text).split())
    return text[:limit] + ("..." if len(text) > limit else "")


def describe(course: Course, assignment: str, student: str) -> dict:
    """Score and reasons for one student, from the gradebook and the graded notebooks."""
    from nbgrader.api import Gradebook, MissingEntry

    row = {"student": student, "score": "", "max_score": "", "failed_tests": "", "reasons": "", "flags": ""}
    failed, reasons, flags = [], [], []
    with Gradebook(course.db_url) as gb:
        try:
            sub = gb.find_submission(assignment, student)
            row["score"], row["max_score"] = round(sub.score, 4), round(sub.max_score, 4)
            failed = [g.name for nb in sub.notebooks for g in nb.grades
                      if g.cell.cell_type == "code" and (g.score or 0) < g.max_score]
        except MissingEntry:
            pass
    from .structure import scan_source

    for path in sorted(course.folder("autograded", student, assignment).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        reasons += [f"{path.stem}: {r}" for r in nb.metadata.get("lm_structure", [])]
        reasons += [f"{path.stem}: {e}" for e in nb.metadata.get("lm_grading", {}).get("events", [])]
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            gid = meta.get("grade_id")
            if meta.get("solution") and cell.cell_type == "code":  # an answer cell that failed to run
                for out in cell.get("outputs", []):
                    if out.get("output_type") == "error":
                        reasons.append(f"answer cell {gid} raised {out.get('ename')}: {_first_line(out.get('evalue', ''), 160)}")
                        break
            if gid in failed:
                for out in cell.get("outputs", []):
                    if out.get("output_type") == "error":
                        reasons.append(f"{gid}: {out.get('ename')}: {_first_line(out.get('evalue', ''))}")
                        break
                    if out.get("output_type") == "stream" and out.get("name") == "stderr":
                        reasons.append(f"{gid}: wrote to stderr: {_first_line(out.get('text', ''))}")
                        break
    for path in sorted(course.folder("submitted", student, assignment).glob("*.ipynb")):
        if path.is_symlink():
            continue
        try:
            flags += scan_source(nbformat.read(path, as_version=4))
        except Exception:
            pass
    row.update(failed_tests=" ".join(failed), reasons=" | ".join(reasons), flags=" | ".join(flags))
    return row


# ---------------------------------------------------------------------------------------------
# The batch, step by step.

GRADED, UNREADABLE, GRADER_FAULT = "graded", "failed", "grader-fault"


class GradingState:
    """What a batch knows about each student, kept in ``grading/<assignment>/state.json``.

    Each entry: status (GRADED; UNREADABLE: the submission is not a gradable notebook and is
    scored zero; GRADER_FAULT: grading failed on the grader's side, no score is given and the next
    run grades it again), the submission's sha256, seconds and reason. A student counts as done
    only while the submission is unchanged and, when graded, its autograded notebooks exist.
    """

    def __init__(self, path: Path, digest):
        self.path, self.digest = path, digest  # digest(student) -> sha256 of the submitted folder
        self.entries: dict[str, dict] = json.loads(path.read_text()) if path.exists() else {}

    def done(self, student: str, autograded_exist) -> bool:
        entry = self.entries.get(student, {})
        if entry.get("status") not in (GRADED, UNREADABLE) or entry.get("retry"):
            return False
        if entry.get("sha256") != self.digest(student):
            return False
        return entry["status"] == UNREADABLE or autograded_exist(student)

    def save(self, student: str, status: str, seconds: float, reason: str = "") -> None:
        self.entries[student] = {"status": status, "sha256": self.digest(student), "seconds": seconds,
                                 "reason": reason, "retry": status == GRADER_FAULT}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.entries, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    def status(self, student: str) -> str:
        return self.entries.get(student, {}).get("status", "")


def grading_state(course: Course, assignment: str) -> GradingState:
    """The assignment's state.json, each student's submission known by the digest of its files."""
    return GradingState(
        course.state_dir(assignment) / "state.json",
        lambda s: hashlib.sha256(json.dumps(fingerprint([course.folder("submitted", s, assignment)]),
                                            sort_keys=True).encode()).hexdigest())


def classify(result: dict) -> tuple[str, str]:
    """(status, reason) of one worker result: GRADED, or why not and whose fault it is.

    A worker's own failure (nbgrader raised, the kernel did not start, the process died) is
    the grader's: the hardened pipeline grades any notebook, so a crash there is never a verdict
    on the submission. Only a submission that outlives the whole-student timeout is charged.
    """
    if result["success"]:
        return GRADED, ""
    errors = [ln for ln in result.get("log", "").splitlines() if "[ERROR]" in ln or "Error" in ln]
    reason = result.get("error") or "nbgrader failed"
    if errors:
        reason = f"{reason} ({_first_line(errors[-1], 300)})"
    return (UNREADABLE if result.get("timed_out") else GRADER_FAULT), reason


def log_rows(course: Course, assignment: str, students: list[str], state: GradingState,
             described: dict[str, dict] | None = None) -> list[dict]:
    """One row per student for log.csv: status, score, failed tests, reasons, flags.

    described: describe() of students already read (after their grading ended), not read again.
    """
    rows = []
    for student in students:
        entry = state.entries.get(student, {})
        known = (described or {}).get(student) or describe(course, assignment, student)
        row = dict(known, status=entry.get("status", ""), seconds=entry.get("seconds", ""))
        if entry.get("status") == UNREADABLE:
            row["reasons"] = f"not graded: {entry.get('reason', '')}" + (f" | {row['reasons']}" if row["reasons"] else "")
        elif entry.get("status") == GRADER_FAULT:
            row.update(score="", reasons=f"not graded, a fault on the grader's side (the next run retries it): "
                                         f"{entry.get('reason', '')}")
        rows.append(row)
    return rows


def write_log(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        fields = ["student", "status", "score", "max_score", "seconds", "failed_tests", "reasons", "flags"]
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def refuse_to_start(course: Course, say) -> str | None:
    """Why grading must not start (the sandbox cannot run), or None; warns when it is switched off."""
    from .sandbox import Sandbox, probe, unavailable_message

    if not course.sandbox_enabled():
        say("WARNING: grading WITHOUT the sandbox (--Sandbox.enabled=False): every submission runs with your "
            "permissions and can read or change any of your files.")
        return None
    reason = probe(Sandbox(config=course.config))
    return unavailable_message(reason) if reason else None


def released_notebooks(course: Course, assignment: str) -> list[str] | None:
    """The names of the assignment's notebooks in the gradebook; None if it was never released."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(course.db_url) as gb:
        try:
            return [nb.name for nb in gb.find_assignment(assignment).notebooks]
        except MissingEntry:
            return None


def unreadable_reason(folder: Path, notebooks: list[str]) -> str | None:
    """Why a submitted folder cannot be handed to nbgrader (symbolic links, not a notebook), or None."""
    from .structure import symlinks_in

    links = symlinks_in(str(folder))
    if links:
        return f"it contains symbolic links ({', '.join(links[:3])}); only regular files are graded"
    problems = [p for p in (preflight(folder / f"{n}.ipynb") for n in notebooks) if p]
    return "; ".join(problems) or None


def choose(everyone: list[str], students: list[str] | None, failed_only: bool, state: GradingState) -> tuple[list[str], bool]:
    """(the students this run looks at, whether they are graded again even if done).

    By default everyone, and only what is not done is graded; students named by id, or with
    failed_only those whose last grading ended without a grade, are graded again.
    """
    chosen = [s for s in everyone if not students or s in students]
    if failed_only:
        chosen = [s for s in chosen if state.status(s) not in ("", GRADED)]
    return chosen, bool(students) or failed_only


class Progress:
    """Count, rate and time left of a batch, for the line printed as each student finishes."""

    def __init__(self, total: int, clock=time.monotonic):
        self.total, self.done, self.clock, self.started = total, 0, clock, clock()

    def step(self) -> str:
        self.done += 1
        elapsed = max(self.clock() - self.started, 1e-9)
        rate = self.done / elapsed * 60  # students per minute
        left = (self.total - self.done) / (self.done / elapsed)
        eta = f"{left / 60:.1f} min" if left >= 60 else f"{left:.0f} s"
        return f"[{self.done}/{self.total}, {rate:.1f}/min, {eta} left]"


def grade(root: Path, assignment: str, *, jobs: int | None = None, force: bool = False, students: list[str] | None = None,
          failed_only: bool = False, student_timeout: float = 1800.0, overrides: list[str] = (), out=sys.stdout,
          pool: Workers | None = None) -> int:
    """Grade every submission of assignment (see the module doc); return the exit status.

    students: grade only these ids (regraded even if done); failed_only: regrade only the students
    whose last grading did not finish with a grade (not a notebook, timed out, grader fault).
    """
    started = time.monotonic()
    jobs = max(1, jobs or os.cpu_count() or 1)
    own_pool = pool is None  # a pool passed in (queue mode) outlives this batch
    course = Course(root, list(overrides))
    say = lambda text: print(text, file=out, flush=True)  # noqa: E731
    here = os.getcwd()
    os.chdir(course.root)
    try:
        refusal = refuse_to_start(course, say)
        if refusal:
            say(refusal)
            return 2
        if own_pool:  # started now, they get ready while the gradebook is backed up and the submissions read
            _warm_up(course)
            pool = Workers(course.root, assignment, list(overrides), min(jobs, len(students) if students else jobs))
        notebooks = released_notebooks(course, assignment)
        if notebooks is None:
            say(f"{assignment} is not in the gradebook: run `nbgrader generate_assignment {assignment}` first.")
            return 2
        backup = backup_gradebook(course.db_url, course.state_dir("backups"), assignment)
        say(f"gradebook backed up to {backup.relative_to(course.root)}")
        everyone = course.students(assignment)
        unknown = sorted(set(students or ()) - set(everyone))
        if unknown:
            say(f"no submission of {assignment} from {', '.join(unknown)} in {course.coursedir.submitted_directory}/")
            return 2
        guarded = [course.folder("submitted", s, assignment) for s in everyone]
        guarded += [course.root / course.coursedir.source_directory / assignment]
        before = fingerprint(guarded)
        state = grading_state(course, assignment)
        autograded_exist = lambda s: all(  # noqa: E731
            (course.folder("autograded", s, assignment) / f"{n}.ipynb").exists() for n in notebooks)

        chosen, redo = choose(everyone, students, failed_only, state)
        redo = redo or force
        todo, skipped = [], []
        for student in chosen:
            if not redo and state.done(student, autograded_exist):
                skipped.append(student)
                continue
            folder = course.folder("submitted", student, assignment)
            reason = unreadable_reason(folder, notebooks)
            if reason:
                zero_submission(course.db_url, assignment, student, reason, _timestamp(folder))
                state.save(student, UNREADABLE, 0.0, reason)
                say(f"  {student}: not graded: {reason}")
            else:
                todo.append(student)
        if skipped:
            say(f"{len(skipped)} submission(s) already graded and unchanged: skipped (--force regrades them)")
        say(f"grading {len(todo)} submission(s) of {assignment} on {min(jobs, max(1, len(todo)))} worker(s)")
        progress = Progress(len(todo))
        described: dict[str, dict] = {}  # each student's log row, read while the workers grade the others

        def on_result(result):
            student = result["student"]
            status, reason = classify(result)
            state.save(student, status, result.get("seconds", 0.0), reason)
            where = progress.step()
            if status == GRADED:
                say(f"  {student}: graded in {result['seconds']:.1f} s {where}")
            elif status == UNREADABLE:
                zero_submission(course.db_url, assignment, student, reason,
                                _timestamp(course.folder("submitted", student, assignment)))
                say(f"  {student}: not graded: {reason} {where}")
            else:
                say(f"  {student}: NOT GRADED, a fault on the grader's side (rerun to retry): {reason} {where}")
            try:  # final now: no worker writes this student again
                described[student] = describe(course, assignment, student)
            except Exception:  # a gradebook busy with the workers' writes: read at the end instead
                pass

        if todo:
            run_workers(course, assignment, todo, jobs, student_timeout, on_result, pool=pool)

        after = fingerprint(guarded)
        changed = sorted(p for p in before if after.get(p) != before[p]) + sorted(set(after) - set(before))
        problems = [f"a submitted or source file changed during grading: {p}" for p in changed]
        faults = [s for s in chosen if state.status(s) == GRADER_FAULT]
        problems += gradebook_problems(course.db_url, assignment, [s for s in chosen if s not in faults])
        problems += [f"{s} was not graded because of a fault on the grader's side; run the batch again" for s in faults]
        log_path = course.state_dir(assignment) / "log.csv"
        write_log(log_path, log_rows(course, assignment, chosen, state, described))
        unreadable = [s for s in todo if state.status(s) == UNREADABLE]
        graded = [s for s in todo if state.status(s) == GRADED]
        say(f"{len(graded)} graded, {len(unreadable) + len(chosen) - len(todo) - len(skipped)} not gradable, "
            f"{len(faults)} not graded (grader fault), {len(skipped)} skipped, in {time.monotonic() - started:.0f} s; "
            f"log: {log_path.relative_to(course.root)}")
        for problem in problems:
            say(f"CHECK FAILED: {problem}")
        return 1 if problems else 0
    finally:
        if own_pool and pool is not None:
            pool.close()
        os.chdir(here)


if __name__ == "__main__":  # the worker processes grade() starts; the instructor's command is course_grader.cli
    if sys.argv[1:2] != ["--worker"]:
        sys.exit("usage: python -m course_grader.batch --worker ASSIGNMENT [--Class.trait=value ...] "
                 "(started by `python -m course_grader grade`)")
    sys.exit(worker_main(sys.argv[2:]))
