"""Feedback for every student, and a class report for the instructor, from the gradebook.

``make feedback ASSIGNMENT=...`` runs nbgrader's ``generate_feedback`` and then writes a page
for every student whose submission could not be graded (not a notebook, or grading failed),
saying why, so that every student gets an answer.

``make report`` writes ``grading/report/index.html`` with, for each assignment: the score
distribution, the scores per part (a part is one function: its visible and hidden tests), the
tests that fail most often with the message most students got, and how many written answers
still wait for a human. The numbers are also in ``summary.json``; the figures are PNG files
beside the page.
"""

from __future__ import annotations

import collections
import csv
import html
import json
import logging
import os
import re
import sys
from pathlib import Path

import nbformat

from .batch import STATE_DIR, Course

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def part_of(cell_name: str) -> str:
    """The part a grade cell belongs to: test_sigmoid_hidden -> sigmoid; written -> written."""
    name = re.sub(r"^test_", "", cell_name)
    return re.sub(r"_(visible|hidden)$", "", name)


# ---------------------------------------------------------------------------------------------
# Feedback.


def feedback(root: Path, assignment: str, overrides: list[str] = (), out=sys.stdout) -> int:
    """nbgrader feedback for every graded submission, a page with the reason for the others.

    Returns 0 when every student with a submission has a feedback page for every notebook.
    """
    from nbgrader.api import Gradebook
    from nbgrader.converters import GenerateFeedback
    from nbgrader.utils import temp_attrs

    course = Course(root, list(overrides))
    logging.basicConfig(level=logging.WARNING)
    here = os.getcwd()
    os.chdir(course.root)
    try:
        with temp_attrs(course.coursedir, assignment_id=assignment):
            app = GenerateFeedback(coursedir=course.coursedir, config=course.config)
            app.force = True
            try:
                app.start()
            except Exception as exc:  # some submission could not be converted; the rest were
                print(f"generate_feedback: {exc}", file=out)
    finally:
        os.chdir(here)
    state_file = course.root / STATE_DIR / assignment / "state.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    with Gradebook(course.db_url) as gb:
        notebooks = [nb.name for nb in gb.find_assignment(assignment).notebooks]
        max_score = gb.find_assignment(assignment).max_score
    missing = []
    for student in course.students(assignment):
        folder = course.folder("feedback", student, assignment)
        for name in notebooks:
            page = folder / f"{name}.html"
            if page.exists():
                continue
            reason = state.get(student, {}).get("reason") or "the notebook could not be graded"
            folder.mkdir(parents=True, exist_ok=True)
            page.write_text(_not_graded_page(student, assignment, name, reason, max_score))
            print(f"  {student}: not graded, feedback explains why", file=out)
        missing += [f"{student}/{n}" for n in notebooks if not (folder / f"{n}.html").exists()]
    print(f"feedback for {len(course.students(assignment))} student(s) in "
          f"{course.coursedir.feedback_directory}/<student>/{assignment}/", file=out)
    return 1 if missing else 0


