"""`taxreg query`: one read statement, decided by DuckDB's own parser, and waiting for a writer to let go.

A real catalog file, the real CLI in a subprocess where a crash must show, and a real second process holding the
catalog open read-write."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder.cli import app
from registry.catalog.indexer import index
from registry.catalog.query import run_query
from registry.errors import QueryError
from tests.conftest import EXAMPLE_TAXONOMY

runner = CliRunner()
TAXREG = [sys.executable, "-c", "from builder.cli import main; main()"]
DEEP_SUM = "SELECT " + " + ".join(["1"] * 10_000)
HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])  # read-write: readers are shut out while it is open
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    catalog = tmp_path_factory.mktemp("query") / "build" / "catalog.duckdb"
    index(EXAMPLE_TAXONOMY, catalog)
    return catalog


@pytest.mark.parametrize("sql, kind", [
    ("SET max_expression_depth TO 10000000", "SET"),
    ("RESET threads", "SET"),
    ("PRAGMA threads = 1", "SET"),
    ("CREATE TEMP TABLE t (a INTEGER)", "CREATE"),
    ("INSERT INTO contribution SELECT * FROM contribution", "INSERT"),
    ("CHECKPOINT", "CALL"),
    ("VACUUM", "VACUUM"),
    ("PRAGMA table_info('contribution')", "PRAGMA"),
    ("EXPLAIN ANALYZE SET threads = 1", "SET"),  # EXPLAIN ANALYZE runs what it explains
    ("EXPLAIN (FORMAT json) CREATE TEMP TABLE t AS SELECT 1", "CREATE"),
    ("BEGIN TRANSACTION", "TRANSACTION"),
    ("UPDATE EXTENSIONS", "statements of this kind"),  # a type duckdb's Python enum does not name
])
def test_statements_other_than_reads_are_refused_by_type(catalog: Path, sql: str, kind: str) -> None:
    with pytest.raises(QueryError, match=kind) as refused:
        run_query(catalog, sql)
    assert "read-only" in str(refused.value) and "SELECT" in refused.value.hint  # what to run instead


@pytest.mark.parametrize("sql", ["LOAD json", "INSTALL json", "ATTACH 'other.duckdb'", "COPY contribution TO 'out.csv'",
                                 "EXPORT DATABASE 'out'", "SELECT * FROM read_csv('/etc/passwd')",
                                 "DESCRIBE SELECT * FROM read_text('/etc/passwd')"])
def test_file_access_is_refused(catalog: Path, sql: str) -> None:
    with pytest.raises(QueryError, match="cannot read or write files"):
        run_query(catalog, sql)


def test_several_statements_and_pivots_that_hide_them_are_refused(catalog: Path) -> None:
    with pytest.raises(QueryError, match="holds 2 statements"):
        run_query(catalog, "SELECT 1; SELECT 2")
    with pytest.raises(QueryError, match="holds 2 statements"):
        run_query(catalog, "SET max_expression_depth TO 10000000; SELECT 1")
    # A PIVOT without an IN list is parsed as several statements: only as the query itself is it a read.
    with pytest.raises(QueryError, match="PIVOT without an IN list"):
        run_query(catalog, "CREATE TEMP TABLE t AS PIVOT contribution ON kind USING count(*)")


@pytest.mark.parametrize("sql", [
    "SELECT count(*) FROM contribution", "WITH c AS (SELECT 1 AS one) SELECT one FROM c", "VALUES (1), (2)",
    "FROM contribution SELECT count(*)", "DESCRIBE contribution", "SHOW TABLES", "SUMMARIZE contribution",
    "EXPLAIN SELECT 1", "/* why */ EXPLAIN ANALYZE SELECT count(*) FROM contribution",
    "EXPLAIN (FORMAT json) SELECT 1", "EXPLAIN ANALYZE (SELECT 1)", "PIVOT contribution ON kind USING count(*)",
    "PIVOT contribution ON kind IN ('compositional_skill') USING count(*)",
    "UNPIVOT (SELECT 1 AS a, 2 AS b) ON a, b INTO NAME k VALUE v", "SELECT 1;",
])
def test_read_statements_run(catalog: Path, sql: str) -> None:
    assert run_query(catalog, sql).rows


def test_the_crash_through_set_is_a_refusal_not_a_segfault(catalog: Path) -> None:
    for sql in (f"SET max_expression_depth TO 10000000; {DEEP_SUM}", DEEP_SUM):
        done = subprocess.run([*TAXREG, "query", sql, "--catalog", str(catalog)], capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 2 and "Traceback" not in done.stderr, (done.returncode, done.stderr[-500:])
    assert "refuses SET" in done.stderr  # DuckDB's own advice for the deep sum would be SET, refused here


def hold(catalog: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(catalog), str(seconds)], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    return holder


def test_read_only_commands_wait_for_a_writer(catalog: Path) -> None:
    contributions = run_query(catalog, "SELECT count(*) FROM contribution").rows[0][0]
    holder = hold(catalog, 1.5)
    try:
        began = time.perf_counter()
        busy = runner.invoke(app, ["query", "SELECT 1", "--catalog", str(catalog), "--wait", "0.3"])
        assert busy.exit_code == 2 and "in use by another process (waited 0.3 s)" in busy.output
        assert "--wait" in busy.output and time.perf_counter() - began >= 0.3
        waited = runner.invoke(app, ["query", "SELECT count(*) AS n FROM contribution", "--catalog", str(catalog),
                                     "--format", "json"])  # the default wait outlasts the writer
        assert waited.exit_code == 0 and json.loads(waited.stdout) == [{"n": contributions}], waited.output
        assert time.perf_counter() - began >= 1.0
    finally:
        holder.wait(timeout=10)
    holder = hold(catalog, 1.5)
    try:
        listed = runner.invoke(app, ["release", "list", "--build-dir", str(catalog.parent), "--format", "json"])
        assert listed.exit_code == 0 and json.loads(listed.stdout) == [], listed.output
    finally:
        holder.wait(timeout=10)


def test_a_writer_that_stays_is_the_clear_in_use_error(catalog: Path) -> None:
    holder = hold(catalog, 30)
    try:
        result = runner.invoke(app, ["release", "list", "--build-dir", str(catalog.parent), "--wait", "0.5"])
        assert result.exit_code == 2 and "in use by another process" in result.output
        assert "Traceback" not in result.output
    finally:
        holder.kill()
        holder.wait()
