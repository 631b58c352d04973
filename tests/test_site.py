"""The built site as files, both editions: every internal link, anchor and image resolves (the
link from every page to its twin in the other edition included), every figure has alt text,
headings descend one level at a time, and every external link in the text is one of the
links listed in tests/external_links.txt (the one place to review them; the bibliography's links
are in references.bib). Figures are numbered within their chapter, and every {numref} names the
number its figure's caption shows."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import json

import pytest
import yaml
from bs4 import BeautifulSoup

from book_build import PLAN, ROOT, toc_pages

pytestmark = pytest.mark.slow
EXTERNAL_LIST = ROOT / "tests" / "external_links.txt"
REPO = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
ORG_REPO = REPO["url"].rstrip("/").removeprefix("https://github.com/")
# Links built from the one repository address in _config.yml; test_exercise_box checks them exactly.
REPO_LINKS = (f"https://github.com/{ORG_REPO}", f"https://mybinder.org/v2/gh/{ORG_REPO}/",
              f"https://colab.research.google.com/github/{ORG_REPO}/")


# What each edition calls an exercise box and a figure, and where its chapters and notebooks are.
EDITION = {
    "en": {"chapter": "book/", "box": "Exercise {n}:", "points": "({p:g} points)", "figure": "Fig. ",
           "notebook": "exercises/{a}/{a}.ipynb"},
    "zh": {"chapter": "zh/", "box": "练习 {n}：", "points": "（{p:g} 分）", "figure": "图 ",
           "notebook": "exercises/{a}/zh/{a}.ipynb"},
}


def _pages(book, edition: str | None = None) -> dict[str, BeautifulSoup]:
    book.check()
    return {page: BeautifulSoup((book.html / f"{page}.html").read_text(), "html.parser")
            for page in book.pages(edition)}


def _article(soup: BeautifulSoup):
    """The page's own content, without the theme's navigation, header and footer."""
    return soup.find("article") or soup


def _ids(path: Path, cache: dict) -> set[str]:
    if path not in cache:
        soup = BeautifulSoup(path.read_text(), "html.parser")
        cache[path] = {tag["id"] for tag in soup.find_all(id=True)} | {a["name"] for a in soup.find_all("a", attrs={"name": True})}
    return cache[path]


def test_every_internal_link_anchor_and_image_resolves(book):
    broken, ids = [], {}
    for page, soup in _pages(book).items():
        here = (book.html / f"{page}.html").parent
        for tag, attr in (("a", "href"), ("img", "src"), ("link", "href"), ("script", "src")):
            for element in soup.find_all(tag, attrs={attr: True}):
                url = element[attr]
                if urlparse(url).scheme or url.startswith(("//", "mailto:")):
                    continue
                target, anchor = urldefrag(url)
                target = urlparse(target).path  # without the ?v=... cache-busting query
                path = (here / unquote(target)).resolve() if target else (book.html / f"{page}.html")
                if path.is_dir():
                    path = path / "index.html"
                if not path.is_file():
                    broken.append(f"{page}: {tag} {attr}={url!r} -> missing file {path}")
                elif anchor and path.suffix == ".html" and unquote(anchor) not in _ids(path, ids):
                    broken.append(f"{page}: link {url!r} -> no element with id {anchor!r} in {path.name}")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_every_external_link_in_the_text_is_listed_in_one_place(book):
    listed = {line.strip() for line in EXTERNAL_LIST.read_text().splitlines() if line.strip() and not line.startswith("#")}
    found = {}
    for page, soup in _pages(book).items():
        for a in _article(soup).find_all("a", href=True):
            # the bibliography's DOI links come from references.bib, which is their one place
            if (urlparse(a["href"]).scheme in ("http", "https") and not a.find_parent(class_="citation")
                    and not a["href"].startswith(REPO_LINKS)):
                found.setdefault(a["href"], page)
    unlisted = {url: page for url, page in found.items() if url not in listed}
    assert not unlisted, (
        "external links missing from tests/external_links.txt (add them there once checked by hand):\n"
        + "\n".join(f"{url}  (on {page})" for url, page in sorted(unlisted.items()))
    )
    if not book.placeholders:
        unused = listed - set(found)
        assert not unused, f"tests/external_links.txt lists links no page uses any more: {sorted(unused)}"


def test_every_image_has_alt_text_and_headings_descend_one_level_at_a_time(book):
    problems = []
    for page, soup in _pages(book).items():
        article = _article(soup)
        for img in article.find_all("img"):
            if not img.get("alt", "").strip():
                problems.append(f"{page}: image {img.get('src')} has no alt text")
        levels = [int(h.name[1]) for h in article.find_all(["h1", "h2", "h3", "h4", "h5", "h6"])]
        if levels.count(1) != 1:
            problems.append(f"{page}: {levels.count(1)} top-level headings; expected exactly one")
        for before, after in zip(levels, levels[1:]):
            if after > before + 1:
                problems.append(f"{page}: heading level jumps from h{before} to h{after}")
    assert not problems, "\n".join(problems)


def _chapters(book, edition: str = "en") -> list[tuple[str, str]]:
    """(page, assignment) for every numbered chapter of an edition in this build."""
    prefix = EDITION[edition]["chapter"]
    return [(prefix + page.removeprefix("book/"), "ex" + page.removeprefix("book/")) for page in PLAN
            if page[5:7].isdigit() and page in toc_pages() and page not in book.placeholders]


def _number(page: str) -> int:
    return int(Path(page).name[:2])


@pytest.mark.parametrize("edition", EDITION)
def test_every_chapter_ends_with_an_exercise_box_that_links_its_notebook(book, edition):
    """In English the box links the English notebook, in Chinese the Chinese one."""
    book.check()
    branch = REPO.get("branch", "main")
    words = EDITION[edition]
    for page, assignment in _chapters(book, edition):
        number = _number(page)
        article = _article(BeautifulSoup((book.html / f"{page}.html").read_text(), "html.parser"))
        admonitions = article.select("div.admonition")
        assert admonitions, f"{page} has no admonitions, so no exercise box"
        box = admonitions[-1]
        title = box.select_one(".admonition-title").get_text(" ", strip=True)
        assert title.startswith(words["box"].format(n=number)), (
            f"{page}: the last box should be '{words['box'].format(n=number)} ...'; it is {title!r}")
        assert "tip" in box["class"], f"{page}: the exercise box should have the class tip"
        source = json.loads((ROOT / "solutions" / assignment / f"{assignment}.ipynb").read_text())
        points = sum(c["metadata"].get("nbgrader", {}).get("points", 0) for c in source["cells"])
        assert words["points"].format(p=points) in title, (
            f"{page}: the box title should state the notebook's {points:g} points: {title!r}")

        notebook = words["notebook"].format(a=assignment)
        links = [a["href"] for a in box.find_all("a", href=True)]
        downloads = [h for h in links if "_downloads/" in h and h.endswith(f"/{assignment}.ipynb")]
        assert len(downloads) == 1, f"{page}: the box needs one download link to {assignment}.ipynb; links: {links}"
        served = ((book.html / page).parent / downloads[0]).resolve()
        assert served.read_bytes() == (ROOT / notebook).read_bytes(), f"{page}: the downloaded notebook is not {notebook}"
        for launch in (f"https://mybinder.org/v2/gh/{ORG_REPO}/{branch}?urlpath=lab/tree/{notebook}",
                       f"https://colab.research.google.com/github/{ORG_REPO}/blob/{branch}/{notebook}"):
            assert launch in links, f"{page}: the exercise box lacks the launch link {launch}"


@pytest.mark.parametrize("edition", EDITION)
def test_every_chapter_links_its_terms_to_the_glossary(book, edition):
    book.check()
    folder = EDITION[edition]["chapter"]
    glossary = BeautifulSoup((book.html / folder / "glossary.html").read_text(), "html.parser")
    terms = {dt["id"] for dt in glossary.select("dl.glossary dt[id]")}
    assert len(terms) >= 20, f"the glossary has only {len(terms)} terms"
    for page, _ in _chapters(book, edition):
        article = _article(BeautifulSoup((book.html / f"{page}.html").read_text(), "html.parser"))
        linked = {a["href"].split("#")[1] for a in article.find_all("a", href=True) if a["href"].startswith("glossary.html#")}
        assert linked <= terms, f"{page} links glossary anchors that do not exist: {linked - terms}"
        assert len(linked) >= 3, f"{page} links only {sorted(linked)} to the glossary; link each term's first use with {{term}}"


def _source(page: str) -> Path:
    """The MyST source of a built page: book/NN_slug.md, or book/zh/NN_slug.md for zh/NN_slug."""
    return ROOT / "book" / f"{page.removeprefix('book/')}.md" if not page.startswith("zh/") else ROOT / "book" / f"{page}.md"


@pytest.mark.parametrize("edition", EDITION)
def test_figures_are_numbered_within_their_chapter_and_every_numref_names_that_number(book, edition):
    """Chapter N's figures read "Fig. N.1", "Fig. N.2", ... ("图 N.1" in Chinese) in page order
    (book/_ext/chapter_figure_numbers.py), and every {numref} link to a figure, on any page, names the
    number its caption shows."""
    import chapter_pages

    pages, problems, numbers = _pages(book, edition), [], {}
    chapters = [page for page, _ in _chapters(book, edition)]
    prefix = EDITION[edition]["figure"]
    for page in chapters:
        number = _number(page)
        cells = chapter_pages.code_cells(_source(page).read_text())
        names = [meta["mystnb"]["figure"]["name"] for meta, _ in cells if "figure" in meta.get("mystnb", {})]
        shown = []
        for figure in _article(pages[page]).find_all("figure"):
            span = figure.select_one("figcaption .caption-number")
            shown.append((figure.get("id"), span.get_text(strip=True) if span else None))
        expected = [(name, f"{prefix}{number}.{k}") for k, name in enumerate(names, start=1)]
        if shown != expected:
            problems.append(f"{page}: the figures (id, caption number) are {shown}; expected {expected}")
        numbers.update({f"{page}.html#{name}": text for name, text in expected})
    for page, soup in pages.items():
        article = _article(soup)
        refs = article.select("span.std-numref")
        for span in refs:
            text, link = span.get_text(" ", strip=True), span.find_parent("a", href=True)
            if link is None:
                problems.append(f"{page}: a numref did not resolve to a link: {text!r}")
                continue
            target, anchor = urldefrag(link["href"])
            key = f"{(Path(page).parent / target).as_posix() if target else page + '.html'}#{anchor}"
            if key in numbers:
                if numbers[key].removeprefix(prefix) not in text.split():
                    problems.append(f"{page}: the numref to {anchor} reads {text!r}; its caption is {numbers[key]!r}")
            elif anchor.startswith("fig-"):
                problems.append(f"{page}: the numref {text!r} links {link['href']}, a figure of no chapter built")
        if page in chapters:
            wanted = len(re.findall(r"\{numref\}`", _source(page).read_text()))
            if len(refs) != wanted:
                problems.append(f"{page}: the source has {wanted} {{numref}} references; the page shows {len(refs)}")
    assert not problems, "\n".join(problems)
