"""The Chinese edition against the English one, from the sources (no build): the same pages, the same
code, the same labels and numbers, one terminology, no drift; and the Chinese student versions, whose
graded cells are the English ones. The built pages are compared in test_translation_built.py."""

from __future__ import annotations

import json
import subprocess

import nbformat
import pytest
import yaml

import course
import translation
from book_build import EDITIONS, ROOT, toc_pages
from course_grader import translate as release

ZH_PAGES = toc_pages(EDITIONS["zh"][1])
EN_PAGES = toc_pages(EDITIONS["en"][1])
ASSIGNMENTS = course.assignments()


def test_the_chinese_edition_has_every_page_of_the_english_one_in_the_same_order():
    assert ["book/" + page for page in ZH_PAGES] == EN_PAGES
    for page in ZH_PAGES:
        front = translation.parse(ROOT / "book" / "zh" / f"{page}.md").front
        assert front.get("translation", {}).get("source") == f"book/{page}.md", (
            f"book/zh/{page}.md must record `translation: source: book/{page}.md` in its front matter")


@pytest.mark.parametrize("page", ZH_PAGES)
def test_chinese_page_has_the_english_code_labels_numbers_and_glossary_terms(page):
    problems = translation.compare(ROOT / "book" / "zh" / f"{page}.md")
    assert not problems, "\n\n".join(problems)


@pytest.mark.parametrize("page", ZH_PAGES)
def test_chinese_page_was_translated_from_the_english_page_as_it_is_now(page):
    """The drift guard: see the README, "The Chinese edition", for what to do when it fails."""
    changed = translation.drift(ROOT / "book" / "zh" / f"{page}.md")
    assert changed is None, changed


