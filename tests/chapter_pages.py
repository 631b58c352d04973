"""Reading a chapter for its tests: the MyST source (prose, code cells) and the built page's printed output."""

from __future__ import annotations

import html
import re

import yaml


def printed(page_html: str) -> str:
    """What the page's code cells printed (not their source): stream outputs, tags removed, entities decoded."""
    streams = re.findall(r'<div class="output stream[^"]*"><div class="highlight"><pre>(.*?)</pre>', page_html,
                         flags=re.DOTALL)
    return html.unescape(re.sub(r"<[^>]+>", "", "".join(streams)))


def number(text: str, pattern: str) -> float:
    """The first group of the first match of pattern in text, as a float; fails if nothing matches."""
    match = re.search(pattern, text)
    assert match, f"the page does not print a line matching {pattern!r}"
    return float(match.group(1))


def code_cells(source: str) -> list[tuple[dict, str]]:
    """(metadata, code) of every code cell of a MyST notebook."""
    cells = []
    for block in re.findall(r"^```\{code-cell\}[^\n]*\n(.*?)^```$", source, flags=re.DOTALL | re.MULTILINE):
        meta = {}
        if block.startswith("---\n"):
            head, block = block[4:].split("\n---\n", 1)
            meta = yaml.safe_load(head)
        cells.append((meta, block))
    return cells


def prose(source: str) -> str:
    """The text of a MyST notebook without its header, code cells and display equations."""
    body = source.split("\n---\n", 1)[1]  # drop the jupytext header
    body = re.sub(r"^```\{code-cell\}.*?^```$", " ", body, flags=re.DOTALL | re.MULTILINE)
    return re.sub(r"^\$\$.*?^\$\$.*?$", " ", body, flags=re.DOTALL | re.MULTILINE)


def equation_labels(source: str) -> list[str]:
    """The labels of a page's display equations, in order (``$$ (label)`` closing lines)."""
    return re.findall(r"^\$\$ \(([^)\s]+)\)$", source, flags=re.MULTILINE)


def graded_points(notebook: dict) -> tuple[dict[str, int], dict[str, str]]:
    """What an nbgrader source notebook grades: ({function or "written": points}, {solution grade id: its code}).

    A function's points are those of its visible and hidden test cells (grade ids test_<function>_visible and
    test_<function>_hidden); "written" is the hand-graded answer; the second dict holds the solution cells.
    """
    points: dict[str, int] = {}
    solutions: dict[str, str] = {}
    for cell in notebook["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        match = re.match(r"test_(\w+?)_(visible|hidden)$", meta.get("grade_id", ""))
        if meta.get("grade") and match:
            points[match.group(1)] = points.get(match.group(1), 0) + meta["points"]
        elif meta.get("grade") and meta.get("solution"):
            points["written"] = meta["points"]
        elif meta.get("solution"):
            solutions[meta["grade_id"]] = "".join(cell["source"])
    return points, solutions
