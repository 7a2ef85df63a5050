"""The site's Audit section: the public database, Parquet per table, and the in-browser SQL console.

Interface for `taxreg site` (the site builder calls these three, in this order):

    pages = audit_pages(catalog, directory_urls=True)
        -> {"audit/index.md": markdown, "audit/console.md": markdown}: write each into the docs folder
        being built (paths are docs-relative) before mkdocs runs. index.md lists the downloads and every
        audit view with its SQL; console.md is the only page that loads the SQL engine.
    files = write_audit(catalog, site_dir / "audit", cache_dir=DEFAULT.vendor, previous=old_site / "audit")
        -> every path written. Call it AFTER mkdocs has built site_dir (mkdocs empties site_dir first).
        Writes audit.duckdb, <table>.parquet (linked from `previous`, the site being replaced, where its table
        did not change), SHA256SUMS, and engine/ (console.js, console.css,
        queries.json, engine.json, duckdb/: DuckDB-WASM vendored from npm at build time, cached in cache_dir).
    note = engine_note(site_dir / "audit")
        -> None, or why the engine could not be vendored (npm missing or failing): show it as a warning.
        The site still builds; the console page then says the engine was not vendored.
        With TAXREG_REQUIRE_CONSOLE_ENGINE=1 (CI sets it) write_audit raises instead.

`vendored_engine(cache_dir)` (called by write_audit) vendors the engine once per lock file; each call first
removes the `npm ci` work folders (`.npm-<pid>-*`) that killed runs left in cache_dir.

The public database itself is `registry.catalog.publish` (shared with `taxreg release`).
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from builder.layout import DEFAULT
from registry import folders
from registry.folders import remove_stale
from registry.catalog.connection import open_read_only
from registry.catalog.publish import (
    DATABASE_FILE,
    PRIVATE_COLUMNS,
    PRIVATE_TABLES,
    STORAGE_VERSION,
    AuditView,
    audit_views,
    publish,
)
from registry.errors import EnvironmentProblem
from registry.release.sums import format_sums

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "site"
CONSOLE_SOURCES = SOURCES / "console"  # package.json + lock (the pinned engine), console.js/css, bundle entry
MIGRATIONS = ROOT / "registry" / "catalog"
ENGINE_DIR = "engine"
ENGINE_FILES = ("duckdb-eh.wasm", "duckdb-browser-eh.worker.js")  # from @duckdb/duckdb-wasm/dist
REQUIRE_ENGINE = "TAXREG_REQUIRE_CONSOLE_ENGINE"
NPM_WORK = re.compile(r"\.npm-(?:(\d+)-)?\w+", re.ASCII)  # `npm ci` work folders: .npm-<pid>-<random>


@dataclass(frozen=True, slots=True)
class CannedQuery:
    title: str
    sql: str
    description: str


def audit_pages(catalog: Path, directory_urls: bool = True) -> dict[str, str]:
    """Markdown of the Audit page and the console page, generated from the catalog."""
    import jinja2

    con = open_read_only(catalog)
    try:
        views = audit_views(con)
        tables = con.execute(
            "SELECT table_name, comment FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND NOT internal ORDER BY table_name").fetchall()
        rows = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0] for t, _ in tables}
        examples = {v.name: _example(v, con) for v in views}
    finally:
        con.close()
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(SOURCES / "audit"), autoescape=False,
                             keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    env.filters["cell"] = _cell
    console = "console/" if directory_urls else "console.html"
    source_sql = _migration_sql()
    index = env.get_template("index.md.j2").render(
        database_file=DATABASE_FILE, storage_version=STORAGE_VERSION,
        tables=[{"name": t, "comment": c or "", "rows": rows[t]} for t, c in tables if t not in PRIVATE_TABLES],
        excluded=[{"what": t, "why": why} for t, why in sorted(PRIVATE_TABLES.items())]
        + [{"what": f"{t}.{c}", "why": why} for t, cols in sorted(PRIVATE_COLUMNS.items())
           for c, why in sorted(cols.items())],
        views=[{"name": v.name, "comment": v.comment, "sql": source_sql.get(v.name, v.sql),
                "console_href": f"{console}#{urlencode({'sql': examples[v.name]})}"} for v in views])
    page = env.get_template("console.md.j2").render(
        engine=f"../{ENGINE_DIR}/" if directory_urls else f"{ENGINE_DIR}/",
        audit_href="../" if directory_urls else "index.html")
    return {"audit/index.md": index, "audit/console.md": page}


def write_audit(catalog: Path, out_dir: Path, cache_dir: Path | None = None,
                previous: Path | None = None) -> list[Path]:
    """The public database, Parquet per table, SHA256SUMS and the console (with its engine) into out_dir.
    `previous`: the audit folder of the site being replaced (its unchanged Parquet files are reused)."""
    vendored, status = vendored_engine(cache_dir or DEFAULT.vendor)  # first: it may refuse the build
    if vendored is None and os.environ.get(REQUIRE_ENGINE) == "1":
        raise EnvironmentProblem(f"the SQL console's engine could not be vendored: {status['reason']}",
                                 hint=f"install node and npm (reaching the npm registry) or unset {REQUIRE_ENGINE}")
    published = publish(catalog, out_dir, previous)
    sums = out_dir / "SHA256SUMS"
    sums.write_text(format_sums((f.relpath, f.sha256) for f in published), encoding="utf-8")
    con = open_read_only(catalog)
    try:
        queries = canned_queries(con)
    finally:
        con.close()
    engine = _write_engine(out_dir, queries, vendored, status)
    return [*(out_dir / f.relpath for f in published), sums, *engine]


def engine_note(out_dir: Path) -> str | None:
    """Why the console has no engine, or None when it has one."""
    try:
        status = json.loads((out_dir / ENGINE_DIR / "engine.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "the console was not written"
    return None if status.get("vendored") else str(status.get("reason") or "not vendored")


def canned_queries(con: Any) -> list[CannedQuery]:
    """The console's menu: summaries (counts cast to INTEGER: the browser engine returns BIGINT as BigInt),
    then every audit view and the takedown macro on a real subject."""
    queries = [
        CannedQuery("Tables: rows and what they hold",
                    "SELECT table_name, estimated_size::INTEGER AS row_count, comment\nFROM duckdb_tables()\n"
                    "WHERE database_name = current_database()\nORDER BY table_name",
                    "Every table of the public database with its documentation (COMMENT ON)."),
        CannedQuery("Columns: what each holds and how it joins",
                    "SELECT table_name, column_name, data_type, comment\nFROM duckdb_columns()\n"
                    "WHERE database_name = current_database()\nORDER BY table_name, column_index",
                    "Every column of every table and view with its documentation (COMMENT ON)."),
        CannedQuery("Contributions per kind and domain",
                    "SELECT kind, domain, count(*)::INTEGER AS contributions\nFROM contribution\n"
                    "GROUP BY ALL\nORDER BY contributions DESC, kind, domain",
                    "Leaves of the taxonomy by kind and domain."),
        CannedQuery("Kept samples per contribution",
                    "SELECT contribution_id, contributor, count(*)::INTEGER AS samples\nFROM v_sample_provenance\n"
                    "GROUP BY ALL\nORDER BY samples DESC, contribution_id",
                    "How much training data each contribution gave, through seed lineage."),
        CannedQuery("What each contribution did to the model",
                    "SELECT release_id, contribution_id, items::INTEGER AS items, round(delta, 4) AS nll_change,\n"
                    "       round(delta_low, 4) AS low, round(delta_high, 4) AS high, verdict\n"
                    "FROM v_contribution_impact\nWHERE latest AND metric = 'nll'\n"
                    "ORDER BY release_id, improvement DESC",
                    "Per release: the change of each contribution's per-token NLL from the base model to the "
                    "fine-tuned one, with its bootstrap interval (improved, worse, or noise when it holds 0)."),
        CannedQuery("Orphan samples (must be 0)",
                    "SELECT count(*)::INTEGER AS orphan_samples FROM v_orphan_samples",
                    "Kept samples without lineage: a release blocker."),
    ]
    for view in audit_views(con):
        queries.append(CannedQuery(view.name, _example(view, con), view.comment))
    return queries


def _example(view: AuditView, con: Any) -> str:
    if view.kind == "view":
        return f"SELECT *\nFROM {view.name}\nLIMIT 100"
    rows = con.execute("SELECT contribution_id FROM sample_lineage WHERE contribution_id IS NOT NULL "
                       "ORDER BY contribution_id LIMIT 1").fetchall()
    subject = rows[0][0] if rows else "knowledge/..."
    return f"SELECT what, count(*)::INTEGER AS n\nFROM {view.name}('{subject.replace(chr(39), chr(39) * 2)}')\n" \
           "GROUP BY what\nORDER BY what"


def _cell(text: str) -> str:
    """Catalog comments into Markdown table cells and paragraphs: inert HTML, no cell breaks."""
    return html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ")


def _migration_sql() -> dict[str, str]:
    """View and macro definitions as written in the migration scripts (readable layout); the last one wins."""
    found: dict[str, str] = {}
    for script in sorted(MIGRATIONS.glob("v[0-9][0-9][0-9]_*.sql")):
        for statement in script.read_text(encoding="utf-8").split(";\n"):
            lines = [line for line in statement.strip().splitlines() if not line.startswith("--")]
            words = " ".join(lines).split()
            if len(words) < 3 or words[0] != "CREATE":
                continue
            words = words[3:] if words[1:3] == ["OR", "REPLACE"] else words[1:]
            if words[0] in ("VIEW", "MACRO"):
                found[words[1].split("(")[0]] = "\n".join(lines).strip() + ";"
    return found


def _write_engine(out_dir: Path, queries: list[CannedQuery], vendored: Path | None,
                  status: dict[str, Any]) -> list[Path]:
    """out_dir/engine/, built beside and swapped in whole."""
    target = out_dir / ENGINE_DIR
    with folders.building(target) as staging:
        for name in ("console.js", "console.css"):
            shutil.copyfile(CONSOLE_SOURCES / name, staging / name)
        (staging / "queries.json").write_text(
            json.dumps([{"title": q.title, "sql": q.sql, "description": q.description} for q in queries],
                       indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        (staging / "engine.json").write_text(json.dumps(status, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        if vendored is not None:
            (staging / "duckdb").mkdir()
            for item in sorted(vendored.iterdir()):
                if item.name != "engine.json":
                    _link_or_copy(item, staging / "duckdb" / item.name)
        folders.swap_into_place((staging, target))
    return sorted(p for p in target.rglob("*") if p.is_file())


def vendored_engine(cache_dir: Path) -> tuple[Path | None, dict[str, Any]]:
    """DuckDB-WASM from npm, pinned by site/console/package-lock.json, bundled once per lock into cache_dir."""
    inputs = [CONSOLE_SOURCES / n for n in ("package.json", "package-lock.json", "duckdb-entry.mjs")]
    key = hashlib.sha256(b"".join(p.read_bytes() for p in inputs)).hexdigest()[:16]
    ready = cache_dir / f"duckdb-wasm-{key}"
    remove_stale(cache_dir, NPM_WORK)  # a run killed during `npm ci` leaves its node_modules (~60 MB) behind
    if (ready / "engine.json").is_file():
        return ready, json.loads((ready / "engine.json").read_text(encoding="utf-8"))
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        return None, {"vendored": False, "reason": "npm and node were not found on PATH when the site was built"}
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".npm-{os.getpid()}-", dir=cache_dir))
    try:
        for path in inputs:
            shutil.copyfile(path, work / path.name)
        dist = work / "dist"
        dist.mkdir()
        steps = [[npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                 [node, "node_modules/esbuild/bin/esbuild", "duckdb-entry.mjs", "--bundle", "--format=esm",
                  "--platform=browser", "--minify", "--legal-comments=eof",
                  "--outfile=dist/duckdb-browser.bundle.mjs"]]
        for step in steps:
            try:
                done = subprocess.run(step, cwd=work, capture_output=True, text=True, timeout=600, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                return None, {"vendored": False, "reason": f"{Path(step[1]).name} failed: {exc}"}
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                return None, {"vendored": False, "reason": f"`{Path(step[1]).name}` failed: {' '.join(tail)}"}
        package = work / "node_modules" / "@duckdb" / "duckdb-wasm"
        for name in ENGINE_FILES:
            shutil.copyfile(package / "dist" / name, dist / name)
        status = {"vendored": True, "package": "@duckdb/duckdb-wasm", "version": _version(package),
                  "apache_arrow": _version(work / "node_modules" / "apache-arrow")}
        (dist / "NOTICE.txt").write_text(_notice(work / "node_modules"), encoding="utf-8")
        (dist / "engine.json").write_text(json.dumps(status, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        folders.swap_into_place((dist, ready))  # another build may have vendored the same lock meanwhile: same bytes
        return ready, status
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _version(package: Path) -> str:
    return str(json.loads((package / "package.json").read_text(encoding="utf-8"))["version"])


def _notice(modules: Path) -> str:
    """Licenses of what the bundle and the worker contain (esbuild keeps the legal comments in the bundle)."""
    parts = ["Vendored for the SQL console by `taxreg site` from npm; not modified.\n"]
    for name in ("@duckdb/duckdb-wasm", "apache-arrow", "flatbuffers", "tslib"):
        package = modules / name
        if not package.is_dir():
            continue
        meta = json.loads((package / "package.json").read_text(encoding="utf-8"))
        parts.append(f"\n== {name} {meta.get('version', '')} ({meta.get('license', 'see package')}) ==\n")
        for candidate in ("LICENSE", "LICENSE.txt", "NOTICE.txt"):
            if (package / candidate).is_file():
                parts.append((package / candidate).read_text(encoding="utf-8", errors="replace"))
    return "".join(parts)


def _link_or_copy(source: Path, target: Path) -> None:
    """The wasm is 34 MB: a hard link from the cache when it is on the same file system."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
