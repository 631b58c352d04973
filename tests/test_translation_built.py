"""The two editions as built: the Chinese pages print exactly what the English pages print, show as
many figures, draw the words of those figures in Chinese, and speak Chinese in the theme too."""

from __future__ import annotations

import hashlib
import html
import re

import pytest
from bs4 import BeautifulSoup

from book_build import EDITIONS, toc_pages

pytestmark = pytest.mark.slow
PAGES = toc_pages(EDITIONS["zh"][1])
# A wall-clock time a page prints ("(3.2 s)", "runs: 48 s") measures the machine, not the model:
# it is the one number the two editions may differ in.
DURATION = re.compile(r"\b\d+(?:\.\d+)?\s?(?:ms|s|min)\b")


def _outputs(page_html: str) -> list[str]:
    """The text every code cell printed or returned, cell by cell (figures left out)."""
    soup = BeautifulSoup(page_html, "html.parser")
    found = []
    for cell in soup.select("div.cell_output"):
        # a cell's stream can reach the page in one block or in several, split anywhere, even inside
        # a line (how the kernel flushed it): consecutive stream blocks are read as one text, and
        # the lines count, not the blank lines between blocks
        text, was_stream = "", False
        for block in cell.select("div.output"):
            stream = "stream" in block.get("class", [])
            piece = "".join(pre.get_text() for pre in block.select("pre"))
            text += piece if (stream and was_stream) else "\n" + piece
            was_stream = stream
        text = DURATION.sub("<time>", html.unescape(text))
        found.append("\n".join(line.rstrip() for line in text.splitlines() if line.strip()))
    return found


def _images(page_html: str, folder) -> list[str]:
    soup = BeautifulSoup(page_html, "html.parser")
    article = soup.find("article") or soup
    return [hashlib.sha256((folder / img["src"]).read_bytes()).hexdigest()
            for img in article.select("div.cell_output img")]


@pytest.mark.parametrize("page", PAGES)
def test_chinese_page_prints_every_number_the_english_page_prints(book, page):
    english, chinese = book.page(f"book/{page}"), book.page(f"zh/{page}")
    en, zh = _outputs(english), _outputs(chinese)
    assert len(en) == len(zh), f"{page}: {len(en)} code cell outputs in English, {len(zh)} in Chinese"
    for k, (a, b) in enumerate(zip(en, zh), 1):
        assert a == b, f"{page}: output {k} differs between the editions:\nen: {a[:500]}\nzh: {b[:500]}"


@pytest.mark.parametrize("page", [p for p in PAGES if p[:2].isdigit()])
def test_chinese_page_draws_the_same_figures_with_chinese_words(book, page):
    en_html, zh_html = book.page(f"book/{page}"), book.page(f"zh/{page}")
    en = _images(en_html, (book.html / f"book/{page}.html").parent)
    zh = _images(zh_html, (book.html / f"zh/{page}.html").parent)
    assert len(en) == len(zh), f"{page}: {len(en)} figures in English, {len(zh)} in Chinese"
    if en:
        # every chapter's figures carry words (titles, axes, legends): drawn in Chinese they differ
        same = sum(a == b for a, b in zip(en, zh))
        assert same == 0, f"{page}: {same} of {len(en)} figures are drawn exactly as in English"


def test_chinese_pages_carry_the_theme_in_chinese_and_their_own_language(book):
    for page in PAGES:
        text = book.page(f"zh/{page}")
        assert re.search(r'<html[^>]*\blang="zh-CN"', text), f"zh/{page}: <html lang> is not zh-CN"
        for label in ("搜索",):
            assert label in text, f"zh/{page}: the theme's label {label!r} is missing"
    chapter = book.page("zh/04_lstm_forward")
    assert "上一页" in chapter and "下一页" in chapter, "the previous/next links are not in Chinese"


def test_chinese_figures_report_no_missing_glyph(book):
    """The build fails on a missing glyph (book/_ext/figure_language.py); the log must not show one either."""
    book.check()
    assert "missing from font" not in book.zh_log
