"""The queue mode measured on this machine, each function on its own loopback PostgreSQL.

* ``queue_seconds_per_notebook(workers, students)``: wall seconds per notebook when ``workers``
  worker processes (each in its own scratch folder) grade ``students`` copies of the warm-up
  model answer through the queue, from the first enqueue to the last result;
* ``queue_overhead_ms(jobs)``: the queue's own cost per job in ms (enqueue, claim, complete),
  measured on no-op jobs, without grading.

``python benchmarks/queue_bench.py`` prints both.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def loopback_postgres():
    """A throwaway PostgreSQL on 127.0.0.1 (run as the `postgres` user when we are root); yields its URL."""
    bindir = next(Path(c).parent for c in [shutil.which("pg_ctl"), *sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                                                                          reverse=True)] if c)
    data = Path(tempfile.mkdtemp(prefix="lm-qbench-"))
    as_user = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(data, user.pw_uid, user.pw_gid)
        as_user = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def run(*argv):
        return subprocess.run([*as_user, str(bindir / argv[0]), *argv[1:]], capture_output=True, text=True,
                              timeout=120, cwd=data, check=True)

    run("initdb", "-D", str(data / "db"), "--auth=trust", "--username=grader", "--encoding=UTF8")
    opts = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={data} -c fsync=off"
    run("pg_ctl", "-D", str(data / "db"), "-o", opts, "-l", str(data / "server.log"), "-w", "start")
    try:
        subprocess.run(["createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "grader", "gradebook"], check=True,
                       capture_output=True, timeout=60)
        yield f"postgresql://grader@127.0.0.1:{port}/gradebook"
    finally:
        run("pg_ctl", "-D", str(data / "db"), "-m", "immediate", "stop")
        shutil.rmtree(data, ignore_errors=True)


def queue_seconds_per_notebook(workers: int, students: int, assignment: str | None = None) -> float:
    sys.path.insert(0, str(REPO / "tests"))
    import course
    import psycopg

    from grading_helpers import ASSIGNMENT, grading_env

    ASSIGNMENT = assignment or ASSIGNMENT  # noqa: N806  (the warm-up unless told otherwise)
    NOTEBOOK = f"{ASSIGNMENT}.ipynb"  # noqa: N806

    with loopback_postgres() as url, tempfile.TemporaryDirectory(prefix="lm-qbench-course-") as tmp:
        (Path(tmp) / "course").mkdir()
        c = course.make_course(Path(tmp) / "course")
        course.nbgrader(c, "generate_assignment", ASSIGNMENT, "--force")
        nb = course.filled_submission(c / "exercises" / ASSIGNMENT / NOTEBOOK, c / "solutions" / ASSIGNMENT / NOTEBOOK)
        for i in range(students):
            course.submit(c, f"s{i:04d}", ASSIGNMENT, NOTEBOOK, nb)
        env = dict(grading_env(), PYTHONPATH=str(REPO), GRADING_QUEUE_URL=url)
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "course_grader", "queue", "enqueue", ASSIGNMENT], cwd=c, env=env,
                       check=True, capture_output=True, timeout=600)
        procs = []
        for w in range(workers):
            where = Path(tmp) / f"machine{w}"
            where.mkdir()
            procs.append(subprocess.Popen([sys.executable, "-m", "course_grader", "queue", "worker", "--once",
                                           "--scratch", str(where)], cwd=where, env=env, start_new_session=True,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                while conn.execute("SELECT count(*) FROM grading_job WHERE finished IS NULL").fetchone()[0]:
                    time.sleep(0.2)
            return (time.monotonic() - started) / students
        finally:
            for p in procs:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def queue_overhead_ms(jobs: int = 2000) -> dict:
    import procrastinate

    async def measure(url: str) -> dict:
        app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))
        app.task(name="noop")(lambda: None)
        async with app.open_async():
            await app.schema_manager.apply_schema_async()
            task = app.tasks["noop"]
            t0 = time.perf_counter()
            for _ in range(jobs):
                await task.defer_async()
            t1 = time.perf_counter()
            manager = app.job_manager
            worker_id = await manager.register_worker()
            claimed = []
            for _ in range(jobs):
                claimed.append(await manager.fetch_job(queues=None, worker_id=worker_id))
            t2 = time.perf_counter()
            for job in claimed:
                await manager.finish_job(job, status=procrastinate.jobs.Status.SUCCEEDED, delete_job=False)
            t3 = time.perf_counter()
            await manager.unregister_worker(worker_id)
        assert all(j is not None for j in claimed)
        return {"jobs": jobs, "enqueue_ms": 1000 * (t1 - t0) / jobs, "claim_ms": 1000 * (t2 - t1) / jobs,
                "complete_ms": 1000 * (t3 - t2) / jobs}

    with loopback_postgres() as url:
        return asyncio.run(measure(url))


if __name__ == "__main__":
    print("queue overhead per job:", queue_overhead_ms())
    for n in (1, 2, 3):
        print(f"queue mode, {n} worker(s), 6 notebooks: {queue_seconds_per_notebook(n, 6):.2f} s per notebook")
