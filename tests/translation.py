"""The Chinese edition against the English one, read from the sources: what must be the same in both.

A Chinese page `book/zh/NN_slug.md` translates `book/NN_slug.md`. Its front matter names that source
and the git blob id (`git hash-object book/NN_slug.md`) of the English text it was translated from.
The two pages must have:

- the same code cells in the same order, each with the same code, character for character, and the
  same options, but for the words a reader sees: a figure's caption and its alt text;
- the same labels (sections, equations, figures), so every cross-reference has the same target;
- the same numbers in the prose: every number the English text states, and no other;
- the glossary's Chinese term wherever the English page links an English term (book/glossary.yml).

Run on one page while translating:

    .venv/bin/python tests/translation.py book/zh/04_lstm_forward.md

An exercise's Chinese text (see below): `--skeleton ex04_lstm_forward` prints a file to start from,
and `tests/translation.py book/zh/exercises/ex04_lstm_forward.yml` checks one.

It prints every difference and exits 1 if there is one. tests/test_translation.py runs the same
checks on every page.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ZH = ROOT / "book" / "zh"
GLOSSARY = ROOT / "book" / "glossary.yml"

# Options of a code cell that carry words, translated in the other edition.
WORDS = {("mystnb", "figure", "caption"), ("mystnb", "image", "alt")}

_FENCE = re.compile(r"^(`{3,})\{code-cell\}[^\n]*\n(.*?)^\1[ \t]*$", re.S | re.M)
_NUMBER = re.compile(r"(?<![\w.])[-−]?\d+(?:,\d{3})*(?:\.\d+)?(?:e[-+]?\d+)?(?![\w])")
_TERM = re.compile(r"\{term\}`([^`]*)`")
_LABEL = re.compile(r"^\(([\w-]+)\)=\s*$|^\$\$\s*\(([\w-]+)\)\s*$|^:(?:label|name):\s*([\w-]+)\s*$"
                    r"|^\s+name:\s*(fig-[\w-]+)\s*$", re.M)


@dataclass
class Page:
    path: Path
    front: dict
    cells: list[tuple[dict, str]]  # (options, code)
    prose: str  # everything but the front matter and the code, with captions and alt texts appended

    @property
    def labels(self) -> list[str]:
        text = self.text
        return [next(g for g in m.groups() if g) for m in _LABEL.finditer(text)]

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")


def _name(path: Path) -> str:
    """A path as the messages show it: relative to the repository when it is inside."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def blob_id(data: bytes) -> str:
    """The git blob id of a file's bytes, as `git hash-object` prints it."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def parse(path: Path) -> Page:
    text = path.read_text(encoding="utf-8")
    front = {}
    body = text
    if text.startswith("---\n"):
        end = text.index("\n---\n", 4)
        front = yaml.safe_load(text[4:end]) or {}
        body = text[end + 5:]
    cells, prose, pos = [], [], 0
    for match in _FENCE.finditer(body):
        prose.append(body[pos:match.start()])
        pos = match.end()
        inner = match.group(2)
        options: dict = {}
        if inner.startswith("---\n"):
            end = inner.index("\n---\n", 4)
            options = yaml.safe_load(inner[4:end]) or {}
            code = inner[end + 5:]
        else:
            lines = inner.split("\n")
            while lines and re.match(r"^:[\w-]+:", lines[0]):
                key, _, value = lines.pop(0)[1:].partition(":")
                options[key] = yaml.safe_load(value)
            code = "\n".join(lines)
        for path_ in WORDS:
            node = options
            for key in path_[:-1]:
                node = node.get(key, {}) if isinstance(node, dict) else {}
            if isinstance(node, dict) and path_[-1] in node:
                prose.append(str(node[path_[-1]]))
        cells.append((options, code))
    prose.append(body[pos:])
    return Page(path, front, cells, "\n".join(prose))


def without_words(options: dict) -> dict:
    """The options with the caption and alt text taken out."""
    import copy

    options = copy.deepcopy(options)
    for path_ in WORDS:
        node = options
        for key in path_[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path_[-1], None)
    return options


def numbers(text: str) -> set[str]:
    """The numbers a text states, written as digits, with the minus signs and thousands commas dropped."""
    found = set()
    for token in _NUMBER.findall(text):
        found.add(token.lstrip("-−").replace(",", ""))
    return found


def glossary() -> list[dict]:
    return yaml.safe_load(GLOSSARY.read_text(encoding="utf-8"))


def term_target(link: str) -> str:
    """The entry a {term} link points to: `text <target>` or `target`."""
    match = re.search(r"<([^<>]+)>\s*$", link)
    return " ".join((match.group(1) if match else link).split())


def english_source(zh_page: Page) -> Path:
    source = (zh_page.front.get("translation") or {}).get("source")
    if not source:
        raise ValueError(f"{zh_page.path}: no translation: source: in the front matter")
    return ROOT / source


def git_text(blob: str) -> str | None:
    """The text of a blob from the repository's history, or None when this clone does not have it."""
    run = subprocess.run(["git", "cat-file", "-p", blob], cwd=ROOT, capture_output=True)
    return run.stdout.decode("utf-8") if run.returncode == 0 else None


