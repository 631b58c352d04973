"""Command line: ``python -m course_grader COMMAND ...``, run from the course root.

Commands (the Makefile wraps each):

* ``grade ASSIGNMENT [--jobs N] [--force] [--student ID ...] [--failed]``: autograde a folder of
  submissions in parallel (``make grade``), see :mod:`course_grader.batch`;
* ``feedback ASSIGNMENT``: feedback pages for every student (``make feedback``);
* ``report [ASSIGNMENT ...]``: the class report from the gradebook (``make report``);
* ``export --lms canvas|moodle [ASSIGNMENT ...]``: grades in the CSV an LMS imports (``make export``);
* ``translate [ASSIGNMENT ...]``: the Chinese student versions, ``exercises/<a>/zh/`` (``make release``),
  see :mod:`course_grader.translate`;
* ``queue enqueue|worker|collect|status``: grading on many machines through a job queue in PostgreSQL
  (``--db URL`` or ``GRADING_QUEUE_URL``), see :mod:`course_grader.queue`;
* ``sandbox``: say whether the grading sandbox starts on this machine.

Anything of the form ``--Class.trait=value`` is passed on to nbgrader's configuration, e.g.
``--Execute.timeout=30``, ``--Sandbox.memory_mb=2048`` or ``--CourseDirectory.db_url=...``.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # a batch stopped with SIGTERM cleans up like one stopped with Ctrl-C


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    argv = list(sys.argv[1:] if argv is None else argv)
    overrides = [a for a in argv if a.startswith("--") and "=" in a and "." in a.split("=", 1)[0]]
    rest = [a for a in argv if a not in overrides]
    parser = argparse.ArgumentParser(prog="python -m course_grader", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="autograde every submission of an assignment, in parallel")
    g.add_argument("assignment")
    g.add_argument("--jobs", type=int, default=0, help="worker processes (default: one per core)")
    g.add_argument("--force", action="store_true", help="regrade submissions already graded")
    g.add_argument("--student", action="append", default=[], help="grade (again) only this student (repeatable)")
    g.add_argument("--failed", action="store_true", help="regrade only the students whose grading did not finish "
                                                         "with a grade (not a notebook, timed out, grader fault)")
    g.add_argument("--student-timeout", type=float, default=1800.0, help="seconds one submission may take")
    f = sub.add_parser("feedback", help="feedback for every student of an assignment")
    f.add_argument("assignment")
    r = sub.add_parser("report", help="the class report from the gradebook")
    r.add_argument("assignments", nargs="*")
    e = sub.add_parser("export", help="grades in the CSV a learning-management system imports")
    e.add_argument("--lms", choices=["canvas", "moodle"], required=True)
    e.add_argument("assignments", nargs="*")
    t = sub.add_parser("translate", help="write the Chinese student versions from book/zh/exercises/")
    t.add_argument("assignments", nargs="*")
    sub.add_parser("sandbox", help="check that the grading sandbox starts here")
    q = sub.add_parser("queue", help="grade on many machines through a job queue in PostgreSQL")
    q.add_argument("action", choices=["enqueue", "worker", "collect", "status"])
    q.add_argument("assignment", nargs="?")
    q.add_argument("--db", default=None, help="PostgreSQL URL of the queue (default: $GRADING_QUEUE_URL)")
    q.add_argument("--student", action="append", default=[], help="enqueue only this student (repeatable)")
    q.add_argument("--scratch", default=None, help="worker: folder for the scratch course folders")
    q.add_argument("--once", action="store_true", help="worker: stop when the queue is empty")
    args = parser.parse_args(rest)
    root = Path.cwd()
    if args.command == "grade":
        from .batch import grade

        return grade(root, args.assignment, jobs=args.jobs or None, force=args.force, students=args.student or None,
                     failed_only=args.failed,
                     student_timeout=args.student_timeout, overrides=overrides)
    if args.command == "queue":
        from . import queue

        url = queue.db_url(args.db)
        if args.action in ("enqueue", "collect") and not args.assignment:
            parser.error(f"queue {args.action} needs an ASSIGNMENT")
        if args.action == "enqueue":
            return queue.enqueue(root, args.assignment, url, students=args.student or None, overrides=overrides)
        if args.action == "worker":
            return queue.work(url, Path(args.scratch) if args.scratch else None, wait=not args.once)
        if args.action == "collect":
            return queue.collect(root, args.assignment, url, overrides=overrides)
        queue.status(url, args.assignment)
        return 0
    if args.command == "feedback":
        from .report import feedback

        return feedback(root, args.assignment, overrides=overrides)
    if args.command == "export":
        from .batch import Course
        from .export import export_grades

        path = export_grades(Course(root, overrides), args.lms, args.assignments or None)
        print(f"grades for {args.lms}: {path}")
        return 0
    if args.command == "translate":
        from .translate import TranslationError, translate

        try:
            written = translate(root, args.assignments or None)
        except TranslationError as error:
            print(f"translate: {error}", file=sys.stderr)
            return 1
        for path in written:
            print(f"written: {path.relative_to(root)}")
        return 0
    if args.command == "report":
        from .report import class_report

        path = class_report(root, args.assignments or None, overrides=overrides)
        print(f"class report: {path}")
        return 0
    from .batch import Course
    from .sandbox import Sandbox, probe, unavailable_message

    box = Sandbox(config=Course(root, overrides).config)
    if not box.enabled:
        print("the sandbox is switched off (Sandbox.enabled = False)")
        return 1
    reason = probe(box)
    print("the grading sandbox works here" if reason is None else unavailable_message(reason))
    return 0 if reason is None else 2
