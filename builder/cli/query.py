"""`taxreg query`: read-only SQL on the catalog."""

from __future__ import annotations

from typing import Annotated

import typer

from builder import console, settings
from builder.cli.common import READ_WAIT, CatalogOpt, ReadWaitOpt, app, state
from builder.console import TableFormat


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="SQL to run against the catalog (read-only).")],
    catalog: CatalogOpt = settings.DEFAULT_CATALOG,
    fmt: Annotated[TableFormat, typer.Option("--format", help="table, csv or json.")] = TableFormat.TABLE,
    wait: ReadWaitOpt = READ_WAIT,
) -> None:
    """Run one read statement on the catalog. Try: taxreg query "SELECT * FROM duckdb_tables()"."""
    from registry.catalog.query import run_query

    with console.user_errors(state["debug"]):
        result = run_query(catalog, sql, wait)
    console.print_rows(result.columns, result.rows, fmt)
