"""Grading beyond one machine: a job queue in PostgreSQL, built on Procrastinate.

Why Procrastinate rather than Celery: the gradebook of a large course is already PostgreSQL, and
Procrastinate keeps its queue in that same server. Enqueuing is an INSERT (transactional: a batch is
queued whole or not at all), workers claim jobs with ``SELECT ... FOR UPDATE SKIP LOCKED`` (no job is
handed to two workers), failed jobs are retried, and there is no broker (RabbitMQ, Redis) to run,
secure and back up. Celery would add a server and a second source of truth for nothing we need.

Commands (``python -m course_grader queue ...``, database URL in ``--db`` or ``GRADING_QUEUE_URL``):

* ``enqueue ASSIGNMENT``: store the assignment once per version (keyed by the SHA-256 of its
  released notebooks) and one job per student carrying the submission's files, their digest and
  that checksum; a worker needs no shared filesystem with the course;
* ``worker``: on any machine reaching the database, take jobs, grade each in a scratch course
  folder with :func:`course_grader.batch.grade` (same sandbox, same grader) and write the result
  (autograded notebooks, scores per cell, log row) back to the database. The scratch course and
  its grading process are kept from job to job while the assignment version stays the same; each
  job's submission and output are removed from it when the job ends;
* ``collect ASSIGNMENT``: on the course machine, write the gradebook, ``autograded/``,
  ``grading/<assignment>/log.csv`` and ``state.json`` from the results;
* ``status``: count, rate and ETA, overall and per worker.

Lease: every worker sends a heartbeat (Procrastinate 3); a job whose worker stopped sending one
for ``LEASE`` seconds (killed, machine gone) is put back in the queue by any live worker
(``get_stalled_jobs`` + ``retry_job``). Idempotence: results are keyed by (assignment, student,
submission digest) and inserted with ``ON CONFLICT DO NOTHING``; a job re-run after a lost lease
finds its result already there, or writes the only one.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# seconds without a heartbeat after which a worker's job goes back to the queue, and between heartbeats
LEASE = float(os.environ.get("GRADING_QUEUE_LEASE", "30"))
HEARTBEAT = LEASE / 6
TASK = "course_grader.queue.grade_submission"

TABLES = """
CREATE TABLE IF NOT EXISTS grading_assignment (
    checksum text PRIMARY KEY, assignment text NOT NULL, bundle bytea NOT NULL,
    created timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS grading_result (
    assignment text NOT NULL, student text NOT NULL, digest text NOT NULL, checksum text NOT NULL,
    status text NOT NULL, log_row jsonb NOT NULL, grades jsonb NOT NULL, autograded bytea NOT NULL,
    worker text NOT NULL, started timestamptz NOT NULL, finished timestamptz NOT NULL DEFAULT now(),
    collected timestamptz,
    PRIMARY KEY (assignment, student, digest));
CREATE TABLE IF NOT EXISTS grading_job (
    assignment text NOT NULL, student text NOT NULL, digest text NOT NULL, job_id bigint,
    queued timestamptz NOT NULL DEFAULT now(), started timestamptz, finished timestamptz,
    worker text, outcome text, PRIMARY KEY (assignment, student, digest));
"""


# ---------------------------------------------------------------------------------------------
# Pure parts (tested without a database).

def tar_bytes(folder: Path) -> bytes:
    """folder's files as a gzip tar, deterministic (sorted names, zero mtimes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = tarfile.TarInfo(str(path.relative_to(folder)))
            data = path.read_bytes()
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def untar(data: bytes, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(dest, filter="data")


def files_of(folder: Path) -> dict[str, str]:
    """relative path -> base64 of the bytes (a job's arguments are JSON)."""
    return {str(p.relative_to(folder)): base64.b64encode(p.read_bytes()).decode()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def digest_of(files: dict[str, str]) -> str:
    """SHA-256 over the submission's names and bytes: the identity of one submission."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + hashlib.sha256(base64.b64decode(files[name])).digest())
    return h.hexdigest()


def release_checksum(release: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(release.glob("*.ipynb")):
        h.update(p.name.encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def progress(rows: list[dict], now: float) -> dict:
    """rows: one per job with 'started', 'finished' (epoch seconds or None) and 'worker'.
    Returns count, done, rate (jobs/s), ETA (s), overall and per worker."""
    done = [r for r in rows if r.get("finished") is not None]
    out = {"total": len(rows), "done": len(done), "running": sum(1 for r in rows if r.get("started") is not None
                                                                   and r.get("finished") is None)}
    first = min((r["started"] for r in rows if r.get("started") is not None), default=None)
    rate = len(done) / (now - first) if done and first is not None and now > first else 0.0
    out["rate"] = rate
    out["eta"] = (len(rows) - len(done)) / rate if rate else None
    per = {}
    for r in done:
        w = per.setdefault(r["worker"], {"done": 0, "seconds": 0.0})
        w["done"] += 1
        w["seconds"] += r["finished"] - r["started"]
    for w in per.values():
        w["seconds_per_job"] = w["seconds"] / w["done"]
    out["workers"] = per
    return out


# ---------------------------------------------------------------------------------------------
# The app.

def db_url(url: str | None = None) -> str:
    url = url or os.environ.get("GRADING_QUEUE_URL")
    if not url:
        raise SystemExit("no queue database: pass --db postgresql://... or set GRADING_QUEUE_URL")
    return url


def make_app(url: str):
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))
    app.task(name=TASK, pass_context=True, retry=2)(grade_submission)
    return app


def _connect(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=True)


def setup(url: str) -> None:
    """Create Procrastinate's schema (once) and our tables."""
    with _connect(url) as conn:
        exists = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()[0]
        conn.execute(TABLES)
    if not exists:
        app = make_app(url)
        with app.open():
            app.schema_manager.apply_schema()


def _bundle(root: Path, assignment: str, overrides: list[str] = ()) -> tuple[str, bytes]:
    """What a worker needs to grade the assignment: config, source and released notebooks and a
    gradebook holding the assignment, as a tar; keyed by the released notebooks' checksum."""
    from .batch import Course

    course = Course(root)
    release = root / course.coursedir.release_directory / assignment
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        shutil.copy(root / "nbgrader_config.py", scratch / "nbgrader_config.py")
        # the grading limits given on the course machine's command line travel with the assignment
        (scratch / "overrides.json").write_text(json.dumps([o for o in overrides if "db_url" not in o]))
        shutil.copytree(root / course.coursedir.source_directory / assignment,
                        scratch / course.coursedir.source_directory / assignment)
        shutil.copytree(release, scratch / "release_copy")
        env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
        subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force",
                        f"--CourseDirectory.db_url=sqlite:///{scratch}/gradebook.db", "--log-level=ERROR"],
                       cwd=scratch, env=env, check=True, capture_output=True)
        # the released notebooks are the course's own (the checksum the jobs carry)
        shutil.rmtree(scratch / course.coursedir.release_directory / assignment)
        shutil.move(scratch / "release_copy", scratch / course.coursedir.release_directory / assignment)
        return release_checksum(release), tar_bytes(scratch)


def enqueue(root: Path, assignment: str, url: str, students: list[str] | None = None, overrides: list[str] = (),
            out=sys.stdout) -> int:
    from .batch import Course

    setup(url)
    course = Course(root, list(overrides))
    checksum, bundle = _bundle(root, assignment, overrides)
    everyone = students or course.students(assignment)
    app = make_app(url)
    n = 0
    with _connect(url) as conn, app.open():
        conn.execute("INSERT INTO grading_assignment (checksum, assignment, bundle) VALUES (%s, %s, %s) "
                     "ON CONFLICT DO NOTHING", (checksum, assignment, bundle))
        for student in everyone:
            files = files_of(course.folder("submitted", student, assignment))
            digest = digest_of(files)
            row = conn.execute("INSERT INTO grading_job (assignment, student, digest) VALUES (%s, %s, %s) "
                               "ON CONFLICT DO NOTHING RETURNING 1", (assignment, student, digest)).fetchone()
            if row is None:
                continue  # this very submission is already queued or graded: never twice
            job_id = app.configure_task(TASK, queueing_lock=f"{assignment}/{student}/{digest}").defer(
                assignment=assignment, student=student, digest=digest, checksum=checksum, files=files)
            conn.execute("UPDATE grading_job SET job_id=%s WHERE assignment=%s AND student=%s AND digest=%s",
                         (job_id, assignment, student, digest))
            n += 1
    print(f"queued {n} submission(s) of {assignment} (assignment version {checksum[:12]})", file=out)
    return 0


def _worker_name() -> str:
    return os.environ.get("GRADING_WORKER_NAME") or f"{socket.gethostname()}:{os.getpid()}"


_BUNDLES: dict[str, bytes] = {}
# The course a worker grades in, one per assignment version, kept from job to job with its batch
# worker process running: checksum -> (folder, overrides, workers). Starting both for every job
# would cost seconds per notebook.
_COURSES: dict[str, tuple[Path, list[str], object]] = {}


def _scratch_course(base: Path, assignment: str, checksum: str):
    from .batch import Workers

    if checksum not in _COURSES:
        _close_courses()
        scratch = Path(tempfile.mkdtemp(dir=base, prefix="grade-"))
        untar(_BUNDLES[checksum], scratch)
        extra = json.loads((scratch / "overrides.json").read_text())
        overrides = [*extra, f"--CourseDirectory.db_url=sqlite:///{scratch}/gradebook.db"]
        _COURSES[checksum] = (scratch, overrides, Workers(scratch, assignment, overrides, count=1, keep=True))
    return _COURSES[checksum]


def _close_courses() -> None:
    for scratch, _, pool in _COURSES.values():
        pool.close()
        shutil.rmtree(scratch, ignore_errors=True)
    _COURSES.clear()


def grade_submission(context, assignment: str, student: str, digest: str, checksum: str, files: dict) -> str:
    """One job: grade one submission in a scratch course folder and store the result."""
    from nbgrader.api import Gradebook

    from .batch import grade

    url = context.additional_context["url"]
    worker = _worker_name()
    if digest_of(files) != digest:
        raise ValueError("the submission's files do not match its digest")
    with _connect(url) as conn:
        if conn.execute("SELECT 1 FROM grading_result WHERE assignment=%s AND student=%s AND digest=%s",
                        (assignment, student, digest)).fetchone():
            return "already graded"  # a job retried after a lost lease whose result had been written
        conn.execute("UPDATE grading_job SET started=now(), worker=%s WHERE assignment=%s AND student=%s "
                     "AND digest=%s", (worker, assignment, student, digest))
        if checksum not in _BUNDLES:
            _BUNDLES[checksum] = bytes(conn.execute(
                "SELECT bundle FROM grading_assignment WHERE checksum=%s", (checksum,)).fetchone()[0])
        started = conn.execute("SELECT now()").fetchone()[0]
    base = Path(context.additional_context.get("scratch") or tempfile.gettempdir())
    scratch, overrides, pool = _scratch_course(base, assignment, checksum)
    sub = scratch / "submitted" / student / assignment
    try:
        shutil.rmtree(scratch / "submitted" / student, ignore_errors=True)
        sub.mkdir(parents=True)
        for name, data in files.items():
            (sub / name).parent.mkdir(parents=True, exist_ok=True)
            (sub / name).write_bytes(base64.b64decode(data))
        db = f"sqlite:///{scratch}/gradebook.db"
        said = io.StringIO()
        code = grade(scratch, assignment, jobs=1, students=[student], out=said, overrides=overrides, pool=pool)
        log = scratch / "grading" / assignment / "log.csv"
        if code == 2 or not log.exists():
            raise RuntimeError(f"grading refused to start: {said.getvalue()[-500:]}")
        rows = list(csv.DictReader(log.open()))
        row = next(r for r in rows if r["student"] == student)
        grades = []
        with Gradebook(db) as gb:
            try:
                submission = gb.find_submission(assignment, student)
                for nb in submission.notebooks:
                    for g in nb.grades:
                        grades.append({"notebook": nb.name, "cell": g.name, "auto_score": g.auto_score,
                                       "manual_score": g.manual_score, "needs_manual_grade": g.needs_manual_grade})
                timestamp = submission.timestamp.isoformat() if submission.timestamp else None
            except Exception:
                timestamp = None
        autograded = scratch / "autograded" / student / assignment
        data = tar_bytes(autograded) if autograded.is_dir() else tar_bytes(scratch / "nothing")
    finally:  # the next job in this course sees nothing of this one but its gradebook rows
        for folder in ("submitted", "autograded", "feedback"):
            shutil.rmtree(scratch / folder / student, ignore_errors=True)
        shutil.rmtree(scratch / "grading" / "backups", ignore_errors=True)
    status = row["status"]
    with _connect(url) as conn:
        conn.execute(
            "INSERT INTO grading_result (assignment, student, digest, checksum, status, log_row, grades, autograded,"
            " worker, started) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING",
            (assignment, student, digest, checksum, status, json.dumps(row),
             json.dumps({"grades": grades, "timestamp": timestamp}), data, worker, started))
        conn.execute("UPDATE grading_job SET finished=now(), worker=%s, outcome=%s WHERE assignment=%s AND "
                     "student=%s AND digest=%s", (worker, status, assignment, student, digest))
    return status


async def _recover_stalled(app, stop: asyncio.Event) -> None:
    """Put back in the queue every job whose worker has sent no heartbeat for LEASE seconds."""
    while not stop.is_set():
        for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=LEASE):
            await app.job_manager.retry_job(job)
            print(f"job {job.id} of a lost worker put back in the queue", flush=True)
        await app.job_manager.prune_stalled_workers(seconds_since_heartbeat=LEASE)
        try:
            await asyncio.wait_for(stop.wait(), timeout=LEASE / 3)
        except asyncio.TimeoutError:
            pass


