"""The built book in a real browser: headless Chromium (Debian's chromium and chromium-driver),
driven by Selenium, reads every page as a reader would, served over HTTP from localhost.

Every page loads without console errors, its equations are typeset (no TeX source left in the
visible text), every image has loaded with a non-zero size, and at phone width nothing makes the
page scroll sideways. The search page finds "forget gate". A screenshot of every page, at
desktop and at phone width, is saved in _build/screenshots/ to look at.
"""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import threading
import time
from pathlib import Path

import pytest

from book_build import ROOT, toc_pages

pytestmark = pytest.mark.slow
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SHOTS = ROOT / "_build" / "screenshots"
RAW_TEX = re.compile(r"\$\$|\\\(|\\\[|\\frac|\\begin\{|\\mathbf|\\odot")
PHONE, DESKTOP = (390, 844), (1280, 900)


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


def _pages(book) -> list[str]:
    return [page for page in toc_pages() if page not in book.placeholders]


def test_every_page_loads_cleanly_with_math_typeset_and_images_shown(book, site, browser):
    problems = []
    for page in _pages(book):
        _open(browser, f"{site}/{page}.html", DESKTOP)
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
        name = page.replace("/", "_")
        _screenshot(browser, f"{name}_desktop", DESKTOP[0])

        _open(browser, f"{site}/{page}.html", PHONE)
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        if overflow > 1:
            problems.append(f"{page}: at phone width ({PHONE[0]} px) the page scrolls sideways by {overflow} px")
        _screenshot(browser, f"{name}_phone", PHONE[0])
    assert not problems, "\n".join(problems)


def test_search_finds_the_forget_gate(book, site, browser):
    _open(browser, f"{site}/search.html?q=forget+gate", DESKTOP)
    deadline = time.monotonic() + 30
    links: list[str] = []
    while time.monotonic() < deadline:
        links = browser.execute_script(
            "return [...document.querySelectorAll('#search-results li a')].map(a => a.getAttribute('href'))")
        if links:
            break
        time.sleep(0.2)
    assert links, "searching for 'forget gate' found nothing"
    pages = {Path(link.split("#")[0].split("?")[0]).stem for link in links}
    expected = {"glossary"} | ({"04_lstm_forward"} if "book/04_lstm_forward" in _pages(book) else set())
    assert expected <= pages, f"searching for 'forget gate' should find {sorted(expected)}; found {sorted(pages)}"
