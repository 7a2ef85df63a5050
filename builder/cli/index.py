"""`taxreg index` (the taxonomy into the catalog) and `taxreg diff` (leaves changed since a git ref)."""

from __future__ import annotations

from typing import Annotated

import typer

from builder import console, settings
from builder.cli.common import (
    CatalogOpt,
    DocumentsOpt,
    FormatOpt,
    LicenseOpt,
    MaxSizeOpt,
    TaxonomyArg,
    WaitOpt,
    app,
    state,
    writing,
)
from builder.console import FindingFormat, TableFormat


@app.command()
def index(
    taxonomy: TaxonomyArg = settings.DEFAULT_TAXONOMY,
    catalog: CatalogOpt = settings.DEFAULT_CATALOG,
    allow_errors: Annotated[bool, typer.Option("--allow-errors",
                                               help="Index the valid leaves; record the rest.")] = False,
    fmt: FormatOpt = FindingFormat.TEXT,
    documents: DocumentsOpt = None,
    max_file_size: MaxSizeOpt = None,
    allow_license: LicenseOpt = None,
    wait: WaitOpt = 0.0,
) -> None:
    """Validate the taxonomy and write it into the DuckDB catalog (incremental, one transaction)."""
    from registry.catalog.indexer import index as run_index

    with console.user_errors(state["debug"], fmt, taxonomy):
        config = settings.load().validation(documents, max_file_size, allow_license)
        with writing(catalog, wait=wait):
            outcome = run_index(taxonomy, catalog, config, allow_errors=allow_errors)
    summary = {"run_id": outcome.run_id, "status": outcome.status, "leaves": outcome.leaves_total,
               "parsed": outcome.leaves_parsed, "indexed": outcome.leaves_indexed,
               "retired": outcome.leaves_retired, "errors": outcome.errors, "warnings": outcome.warnings,
               "catalog": str(catalog)}
    console.print_findings(outcome.findings, taxonomy, fmt, summary=summary)
    if fmt is not FindingFormat.JSON:
        console.print_summary(
            f"{outcome.status}: {outcome.leaves_total} leaves ({outcome.leaves_parsed} parsed, "
            f"{outcome.leaves_indexed} indexed, {outcome.leaves_retired} retired), {outcome.errors} error(s), "
            f"{outcome.warnings} warning(s) -> {catalog}", outcome.errors > 0)
    raise typer.Exit(console.EXIT_FINDINGS if outcome.errors else console.EXIT_OK)


@app.command()
def diff(
    since: Annotated[str, typer.Option(help="Git ref to compare the working tree with.")],
    taxonomy: TaxonomyArg = settings.DEFAULT_TAXONOMY,
    fmt: Annotated[TableFormat, typer.Option("--format", help="table, csv or json.")] = TableFormat.TABLE,
) -> None:
    """List leaves added, modified, removed or renamed since a git ref (working tree included)."""
    from registry.gitrepo import changes_since

    with console.user_errors(state["debug"]):
        changes = changes_since(taxonomy, since)
    console.print_rows(["status", "path", "old_path"], [(c.status, c.path, c.old_path) for c in changes], fmt)