def work(url: str, scratch: Path | None = None, wait: bool = True) -> int:
    setup(url)
    app = make_app(url)

    async def main():
        async with app.open_async():
            stop = asyncio.Event()
            recover = asyncio.create_task(_recover_stalled(app, stop))
            try:
                await app.run_worker_async(
                    wait=wait, concurrency=1, update_heartbeat_interval=HEARTBEAT, stalled_worker_timeout=LEASE,
                    additional_context={"url": url, "scratch": str(scratch) if scratch else None},
                    name=_worker_name())
            finally:
                stop.set()
                await recover

    try:
        asyncio.run(main())
    finally:
        _close_courses()
    return 0


def collect(root: Path, assignment: str, url: str, overrides: list[str] = (), out=sys.stdout) -> int:
    """Write results into the course: gradebook, autograded/, grading/<assignment>/log.csv."""
    from nbgrader.api import Gradebook

    from .batch import GRADED, Course, grading_state, write_log

    course = Course(root, list(overrides))
    everyone = course.students(assignment)
    current = {s: digest_of(files_of(course.folder("submitted", s, assignment))) for s in everyone}
    with _connect(url) as conn:
        results = conn.execute("SELECT student, digest, log_row, grades, autograded FROM grading_result "
                               "WHERE assignment=%s", (assignment,)).fetchall()
    by_student = {s: (row, g, a) for s, d, row, g, a in results if current.get(s) == d}
    import datetime as dt
    with Gradebook(course.db_url) as gb:
        for student, (row, graded, tar) in by_student.items():
            folder = course.folder("autograded", student, assignment)
            shutil.rmtree(folder, ignore_errors=True)
            untar(bytes(tar), folder)
            try:
                gb.find_student(student)
            except Exception:
                gb.add_student(student)
            try:
                gb.find_submission(assignment, student)
                gb.remove_submission(assignment, student)
            except Exception:
                pass
            ts = graded.get("timestamp")
            gb.add_submission(assignment, student, timestamp=dt.datetime.fromisoformat(ts) if ts else None)
            for g in graded["grades"]:
                grade = gb.find_grade(g["cell"], g["notebook"], assignment, student)
                grade.auto_score, grade.manual_score = g["auto_score"], g["manual_score"]
                grade.needs_manual_grade = g["needs_manual_grade"]
            gb.db.commit()
    rows = [by_student[s][0] for s in everyone if s in by_student]
    log = course.state_dir(assignment) / "log.csv"
    write_log(log, rows)
    # state.json as `make grade` keeps it, so that `make grade FAILED=1` or STUDENT=id on this
    # machine takes up where the queue left off
    state = grading_state(course, assignment)
    for row in rows:
        seconds = float(row.get("seconds") or 0.0)
        state.save(row["student"], row["status"], seconds, "" if row["status"] == GRADED else row.get("reasons", ""))
    missing = [s for s in everyone if s not in by_student]
    print(f"collected {len(rows)} result(s) of {assignment}; {len(missing)} not (yet) graded; log: "
          f"{log.relative_to(course.root)}", file=out)
    return 1 if missing else 0


def status(url: str, assignment: str | None = None, out=sys.stdout) -> dict:
    with _connect(url) as conn:
        rows = conn.execute("SELECT extract(epoch FROM started), extract(epoch FROM finished), worker FROM grading_job"
                            + (" WHERE assignment=%s" if assignment else ""),
                            (assignment,) if assignment else ()).fetchall()
        now = conn.execute("SELECT extract(epoch FROM now())").fetchone()[0]
    p = progress([{"started": float(a) if a else None, "finished": float(b) if b else None, "worker": w}
                  for a, b, w in rows], float(now))
    eta = f"{p['eta']:.0f} s" if p["eta"] is not None else "?"
    print(f"{p['done']}/{p['total']} graded, {p['running']} running, {p['rate'] * 60:.1f} per minute, ETA {eta}",
          file=out)
    for name, w in sorted(p["workers"].items()):
        print(f"  {name}: {w['done']} graded, {w['seconds_per_job']:.1f} s each", file=out)
    return p
