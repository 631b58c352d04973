"""The book: every page in the table of contents is a MyST notebook, and the whole book builds
as `make book` builds it, with warnings as errors and every page executed afresh."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BIB_KEYS = ("hochreiter1997lstm", "gers2000forget", "bengio1994difficult", "pascanu2013difficulty", "werbos1990bptt")


def toc_pages() -> list[str]:
    """Every page of _toc.yml, root first, as paths without extension relative to the repo root."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            for key in ("parts", "chapters", "sections"):
                walk(entry.get(key))

    walk(toc.get("parts"))
    walk(toc.get("chapters"))
    return pages


def test_every_toc_page_exists_and_is_a_jupytext_myst_notebook():
    pages = toc_pages()
    assert pages[:2] == ["book/index", "book/00_how_to_use"], f"the toc should open with the index and chapter 0; got {pages}"
    for page in pages:
        path = ROOT / f"{page}.md"
        assert path.is_file(), f"_toc.yml lists {page}, but {page}.md does not exist (chapters are .md, never .ipynb)"
        match = re.match(r"---\n(.*?)\n---\n", path.read_text(), flags=re.DOTALL)
        assert match, f"{page}.md has no YAML front matter; expected a jupytext header"
        header = yaml.safe_load(match.group(1))
        assert header.get("jupytext", {}).get("text_representation", {}).get("format_name") == "myst", (
            f"{page}.md: the header needs jupytext.text_representation.format_name: myst"
        )
        assert header.get("kernelspec", {}).get("name") == "python3", f"{page}.md: the header needs kernelspec name python3"


@dataclass
class Build:
    command: str
    returncode: int
    problems: list[str]  # the log's warning and error lines, to show when the build fails
    log: str
    html: Path

    def check(self) -> None:
        # The exit code is the verdict: -W turns every Sphinx warning into a failure, and
        # raise_on_error a failing cell. The log also carries the kernels' own stderr (ipykernel
        # sometimes logs a traceback while shutting down), which is not the book's business.
        assert self.returncode == 0, (
            f"`{self.command}` exited {self.returncode}; warnings and errors:\n" + "\n".join(self.problems)
            + f"\n--- end of the log ---\n{self.log[-3000:]}"
        )


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Build:
    """Build as `make book` does (-W -n --keep-going), but forcing execution and into a temporary
    folder, so neither the committed _config.yml nor the execution cache in _build is touched."""
    tmp = tmp_path_factory.mktemp("book")
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "cache"
    config["execute"]["execute_notebooks"] = "force"
    (tmp / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(jupyter_book), "build", ".", "-W", "-n", "--keep-going",
           "--config", str(tmp / "_config.yml"), "--path-output", str(tmp)]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    problems = [line for line in log.splitlines()
                if re.search(r"WARNING|ERROR|Error|Exception", line) and "[IPKernelApp]" not in line]
    return Build(" ".join(cmd), result.returncode, problems, log, tmp / "_build" / "html")


@pytest.mark.slow
def test_book_builds_warning_free_with_every_page(book):
    book.check()
    for page in toc_pages():
        assert (book.html / f"{page}.html").is_file(), f"{page}.html is missing from the built book"
    assert (book.html / "search.html").is_file(), "the search page is missing"


@pytest.mark.slow
def test_repository_issues_launch_and_download_buttons_come_from_the_one_repository_url(book):
    book.check()
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].rstrip("/")
    org_repo = repo.removeprefix("https://github.com/")
    chapter = (book.html / "book" / "00_how_to_use.html").read_text()
    for link in (
        f'href="{repo}"',                                                           # repository button
        f'href="{repo}/issues/new?',                                                # issues button
        f'href="https://mybinder.org/v2/gh/{org_repo}/main?urlpath=',               # Binder
        f'href="https://colab.research.google.com/github/{org_repo}/blob/main/book/00_how_to_use.',  # Colab
        'href="../_sources/book/00_how_to_use.ipynb"',                              # download, executed
        'href="../_sources/book/00_how_to_use.md"',                                 # download, source
    ):
        assert link in chapter, f"chapter 0 lacks the link {link}"
    assert "/./" not in chapter, "a launch link contains '/./': set repository.path_to_book to an empty string"


@pytest.mark.slow
def test_chapter_0_has_its_figure_and_citations_resolve_to_the_bibliography(book):
    book.check()
    chapter = (book.html / "book" / "00_how_to_use.html").read_text()
    figure = re.search(r'<figure[^>]*id="fig-activations".*?</figure>', chapter, flags=re.DOTALL)
    assert figure, "chapter 0 has no figure named fig-activations"
    assert re.search(r'<img[^>]*src="[^"]+\.png"', figure.group(0)), "the fig-activations figure has no rendered image"
    assert "overflow encountered in exp" in chapter, "the naive sigmoid's captured overflow warning is not shown"
    assert 'href="references.html#' in chapter, "chapter 0's citations do not link to the bibliography"

    references = (book.html / "book" / "references.html").read_text()
    for key, words in {
        "hochreiter1997lstm": ("Hochreiter", "Long short-term memory", "1735"),
        "gers2000forget": ("Gers", "Learning to forget", "2451"),
        "bengio1994difficult": ("Bengio", "Learning long-term dependencies", "157"),
        "pascanu2013difficulty": ("Pascanu", "On the difficulty of training recurrent neural networks", "1310"),
        "werbos1990bptt": ("Werbos", "Backpropagation through time", "1550"),
    }.items():
        for word in words:
            assert word in references, f"bibliography entry {key}: {word!r} not found on references.html"
    assert len(re.findall(r'class="citation"', references)) >= len(BIB_KEYS), "fewer bibliography entries than cited works"
