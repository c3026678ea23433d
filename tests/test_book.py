"""Build the book from the smoke runs and check it in a real headless browser (Debian's
Chromium driven by Selenium): every page loads, every image on it loads and has alt text, no
resource is fetched from outside the book, internal links resolve, the search page finds
pages, metric and model names, glued numbers read as text, no table is wider than its
column, every published table has a caption naming its source, and the claims ledger's CSV
downloads with every reported number and claim."""

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

ROOT = Path(__file__).resolve().parent.parent
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
                 "book/reference/index", "book/teaching/index", "book/holds"):
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
    # the book's own stylesheet and the ledger's filter script are served from the book
    assert (html / "_static" / "compendium.css").is_file()
    assert (html / "_static" / "ledger.js").is_file()
    # every paper chapter: the ledger summary at the top, "Re-run this" with a download of
    # the executed notebook at the end
    for paper in ("paper_a", "paper_b", "paper_c", "paper_d", "paper_e"):
        text = (html / "book" / "papers" / f"{paper}.html").read_text()
        assert "What holds, at a glance" in text, paper
        assert text.index("What holds, at a glance") < text.index('id="re-run-this"'), paper
        assert re.search(rf'href="[^"]*_downloads/[0-9a-f]+/{paper}\.ipynb"', text), paper


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
    driver.set_window_size(1280, 900)  # a laptop screen: the text column is narrower than it
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


_NO_ALT = """
return Array.from(document.images)
  .filter(img => { const a = (img.getAttribute('alt') || '').trim();
                   return !a || /\\.(png|svg|jpe?g|gif)$/i.test(a); })
  .map(img => img.getAttribute('src'));
"""

# A measured-looking number in a code element (what a glued value looked like before: a
# decimal, a number with separators or a percentage, or an interval; a lone integer in code
# is usually a hand-written code value such as a label `1`), and the font of glued values.
_CODE_NUMBERS = """
return Array.from(document.querySelectorAll('article code'))
  .map(c => c.textContent.trim())
  .filter(t => /^[-+\u2212]?[0-9]*[.,][0-9]+%?$/.test(t) || /^[-+\u2212]?[0-9]+%$/.test(t)
               || /^\\[[-+0-9., ]+\\]$/.test(t));
"""
_GLUED_FONTS = """
return Array.from(document.querySelectorAll('span.glued-value')).map(s =>
  [getComputedStyle(s).fontFamily === getComputedStyle(s.parentElement).fontFamily,
   getComputedStyle(s).fontWeight === getComputedStyle(s.parentElement).fontWeight]);
"""

# A compendium table (a notebook's published table) without a caption, or whose caption does
# not name the source of its numbers (Results.table's source line): its first header.
_UNCAPTIONED_TABLES = """
return Array.from(document.querySelectorAll('table.compendium-table'))
  .filter(t => { const c = t.querySelector(':scope > caption');
                 const s = c && c.querySelector('.compendium-table-source');
                 return !c || !c.textContent.trim() || !s || !s.textContent.trim(); })
  .map(t => (t.querySelector('th') || t).textContent.trim().slice(0, 40));
"""