def drift(zh_path: Path) -> str | None:
    """None if the English source is the one the page was translated from; else what changed since."""
    import difflib

    page = parse(zh_path)
    source = english_source(page)
    recorded = str((page.front.get("translation") or {}).get("source_blob", ""))
    now = source.read_bytes()
    if blob_id(now) == recorded:
        return None
    old = git_text(recorded) if re.fullmatch(r"[0-9a-f]{40}", recorded) else None
    head = (f"{_name(zh_path)} was translated from {_name(source)} at blob "
            f"{recorded or '(none recorded)'}; the English page is now {blob_id(now)}.")
    if old is None:
        return head + " That version is not in this clone's history, so no diff can be shown."
    diff = difflib.unified_diff(old.splitlines(), now.decode("utf-8").splitlines(),
                                f"{_name(source)} (translated)", f"{_name(source)} (now)",
                                lineterm="", n=1)
    return head + " What changed in English since:\n" + "\n".join(diff)


def compare(zh_path: Path) -> list[str]:
    """Every way the Chinese page differs from its English source where it must not."""
    problems = []
    zh = parse(zh_path)
    try:
        en = parse(english_source(zh))
    except (ValueError, FileNotFoundError) as error:
        return [str(error)]
    name = _name(zh_path)
    if len(zh.cells) != len(en.cells):
        problems.append(f"{name}: {len(zh.cells)} code cells, the English page has {len(en.cells)}")
    for k, ((zo, zc), (eo, ec)) in enumerate(zip(zh.cells, en.cells), 1):
        if zc != ec:
            import difflib

            diff = "\n".join(difflib.unified_diff(ec.splitlines(), zc.splitlines(), "en", "zh", lineterm="", n=0))
            problems.append(f"{name}: code cell {k} differs from the English one:\n{diff}")
        if without_words(zo) != without_words(eo):
            problems.append(f"{name}: code cell {k} has other options than the English one "
                            f"(only the caption and the alt text may differ): {without_words(zo)} != {without_words(eo)}")
    if zh.labels != en.labels:
        problems.append(f"{name}: labels {zh.labels} differ from the English page's {en.labels}")
    en_numbers, zh_numbers = numbers(en.prose), numbers(zh.prose)
    if en_numbers - zh_numbers:
        problems.append(f"{name}: numbers of the English text missing: {sorted(en_numbers - zh_numbers)}")
    if zh_numbers - en_numbers:
        problems.append(f"{name}: numbers the English text does not state: {sorted(zh_numbers - en_numbers)}")
    entries = glossary()
    to_zh = {e["en"]: e["zh"] for e in entries}
    en_terms = [term_target(t) for t in _TERM.findall(en.text)]
    zh_terms = [term_target(t) for t in _TERM.findall(zh.text)]
    unknown = [t for t in en_terms if t not in to_zh]
    if unknown:
        problems.append(f"{_name(english_source(zh))}: terms not in the glossary: {unknown}")
    want = {to_zh[t] for t in en_terms if t in to_zh}
    if set(zh_terms) != want:
        problems.append(f"{name}: links the terms {sorted(set(zh_terms))}, but the English page links "
                        f"{sorted(want)} in the glossary's Chinese")
    return problems


