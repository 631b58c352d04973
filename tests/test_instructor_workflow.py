"""The instructor guide, run as written: every command of the page's ```bash blocks (the
workflow; ```console blocks show variants), in order, on a copy of the course with a class of
three students, one of whom takes the exercise in Chinese, and the grades, feedback and class
report that come out are checked."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

import course

pytestmark = pytest.mark.slow
PAGE = course.ROOT / "book" / "instructor_guide.md"
ASSIGNMENT = "ex00_how_to_use"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"


def page_commands() -> list[str]:
    """The command lines of the page's ```bash blocks, in order."""
    blocks = re.findall(r"^```bash\n(.*?)^```", PAGE.read_text(), flags=re.MULTILINE | re.DOTALL)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip() and not line.startswith("#")]


def run(course_dir: Path, command: str) -> subprocess.CompletedProcess:
    """Run one command of the page the way the page says: in bash, with the venv activated."""
    result = subprocess.run(
        ["bash", "-c", f". .venv/bin/activate && {command}"],
        cwd=course_dir,
        capture_output=True,
        text=True,
        timeout=900,
        env={k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "MAKEFLAGS", "MAKELEVEL")},
    )
    assert result.returncode == 0, f"`{command}` exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture
def course_dir(tmp_path) -> Path:
    """A copy of the course as an instructor has it: config, sources, Makefile and a built venv."""
    c = course.make_course(tmp_path)
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy2(course.ROOT / name, c / name)
    shutil.copytree(course.ROOT / "book" / "zh" / "exercises", c / "book" / "zh" / "exercises")  # the Chinese text
    os.symlink(sys.prefix, c / ".venv")  # the venv this test runs in; its install stamp is current
    stamp = Path(sys.prefix) / ".installed"
    if not stamp.exists() or stamp.stat().st_mtime < (c / "pyproject.toml").stat().st_mtime:
        pytest.skip("run through `make test`, which builds .venv and its install stamp")
    return c


