"""The exercises go through nbgrader end to end, as an instructor would run it.

For every assignment: the committed student versions, English and Chinese, are exactly what
generate_assignment and the translation make from solutions/ and book/zh/exercises/; the
instructor's solution autogrades to full marks, in either language, in one batch, and the Chinese
text is not reported as an edit; the untouched student version scores zero on every autograded
cell; and every entry of the wrong-solution catalogue (tests/wrong_solutions/<assignment>.py) loses
the points of exactly the cells it names.
"""

from __future__ import annotations

import importlib
import shutil

import nbformat
import pytest

import course
from course_grader import translate

pytestmark = pytest.mark.slow
# an assignment's two tests run on one xdist worker (make test: --dist loadgroup), which generates it once
ASSIGNMENTS = [pytest.param(a, marks=pytest.mark.xdist_group(f"generated-{a}")) for a in course.assignments()]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """One course for the module: generated(assignment) releases an assignment afresh on first use.

    Both tests of an assignment use the same release and gradebook (the catalogue's students are
    graded per assignment), so each assignment is generated once per test process, not twice.
    """
    c = course.make_course(tmp_path_factory.mktemp("course"))
    made = set()

    def get(assignment: str):
        if assignment not in made:
            shutil.rmtree(c / "exercises" / assignment, ignore_errors=True)
            course.nbgrader(c, "generate_assignment", assignment, "--force")
            translate.translate(c, [assignment], tables=course.ROOT / translate.TABLES)
            made.add(assignment)
        return c

    return get


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_committed_student_version_equals_a_fresh_generation(assignment, generated):
    committed = course.ROOT / "exercises" / assignment
    assert committed.is_dir(), f"exercises/{assignment} is missing: run `make release`"
    fresh = generated(assignment) / "exercises" / assignment
    assert sorted(p.name for p in committed.iterdir()) == sorted(p.name for p in fresh.iterdir())
    for name, path in course.notebooks(committed).items():
        assert course.read_json(path) == course.read_json(fresh / name), (
            f"exercises/{assignment}/{name} differs from what solutions/ generates: run `make release`"
        )
    assert sorted(p.name for p in (committed / "zh").iterdir()) == sorted(p.name for p in (fresh / "zh").iterdir())
    for name, path in course.notebooks(committed / "zh").items():
        assert course.read_json(path) == course.read_json(fresh / "zh" / name), (
            f"exercises/{assignment}/zh/{name} differs from what the translation makes: run `make release`"
        )


def _catalogue(assignment):
    try:
        return importlib.import_module(f"wrong_solutions.{assignment}").WRONG
    except ModuleNotFoundError:
        return None


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_autograde_full_zero_and_wrong_solution_catalogue(assignment, generated):
    wrong = _catalogue(assignment)
    assert wrong is not None and len(wrong) >= 5, f"tests/wrong_solutions/{assignment}.py needs at least five entries"
    c = generated(assignment)
    release = course.notebooks(c / "exercises" / assignment)
    source = course.notebooks(c / "solutions" / assignment)
    assert len(release) == 1, "the catalogue assumes one notebook per assignment"
    (nb_name, release_nb), = release.items()

    course.submit(c, "reference", assignment, nb_name, course.filled_submission(release_nb, source[nb_name]))
    zh_release = c / "exercises" / assignment / "zh" / nb_name
    course.submit(c, "reference-zh", assignment, nb_name, course.filled_submission(zh_release, source[nb_name]))
    shutil.copytree(c / "exercises" / assignment, c / "submitted" / "untouched" / assignment)
    for student, entry in wrong.items():
        nb = course.filled_submission(release_nb, source[nb_name], entry["cells"])
        course.submit(c, student.replace("_", "-"), assignment, nb_name, nb)

    result = course.nbgrader(c, "autograde", assignment, check=False)
    got = course.scores(c, assignment)
    missing = {"reference", "reference-zh", "untouched", *(s.replace("_", "-") for s in wrong)} - set(got)
    assert not missing, f"not graded: {missing}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert result.returncode == 0, result.stderr[-3000:]

    full = got["reference"]
    assert full, "the notebook has no autograded cells"
    lost = {cell: score for cell, (score, top) in full.items() if score != top}
    assert not lost, f"the instructor's solution loses points in {lost}"
    assert got["reference-zh"] == full, "the solution taken in Chinese is graded otherwise than in English"
    graded_zh = nbformat.read(c / "autograded" / "reference-zh" / assignment / nb_name, as_version=4)
    assert graded_zh.metadata.get("lm_structure") == [], (
        f"the Chinese notebook as released was reported as changed: {graded_zh.metadata.get('lm_structure')}")
    earned = {cell: score for cell, (score, _) in got["untouched"].items() if score != 0}
    assert not earned, f"the untouched student version earns points in {earned}"

    problems = []
    for student, entry in wrong.items():
        cells = got[student.replace("_", "-")]
        unknown = set(entry["loses"]) - set(cells)
        assert not unknown, f"{student}: the catalogue names unknown test cells {unknown}"
        for cell, (score, top) in cells.items():
            want = 0 if cell in entry["loses"] else top
            if score != want:
                problems.append(f"{student}: {cell} scored {score} of {top}, expected {want}")
    assert not problems, "\n".join(problems)