# The exercises: book/zh/exercises/<assignment>.yml holds, for every markdown cell of the English
# student version (exercises/<assignment>/<assignment>.ipynb), keyed by its nbgrader grade_id, the
# first 16 hex digits of the SHA-256 of the English text it translates and the Chinese text.
ANSWER = "YOUR ANSWER HERE"


def exercise_cells(assignment: str) -> dict[str, str]:
    """grade_id -> source of every markdown cell of the English student version that is translated."""
    import json

    notebook = json.loads((ROOT / "exercises" / assignment / f"{assignment}.ipynb").read_text(encoding="utf-8"))
    cells = {}
    for cell in notebook["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] != "markdown" or source.strip() == ANSWER:
            continue
        cells[cell["metadata"]["nbgrader"]["grade_id"]] = source
    return cells


def text_sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def exercise_skeleton(assignment: str) -> str:
    lines = [f"exercise: {assignment}", "cells:"]
    for grade_id, source in exercise_cells(assignment).items():
        lines += [f"  {grade_id}:", f"    en_sha256: {text_sha(source)}", "    zh: |"]
        lines += ["      " + line if line else "" for line in source.splitlines()]
    return "\n".join(lines) + "\n"


def compare_exercise(path: Path) -> list[str]:
    """Every way a Chinese exercise text file is incomplete or out of date."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assignment = data["exercise"]
    english = exercise_cells(assignment)
    zh = data.get("cells") or {}
    name = _name(path)
    problems = []
    for grade_id in english.keys() - zh.keys():
        problems.append(f"{name}: cell {grade_id!r} of exercises/{assignment} is not translated")
    for grade_id in zh.keys() - english.keys():
        problems.append(f"{name}: cell {grade_id!r} is not a markdown cell of exercises/{assignment}")
    for grade_id in english.keys() & zh.keys():
        entry, source = zh[grade_id], english[grade_id]
        if entry.get("en_sha256") != text_sha(source):
            problems.append(f"{name}: cell {grade_id!r} was translated from another English text "
                            f"(en_sha256 {entry.get('en_sha256')}, the English cell is now {text_sha(source)}):\n{source}")
        missing, extra = numbers(source) - numbers(entry["zh"]), numbers(entry["zh"]) - numbers(source)
        if missing or extra:
            problems.append(f"{name}: cell {grade_id!r}: numbers missing {sorted(missing)}, not in the English {sorted(extra)}")
    return problems


def main(argv: list[str]) -> int:
    if argv[:1] == ["--skeleton"]:
        print(exercise_skeleton(argv[1]), end="")
        return 0
    failed = 0
    for arg in [a for a in argv if a.endswith(".yml")]:
        problems = compare_exercise(Path(arg).resolve())
        for problem in problems:
            print(problem, end="\n\n")
        print(f"{arg}: {'OK' if not problems else f'{len(problems)} problem(s)'}")
        failed += bool(problems)
    argv = [a for a in argv if not a.endswith(".yml")]
    for arg in argv or [str(p) for p in sorted(ZH.glob("*.md"))]:
        path = Path(arg).resolve()
        problems = compare(path)
        gone = drift(path)
        if gone:
            problems.append(gone)
        for problem in problems:
            print(problem, end="\n\n")
        print(f"{_name(path)}: {'OK' if not problems else f'{len(problems)} problem(s)'}")
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
