"""A PostgreSQL gradebook, the path for many workers: a real server on loopback, started here.

The test runs Debian's PostgreSQL binaries (initdb, pg_ctl) as the unprivileged `postgres` user
when it runs as root, on a free port of 127.0.0.1, in a temporary folder; grades a small class
with two workers against it; and checks the grades, the pg_dump backup and nbgrader's export. A
submission that tries to reach the database over the network gets nowhere: the sandbox has no
network at all.
"""

from __future__ import annotations

import csv
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

import course
from hostile import cell_index
from grading_helpers import ASSIGNMENT, CLASS, NOTEBOOK, expected_scores, grade_command, make_class, require_sandbox

pytestmark = pytest.mark.slow


def postgres_bin() -> Path | None:
    for candidate in [shutil.which("pg_ctl"), *sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)]:
        if candidate and Path(candidate).with_name("initdb").exists():
            return Path(candidate).parent
    return None


def _as_db_user(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the `postgres` user instead."""
    if os.geteuid() != 0:
        return argv
    user = pwd.getpwnam("postgres")
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", *argv]


@pytest.fixture(scope="module")
def postgres_url():
    bindir = postgres_bin()
    if bindir is None:
        message = "PostgreSQL is not installed (initdb/pg_ctl); `.ci/run` installs the postgresql package"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    data = Path(tempfile.mkdtemp(prefix="lm-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(data, user.pw_uid, user.pw_gid)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = lambda *argv: subprocess.run(_as_db_user([str(bindir / argv[0]), *argv[1:]]),  # noqa: E731
                                       capture_output=True, text=True, timeout=120, cwd=data)
    result = run("initdb", "-D", str(data / "db"), "--auth=trust", "--username=grader", "--encoding=UTF8")
    assert result.returncode == 0, result.stderr
    opts = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={data} -c fsync=off"
    result = run("pg_ctl", "-D", str(data / "db"), "-o", opts, "-l", str(data / "server.log"), "-w", "start")
    assert result.returncode == 0, result.stderr + (data / "server.log").read_text()
    try:
        created = subprocess.run(["createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "grader", "gradebook"],
                                 capture_output=True, text=True, timeout=60)
        assert created.returncode == 0, created.stderr
        yield f"postgresql://grader@127.0.0.1:{port}/gradebook", port
    finally:
        run("pg_ctl", "-D", str(data / "db"), "-m", "immediate", "stop")
        shutil.rmtree(data, ignore_errors=True)


def test_a_class_graded_in_parallel_into_postgresql(postgres_url, tmp_path):
    require_sandbox()
    url, port = postgres_url
    c = make_class(tmp_path)  # (graded into SQLite by generate_assignment; PostgreSQL from here on)
    db = f"--CourseDirectory.db_url={url}"
    course.nbgrader(c, "generate_assignment", ASSIGNMENT, "--force", db)
    # one more student tries the database port from inside the sandbox
    release_nb = c / "exercises" / ASSIGNMENT / NOTEBOOK
    nb = course.filled_submission(release_nb, c / "solutions" / ASSIGNMENT / NOTEBOOK)
    nb.cells[cell_index(nb, "sigmoid")].source += (
        "\nimport socket\nreached = []\n"
        f"for host in ['127.0.0.1', 'localhost']:\n    try:\n        socket.create_connection((host, {port}), timeout=2)\n"
        "        reached.append(host)\n    except OSError:\n        pass\n"
        "assert not reached, f'reached the database at {reached}'\n"
    )
    course.submit(c, "intruder", ASSIGNMENT, NOTEBOOK, nb)

    result = grade_command(c, "grade", ASSIGNMENT, "--jobs", "2", db)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    dumps = list((c / "grading" / "backups").glob(f"gradebook-{ASSIGNMENT}-*.dump"))
    assert len(dumps) == 1 and dumps[0].stat().st_size > 0

    from nbgrader.api import Gradebook

    with Gradebook(url) as gb:
        got = {}
        for sub in gb.assignment_submissions(ASSIGNMENT):
            got[sub.student.id] = {g.name: g.score for nb in sub.notebooks for g in nb.grades if g.cell.cell_type == "code"}
    with Gradebook(url) as gb:
        full = {c_.name: c_.max_score for c_ in gb.find_notebook(ASSIGNMENT, ASSIGNMENT).grade_cells
                if c_.cell_type == "code"}
    expected = expected_scores(full)
    expected["intruder"] = dict(full)  # the connection failed, the answers are right
    assert got == expected

    exported = course.nbgrader(c, "export", "--to", str(tmp_path / "grades.csv"), db)
    assert exported.returncode == 0
    with open(tmp_path / "grades.csv", newline="") as f:
        rows = {r["student_id"]: float(r["score"]) for r in csv.DictReader(f)}
    assert rows["reference"] == 9.0 and len(rows) == len(CLASS) + 1
