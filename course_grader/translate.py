"""The Chinese student versions: the English ones with their instructions in Chinese.

For each assignment, ``book/zh/exercises/<assignment>.yml`` holds the Chinese text of every markdown
cell of the English student version, keyed by the cell's nbgrader ``grade_id``, with the first 16 hex
digits of the SHA-256 of the English text it translates::

    exercise: ex02_rnn_bptt
    cells:
      intro:
        en_sha256: 51af4621e081c3dd
        zh: |
          # 练习 2：...

``python -m course_grader translate`` (run by ``make release`` after nbgrader has generated the
English versions) writes ``exercises/<assignment>/zh/<notebook>.ipynb``: the English student
version, cell for cell, with those markdown cells in Chinese and their nbgrader checksums
recomputed (so nbgrader's validation in the student's Jupyter accepts them). Every code cell, every
cell id and every nbgrader field but the checksum of a translated cell is the English one, so a
Chinese submission is graded exactly as an English one, by the same command and the same hidden
tests; the notebook keeps the English file name, which is what the grader looks for.

An English cell whose text changed since it was translated stops the release with the cell named:
a Chinese student must not read instructions for another version of the exercise.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import nbformat

TABLES = Path("book") / "zh" / "exercises"
LANGUAGE = "zh"
ANSWER = "YOUR ANSWER HERE"  # the answer cell of a written question: the student's, never translated


class TranslationError(ValueError):
    """A translation table that does not fit the English student version."""


def text_sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def load_table(path: Path) -> dict:
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("cells"), dict) or "exercise" not in data:
        raise TranslationError(f"{path}: expected `exercise: <assignment>` and a mapping `cells:` of grade ids")
    return data


def translated(english, table: dict, name: str = "the table"):
    """The English student notebook with its markdown cells from `table` (see the module doc)."""
    from nbgrader.utils import compute_checksum

    nb = copy.deepcopy(english)
    cells = table["cells"]
    seen = set()
    for cell in nb.cells:
        gid = _grade_id(cell)
        if cell.cell_type != "markdown" or cell.source.strip() == ANSWER:
            continue
        if gid not in cells:
            raise TranslationError(f"{name}: the markdown cell {gid!r} has no Chinese text")
        entry = cells[gid]
        if entry.get("en_sha256") != text_sha(cell.source):
            raise TranslationError(
                f"{name}: the English text of cell {gid!r} changed since it was translated "
                f"(en_sha256 {entry.get('en_sha256')}, now {text_sha(cell.source)}): translate it again, then "
                f"record the new en_sha256. The English text now:\n{cell.source}")
        cell.source = entry["zh"].rstrip("\n")
        if "checksum" in cell.metadata.get("nbgrader", {}):
            cell.metadata["nbgrader"]["checksum"] = compute_checksum(cell)
        seen.add(gid)
    unknown = set(cells) - seen
    if unknown:
        raise TranslationError(f"{name}: {sorted(unknown)} are not markdown cells of the English student version")
    nb.metadata["long_memory"] = {"language": LANGUAGE}  # which edition a submission came from
    return nb


def translated_path(course: Path, assignment: str, notebook: str) -> Path:
    return course / "exercises" / assignment / LANGUAGE / notebook


def translate(course: Path, assignments: list[str] | None = None, tables: Path | None = None) -> list[Path]:
    """Write the Chinese student version of every assignment that has a table; return their paths."""
    tables = tables or course / TABLES
    written = []
    for table_path in sorted(tables.glob("*.yml")):
        table = load_table(table_path)
        assignment = table["exercise"]
        if assignments is not None and assignment not in assignments:
            continue
        notebooks = sorted((course / "exercises" / assignment).glob("*.ipynb"))
        if len(notebooks) != 1:
            raise TranslationError(f"{table_path}: exercises/{assignment} should hold one notebook, not {len(notebooks)}")
        english = nbformat.read(notebooks[0], as_version=4)
        nb = translated(english, table, str(table_path))
        out = translated_path(course, assignment, notebooks[0].name)
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out)
        written.append(out)
    return written


def released_translations(course: Path, assignment: str, notebook: str) -> dict[str, set[str]]:
    """grade_id -> the text of each released translation of that cell (for telling them from edits)."""
    path = translated_path(course, assignment, f"{notebook}.ipynb")
    if not path.is_file():
        return {}
    found: dict[str, set[str]] = {}
    for cell in nbformat.read(path, as_version=4).cells:
        gid = _grade_id(cell)
        if gid:
            found.setdefault(gid, set()).add(cell.source.rstrip())
    return found
