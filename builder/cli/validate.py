"""`taxreg validate` (every leaf against the schema and the rules) and `taxreg rules` (the rule codes)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from builder import console, settings
from builder.cli.common import DocumentsOpt, FormatOpt, LicenseOpt, MaxSizeOpt, TaxonomyArg, app, state
from builder.console import FindingFormat, TableFormat


@app.command()
def validate(
    taxonomy: TaxonomyArg = settings.DEFAULT_TAXONOMY,
    since: Annotated[str | None, typer.Option(help="Only leaves changed since this git ref.")] = None,
    fmt: FormatOpt = FindingFormat.TEXT,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail too.")] = False,
    documents: DocumentsOpt = None,
    max_file_size: MaxSizeOpt = None,
    allow_license: LicenseOpt = None,
    catalog: Annotated[Path, typer.Option("--catalog", help="Catalog whose verdicts are reused (read-only).")]
    = settings.DEFAULT_CATALOG,
) -> None:
    """Check every leaf against the InstructLab schema and the registry's rules."""
    from registry.catalog.verdicts import catalog_cache
    from registry.validation import validate as run_validation
    from registry.validation import validate_since

    with console.user_errors(state["debug"]):
        config = settings.load().validation(documents, max_file_size, allow_license)
        cache = catalog_cache(catalog, config.file_rules_key())
        if since is None:
            report = run_validation(taxonomy, config, cache=cache)
        else:
            report = validate_since(taxonomy, since, config, cache)
    failed = report.failed(strict)
    summary = {"leaves": len(report.leaves), "errors": report.errors, "warnings": report.warnings,
               "failed": failed}
    console.print_findings(report.findings, taxonomy, fmt, summary=summary)
    if fmt is not FindingFormat.JSON:
        console.print_summary(f"{len(report.leaves)} leaves checked: {report.errors} error(s), "
                              f"{report.warnings} warning(s)", failed)
    raise typer.Exit(console.EXIT_FINDINGS if failed else console.EXIT_OK)


@app.command()
def rules(
    fmt: Annotated[TableFormat, typer.Option("--format", help="table, csv or json.")] = TableFormat.TABLE,
) -> None:
    """List every validation rule code with its severity and what to do about it."""
    from registry.findings import RULES

    rows = [(r.code, r.name, r.severity.value, r.summary, r.fix) for r in RULES.values()]
    console.print_rows(["code", "name", "severity", "checks", "fix"], rows, fmt)
