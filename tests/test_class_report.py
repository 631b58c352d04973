"""Feedback for every student and the class report, checked against what the catalogue predicts.

A class of seven (the model answer, the untouched release, wrong solutions from the catalogue,
and a file that is not a notebook) is graded with `make grade`'s command; then every student must
have a feedback page, the one who handed in a broken file a page saying why, and the class
report must show the totals, the per-part counts and the failure counts that follow from the
wrong-solution catalogue, computed here independently of the gradebook.
"""

from __future__ import annotations

import json
import statistics

import pytest

import course
from grading_helpers import ASSIGNMENT, NOTEBOOK, WRONG, grade_command, require_sandbox

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("class-report")]  # one graded batch for the module, on one worker
CLASS = {  # student: the catalogue entry they handed in (None: the model answer)
    "ada": None,
    "naive-a": "sigmoid_naive_overflows",
    "naive-b": "sigmoid_naive_overflows",
    "dtanh": "dtanh_forgets_the_square",
    "onesided": "numerical_gradient_one_sided",
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    require_sandbox()
    c = course.make_course(tmp_path_factory.mktemp("report"))
    course.nbgrader(c, "generate_assignment", ASSIGNMENT, "--force")
    release_nb = c / "exercises" / ASSIGNMENT / NOTEBOOK
    source_nb = c / "solutions" / ASSIGNMENT / NOTEBOOK
    for student, entry in CLASS.items():
        cells = WRONG[entry]["cells"] if entry else None
        course.submit(c, student, ASSIGNMENT, NOTEBOOK, course.filled_submission(release_nb, source_nb, cells))
    (c / "submitted" / "untouched" / ASSIGNMENT).mkdir(parents=True)
    (c / "submitted" / "untouched" / ASSIGNMENT / NOTEBOOK).write_bytes(release_nb.read_bytes())
    (c / "submitted" / "broken" / ASSIGNMENT).mkdir(parents=True)
    (c / "submitted" / "broken" / ASSIGNMENT / NOTEBOOK).write_text("{ not json")
    for args in (["grade", ASSIGNMENT, "--jobs", "2"], ["feedback", ASSIGNMENT], ["report"]):
        result = grade_command(c, *args)
        assert result.returncode == 0, f"{args[0]}: {result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return c


def expected_cells() -> dict[str, dict[str, float]]:
    """{student: {test cell: score}} from the catalogue alone; broken and untouched score nothing."""
    top = {"test_sigmoid_visible": 1, "test_sigmoid_hidden": 2, "test_derivatives_visible": 1,
           "test_derivatives_hidden": 2, "test_numerical_gradient_visible": 1, "test_numerical_gradient_hidden": 2}
    out = {s: {t: (0 if e and t in WRONG[e]["loses"] else p) for t, p in top.items()} for s, e in CLASS.items()}
    out["untouched"] = out["broken"] = {t: 0 for t in top}
    return out


def test_every_student_gets_feedback_and_a_broken_file_gets_a_reason(graded):
    for student in [*CLASS, "untouched", "broken"]:
        page = graded / "feedback" / student / ASSIGNMENT / NOTEBOOK.replace(".ipynb", ".html")
        assert page.exists(), f"no feedback for {student}"
    broken = (graded / "feedback" / "broken" / ASSIGNMENT / NOTEBOOK.replace(".ipynb", ".html")).read_text()
    assert "could not be graded" in broken and "not valid JSON" in broken and "0 / 11" in broken
    ada = (graded / "feedback" / "ada" / ASSIGNMENT / NOTEBOOK.replace(".ipynb", ".html")).read_text()
    assert "sigmoid: visible test passed" in ada


def test_the_report_totals_parts_and_failures_follow_from_the_catalogue(graded):
    (summary,) = json.loads((graded / "grading" / "report" / "summary.json").read_text())
    cells = expected_cells()
    totals = {s: float(sum(c.values())) for s, c in cells.items()}
    assert summary["scores"] == dict(sorted(totals.items()))
    assert summary["mean"] == pytest.approx(statistics.mean(totals.values()))
    assert summary["median"] == pytest.approx(statistics.median(totals.values()))
    assert summary["max_score"] == 11.0 and summary["submissions"] == 7
    # written answers: the five filled in wait for a human; the untouched stub and the broken file do not
    assert summary["written_answers_to_grade"] == 5
    for part in ("sigmoid", "derivatives", "numerical_gradient"):
        scores = {s: sum(v for t, v in c.items() if f"_{part}_" in t) for s, c in cells.items()}
        top = max(scores.values())
        got = summary["parts"][part]
        assert got["max"] == 3 and got["full"] == sum(v == top for v in scores.values())
        assert got["zero"] == sum(v == 0 for v in scores.values())
    failed = {t: sum(c[t] == 0 for c in cells.values()) for t in cells["ada"]}
    assert {t["test"]: t["failed"] for t in summary["tests"]} == failed
    first = summary["tests"][0]
    assert first["test"] == "test_sigmoid_hidden" and first["failed"] == 4  # untouched, broken, naive-a, naive-b
    assert "overflow" in first["message"]  # what the two naive students were told


def test_the_report_page_shows_its_figures(graded):
    folder = graded / "grading" / "report"
    page = (folder / "index.html").read_text()
    for name in (f"{ASSIGNMENT}-scores.png", f"{ASSIGNMENT}-parts.png", f"{ASSIGNMENT}-tests.png"):
        png = (folder / name).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 5_000
        assert f'src="{name}" alt="' in page
    assert "test_sigmoid_hidden" in page and "Per part" in page