def _not_graded_page(student: str, assignment: str, notebook: str, reason: str, max_score: float) -> str:
    e = html.escape
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(assignment)}: {e(notebook)}</title>
<style>body {{ font-family: sans-serif; max-width: 46em; margin: 2em auto; line-height: 1.5 }}
.reason {{ background: #fdf1e6; border-left: 4px solid #D55E00; padding: 0.6em 1em }}</style></head>
<body><h1>{e(assignment)}: {e(notebook)}</h1>
<p>Student: <b>{e(student)}</b>. Score: <b>0 / {max_score:g}</b>.</p>
<p>Your submission could not be graded, so every part scores zero:</p>
<p class="reason">{e(reason)}</p>
<p>Hand in the notebook file (<code>{e(notebook)}.ipynb</code>) saved from Jupyter, with its cells
as you received them, and ask your instructor whether it can be graded again.</p>
</body></html>
"""


# ---------------------------------------------------------------------------------------------
# The class report.


def summarize(course: Course, assignment: str) -> dict:
    """Numbers for one assignment: totals, parts, tests that fail most and their messages."""
    from nbgrader.api import Gradebook

    totals, parts, fails, pending = {}, collections.defaultdict(dict), collections.Counter(), 0
    waiting = collections.defaultdict(set)  # part -> students whose answer waits for a human
    cells_max, kinds = {}, {}
    with Gradebook(course.db_url) as gb:
        a = gb.find_assignment(assignment)
        max_score = a.max_score
        for cell in (c for nb in a.notebooks for c in nb.grade_cells):
            cells_max[cell.name] = cell.max_score
            kinds[cell.name] = cell.cell_type
        students = [s.student.id for s in a.submissions]
        for sub in a.submissions:
            sid = sub.student.id
            totals[sid] = sub.score
            part_scores = collections.defaultdict(float)
            for nb in sub.notebooks:
                for g in nb.grades:
                    part_scores[part_of(g.name)] += g.score
                    if g.cell.cell_type == "code" and g.score < g.max_score:
                        fails[g.name] += 1
                    if g.needs_manual_grade:
                        pending += 1
                        waiting[part_of(g.name)].add(sid)
            for part, score in part_scores.items():
                parts[part][sid] = score
    part_max = collections.defaultdict(float)
    for name, top in cells_max.items():
        part_max[part_of(name)] += top
    messages = _failure_messages(course, assignment, students)
    n = len(totals)
    tests = sorted((name for name in cells_max if kinds[name] == "code"), key=lambda t: (-fails[t], t))
    ordered = sorted(totals.values())
    return {
        "assignment": assignment,
        "submissions": n,
        "max_score": max_score,
        "scores": dict(sorted(totals.items())),
        "mean": sum(ordered) / n if n else 0.0,
        "median": (ordered[(n - 1) // 2] + ordered[n // 2]) / 2 if n else 0.0,
        "full_marks": sum(1 for s in ordered if s >= max_score),
        "parts": {p: {"max": part_max[p], "mean": sum(parts[p].values()) / n if n else 0.0,
                      "full": sum(1 for v in parts[p].values() if v >= part_max[p]),
                      "zero": sum(1 for sid, v in parts[p].items() if v == 0 and sid not in waiting[p]),
                      "waiting": len(waiting[p]),
                      "scores": dict(sorted(parts[p].items()))} for p in part_max},
        "tests": [{"test": t, "failed": fails[t], "fraction": fails[t] / n if n else 0.0,
                   "message": messages[t].most_common(1)[0][0] if messages[t] else ""} for t in tests],
        "written_answers_to_grade": pending,
    }


# A number standing alone (0.5, -3, 1e-07, the 3 of "(3, 4)"), not digits inside a word (float32, ex02, W_x1).
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?!\w|\.\d)")


def message_group(text: str) -> str:
    """The key that groups failure messages differing only in their numbers: each such number becomes #."""
    return " ".join(_NUMBER.sub("#", text).split())


def _failure_messages(course: Course, assignment: str, students: list[str]) -> dict[str, collections.Counter]:
    """For each test cell, how often each kind of failure message occurred.

    Messages that differ only in their numbers (values, indices, shapes of random cases) count as
    one kind, shown as the first such message met, with its words and numbers intact.
    """
    out = collections.defaultdict(collections.Counter)
    example: dict[tuple[str, str], str] = {}
    for student in students:
        for path in course.folder("autograded", student, assignment).glob("*.ipynb"):
            try:
                nb = nbformat.read(path, as_version=4)
            except Exception:
                continue
            for cell in nb.cells:
                gid = cell.metadata.get("nbgrader", {}).get("grade_id")
                for o in cell.get("outputs", []):
                    if o.get("output_type") == "error":
                        text = " ".join(f"{o.get('ename')}: {o.get('evalue', '')}".split())
                        shown = example.setdefault((gid, message_group(text)), text[:160])
                        out[gid][shown] += 1
                        break
    return out


def _figures(summary: dict, folder: Path) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    a, figures = summary["assignment"], []
    scores = list(summary["scores"].values())
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    top = summary["max_score"] or 1
    ax.hist(scores, bins=min(12, max(4, int(top))), range=(0, top), color=OKABE_ITO[0], edgecolor="white")
    ax.axvline(summary["mean"], color=OKABE_ITO[3], linestyle="--", label=f"mean {summary['mean']:.2f}")
    ax.set(xlabel=f"total score (of {top:g})", ylabel="students", title=f"{a}: score distribution")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # a count of students is a whole number
    ax.legend()
    figures.append(_save(fig, folder / f"{a}-scores.png", f"Distribution of the total scores of {a}"))
    parts = summary["parts"]
    names = list(parts)[::-1]
    n = max(1, summary["submissions"])
    shares = {
        "full marks": [parts[p]["full"] for p in names],
        "part marks": [len(parts[p]["scores"]) - parts[p]["full"] - parts[p]["zero"] - parts[p]["waiting"] for p in names],
        "no marks": [parts[p]["zero"] for p in names],
        "to grade by hand": [parts[p]["waiting"] for p in names],
    }
    styles = {"full marks": (OKABE_ITO[2], ""), "part marks": (OKABE_ITO[1], ".."), "no marks": (OKABE_ITO[3], "//"),
              "to grade by hand": ("#999999", "xx")}
    fig, ax = plt.subplots(figsize=(6.4, 1.2 + 0.5 * len(names)))
    left = [0.0] * len(names)
    for label, counts in shares.items():
        widths = [100 * c / n for c in counts]
        colour, hatch = styles[label]
        ax.barh(names, widths, left=left, color=colour, hatch=hatch, edgecolor="white", label=label)
        left = [a + b for a, b in zip(left, widths)]
    ax.set(xlabel="students (%)", xlim=(0, 100), title=f"{a}: scores per part")
    ax.legend(ncols=4, loc="upper center", bbox_to_anchor=(0.5, -0.25 if len(names) > 2 else -0.5), frameon=False,
              fontsize="small")
    figures.append(_save(fig, folder / f"{a}-parts.png",
                         f"For each part of {a}, the share of students with full, part or no marks"))
    tests = [t for t in summary["tests"] if t["failed"]][:10]
    if tests:
        fig, ax = plt.subplots(figsize=(6.4, 0.5 + 0.45 * len(tests)))
        ax.barh([t["test"] for t in tests][::-1], [100 * t["fraction"] for t in tests][::-1], color=OKABE_ITO[3],
                hatch="//", edgecolor="white")
        ax.set(xlabel="submissions failing the test (%)", xlim=(0, 100), title=f"{a}: tests failed most often")
        figures.append(_save(fig, folder / f"{a}-tests.png", f"The tests of {a} that fail most often"))
    return figures


def _save(fig, path: Path, alt: str) -> tuple[str, str]:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path.name, alt


def class_report(root: Path, assignments: list[str] | None = None, overrides: list[str] = ()) -> Path:
    """Write grading/report/index.html (with PNGs, summary.json and scores.csv); return its path."""
    from nbgrader.api import Gradebook

    course = Course(root, list(overrides))
    with Gradebook(course.db_url) as gb:
        names = assignments or [a.name for a in gb.assignments if a.submissions]
    folder = course.root / STATE_DIR / "report"
    folder.mkdir(parents=True, exist_ok=True)
    summaries = [summarize(course, a) for a in names]
    (folder / "summary.json").write_text(json.dumps(summaries, indent=1))
    with open(folder / "scores.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["assignment", "student", "part", "score", "max_score"])
        for s in summaries:
            for student, total in s["scores"].items():
                writer.writerow([s["assignment"], student, "total", total, s["max_score"]])
                for part, p in s["parts"].items():
                    writer.writerow([s["assignment"], student, part, p["scores"].get(student, 0), p["max"]])
    e = html.escape
    body = []
    for s in summaries:
        body.append(f"<h2>{e(s['assignment'])}</h2>")
        body.append(
            "<table><tr><th>submissions</th><th>mean</th><th>median</th><th>full marks</th><th>out of</th>"
            "<th>written answers to grade</th></tr>"
            f"<tr><td>{s['submissions']}</td><td>{s['mean']:.2f}</td><td>{s['median']:.2f}</td>"
            f"<td>{s['full_marks']}</td><td>{s['max_score']:g}</td><td>{s['written_answers_to_grade']}</td></tr></table>")
        rows = "".join(f"<tr><td>{e(p)}</td><td>{v['max']:g}</td><td>{v['mean']:.2f}</td><td>{v['full']}</td>"
                       f"<td>{v['zero']}</td><td>{v['waiting']}</td></tr>" for p, v in s["parts"].items())
        body.append("<h3>Per part</h3><table><tr><th>part</th><th>points</th><th>mean</th><th>full marks</th>"
                    f"<th>no marks</th><th>to grade by hand</th></tr>{rows}</table>")
        rows = "".join(f"<tr><td>{e(t['test'])}</td><td>{t['failed']}</td><td>{100 * t['fraction']:.0f}%</td>"
                       f"<td><code>{e(t['message'])}</code></td></tr>" for t in s["tests"])
        body.append("<h3>Tests, most failed first</h3><table><tr><th>test</th><th>failed</th><th>share</th>"
                    f"<th>most common message</th></tr>{rows}</table>")
        for name, alt in _figures(s, folder):
            body.append(f'<figure><img src="{e(name)}" alt="{e(alt)}"><figcaption>{e(alt)}.</figcaption></figure>')
    page = folder / "index.html"
    page.write_text(f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Class report</title>
<style>body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; line-height: 1.4 }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.2em }} td, th {{ border: 1px solid #bbb; padding: 0.25em 0.6em;
text-align: left }} th {{ background: #eef3f8 }} code {{ font-size: 0.85em }} img {{ max-width: 100% }}</style></head>
<body><h1>Class report</h1>
<p>From the gradebook ({e(course.db_url.split('@')[-1])}). A part is one function of the exercise: its visible
and hidden tests together. Written answers count as zero until they are graded by hand.</p>
{''.join(body)}
</body></html>
""")
    return page
