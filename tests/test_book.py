"""The book: every page in the table of contents is a MyST notebook, and the whole book builds
as `make book` builds it, with warnings as errors and every page executed afresh."""

from __future__ import annotations

import os
import re

import pytest
import yaml

import chapter_pages
from book_build import PLAN, ROOT, toc_pages

BIB_KEYS = ("hochreiter1997lstm", "gers2000forget", "bengio1994difficult", "pascanu2013difficulty", "werbos1990bptt")


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


def test_chapters_follow_the_plan_in_order_and_open_with_their_labels():
    pages = toc_pages()
    planned = [p for p in pages if p in PLAN]
    assert planned == [p for p in PLAN if p in planned], f"the chapters in _toc.yml are out of order: {planned}"
    written = sorted(str(p.relative_to(ROOT).with_suffix("")) for p in (ROOT / "book").glob("*.md"))
    missing = [p for p in written if p not in pages]
    assert not missing, f"pages in book/ that _toc.yml does not list (so the book never shows them): {missing}"
    for page in planned:
        label, title = PLAN[page]
        text = (ROOT / f"{page}.md").read_text()
        assert re.search(rf"^\({re.escape(label)}\)=\n# {re.escape(title)}", text, flags=re.MULTILINE), (
            f"{page}.md should open with the label ({label})= and the heading '# {title}'"
        )


CHAPTERS = [page for page in PLAN if page[5:7].isdigit() and (ROOT / f"{page}.md").is_file()]


@pytest.mark.parametrize("page", CHAPTERS)
def test_chapter_is_sized_for_a_course_roughly_1500_to_4000_words(page):
    # one chapter is a week's reading: long enough to derive and measure, short enough to read in a sitting
    words = len(re.findall(r"\S+", chapter_pages.prose((ROOT / f"{page}.md").read_text())))
    assert 1400 <= words <= 4000, f"{page} has {words} words of prose outside code and display math"


@pytest.mark.parametrize("page", CHAPTERS)
def test_every_figure_cell_has_a_caption_a_name_and_alt_text(page):
    names = []
    for meta, _ in chapter_pages.code_cells((ROOT / f"{page}.md").read_text()):
        mystnb = meta.get("mystnb", {})
        if "figure" in mystnb:
            figure, image = mystnb["figure"], mystnb.get("image", {})
            assert figure.get("caption", "").strip(), f"{page}: a figure has no caption"
            assert figure.get("name", "").startswith("fig-"), f"{page}: figure {figure.get('name')!r} needs a name fig-..."
            assert len(image.get("alt", "").split()) >= 5, f"{page}: figure {figure['name']} needs alt text (image: alt:)"
            names.append(figure["name"])
    assert names, f"{page} has no figure drawn by code"
    assert len(set(names)) == len(names), f"{page}: a figure name is used twice: {names}"


@pytest.mark.parametrize("page", CHAPTERS)
def test_equation_labels_carry_the_chapter_prefix_and_every_reference_resolves(page):
    source = (ROOT / f"{page}.md").read_text()
    prefix = f"ch{int(page[5:7])}-"
    labels = chapter_pages.equation_labels(source)
    assert all(label.startswith(prefix) for label in labels), f"{page}: equation labels must start with {prefix}: {labels}"
    assert len(set(labels)) == len(labels), f"{page}: an equation label is used twice: {labels}"
    unresolved = set(re.findall(r"\{eq\}`([^`]+)`", source)) - set(labels)
    assert not unresolved, f"{page}: {{eq}} references to equations the page does not define: {unresolved}"


@pytest.mark.slow
@pytest.mark.parametrize("page", CHAPTERS)
def test_every_figure_renders_as_an_image_with_its_alt_text_and_citations_link_the_bibliography(book, page):
    source = (ROOT / f"{page}.md").read_text()
    built = book.page(page)
    for meta, _ in chapter_pages.code_cells(source):
        mystnb = meta.get("mystnb", {})
        if "figure" in mystnb:
            name = mystnb["figure"]["name"]
            figure = re.search(rf'<figure[^>]*id="{name}".*?</figure>', built, flags=re.DOTALL)
            assert figure, f"{page}: the built page has no figure {name}"
            img = re.search(r"<img[^>]*>", figure.group(0))
            assert img and re.search(r'src="[^"]+\.png"', img.group(0)), f"{page}: figure {name} has no rendered image"
            alt = re.search(r'alt="([^"]*)"', img.group(0))
            assert alt and len(alt.group(1).split()) >= 5, f"{page}: figure {name} is rendered without its alt text"
    if "{cite:" in source:
        assert 'href="references.html#' in built, f"{page}: the citations do not link to the bibliography"


