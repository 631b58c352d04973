"""course_grader's steps, tested without starting a kernel: what a batch records for each kind of
outcome, whose fault a failure is, and what the sandbox gives the kernel to import lstm_ref with."""

from __future__ import annotations

import json
import os
import warnings

import pytest

import lstm_ref
from course_grader import batch, sandbox


@pytest.fixture
def state(tmp_path):
    digests = {"ada": "1", "bo": "2", "cy": "3"}
    return batch.GradingState(tmp_path / "state.json", lambda s: digests[s]), digests


def test_a_graded_student_is_done_until_the_submission_changes(state):
    st, digests = state
    st.save("ada", batch.GRADED, 3.0)
    assert st.done("ada", lambda s: True)
    assert not st.done("ada", lambda s: False), "graded, but the autograded notebook is gone: grade again"
    digests["ada"] = "changed"
    assert not st.done("ada", lambda s: True)


def test_a_grader_fault_is_never_done_so_every_rerun_grades_the_student_again(state):
    st, _ = state
    st.save("bo", batch.GRADER_FAULT, 1.0, "ZMQError: Address already in use")
    assert not st.done("bo", lambda s: True)
    again = batch.GradingState(st.path, st.digest)  # as the next run reads it
    assert again.status("bo") == batch.GRADER_FAULT and not again.done("bo", lambda s: True)
    assert json.loads(st.path.read_text())["bo"]["retry"] is True


def test_an_unreadable_submission_stays_done_with_its_zero_until_it_changes(state):
    st, digests = state
    st.save("cy", batch.UNREADABLE, 0.0, "cy is not a notebook")
    assert st.done("cy", lambda s: False)
    digests["cy"] = "resubmitted"
    assert not st.done("cy", lambda s: False)


@pytest.mark.parametrize("result", [
    {"student": "a", "success": False, "error": "NbGraderException: Please see the error log",
     "log": "[ERROR] zmq.error.ZMQError: Address already in use (addr='tcp://127.0.0.1:54321')"},
    {"student": "a", "success": False, "error": "the grading process died", "log": ""},
    {"student": "a", "success": False, "error": "RuntimeError: Kernel died before replying to kernel_info", "log": ""},
])
def test_failures_of_the_grading_machinery_are_the_graders_fault(result):
    status, reason = batch.classify(result)
    assert status == batch.GRADER_FAULT
    assert result["error"] in reason


def test_only_a_submission_that_outlives_the_student_timeout_is_charged_and_success_is_graded():
    status, reason = batch.classify({"student": "a", "success": False, "timed_out": True, "log": "",
                                     "error": "grading took longer than 1800 s and was stopped"})
    assert status == batch.UNREADABLE and "1800 s" in reason
    assert batch.classify({"student": "a", "success": True, "seconds": 2.0}) == (batch.GRADED, "")


def test_a_kernel_that_cannot_import_lstm_ref_is_named_as_the_cause_not_bubblewrap():
    message = sandbox.unavailable_message(f"{sandbox.IMPORT_FAILED} numpy and lstm_ref.grading inside the sandbox "
                                          "(ModuleNotFoundError: No module named 'lstm_ref')")
    assert "No module named 'lstm_ref'" in message and "Install bubblewrap" not in message
    assert "Install bubblewrap" in sandbox.unavailable_message("`bwrap` is not installed (no such program on PATH).")


