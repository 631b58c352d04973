"""Building the book for the tests: the whole book as `make book` builds it, or a few chapters.

The whole book is built from the repository root with warnings as errors and every page
executed afresh. While editing one chapter, a maintainer can build just that chapter (and any
others) by setting BOOK_PAGES, e.g.

    BOOK_PAGES=book/03_vanishing_exploding pytest tests/test_chapter_03.py

Then the book is built from a copy in which every other page of the plan below is a page with
only its label and title, so cross-references to it still resolve and the build stays
warning-free; the tests of pages that were left out are skipped.

Either build runs with MPLBACKEND=Agg in its environment, as on many headless machines and CI
runners: kernels that inherited it would draw no figure at all. The book must not depend on
the caller's environment (book/_ext/kernel_environment.py sees to that), so every figure test of
the built pages also proves that.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CALLER_MPLBACKEND = "Agg"  # a backend that draws nothing in a notebook, set in the build's environment

# Every page of the book in the plan of COURSE_DESIGN section 3: path, label of its first heading, title.
PLAN = {
    "book/00_how_to_use": ("ch-how-to-use", "0. How to use this course"),
    "book/01_feedforward_limits": ("ch-feedforward-limits", "1. Why feedforward networks are not enough"),
    "book/02_rnn_bptt": ("ch-rnn-bptt", "2. Recurrent networks and backpropagation through time"),
    "book/03_vanishing_exploding": ("ch-vanishing-exploding", "3. Vanishing and exploding gradients"),
    "book/04_lstm_forward": ("ch-lstm-forward", "4. The LSTM, gate by gate"),
    "book/05_lstm_backward": ("ch-lstm-backward", "5. Backpropagation through the LSTM"),
    "book/06_lstm_in_practice": ("ch-lstm-in-practice", "6. LSTMs in practice"),
    "book/07_language_model": ("ch-language-model", "7. An LSTM that writes: a character language model"),
    "book/instructor_guide": ("instructor-guide", "Instructor guide"),
}
HEADER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""


# The two editions: the prefix of their pages' paths in the built site, and their table of contents.
EDITIONS = {"en": ("", ROOT / "_toc.yml"), "zh": ("zh/", ROOT / "book" / "zh" / "_toc.yml")}


def toc_pages(toc_file: Path = ROOT / "_toc.yml") -> list[str]:
    """Every page of a table of contents, root first, as paths without extension relative to the root."""
    toc = yaml.safe_load(toc_file.read_text())
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


@dataclass
class Build:
    command: str
    returncode: int
    problems: list[str]  # the log's warning and error lines, to show when the build fails
    log: str
    html: Path
    placeholders: set[str] = field(default_factory=set)  # pages left out of a partial build
    mplbackend: str | None = None  # MPLBACKEND in the environment the build was started with
    # the Chinese edition, built from book/zh at the same time into html/zh: its command, exit code,
    # problems and log, as above
    zh_command: str = ""
    zh_returncode: int = 0
    zh_problems: list[str] = field(default_factory=list)
    zh_log: str = ""

    def to_json(self) -> str:
        return json.dumps(dict(self.__dict__, html=str(self.html), placeholders=sorted(self.placeholders)))

    @classmethod
    def from_json(cls, text: str) -> "Build":
        data = json.loads(text)
        return cls(**dict(data, html=Path(data["html"]), placeholders=set(data["placeholders"])))

    def check(self) -> None:
        # The exit code is the verdict: -W turns every Sphinx warning into a failure, and
        # raise_on_error a failing cell. The log also carries the kernels' own stderr (ipykernel
        # sometimes logs a traceback while shutting down), which is not the book's business.
        assert self.returncode == 0, (
            f"`{self.command}` exited {self.returncode}; warnings and errors:\n" + "\n".join(self.problems)
            + f"\n--- end of the log ---\n{self.log[-3000:]}"
        )
        assert self.zh_returncode == 0, (
            f"the Chinese edition, `{self.zh_command}`, exited {self.zh_returncode}; warnings and errors:\n"
            + "\n".join(self.zh_problems) + f"\n--- end of the log ---\n{self.zh_log[-3000:]}"
        )

    def left_out(self, page: str) -> bool:
        """Whether a partial build left the page out (a Chinese page with its English one)."""
        return page in self.placeholders or page.replace("zh/", "book/", 1) in self.placeholders

    def pages(self, edition: str | None = None) -> list[str]:
        """The pages of one edition ("en", "zh") or of both, as paths in the site without .html."""
        pages = []
        for name, (prefix, toc) in EDITIONS.items():
            if edition in (None, name):
                pages += [prefix + page for page in toc_pages(toc)]
        return [page for page in pages if not self.left_out(page)]

    def page(self, page: str) -> str:
        """The built HTML of a page ("book/03_vanishing_exploding", or "zh/03_vanishing_exploding" for
        the Chinese edition); skips if a partial build left it out."""
        self.check()
        if self.left_out(page):
            pytest.skip(f"{page} is not in BOOK_PAGES")
        path = self.html / f"{page}.html"
        assert path.is_file(), f"{page}.html is missing from the built book"
        return path.read_text()


def _partial_source(dest: Path, pages: list[str]) -> tuple[Path, set[str]]:
    """A copy of the book in dest where only `pages` (and the index and references) are real."""
    unknown = set(pages) - set(PLAN)
    assert not unknown, f"BOOK_PAGES names pages that are not in the plan: {sorted(unknown)}"
    src = dest / "src"
    shutil.copytree(ROOT / "book", src / "book")
    shutil.copytree(ROOT / "exercises", src / "exercises")  # the chapters' download links
    shutil.copytree(ROOT / "data", src / "data")  # the corpus chapter 7 reads
    shutil.copy(ROOT / "references.bib", src / "references.bib")
    placeholders = set()
    for page, (label, title) in PLAN.items():
        if page not in pages:
            for path in (src / f"{page}.md", src / "book" / "zh" / f"{Path(page).name}.md"):
                path.write_text(f"{HEADER}\n({label})=\n# {title}\n\nLeft out of this build.\n")
            placeholders.add(page)
    chapters = [{"file": p} for p in PLAN if p != "book/instructor_guide"]
    toc = {"format": "jb-book", "root": "book/index", "parts": [
        {"caption": "Chapters", "chapters": chapters},
        {"caption": "For instructors", "chapters": [{"file": "book/instructor_guide"}]},
        {"caption": "Back matter", "chapters": [{"file": "book/glossary"}, {"file": "book/references"}]},
    ]}
    (src / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    return src, placeholders


def _config_copy(config_file: Path, dest: Path) -> Path:
    """A copy of a book's _config.yml in dest that executes every page afresh; returns its path.

    Neither the committed _config.yml nor the execution cache in _build is touched.
    """
    config = yaml.safe_load(config_file.read_text())
    assert config["execute"]["execute_notebooks"] == "cache"
    config["execute"]["execute_notebooks"] = "force"
    # the copy lives in dest: its local extensions are where the original says
    local = config.get("sphinx", {}).get("local_extensions")
    if local:
        config["sphinx"]["local_extensions"] = {name: str((config_file.parent / path).resolve())
                                                for name, path in local.items()}
    dest.write_text(yaml.safe_dump(config, sort_keys=False))
    return dest


def _problems(log: str) -> list[str]:
    return [line for line in log.splitlines()
            if re.search(r"WARNING|ERROR|Error|Exception", line) and "[IPKernelApp]" not in line]


def build_book(tmp: Path) -> Build:
    """Build both editions as `make book` does (-W -n --keep-going), executing every page, into tmp.

    The English edition is built from the root into tmp/_build/html, the Chinese one from book/zh
    at the same time into tmp/zh and then copied to tmp/_build/html/zh, where `make book` puts it.
    """
    pages = [p.strip() for p in os.environ.get("BOOK_PAGES", "").split(",") if p.strip()]
    if pages:
        source, placeholders = _partial_source(tmp, pages)
    else:
        source, placeholders = ROOT, set()
    jupyter_book = str(Path(sys.executable).parent / "jupyter-book")
    en_config = _config_copy(ROOT / "_config.yml", tmp / "_config.yml")
    zh_source = source / "book" / "zh"
    zh_config = _config_copy(ROOT / "book" / "zh" / "_config.yml", tmp / "zh_config.yml")
    commands = {
        "en": ([jupyter_book, "build", str(source), "-W", "-n", "--keep-going", "--config", str(en_config),
                "--toc", str(source / "_toc.yml"), "--path-output", str(tmp)], source),
        "zh": ([jupyter_book, "build", str(zh_source), "-W", "-n", "--keep-going", "--config", str(zh_config),
                "--toc", str(zh_source / "_toc.yml"), "--path-output", str(tmp / "zh")], zh_source),
    }
    env = dict(os.environ, MPLBACKEND=CALLER_MPLBACKEND)
    logs = {name: open(tmp / f"{name}.log", "w+") for name in commands}
    running = {name: subprocess.Popen(cmd, cwd=cwd, env=env, stdout=logs[name], stderr=subprocess.STDOUT, text=True)
               for name, (cmd, cwd) in commands.items()}
    codes = {name: process.wait(timeout=2400) for name, process in running.items()}
    text = {}
    for name, handle in logs.items():
        handle.seek(0)
        text[name] = handle.read()
        handle.close()
    html = tmp / "_build" / "html"
    zh_html = tmp / "zh" / "_build" / "html"
    if zh_html.is_dir() and html.is_dir():
        shutil.copytree(zh_html, html / "zh", dirs_exist_ok=True)
    show = lambda name: f"MPLBACKEND={CALLER_MPLBACKEND} {' '.join(commands[name][0])}"  # noqa: E731
    return Build(show("en"), codes["en"], _problems(text["en"]), text["en"], html, placeholders, env["MPLBACKEND"],
                 show("zh"), codes["zh"], _problems(text["zh"]), text["zh"])


if __name__ == "__main__":  # the background build a parallel test session starts (see conftest.py)
    out = Path(sys.argv[1])
    try:
        built = build_book(out)
    except BaseException as exc:
        (out / "failed.txt").write_text(f"{type(exc).__name__}: {exc}")
        raise
    (out / "build.tmp").write_text(built.to_json())
    os.replace(out / "build.tmp", out / "build.json")
