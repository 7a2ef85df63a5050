"""Audit benchmark: publishing the public database, and the SQL console (DuckDB-WASM) against native DuckDB.

Usage (from the repository root, with the project's virtual environment; needs /usr/bin/chromium and npm):

    .venv/bin/python bench/audit.py                          # 10,000 leaves, 3 interleaved repeats
    .venv/bin/python bench/audit.py --leaves 2000 --repeat 5
    .venv/bin/python bench/audit.py --catalog build/catalog.duckdb   # an existing catalog instead

What it does:

1. Writes the synthetic taxonomy of bench/ingest.py, indexes it and runs the seed generator and the dataset
   build (not measured), unless --catalog is given.
2. publish: `registry.catalog.publish.publish` in its own process (wall, CPU, peak RSS from os.wait4), and the
   sizes of audit.duckdb and of the Parquet files; checks every file is byte-identical across the repeats; and
   a republish with the previous copy given (every table unchanged: Parquet linked, audit.duckdb rewritten).
3. console: the published folder served on 127.0.0.1 with the real console; per repeat a fresh browser context
   opens it (engine + database download until ready), then runs every canned query and a CASE-keyed variant of
   v_license_summary; each query also runs in native DuckDB (threads=1) on the same file, interleaved.
   Prints medians (min/max) and the WASM/native ratio per query.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import THREAD_ENV, run_child
from ingest import generate as write_taxonomy

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
TAXREG = [sys.executable, "-c", "from builder.cli import main; main()"]
SETTLED = "#taxreg-console[data-state=done], #taxreg-console[data-state=error]"
PAGE = ('<!doctype html><meta charset="utf-8"><link rel="stylesheet" href="../engine/console.css">'
        '<div id="taxreg-console"></div><script type="module" src="../engine/console.js"></script>')
# v_license_summary with the same meaning, its conditional LEFT JOINs keyed by CASE: DuckDB 1.4 (the browser
# engine) plans `ON l.parent_kind = 'chunk' AND d.doc_sha256 = l.doc_sha256` as a nested-loop join.
CASE_KEYED = """WITH sample_license AS (
    SELECT DISTINCT l.sample_id, coalesce(d.license_spdx, a.license_spdx) AS license_spdx
    FROM sample_lineage l
    JOIN sample s ON s.sample_id = l.sample_id AND s.kept
    LEFT JOIN source_document d ON d.doc_sha256 = CASE WHEN l.parent_kind = 'chunk' THEN l.doc_sha256 END
    LEFT JOIN contribution_attribution ca
           ON ca.contribution_id = CASE WHEN l.parent_kind = 'seed' THEN l.contribution_id END
          AND ca.version_id = l.version_id
    LEFT JOIN attribution a ON a.contribution_id = ca.contribution_id AND a.attribution_sha256 = ca.attribution_sha256
)
SELECT coalesce(license_spdx, 'UNKNOWN') AS license, count(DISTINCT sample_id)::INTEGER AS samples
FROM sample_license GROUP BY ALL ORDER BY samples DESC, license"""

_PUBLISH = """
import sys
from pathlib import Path
from registry.catalog.publish import publish
publish(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) > 3 else None)
"""


def median(values: list[float]) -> str:
    return f"{statistics.median(values):8.2f} ({min(values):.2f}-{max(values):.2f})"


def make_catalog(work: Path, leaves: int, seed: int) -> Path:
    taxonomy, catalog = work / "taxonomy", work / "catalog.duckdb"
    write_taxonomy(taxonomy, leaves, seed)
    env = {**os.environ, **THREAD_ENV}
    for args in (["index", str(taxonomy)], ["generate", str(taxonomy)],
                 ["dataset", "build", "--out", str(work / "datasets")]):
        subprocess.run([*TAXREG, *args, "--catalog", str(catalog)], cwd=REPO, env=env, check=True,
                       capture_output=True)
    return catalog


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leaves", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--catalog", type=Path)
    parser.add_argument("--out", type=Path, help="working folder (kept); default a temporary one")
    args = parser.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="bench-audit-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        catalog = args.catalog.resolve() if args.catalog else make_catalog(work, args.leaves, args.seed)
        run(catalog, work, args.repeat)
    finally:
        if args.out is None:
            shutil.rmtree(work, ignore_errors=True)


def run(catalog: Path, work: Path, repeat: int) -> None:
    import duckdb

    from builder.site.audit import canned_queries, write_audit

    env = {**os.environ, **THREAD_ENV}
    published, republished = [], []
    for i in range(repeat):
        sample = run_child([sys.executable, "-c", _PUBLISH, str(catalog), str(work / f"publish{i}")], REPO, env)
        assert sample.rc == 0, sample.output
        published.append(sample)
        again = run_child([sys.executable, "-c", _PUBLISH, str(catalog), str(work / f"republish{i}"),
                           str(work / f"publish{i}")], REPO, env)  # every table unchanged: its Parquet is linked
        assert again.rc == 0, again.output
        republished.append(again)
    first = {p.name: p.read_bytes() for p in sorted((work / "publish0").iterdir())}
    assert all({p.name: p.read_bytes() for p in sorted((work / f"publish{i}").iterdir())} == first
               for i in range(repeat)), "two publishes of the same catalog differ"
    site = work / "site"
    write_audit(catalog, site / "audit", cache_dir=REPO / "build" / "vendor")
    (site / "audit" / "console").mkdir(exist_ok=True)
    (site / "audit" / "console" / "index.html").write_text(PAGE, encoding="utf-8")
    db = site / "audit" / "audit.duckdb"
    parquet = sum(p.stat().st_size for p in (site / "audit").glob("*.parquet"))
    con = duckdb.connect(str(db), read_only=True)
    con.execute("SET threads = 1")
    queries = [(q.title, q.sql) for q in canned_queries(con)] + [("v_license_summary, CASE-keyed joins", CASE_KEYED)]
    counts = con.execute("SELECT count(*) FROM sample").fetchall()[0][0]
    print(f"catalog {catalog} ({counts:,} samples); {repeat} repeats, medians (min-max)")
    print(f"publish: wall {median([s.wall for s in published])} s, CPU {median([s.cpu for s in published])} s, "
          f"peak RSS {median([s.maxrss_mb for s in published])} MB; every file byte-identical across repeats")
    print(f"republish, Parquet of unchanged tables linked from the previous copy: wall "
          f"{median([s.wall for s in republished])} s, CPU {median([s.cpu for s in republished])} s")
    print(f"sizes: audit.duckdb {db.stat().st_size / 1e6:.1f} MB, Parquet (zstd) {parquet / 1e6:.1f} MB")
    opened, wasm, native = browse(site, queries, repeat, con)
    print(f"console ready (engine + database download, fresh context): {median(opened)} s")
    print(f"{'query':48} {'WASM ms':>24} {'native ms (1 thread)':>24} {'ratio':>7}")
    for title, _ in queries:
        ratio = statistics.median(wasm[title]) / max(statistics.median(native[title]), 0.01)
        print(f"{title[:48]:48} {median(wasm[title]):>24} {median(native[title]):>24} {ratio:7.1f}")


def browse(site: Path, queries: list[tuple[str, str]], repeat: int,
           con: Any) -> tuple[list[float], dict[str, list[float]], dict[str, list[float]]]:
    from playwright.sync_api import sync_playwright

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    opened: list[float] = []
    wasm: dict[str, list[float]] = {t: [] for t, _ in queries}
    native: dict[str, list[float]] = {t: [] for t, _ in queries}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium")
            for _ in range(repeat):
                context = browser.new_context()
                page = context.new_page()
                started = time.perf_counter()
                page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/audit/console/")
                page.wait_for_selector("#taxreg-console[data-ready='1']", timeout=600_000)
                opened.append(time.perf_counter() - started)
                for title, sql in queries:  # interleaved: WASM, then native, query by query
                    page.fill(".taxreg-console__sql", sql)
                    page.evaluate("document.querySelector('#taxreg-console').removeAttribute('data-state')")
                    started = time.perf_counter()
                    page.click(".taxreg-console__run")
                    page.wait_for_selector(SETTLED, timeout=600_000)
                    wasm[title].append((time.perf_counter() - started) * 1000)
                    started = time.perf_counter()
                    con.execute(sql).fetchall()
                    native[title].append((time.perf_counter() - started) * 1000)
                context.close()
            browser.close()
    finally:
        httpd.shutdown()
    return opened, wasm, native


if __name__ == "__main__":
    main()
