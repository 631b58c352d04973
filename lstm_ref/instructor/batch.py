"""Grade a whole folder of submissions: in parallel, resumable, and with nothing lost.

``make grade ASSIGNMENT=ex02_rnn_bptt`` (or ``python -m lstm_ref.instructor grade ...``) runs,
from the course root:

1. refuse unless the sandbox starts (or the instructor opted out, ``--Sandbox.enabled=False``);
2. back the gradebook up (``grading/backups/``) and fingerprint every submitted file;
3. check each submission is a notebook at all: a file that is not JSON or not a notebook is
   not handed to nbgrader but scored zero, with the reason;
4. autograde the others with nbgrader's own Autograde, in ``--jobs`` worker processes that each
   take the next student; a student whose grading outlives ``--student-timeout`` is stopped and
   scored zero; the others go on;
5. record each finished student in ``grading/<assignment>/state.json``, so that a batch that
   was interrupted can be run again and grades only what is left (``--force`` regrades all);
6. afterwards check that no submitted file changed, that the gradebook is intact and that every
   student has every autograded cell scored, and write ``grading/<assignment>/log.csv``: one row
   per student with the score and the reasons an instructor can read (failed tests and their
   messages, repairs of the notebook's structure, kernel deaths, tampering, code worth a look).

The exit status is 0 when the batch finished and the checks passed, even if some submissions
could not be graded (they are in the log); 1 when a check failed; 2 when grading refused to start.
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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(levelname)s] %(message)s", stream=sys.stderr)
    from nbgrader.converters import Autograde
    from nbgrader.utils import temp_attrs

    course = Course(Path.cwd(), overrides)
    os.chdir(course.root)
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
    return 0


class _Worker:
    def __init__(self, course: Course, assignment: str, index: int, tmpdir: str):
        log = open(course.state_dir(assignment) / f"worker-{index}.log", "a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lstm_ref.instructor.batch", "--worker", assignment, *course.overrides],
            cwd=course.root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
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


def run_workers(course: Course, assignment: str, students: list[str], jobs: int, student_timeout: float, on_result):
    """Grade students on `jobs` worker processes; call on_result(result dict) as each finishes."""
    queue = collections.deque(students)
    retried: set[str] = set()
    # what the workers' kernels leave in their temporary folder, even when killed, goes with it
    tmpdir = tempfile.mkdtemp(prefix="lm-batch-")
    spawn = lambda i: _Worker(course, assignment, i, tmpdir)  # noqa: E731
    workers = [spawn(i) for i in range(min(jobs, len(queue)))]
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
                if line:
                    result = json.loads(line)
                    if not result["success"] and "database is locked" in result.get("log", "") and student not in retried:
                        retried.add(student)  # a busy gradebook is no fault of the student's
                        queue.append(student)
                        continue
                    on_result(result)
                    continue
                on_result({"student": student, "success": False, "error": "the grading process died", "log": "",
                           "retry": True})
                w.stop(kill=True)
                workers[workers.index(w)] = spawn(workers.index(w))
            for i, w in enumerate(workers):
                if w.student and time.monotonic() > w.deadline:
                    student = w.student
                    w.stop(kill=True)
                    on_result({"student": student, "success": False, "log": "",
                               "error": f"grading took longer than {student_timeout:.0f} s and was stopped"})
                    workers[i] = spawn(i)
    finally:
        for w in workers:
            w.stop(kill=bool(w.student))
        shutil.rmtree(tmpdir, ignore_errors=True)


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
# The batch.


def grade(root: Path, assignment: str, *, jobs: int | None = None, force: bool = False, students: list[str] | None = None,
          student_timeout: float = 1800.0, overrides: list[str] = (), out=sys.stdout) -> int:
    """Grade every submission of assignment (see the module doc); return the exit status."""
    from nbgrader.api import Gradebook, MissingEntry

    from .sandbox import Sandbox, probe, unavailable_message
    from .structure import symlinks_in

    started = time.monotonic()
    course = Course(root, list(overrides))
    say = lambda text: print(text, file=out, flush=True)  # noqa: E731
    here = os.getcwd()
    os.chdir(course.root)
    try:
        if course.sandbox_enabled():
            reason = probe(Sandbox(config=course.config))
            if reason:
                say(unavailable_message(reason))
                return 2
        else:
            say("WARNING: grading WITHOUT the sandbox (--Sandbox.enabled=False): every submission runs with your "
                "permissions and can read or change any of your files.")
        with Gradebook(course.db_url) as gb:
            try:
                notebooks = [nb.name for nb in gb.find_assignment(assignment).notebooks]
            except MissingEntry:
                say(f"{assignment} is not in the gradebook: run `nbgrader generate_assignment {assignment}` first.")
                return 2
        state_dir = course.state_dir(assignment)
        backup = backup_gradebook(course.db_url, course.state_dir("backups"), assignment)
        say(f"gradebook backed up to {backup.relative_to(course.root)}")
        everyone = course.students(assignment)
        chosen = [s for s in everyone if not students or s in students]
        guarded = [course.folder("submitted", s, assignment) for s in everyone]
        guarded += [course.root / course.coursedir.source_directory / assignment]
        before = fingerprint(guarded)
        state_file = state_dir / "state.json"
        state = json.loads(state_file.read_text()) if state_file.exists() else {}

        def digest(student):
            folder = course.folder("submitted", student, assignment)
            return hashlib.sha256(json.dumps(fingerprint([folder]), sort_keys=True).encode()).hexdigest()

        def done(student):
            entry = state.get(student, {})
            if force or entry.get("sha256") != digest(student) or entry.get("status") not in ("graded", "failed"):
                return False
            if entry.get("retry"):
                return False
            return entry["status"] == "failed" or all(
                (course.folder("autograded", student, assignment) / f"{n}.ipynb").exists() for n in notebooks)

        def save(student, status, seconds, reason="", retry=False):
            state[student] = {"status": status, "sha256": digest(student), "seconds": seconds, "reason": reason,
                              "retry": retry}
            tmp = state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
            os.replace(tmp, state_file)

        todo, skipped, failed = [], [], {}
        for student in chosen:
            if done(student):
                skipped.append(student)
                continue
            folder = course.folder("submitted", student, assignment)
            links = symlinks_in(str(folder))
            problems = [f"it contains symbolic links ({', '.join(links[:3])}); only regular files are graded"] if links else []
            problems = problems or [p for p in (preflight(folder / f"{n}.ipynb") for n in notebooks) if p]
            if problems:
                reason = "; ".join(problems)
                zero_submission(course.db_url, assignment, student, reason, _timestamp(folder))
                save(student, "failed", 0.0, reason)
                failed[student] = reason
                say(f"  {student}: not graded: {reason}")
            else:
                todo.append(student)
        if skipped:
            say(f"{len(skipped)} submission(s) already graded and unchanged: skipped (--force regrades them)")
        jobs = max(1, jobs or os.cpu_count() or 1)
        say(f"grading {len(todo)} submission(s) of {assignment} on {min(jobs, max(1, len(todo)))} worker(s)")

        def on_result(result):
            student = result["student"]
            if result["success"]:
                save(student, "graded", result["seconds"])
                say(f"  {student}: graded in {result['seconds']:.1f} s")
                return
            errors = [ln for ln in result.get("log", "").splitlines() if "[ERROR]" in ln or "Error" in ln]
            reason = result.get("error") or "nbgrader failed"
            if errors:
                reason = f"{reason} ({_first_line(errors[-1], 300)})"
            folder = course.folder("submitted", student, assignment)
            zero_submission(course.db_url, assignment, student, reason, _timestamp(folder))
            # a grader that died is no verdict on the submission: a rerun tries it again
            save(student, "failed", result.get("seconds", 0.0), reason, retry=result.get("retry", False))
            failed[student] = reason
            say(f"  {student}: not graded: {reason}")

        if todo:
            run_workers(course, assignment, todo, jobs, student_timeout, on_result)

        problems = []
        after = fingerprint(guarded)
        changed = sorted(p for p in before if after.get(p) != before[p]) + sorted(set(after) - set(before))
        problems += [f"a submitted or source file changed during grading: {p}" for p in changed]
        problems += gradebook_problems(course.db_url, assignment, chosen)
        rows = [dict(describe(course, assignment, s), status=state.get(s, {}).get("status", ""),
                     seconds=state.get(s, {}).get("seconds", "")) for s in chosen]
        for row in rows:
            if row["student"] in failed or state.get(row["student"], {}).get("status") == "failed":
                reason = failed.get(row["student"]) or state[row["student"]].get("reason", "")
                row["reasons"] = f"not graded: {reason}" + (f" | {row['reasons']}" if row["reasons"] else "")
        log_path = state_dir / "log.csv"
        with open(log_path, "w", newline="") as f:
            fields = ["student", "status", "score", "max_score", "seconds", "failed_tests", "reasons", "flags"]
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        say(f"{len(todo) - len([s for s in todo if s in failed])} graded, {len(failed)} not gradable, "
            f"{len(skipped)} skipped, in {time.monotonic() - started:.0f} s; log: {log_path.relative_to(course.root)}")
        for problem in problems:
            say(f"CHECK FAILED: {problem}")
        return 1 if problems else 0
    finally:
        os.chdir(here)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        sys.exit(worker_main(sys.argv[2:]))
    from .__main__ import main

    sys.exit(main(["grade", *sys.argv[1:]]))