# Each table's visible box (its nearest horizontally scrolling box, or itself) against the
# article's text column.
_WIDE_TABLES = """
const article = document.querySelector('article.bd-article') || document.querySelector('main');
if (!article) return [];
const col = article.getBoundingClientRect();
const out = [];
for (const t of article.querySelectorAll('table')) {
  let box = t;
  for (let el = t; el && el !== article; el = el.parentElement) {
    const ox = getComputedStyle(el).overflowX;
    if (ox === 'auto' || ox === 'scroll' || ox === 'hidden') { box = el; break; }
  }
  const r = box.getBoundingClientRect();
  if (r.width > 0 && (r.right > col.right + 1 || r.width > col.width + 1)) {
    out.push((t.querySelector('th') || t).textContent.trim().slice(0, 40) + ': ' +
             Math.round(r.width) + ' px in a ' + Math.round(col.width) + ' px column');
  }
}
return out;
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
        problems += [f"{url}: image without alt text {src}"
                     for src in driver.execute_script(_NO_ALT)]
        problems += [f"{url}: glued number shown as code {t!r}"
                     for t in driver.execute_script(_CODE_NUMBERS)]
        problems += [f"{url}: a glued value's font differs from its sentence's"
                     for same in driver.execute_script(_GLUED_FONTS) if not all(same)]
        problems += [f"{url}: table wider than its column: {w}"
                     for w in driver.execute_script(_WIDE_TABLES)]
        problems += [f"{url}: table without a caption naming its source: {h}"
                     for h in driver.execute_script(_UNCAPTIONED_TABLES)]
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


@pytest.mark.slow
def test_glued_numbers_and_tables_on_a_paper_page(built_book, browser):
    """The checks above would pass on a page with no glued number and no table: a paper
    chapter has both, as text and as styled, captionless-index tables."""
    driver, base = browser
    for paper in ("paper_a", "paper_b", "paper_c", "paper_d", "paper_e"):
        # every inline {glue} role of the chapter (all paste values) reads as text
        n_roles = (ROOT / "book" / "papers" / f"{paper}.md").read_text().count("{glue}`")
        driver.get(urljoin(base, f"book/papers/{paper}.html"))
        n_glued = driver.execute_script(
            "return document.querySelectorAll('article span.glued-value').length")
        assert n_glued == n_roles > 0, (paper, n_glued, n_roles)
    driver.get(urljoin(base, "book/papers/paper_c.html"))
    headers = driver.execute_script(
        "return Array.from(document.querySelectorAll('table.compendium-table th'))"
        ".map(t => t.textContent)")
    assert headers, "the glued tables are compendium tables"
    assert "" not in headers  # no unnamed index column
    assert not [h for h in headers if re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)+", h)], headers
    # the book is built from smoke runs: a table of this run's numbers says they are synthetic
    sources = driver.execute_script(
        "return Array.from(document.querySelectorAll('table.compendium-table caption "
        ".compendium-table-source')).map(s => s.textContent)")
    assert any("synthetic world, not real patients (profile smoke" in s for s in sources), \
        sources


@pytest.mark.slow
def test_ledger_csv_downloads_with_every_number_and_claim(built_book, browser):
    from compendium.papers.claims import load_claims
    from compendium.papers.ledger import PAPERS
    from compendium.papers.reported import load_reported

    driver, base = browser
    driver.get(urljoin(base, "book/holds.html"))
    links = [a.get_attribute("href") for a in driver.find_elements("css selector", "a")
             if (a.get_attribute("href") or "").endswith("ledger.csv")]
    assert links, "the ledger page links its CSV"
    driver.set_script_timeout(30)
    status, text = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0]).then(r => r.text().then(t => done([r.status, t])))"
        ".catch(e => done([0, String(e)]));", links[0])
    assert status == 200, text[:200]
    import io

    import pandas as pd

    ledger = pd.read_csv(io.StringIO(text), keep_default_na=False)
    have = set(zip(ledger["paper"], ledger["kind"], ledger["id"]))
    missing = []
    for paper in PAPERS:
        letter = paper[-1].upper()
        missing += [f"{paper} number {i}" for i in load_reported(paper)["id"]
                    if (letter, "number", i) not in have]
        missing += [f"{paper} claim {c.id}" for c in load_claims(paper)
                    if (letter, "claim", c.id) not in have]
    assert not missing, missing[:10]
    # the page's filters narrow the table to one paper
    n_all = driver.execute_script("return document.querySelectorAll("
                                  "'div.ledger-table tbody tr').length")
    assert n_all == len(ledger)
    shown = driver.execute_script(
        "const s = document.querySelector('div.ledger-table select');"
        "s.value = 'C'; s.dispatchEvent(new Event('change'));"
        "return Array.from(document.querySelectorAll('div.ledger-table tbody tr'))"
        ".filter(r => r.style.display !== 'none').length;")
    assert shown == int((ledger["paper"] == "C").sum())


@pytest.mark.slow
@pytest.mark.parametrize("term, page", [("AUROC", "holds"), ("MedImageInsight", "holds"),
                                        ("EqOdds", "holds"), ("underdiagnosis", "")])
def test_search_finds_metric_and_model_names(browser, term, page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver, base = browser
    driver.get(urljoin(base, f"search.html?q={term}"))
    # results are appended one by one; the summary appears when the search has finished
    WebDriverWait(driver, 60).until(lambda d: "finished" in d.execute_script(
        "const s = document.querySelector('#search-results .search-summary');"
        "return s ? s.textContent : '';"))
    links = [a.get_attribute("href") for a in
             driver.find_elements(By.CSS_SELECTOR, "#search-results li a")]
    assert any(page in href for href in links), (term, links)


def _solution_sentences() -> dict[str, list[str]]:
    """Per teaching page, the first line of text of every solution block (the student build
    must not contain it)."""
    found: dict[str, list[str]] = {}
    for md in sorted((ROOT / "book" / "teaching").glob("*.md")):
        text = md.read_text()
        for block in re.findall(r"```\{solution\}[^\n]*\n(.*?)```", text, flags=re.S):
            lines = [ln.strip() for ln in block.splitlines()
                     if ln.strip() and not ln.strip().startswith(":")]
            if lines:
                # a stretch of plain words (markup such as `code` renders differently)
                words = re.findall(r"[A-Za-z][A-Za-z ,;]{24,}", lines[0])
                if words:
                    found.setdefault(md.stem, []).append(max(words, key=len).strip())
    return found


@pytest.mark.slow
def test_student_build_shows_no_solution_text(built_book, browser):
    """The default build is the students' edition: the exercises are there, their solutions
    are not, in the HTML or on the rendered page (``compendium book --solutions`` builds the
    teacher's; test_teaching.py checks that one on a small book)."""
    driver, base = browser
    sentences = _solution_sentences()
    assert sum(map(len, sentences.values())) >= 7, sentences
    for page, texts in sentences.items():
        html = (built_book / "book" / "teaching" / f"{page}.html").read_text()
        assert "exercise" in html, page
        driver.get(urljoin(base, f"book/teaching/{page}.html"))
        shown = driver.execute_script("return document.body.innerText")
        for sentence in texts:
            assert sentence not in html and sentence not in shown, (page, sentence)
    assert not list(built_book.rglob("_sources"))
