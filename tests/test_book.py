"""Build the book from the smoke runs and check it in a real headless browser (Debian's
Chromium driven by Selenium): every page loads, every image on it loads, no resource is
fetched from outside the book, internal links resolve, and the search page finds pages."""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import pytest

from compendium.book import book_notebooks, build_book

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def built_book(smoke_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    index = build_book("smoke", out=out)
    return index.parent


@pytest.mark.slow
def test_book_builds_with_every_chapter(built_book):
    html = built_book
    assert (html / "index.html").is_file()
    for page in ("book/guide/rerun", "book/guide/profiles", "book/papers/paper_a",
                 "book/reference/index", "book/teaching/index"):
        assert (html / f"{page}.html").is_file(), page
    for name in book_notebooks():
        page = html / "book" / "generated" / f"{name}.html"
        assert page.is_file(), name
        assert "synthetic world" in page.read_text() or "Profile `full`" in page.read_text()
    # no Sphinx warning: every glue key and cross-reference resolved
    warnings = (html.parent / "warnings.txt").read_text().splitlines()
    assert not warnings, warnings[:10]
    # MathJax is served from the book itself, not from a CDN
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()


def _pages(html: Path) -> list[Path]:
    skip = {"_static", "_sources", "_images"}
    return sorted(p for p in html.rglob("*.html") if not skip & set(p.relative_to(html).parts))


@pytest.mark.slow
def test_internal_links_resolve(built_book):
    broken = []
    for page in _pages(built_book):
        for href in re.findall(r'(?:href|src)="([^"#?]+)', page.read_text()):
            if urlparse(href).scheme or href.startswith(("mailto:", "//")):
                continue
            target = (page.parent / unquote(href)).resolve()
            if not target.exists():
                broken.append(f"{page.relative_to(built_book)} -> {href}")
    assert not broken, broken[:10]


@pytest.fixture(scope="module")
def browser(built_book, tmp_path_factory):
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("CI"):
            pytest.fail("chromium/chromedriver missing: `make test` installs them (make browser)")
        pytest.skip("chromium and chromedriver are not installed; run `make browser`")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    handler = functools.partial(_QuietHandler, directory=str(built_book))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                f"--user-data-dir={tmp_path_factory.mktemp('chrome')}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        driver.quit()
        server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


_BROKEN_IMAGES = """
return Array.from(document.images)
  .filter(img => !(img.complete && img.naturalWidth > 0))
  .map(img => img.currentSrc || img.src);
"""


@pytest.mark.slow
def test_every_page_and_image_loads_in_chromium(built_book, browser):
    from selenium.webdriver.support.ui import WebDriverWait

    driver, base = browser
    problems = []
    pages = _pages(built_book)
    assert len(pages) >= 8
    n_images = 0
    for page in pages:
        url = urljoin(base, page.relative_to(built_book).as_posix())
        driver.get(url)
        WebDriverWait(driver, 30).until(
            lambda d: d.execute_script("return document.readyState") == "complete")
        if "404" in driver.title:
            problems.append(f"{url}: 404")
        broken = driver.execute_script(_BROKEN_IMAGES)
        n_images += driver.execute_script("return document.images.length")
        problems += [f"{url}: image failed {src}" for src in broken]
        for entry in driver.get_log("browser"):
            msg = entry.get("message", "")
            if entry.get("level") == "SEVERE" and "favicon" not in msg:
                problems.append(f"{url}: {msg[:200]}")
    assert not problems, problems[:10]
    if book_notebooks():
        assert n_images > 0, "the executed notebooks should show figures"


@pytest.mark.slow
def test_search_page_finds_pages(browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver, base = browser
    driver.get(urljoin(base, "search.html?q=profile"))
    WebDriverWait(driver, 30).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#search-results li")) > 0)
    links = [a.get_attribute("href") for a in
             driver.find_elements(By.CSS_SELECTOR, "#search-results li a")]
    assert any("profiles" in href for href in links), links
