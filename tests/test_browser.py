"""The built book in a real browser: headless Chromium (Debian's chromium and chromium-driver),
driven by Selenium, reads every page of both editions as a reader would, served over HTTP from
localhost.

Every page loads without console errors, its equations are typeset (no TeX source left in the
visible text), every image has loaded with a non-zero size, at phone width nothing makes the
page scroll sideways, and its link to the other edition opens the same page there. The English
search finds "forget gate", the Chinese one 遗忘门. A screenshot of every page, at desktop and at
phone width, is saved in _build/screenshots/ to look at (the Chinese ones as zh_*.png).

Every page, the search page included, passes axe-core's checks of WCAG 2.1 levels A and AA,
except the violations listed, each with its reason, in tests/accessibility_exceptions.yml; a
listed exception that no longer occurs fails the test too, so the list never goes stale.
"""

from __future__ import annotations

import fnmatch
import functools
import http.server
import importlib.resources
import re
import shutil
import threading
import time
from pathlib import Path

import pytest
import yaml

from book_build import EDITIONS, ROOT

pytestmark = pytest.mark.slow
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SHOTS = ROOT / "_build" / "screenshots"
RAW_TEX = re.compile(r"\$\$|\\\(|\\\[|\\frac|\\begin\{|\\mathbf|\\odot")
PHONE, DESKTOP = (390, 844), (1280, 900)
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]  # WCAG 2.0 and 2.1, levels A and AA
EXCEPTIONS = ROOT / "tests" / "accessibility_exceptions.yml"


@pytest.fixture(scope="module")
def site(book):
    """The built HTML served on a free localhost port; yields the base URL."""
    book.check()
    handler = functools.partial(_QuietHandler, directory=str(book.html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the test reports what matters
        pass


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail("headless Chromium is needed: install Debian's chromium and chromium-driver (.ci/run does)")
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


def _open(driver, url: str, size: tuple[int, int]) -> None:
    driver.set_window_size(*size)
    driver.get(url)
    # MathJax typesets after the load event; its startup promise resolves when it is done.
    driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "if (window.MathJax && MathJax.startup && MathJax.startup.promise)"
        "  MathJax.startup.promise.then(() => done(true), () => done(false)); else done(null);"
    )


def _screenshot(driver, name: str, width: int) -> None:
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(max(height, 600), 16000))
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def _pages(book, edition: str) -> list[str]:
    return book.pages(edition)


def _twin(page: str) -> str:
    """The same page in the other edition."""
    return page.replace("zh/", "book/", 1) if page.startswith("zh/") else "zh/" + page.removeprefix("book/")


@pytest.mark.parametrize("edition", EDITIONS)
def test_every_page_loads_cleanly_with_math_typeset_and_images_shown(book, site, browser, edition):
    problems = []
    # A fresh browser's first page of the site logs the theme's "Got invalid theme mode" while it
    # stores its first mode choice: open one page first, so every page is read as a returning reader's.
    _open(browser, f"{site}/{_pages(book, edition)[0]}.html", DESKTOP)
    for page in _pages(book, edition):
        browser.get_log("browser")  # drop what the previous page logged
        _open(browser, f"{site}/{page}.html", DESKTOP)
        errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        problems += [f"{page}: console error: {m}" for m in errors]
        text = browser.execute_script("return document.querySelector('article').innerText")
        for match in RAW_TEX.finditer(text):
            problems.append(f"{page}: TeX source left in the text: ...{text[max(0, match.start() - 40):match.end() + 40]!r}...")
            break
        broken = browser.execute_script(
            "return [...document.querySelectorAll('article img')]"
            ".filter(i => !i.complete || i.naturalWidth === 0 || i.getBoundingClientRect().width === 0)"
            ".map(i => i.getAttribute('src'))")
        problems += [f"{page}: image not shown: {src}" for src in broken]
        lang = browser.execute_script("return document.documentElement.lang")
        if lang != {"en": "en", "zh": "zh-CN"}[edition]:
            problems.append(f"{page}: <html lang={lang!r}>")
        switch = browser.execute_script(
            "const a = document.querySelector('article a.edition-switch, a.edition-switch');"
            "return a ? a.href : null")
        if switch is None:
            problems.append(f"{page}: no link to the other edition")
        elif not switch.split("#")[0].endswith(f"/{_twin(page)}.html"):
            problems.append(f"{page}: the other edition's link goes to {switch}, not to {_twin(page)}.html")
        name = page.replace("/", "_")
        _screenshot(browser, f"{name}_desktop", DESKTOP[0])

        _open(browser, f"{site}/{page}.html", PHONE)
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        if overflow > 1:
            problems.append(f"{page}: at phone width ({PHONE[0]} px) the page scrolls sideways by {overflow} px")
        _screenshot(browser, f"{name}_phone", PHONE[0])
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("edition, query", [("en", "forget gate"), ("zh", "遗忘门")])
def test_search_finds_the_forget_gate(book, site, browser, edition, query):
    """Chinese is written without spaces: the Chinese search finds 遗忘门 because its index keeps the
    glossary's terms whole (book/_ext/glossary_data.py)."""
    from urllib.parse import quote_plus

    prefix = EDITIONS[edition][0]
    _open(browser, f"{site}/{prefix}search.html?q={quote_plus(query)}", DESKTOP)
    deadline = time.monotonic() + 30
    links: list[str] = []
    while time.monotonic() < deadline:
        links = browser.execute_script(
            "return [...document.querySelectorAll('#search-results li a')].map(a => a.getAttribute('href'))")
        if links:
            break
        time.sleep(0.2)
    assert links, f"searching for {query!r} found nothing"
    pages = {Path(link.split("#")[0].split("?")[0]).stem for link in links}
    chapter = ("book/" if edition == "en" else "zh/") + "04_lstm_forward"
    expected = {"glossary"} | ({"04_lstm_forward"} if chapter in _pages(book, edition) else set())
    assert expected <= pages, f"searching for {query!r} should find {sorted(expected)}; found {sorted(pages)}"


