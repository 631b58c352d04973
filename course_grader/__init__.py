"""course_grader: the host-side grader of the course, from one folder of submissions to grades.

It runs on the instructor's machine, never in a student's kernel (what runs there is
``lstm_ref.grading``). Install it with ``pip install -e ".[instructor]"``: it needs nbgrader and
jupyter_client, and never imports torch. ``python -m course_grader`` is its one command line.

* :mod:`.cli`: the command line (``grade``, ``feedback``, ``report``, ``sandbox``).
* :mod:`.sandbox`: the kernel that runs a student's notebook inside bubblewrap, with no
  network, a read-only view of the system, no view of the course folder and resource limits.
* :mod:`.execute`: the nbgrader ``Execute`` step that uses it, caps output, survives a dying
  or hung kernel and keeps the grading helpers intact between test cells (with
  :mod:`lstm_ref.grading.guard`, the part that runs inside the kernel).
* :mod:`.structure`: puts a submission's cells back in the shape of the released notebook.
* :mod:`.batch`: ``make grade``: backup, parallel autograding, resumable, with a log of reasons.
* :mod:`.report`: feedback for every student and a class report from the gradebook.
"""

import sys as _sys

# jsonschema (imported by nbformat, so by every grading process) checks the "iri" string format with
# rfc3987_syntax when it is installed, and that package compiles 38 Earley grammars as it is imported:
# about 3 s of CPU in every process, before any notebook is graded. No notebook or nbgrader schema
# uses that format, so the grader's processes do without it (jsonschema skips a checker it cannot
# import); see python-jsonschema/jsonschema#1428.
_sys.modules.setdefault("rfc3987_syntax", None)