def test_drift_guard_names_the_page_and_shows_the_english_diff(tmp_path):
    """Record an older English version of chapter 4 as the source of a copy of its Chinese page:
    the guard must fail with the page's name and the lines that changed since."""
    log = subprocess.run(["git", "log", "--format=%H", "--", "book/04_lstm_forward.md"], cwd=ROOT,
                         capture_output=True, text=True)
    commits = log.stdout.split()
    if log.returncode != 0 or len(commits) < 2:
        pytest.skip("this clone has no history of book/04_lstm_forward.md")
    old_blob = subprocess.run(["git", "rev-parse", f"{commits[1]}:book/04_lstm_forward.md"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
    page = ROOT / "book" / "zh" / "04_lstm_forward.md"
    text = page.read_text(encoding="utf-8")
    recorded = translation.parse(page).front["translation"]["source_blob"]
    stale = tmp_path / "04_lstm_forward.md"
    stale.write_text(text.replace(recorded, old_blob, 1), encoding="utf-8")
    report = translation.drift(stale)
    assert report is not None and "04_lstm_forward.md" in report and old_blob in report
    old = translation.git_text(old_blob)
    now = (ROOT / "book" / "04_lstm_forward.md").read_text(encoding="utf-8")
    removed = next(line for line in old.splitlines() if line not in now.splitlines() and line.strip())
    assert f"-{removed}" in report, "the report should show the English lines that changed"

    stale.write_text(text.replace(recorded, "0" * 40, 1), encoding="utf-8")
    report = translation.drift(stale)
    assert report is not None and "not in this clone's history" in report


def test_compare_finds_changed_code_lost_numbers_and_the_wrong_term(tmp_path):
    page = ROOT / "book" / "zh" / "04_lstm_forward.md"
    text = page.read_text(encoding="utf-8")
    broken = tmp_path / "04_lstm_forward.md"
    code = translation.parse(page).cells[1][1]
    first_line = code.splitlines()[0]
    term = next(e["zh"] for e in translation.glossary() if f"{{term}}`{e['zh']}`" in text)
    number = next(n for n in sorted(translation.numbers(translation.parse(page).prose), key=len, reverse=True)
                  if text.count(n) == 1)
    changed = (text.replace(first_line, first_line + "  # 注释", 1)
                   .replace(f"{{term}}`{term}`", term)
                   .replace(number, "x"))
    broken.write_text(changed, encoding="utf-8")
    problems = "\n".join(translation.compare(broken))
    assert "code cell 2 differs" in problems
    assert "numbers of the English text missing" in problems
    assert "links the terms" in problems


# --- the glossary ---------------------------------------------------------------------------------

def test_glossary_data_is_complete_and_no_two_entries_share_a_term():
    entries = translation.glossary()
    english = [e["en"] for e in entries]
    assert len(english) == len(set(english)), "two glossary entries have the same English term"
    chinese = []
    for entry in entries:
        chinese += [entry["zh"], *entry.get("zh_also", [])]
        if "see" in entry:
            assert entry["see"] in english, f"{entry['en']}: `see: {entry['see']}` is not an entry"
            continue
        for field in ("en_text", "zh_text"):
            assert entry.get(field, "").strip() and "待译" not in entry[field], f"{entry['en']}: {field} is empty"
    shared = sorted({t for t in chinese if chinese.count(t) > 1})
    assert not shared, f"these Chinese terms belong to more than one entry: {shared}"


@pytest.mark.parametrize("language", ["en", "zh"])
def test_each_glossary_definition_links_terms_of_its_own_language(language):
    import re

    entries = translation.glossary()
    known = {e[language] for e in entries}
    for entry in entries:
        text = entry.get(f"{language}_text", "")
        for link in re.findall(r"\{term\}`([^`]*)`", text):
            assert translation.term_target(link) in known, (
                f"{entry['en']}: {language}_text links {link!r}, which is no {language} term of the glossary")


def test_both_glossary_pages_render_the_data_file():
    import sys

    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    import glossary_data

    for page, language in (("book/glossary.md", "en"), ("book/zh/glossary.md", "zh")):
        assert glossary_data.MARKER in (ROOT / page).read_text(encoding="utf-8"), f"{page} lacks the marker line"
        rendered = glossary_data.render(language)
        for entry in translation.glossary():
            assert f"\n{entry[language]}\n  " in rendered, f"{page}: the entry {entry[language]!r} is not rendered"


# --- the exercises --------------------------------------------------------------------------------

@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_instruction_of_the_exercise_is_translated_from_its_current_english_text(assignment):
    path = ROOT / release.TABLES / f"{assignment}.yml"
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing: the Chinese text of the exercise"
    problems = translation.compare_exercise(path)
    assert not problems, "\n\n".join(problems)


def _graded_view(nb) -> list:
    """What grading sees of a notebook: every cell's id, type and nbgrader fields, and a code cell's source."""
    view = []
    for cell in nb.cells:
        meta = dict(cell.metadata.get("nbgrader", {}))
        meta.pop("checksum", None)
        view.append((cell.get("id"), cell.cell_type, meta, cell.source if cell.cell_type == "code" else None))
    return view


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_chinese_student_version_is_the_english_one_with_chinese_text(assignment):
    from nbgrader.utils import compute_checksum

    english_path = ROOT / "exercises" / assignment / f"{assignment}.ipynb"
    zh_path = ROOT / "exercises" / assignment / "zh" / f"{assignment}.ipynb"
    assert zh_path.is_file(), f"{zh_path.relative_to(ROOT)} is missing: run `make release`"
    english, zh = (nbformat.read(p, as_version=4) for p in (english_path, zh_path))
    assert _graded_view(zh) == _graded_view(english), "the graded cells differ between the two languages"
    table = release.load_table(ROOT / release.TABLES / f"{assignment}.yml")
    assert json.loads(nbformat.writes(zh)) == json.loads(nbformat.writes(release.translated(english, table))), (
        f"{zh_path.relative_to(ROOT)} is not what book/zh/exercises/{assignment}.yml makes: run `make release`")
    translated = 0
    for en_cell, zh_cell in zip(english.cells, zh.cells):
        meta = zh_cell.metadata.get("nbgrader", {})
        if meta.get("locked"):
            assert meta["checksum"] == compute_checksum(zh_cell), f"{meta['grade_id']}: checksum is stale"
        if zh_cell.cell_type == "markdown" and zh_cell.source != en_cell.source:
            translated += 1
            assert any("\u4e00" <= ch <= "\u9fff" for ch in zh_cell.source), f"{meta.get('grade_id')}: not Chinese"
    assert translated == len(translation.exercise_cells(assignment))


def test_a_translation_of_an_outdated_english_cell_stops_the_release():
    assignment = ASSIGNMENTS[0]
    english = nbformat.read(ROOT / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
    table = release.load_table(ROOT / release.TABLES / f"{assignment}.yml")
    first = next(c for c in english.cells if c.cell_type == "markdown")
    first.source += "\nOne more English sentence."
    gid = first.metadata["nbgrader"]["grade_id"]
    with pytest.raises(release.TranslationError, match=f"cell '{gid}' changed since it was translated"):
        release.translated(english, table, "table")


def test_restore_structure_takes_the_released_chinese_text_for_released_not_for_an_edit():
    from course_grader.structure import CellSpec, restore_structure

    spec = CellSpec("intro", "markdown", True, "# Exercise")
    cells = [nbformat.v4.new_markdown_cell("# 练习", metadata={"nbgrader": spec.metadata()})]
    _, repairs = restore_structure(cells, [spec], {"intro": {"# 练习"}})
    assert repairs == []
    cells[0].source = "# 练习 (edited)"
    restored, repairs = restore_structure(cells, [spec], {"intro": {"# 练习"}})
    assert repairs == ["the locked cell 'intro' was edited: the released version runs"]
    assert restored[0].source == "# Exercise"


# --- the figures' words ---------------------------------------------------------------------------

def test_figure_text_tables_load_and_each_entry_translates_words():
    import sys

    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    import figure_language

    table = figure_language.load("zh")
    assert len(table) >= 30
    for english, chinese in table.items():
        assert figure_language.has_words(english) or english == chinese, f"{english!r} has no words to translate"
    translate = figure_language.Translator(table)
    pattern = next(k for k in table if "{}" in k)
    assert translate(pattern.replace("{}", "42")) == table[pattern].replace("{}", "42")
    assert translate("a string no figure draws") is None


def test_two_tables_that_translate_one_string_differently_stop_the_build(tmp_path, monkeypatch):
    import sys

    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    import figure_language

    (tmp_path / "ch01.yml").write_text('"accuracy": "准确率"\n', encoding="utf-8")
    (tmp_path / "ch02.yml").write_text('"accuracy": "精度"\n', encoding="utf-8")
    monkeypatch.setattr(figure_language, "TABLES", {"zh": tmp_path})
    with pytest.raises(ValueError, match="'accuracy' is '准确率' in ch01.yml and '精度' in ch02.yml"):
        figure_language.load("zh")
    (tmp_path / "ch02.yml").write_text('"lag {}": "延迟"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="different numbers of"):
        figure_language.load("zh")


def test_a_figure_with_a_missing_glyph_fails_the_build(monkeypatch):
    """matplotlib warns "Glyph ... missing from font(s)" into the cell's stderr when a font lacks a
    character: the extension turns that output into a build warning, an error under -W."""
    import sys

    from docutils import nodes
    from sphinx.util import logging as sphinx_logging

    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    import figure_language

    warned = []

    class Logger:
        def warning(self, message, **kwargs):
            warned.append(message)

    monkeypatch.setattr(sphinx_logging, "getLogger", lambda name: Logger())
    document = nodes.section()
    document += nodes.literal_block(text="accuracy 0.98")
    figure_language._missing_glyphs(None, document)
    assert warned == []
    document += nodes.literal_block(text="UserWarning: Glyph 36951 (\\N{CJK UNIFIED IDEOGRAPH-9057}) "
                                         "missing from font(s) DejaVu Sans.")
    figure_language._missing_glyphs(None, document)
    assert len(warned) == 1 and "Glyph 36951" in warned[0] and "fonts-noto-cjk" in warned[0]