def test_kernels_get_the_inline_backend_one_thread_and_unix_sockets_whatever_the_caller_set(monkeypatch):
    """book/_ext/kernel_environment.py, loaded by every build, sets what the executing kernels inherit."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("kernel_environment", ROOT / "book" / "_ext" / "kernel_environment.py")
    extension = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(extension)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.delenv("JUPYTER_DEFAULT_PROVISIONER_NAME", raising=False)
    from jupyter_client.provisioning.factory import KernelProvisionerFactory

    factory = KernelProvisionerFactory.instance()  # one that read its default before the build
    monkeypatch.setattr(factory, "default_provisioner_name", "local-provisioner")
    handlers = []

    class App:
        def connect(self, event, handler):
            handlers.append((event, handler))

    extension.setup(App())
    assert "MPLBACKEND" not in os.environ, "a kernel that inherits MPLBACKEND=Agg draws no figure"
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        assert os.environ.get(name) == "1", f"{name} must be 1 for the kernels, so every machine prints the same numbers"
    assert os.environ.get("JUPYTER_DEFAULT_PROVISIONER_NAME") == "long-memory-ipc", \
        "the build's kernels must be on Unix sockets (course_grader/unix_kernels.py), not TCP ports"
    assert factory.default_provisioner_name == "long-memory-ipc", "a factory already made must be switched too"
    [(event, restore)] = handlers
    assert event == "build-finished"
    restore(None, None)
    assert os.environ.get("MPLBACKEND") == "Agg" and os.environ.get("OMP_NUM_THREADS") == "2"
    assert "OPENBLAS_NUM_THREADS" not in os.environ, "the caller's environment must be put back as it was"
    assert "JUPYTER_DEFAULT_PROVISIONER_NAME" not in os.environ
    assert factory.default_provisioner_name == "local-provisioner", "the factory's default must be put back too"


def test_figure_numbers_restart_in_every_chapter_and_carry_its_number():
    """book/_ext/chapter_figure_numbers.py turns Sphinx's book-wide figure numbers into (chapter, k)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("chapter_figure_numbers", ROOT / "book" / "_ext" / "chapter_figure_numbers.py")
    extension = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(extension)
    numbers = {  # as Sphinx numbers them: one sequence through the book
        "book/00_how_to_use": {"figure": {"fig-a": (1,)}},
        "book/04_lstm_forward": {"figure": {"fig-c": (11,), "fig-b": (10,), "fig-d": (12,)}, "table": {"t": (1,)}},
        "book/glossary": {"figure": {"fig-g": (13,)}},
        "book/index": {},
    }
    changed = extension.renumber(numbers)
    assert numbers["book/00_how_to_use"]["figure"] == {"fig-a": (0, 1)}, "chapter 0's figures are 0.1, 0.2, ..."
    assert numbers["book/04_lstm_forward"]["figure"] == {"fig-b": (4, 1), "fig-c": (4, 2), "fig-d": (4, 3)}, (
        "chapter 4's figures must be 4.1, 4.2, 4.3 in the order Sphinx met them on the page")
    assert numbers["book/04_lstm_forward"]["table"] == {"t": (1,)}, "only figures are renumbered"
    assert numbers["book/glossary"]["figure"] == {"fig-g": (13,)}, "a page without a chapter number keeps its number"
    assert sorted(changed) == ["book/00_how_to_use", "book/04_lstm_forward"]
    assert extension.renumber(numbers) == [], "renumbering twice changes nothing"


@pytest.mark.slow
def test_figures_are_drawn_whatever_matplotlib_backend_the_caller_has_set(book):
    """The session's build ran with MPLBACKEND=Agg in its environment (book_build.py): kernels that
    inherit it draw nothing, and every reference to a figure is then undefined. The book's own
    extension, book/_ext/kernel_environment.py, gives the kernels Jupyter's inline backend instead."""
    assert book.mplbackend == "Agg", "book_build.py should start the build with MPLBACKEND=Agg in its environment"
    lost = [line for line in book.problems if "undefined label: 'fig-" in line]
    assert not lost, ("with MPLBACKEND=Agg in the caller's environment the figures were not drawn: the kernels must "
                      "get the inline backend (book/_ext/kernel_environment.py, enabled in _config.yml)\n" + "\n".join(lost))
    built = [page for page in CHAPTERS if page not in book.placeholders]
    assert built, "the build left out every chapter"
    for page in built:
        cells = chapter_pages.code_cells((ROOT / f"{page}.md").read_text())
        names = [meta["mystnb"]["figure"]["name"] for meta, _ in cells if "figure" in meta.get("mystnb", {})]
        html = (book.html / f"{page}.html").read_text()
        drawn = [name for name in names if re.search(
            rf'<figure[^>]*id="{name}"[^>]*>(?:(?!</figure>).)*<img[^>]*src="[^"]+\.png"', html, flags=re.DOTALL)]
        assert drawn == names, f"{page}: with MPLBACKEND=Agg set, only {drawn} of the figures {names} were drawn"


@pytest.mark.slow
def test_book_builds_warning_free_with_every_page(book):
    book.check()
    for page in toc_pages():
        assert (book.html / f"{page}.html").is_file(), f"{page}.html is missing from the built book"
    assert (book.html / "search.html").is_file(), "the search page is missing"


@pytest.mark.slow
def test_repository_issues_launch_and_download_buttons_come_from_the_one_repository_url(book):
    chapter = book.page("book/00_how_to_use")
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].rstrip("/")
    org_repo = repo.removeprefix("https://github.com/")
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
    chapter = book.page("book/00_how_to_use")
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