def test_the_kernel_finds_lstm_ref_where_the_grader_imports_it_from(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cmd = sandbox.build_command(["python", "-c", "pass"], sandbox.Sandbox(), shared_dir=str(tmp_path))
    package = os.path.dirname(os.path.abspath(lstm_ref.__file__))
    env = dict(zip(cmd[cmd.index("--clearenv") + 1:][1::3], cmd[cmd.index("--clearenv") + 1:][2::3]))
    assert env["PYTHONPATH"] == os.path.dirname(package)
    bound = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--ro-bind"]
    assert package in bound or any(package.startswith(b + os.sep) for b in bound)


@pytest.mark.parametrize("enabled", [True, False])
def test_kernels_talk_over_unix_sockets_with_or_without_the_sandbox(enabled):
    from traitlets.config import Config

    km = sandbox.SandboxedKernelManager(config=Config({"Sandbox": {"enabled": enabled}}))
    assert km.transport == "ipc"  # no TCP port for two kernels starting at once to race for


def test_failure_messages_group_by_their_numbers_but_keep_every_word():
    from course_grader.report import message_group

    a = "GradingError: h from lstm_forward has dtype float64; expected float32 for (T, N, D, H) = (5, 3, 2, 4)"
    b = "GradingError: h from lstm_forward has dtype float64; expected float32 for (T, N, D, H) = (1, 2, 3, 4)"
    assert message_group(a) == message_group(b)
    assert "float64" in message_group(a) and "float32" in message_group(a) and "lstm_forward" in message_group(a)
    c = "GradingError: dh_prev is wrong at index (0, 1): expected 0.25, got -1.5e-07. 3 of 12 entries differ"
    assert message_group(c) == "GradingError: dh_prev is wrong at index (#, #): expected #, got #. # of # entries differ"
    assert message_group(c) != message_group(a)


def test_a_run_chooses_everyone_the_named_students_or_the_failed_ones(state):
    st, _ = state
    st.save("ada", batch.GRADED, 3.0)
    st.save("bo", batch.GRADER_FAULT, 1.0, "kernel did not start")
    st.save("cy", batch.UNREADABLE, 0.0, "not a notebook")
    everyone = ["ada", "bo", "cy", "dee"]
    assert batch.choose(everyone, None, False, st) == (everyone, False)
    assert batch.choose(everyone, ["ada"], False, st) == (["ada"], True)
    assert batch.choose(everyone, None, True, st) == (["bo", "cy"], True)


def test_progress_reports_count_rate_and_time_left():
    now = [100.0]
    progress = batch.Progress(4, clock=lambda: now[0])
    now[0] += 30.0
    assert progress.step() == "[1/4, 2.0/min, 1.5 min left]"
    now[0] += 90.0
    assert progress.step() == "[2/4, 1.0/min, 2.0 min left]"
    now[0] += 10.0
    assert progress.step() == "[3/4, 1.4/min, 43 s left]"


def _small_gradebook(root):
    """A course in root: ex01 (3 points) and ex02 (5 points), three students, one with no ex02."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for name, top in (("ex01", 3.0), ("ex02", 5.0)):
            gb.add_assignment(name)
            gb.add_notebook(name, name)
            gb.add_grade_cell("test_a", name, name, max_score=top, cell_type="code")
        gb.add_student("doejane", first_name="Jane", last_name="Doe", email="jd@example.org", lms_user_id="481")
        gb.add_student("roe-r")
        gb.add_student("zed")
        for student, scores in {"doejane": {"ex01": 3.0, "ex02": 2.5}, "roe-r": {"ex01": 0.0, "ex02": 5.0},
                                "zed": {"ex01": 1.0}}.items():
            for assignment, score in scores.items():
                with warnings.catch_warnings():  # nbgrader 0.9.6 under SQLAlchemy 2 warns (autoflush); rows are
                    warnings.simplefilter("ignore", RuntimeWarning)  # written all the same, as the test reads back
                    sub = gb.add_submission(assignment, student)
                sub.notebooks[0].grades[0].auto_score = score
        gb.db.commit()


def test_grades_export_to_the_csv_canvas_and_moodle_import(tmp_path, monkeypatch):
    import csv

    import course as course_files
    from course_grader.export import export_grades

    monkeypatch.setenv("PATH", f"{course_files.BIN}{os.pathsep}{os.environ.get('PATH', '')}")  # nbgrader runs alembic
    _small_gradebook(tmp_path)
    course = batch.Course(tmp_path)
    fault = tmp_path / "grading" / "ex02"
    fault.mkdir(parents=True)
    (fault / "state.json").write_text(json.dumps({"roe-r": {"status": batch.GRADER_FAULT, "retry": True}}))

    canvas = list(csv.reader(export_grades(course, "canvas").open()))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "ex01", "ex02"]
    assert canvas[1] == ["Points Possible", "", "", "", "", "3", "5"]
    assert canvas[2] == ["Doe, Jane", "481", "", "doejane", "", "3", "2.5"]
    assert canvas[3] == ["roe-r", "", "", "roe-r", "", "0", ""], "a grader fault is not exported as a grade"
    assert canvas[4] == ["zed", "", "", "zed", "", "1", ""], "no submission: an empty cell, never a zero"

    moodle = list(csv.reader(export_grades(course, "moodle", ["ex02"]).open()))
    assert moodle == [["Username", "Email address", "First name", "Last name", "ex02"],
                      ["doejane", "jd@example.org", "Jane", "Doe", "2.5"], ["roe-r", "", "", "", ""],
                      ["zed", "", "", "", ""]]
    with pytest.raises(ValueError, match="lms must be one of"):
        export_grades(course, "blackboard")
