"""Grading tools for instructors: a sandboxed kernel, hardened autograding, batches, reports.

Nothing here is needed to read the book or do the exercises, and ``import lstm_ref`` never
imports this subpackage. It needs nbgrader (the ``dev`` extra) and never imports torch.

* :mod:`.sandbox`: the kernel that runs a student's notebook inside bubblewrap, with no
  network, a read-only view of the system, no view of the course folder and resource limits.
* :mod:`.execute`: the nbgrader ``Execute`` step that uses it, caps output, survives a dying
  or hung kernel and keeps the grading helpers intact between test cells (with :mod:`._guard`,
  the part that runs inside the kernel).
* :mod:`.structure`: puts a submission's cells back in the shape of the released notebook.
* :mod:`.batch`: ``make grade``: backup, parallel autograding, resumable, with a log of reasons.
* :mod:`.report`: feedback for every student and a class report from the gradebook.
"""