def _axe_source() -> str:
    # axe-core's script as the axe-playwright-python package ships it (the dev extra installs it);
    # only the script is used, injected into the page through Selenium.
    return (importlib.resources.files("axe_playwright_python") / "axe.min.js").read_text()


def _axe(driver, source: str, values: list[str], kind: str = "tag") -> dict:
    """axe-core's checks (rules with one of these tags, or these rules) of the page open in the driver."""
    driver.execute_script(source)
    driver.set_script_timeout(300)  # axe-core takes 30 s over a long chapter on a busy 2-core machine
    try:
        result = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {runOnly: {type: arguments[1], values: arguments[0]}, resultTypes: ['violations']})"
            "  .then(r => done({version: r.testEngine.version, violations: r.violations.map(v => ({"
            "    id: v.id, impact: v.impact, help: v.help,"
            "    nodes: v.nodes.map(n => ({target: n.target.flat(Infinity).join(' >> '), html: n.html,"
            "                              summary: n.failureSummary}))}))}),"
            "        e => done({error: String(e)}));",
            values, kind)
    finally:
        driver.set_script_timeout(60)
    assert "error" not in result, f"axe-core failed to run: {result['error']}"
    return result


def _exceptions() -> list[dict]:
    """The allowed violations: rule, pages (a glob over page names) and selector (a glob), with a reason."""
    listed = yaml.safe_load(EXCEPTIONS.read_text()) or []
    for entry in listed:
        assert {"rule", "pages", "selector", "reason"} <= set(entry), (
            f"{EXCEPTIONS.name}: every exception needs rule, pages, selector and reason: {entry}")
        assert len(entry["reason"].split()) >= 5, f"{EXCEPTIONS.name}: say why {entry['rule']} cannot be fixed: {entry}"
    return listed


def _allowed(entry: dict, page: str, rule: str, selector: str) -> bool:
    return (entry["rule"] == rule and fnmatch.fnmatchcase(page, entry["pages"])
            and fnmatch.fnmatchcase(selector, entry["selector"]))


@pytest.mark.parametrize("edition", EDITIONS)
def test_every_page_passes_axe_wcag21_a_and_aa_but_for_the_listed_exceptions(book, site, browser, edition):
    """All of WCAG 2.1 A and AA in the theme's light mode, and colour contrast again in its dark mode,
    which the theme shows to readers whose system asks for it. One test per edition, so the two run
    on two workers at once."""
    source, exceptions = _axe_source(), _exceptions()
    pages = _pages(book, edition) + [EDITIONS[edition][0] + "search"]
    used, problems, version = set(), [], None
    for page in pages:
        _open(browser, f"{site}/{page}.html", DESKTOP)
        results = [("light", _axe(browser, source, AXE_TAGS))]
        # The theme fades its colours when the mode changes; measured mid-fade, an element shows
        # neither mode's colours. Transitions are switched off first, so axe sees the dark mode.
        browser.execute_script("const s = document.createElement('style');"
                               "s.textContent = '*, *::before, *::after { transition: none !important; "
                               "animation: none !important; }';"
                               "document.head.appendChild(s);"
                               "document.documentElement.dataset.theme = 'dark';"
                               "document.documentElement.dataset.mode = 'dark';")
        results.append(("dark", _axe(browser, source, ["color-contrast"], kind="rule")))
        for mode, result in results:
            version = result["version"]
            for violation in result["violations"]:
                for node in violation["nodes"]:
                    matches = [i for i, entry in enumerate(exceptions)
                               if _allowed(entry, page, violation["id"], node["target"])]
                    used.update(matches)
                    if not matches:
                        summary = node["summary"].replace("\n", "\n      ")
                        problems.append(f"{page} ({mode} mode): {violation['id']} ({violation['impact']}): "
                                        f"{violation['help']}\n    node: {node['target']}\n"
                                        f"    html: {node['html'][:200]}\n      {summary}")
    for i, entry in enumerate(exceptions):
        # an exception is stale if none of the pages it covers shows it any more
        covered = [page for page in pages if fnmatch.fnmatchcase(page, entry["pages"])]
        if covered and i not in used:
            problems.append(f"{EXCEPTIONS.name}: the exception {entry['rule']} on {entry['pages']} at {entry['selector']!r} "
                            f"no longer occurs on {covered}: remove it")
    assert not problems, f"axe-core {version}, WCAG 2.1 A and AA ({len(problems)} problems):\n" + "\n".join(problems)