def test_every_command_on_the_instructor_guide_works_in_order(course_dir):
    commands = page_commands()
    expected = [
        ". .venv/bin/activate",
        "nbgrader db student import students.csv",
        "make release",
        f"make release ASSIGNMENT={ASSIGNMENT}",
        f"nbgrader zip_collect {ASSIGNMENT}",
        f"make grade ASSIGNMENT={ASSIGNMENT}",
        f"make feedback ASSIGNMENT={ASSIGNMENT}",
        "nbgrader export --to grades.csv",
        "make export LMS=canvas",
        f"make export LMS=moodle ASSIGNMENT={ASSIGNMENT}",
        "make report",
    ]
    # The page and this test change together: a command added to the page must be run here.
    assert commands == expected, f"the guide's commands changed; update this test:\n{commands}"

    (course_dir / "students.csv").write_text(
        "id,first_name,last_name,email\n"
        "doejane,Jane,Doe,jane@example.edu\nroe,Richard,Roe,richard@example.edu\n"
        "moe,Mo,Ede,mo@example.edu\nabsent,Al,Sent,al@example.edu\n"
    )
    run(course_dir, commands[0])
    run(course_dir, commands[1])
    run(course_dir, commands[2])
    run(course_dir, commands[3])
    released = course_dir / "exercises" / ASSIGNMENT / NOTEBOOK
    assert course.read_json(released) == course.read_json(course.ROOT / "exercises" / ASSIGNMENT / NOTEBOOK)
    released_zh = course_dir / "exercises" / ASSIGNMENT / "zh" / NOTEBOOK  # written by `make release` too
    assert course.read_json(released_zh) == course.read_json(course.ROOT / "exercises" / ASSIGNMENT / "zh" / NOTEBOOK)

    # An LMS download with two submissions (one a late resubmission), and one handed in directly.
    source = course_dir / "solutions" / ASSIGNMENT / NOTEBOOK
    archive = course_dir / "downloaded" / ASSIGNMENT / "archive"
    archive.mkdir(parents=True)
    with zipfile.ZipFile(archive / "submissions.zip", "w") as z:
        z.writestr(f"doejane_1234_5678_{NOTEBOOK}", nbformat.writes(course.filled_submission(released, source)))
        z.writestr(f"roe_late_99_100_{ASSIGNMENT}-1.ipynb", released.read_text())
    wrong = {"sigmoid": "def sigmoid(z):\n    return 1.0 / (1.0 + np.exp(-z))\n"}
    # moe works in the Chinese notebook; it is graded in the same batch, by the same tests
    course.submit(course_dir, "moe", ASSIGNMENT, NOTEBOOK, course.filled_submission(released_zh, source, wrong))
    run(course_dir, commands[4])
    assert sorted(p.name for p in (course_dir / "submitted").iterdir()) == ["doejane", "moe", "roe"]

    graded = run(course_dir, commands[5])
    for student in ("doejane", "moe", "roe"):
        assert (course_dir / "autograded" / student / ASSIGNMENT / NOTEBOOK).exists()
    assert "3 graded, 0 not gradable" in graded.stdout, graded.stdout
    with open(course_dir / "grading" / ASSIGNMENT / "log.csv", newline="") as f:
        log = {r["student"]: r for r in csv.DictReader(f)}
    assert log["moe"]["failed_tests"] == "test_sigmoid_hidden"
    assert "overflow" in log["moe"]["reasons"]  # the message moe sees, for the instructor
    assert "edited" not in log["moe"]["reasons"], "the Chinese text as released was taken for an edit"
    assert list((course_dir / "grading" / "backups").glob("gradebook-*.db"))

    # What the formgrader does when the instructor types a score for a written answer.
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gb:
        grade = gb.find_grade("written", ASSIGNMENT, ASSIGNMENT, "doejane")  # the notebook is named like its assignment
        grade.manual_score = 1.5
        gb.db.commit()

    run(course_dir, commands[6])
    report = (course_dir / "feedback" / "doejane" / ASSIGNMENT / NOTEBOOK.replace(".ipynb", ".html")).read_text()
    assert "10.5" in report and "11" in report  # 9 autograded + 1.5 by hand, of 11

    run(course_dir, commands[7])
    with open(course_dir / "grades.csv", newline="") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f) if r["assignment"] == ASSIGNMENT}
    assert set(rows) == {"doejane", "roe", "moe", "absent"}
    assert {s: float(r["score"]) for s, r in rows.items()} == {"doejane": 10.5, "moe": 7.0, "roe": 0.0, "absent": 0.0}
    assert {float(r["max_score"]) for r in rows.values()} == {11.0}
    assert rows["doejane"]["last_name"] == "Doe"

    run(course_dir, commands[8])
    with open(course_dir / "grading" / "export" / "canvas.csv", newline="") as f:
        canvas = list(csv.reader(f))
    column = canvas[0].index(ASSIGNMENT)
    assert canvas[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert canvas[1][0] == "Points Possible" and canvas[1][column] == "11"
    by_login = {row[3]: row[column] for row in canvas[2:]}
    assert by_login == {"absent": "", "doejane": "10.5", "moe": "7", "roe": "0"}, by_login  # no hand-in: empty
    run(course_dir, commands[9])
    with open(course_dir / "grading" / "export" / "moodle.csv", newline="") as f:
        moodle = list(csv.DictReader(f))
    assert {r["Username"]: (r["Email address"], r[ASSIGNMENT]) for r in moodle}["doejane"] == ("jane@example.edu", "10.5")
    assert list(moodle[0]) == ["Username", "Email address", "First name", "Last name", ASSIGNMENT]

    run(course_dir, commands[10])
    summary = json.loads((course_dir / "grading" / "report" / "summary.json").read_text())
    (ex00,) = [s for s in summary if s["assignment"] == ASSIGNMENT]
    assert ex00["scores"] == {"doejane": 10.5, "moe": 7.0, "roe": 0.0}
    assert abs(ex00["mean"] - 17.5 / 3) < 1e-12 and ex00["median"] == 7.0
    page = (course_dir / "grading" / "report" / "index.html").read_text()
    assert ASSIGNMENT in page and f"{ASSIGNMENT}-scores.png" in page
