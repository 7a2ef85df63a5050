"""The spine commands: validate, index, generate, import-sdg, diff, query, rules, dataset, documents."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from builder import console, settings
from builder.cli.common import (
    READ_WAIT,
    CatalogOpt,
    DocumentsOpt,
    FormatOpt,
    LicenseOpt,
    MaxSizeOpt,
    ReadWaitOpt,
    TaxonomyArg,
    app,
    dataset_app,
    documents_app,
    state,
)
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
def index(
    taxonomy: TaxonomyArg = settings.DEFAULT_TAXONOMY,
    catalog: CatalogOpt = settings.DEFAULT_CATALOG,
    allow_errors: Annotated[bool, typer.Option("--allow-errors",
                                               help="Index the valid leaves; record the rest.")] = False,
    fmt: FormatOpt = FindingFormat.TEXT,
    documents: DocumentsOpt = None,
    max_file_size: MaxSizeOpt = None,
    allow_license: LicenseOpt = None,
) -> None:
    """Validate the taxonomy and write it into the DuckDB catalog (incremental, one transaction)."""
    from registry.catalog.indexer import index as run_index

    with console.user_errors(state["debug"], fmt, taxonomy):
        config = settings.load().validation(documents, max_file_size, allow_license)
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
def generate(
    taxonomy: TaxonomyArg = settings.DEFAULT_TAXONOMY,
    catalog: CatalogOpt = settings.DEFAULT_CATALOG,
    generator: Annotated[str, typer.Option(
        help="Which generator: seed (no model needed) or teacher (an OpenAI-compatible endpoint).")] = "seed",
    since: Annotated[str | None, typer.Option(help="Only leaves changed since this git ref.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed recorded with the run.")] = 0,
    chunk_size: Annotated[int, typer.Option(help="Document chunk size, in --chunk-unit.")] = 300,
    chunk_unit: Annotated[str, typer.Option(help="words or tokens (word pieces and punctuation).")] = "words",
    max_words: Annotated[int, typer.Option(help="Drop samples longer than this (words).")] = 2048,
    documents: DocumentsOpt = None,
    teacher_url: Annotated[str | None, typer.Option(
        help="teacher: base URL of the OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1. API key from "
             "TAXREG_TEACHER_API_KEY or OPENAI_API_KEY.")] = None,
    teacher_model: Annotated[str | None, typer.Option(help="teacher: the model to ask, recorded with the run.")] = None,
    teacher_concurrency: Annotated[int, typer.Option(help="teacher: requests in flight at once.")] = 16,
    teacher_temperature: Annotated[float, typer.Option(help="teacher: sampling temperature.")] = 0.7,
    teacher_max_tokens: Annotated[int, typer.Option(help="teacher: max_tokens of each answer.")] = 1024,
    teacher_timeout: Annotated[float, typer.Option(help="teacher: seconds per HTTP attempt.")] = 60.0,
    teacher_license: Annotated[str | None, typer.Option(help="teacher: SPDX license of the model.")] = None,
    teacher_terms: Annotated[str | None, typer.Option(help="teacher: terms that apply to its outputs.")] = None,
) -> None:
    """Turn seeds and document chunks into training samples with lineage; record the run."""
    from builder.generators.teacher import TeacherConfig, api_key_from_environment
    from builder.stages.generate import GenerateOptions
    from builder.stages.generate import generate as run_generate
    from registry.chunking import ChunkingConfig
    from registry.samples import FilterConfig

    with console.user_errors(state["debug"]):
        teacher = TeacherConfig(
            teacher_url or "", teacher_model or "", api_key_from_environment(), teacher_concurrency,
            teacher_temperature, teacher_max_tokens, teacher_timeout, license=teacher_license,
            terms=teacher_terms) if generator == "teacher" else None
        options = GenerateOptions(generator, since, seed, ChunkingConfig(max_size=chunk_size, unit=chunk_unit),
                                  FilterConfig(max_words=max_words), documents, teacher)
        outcome = run_generate(taxonomy, catalog, options)
    stats = outcome.stats
    dropped = ", ".join(f"{k} {v}" for k, v in stats["dropped"].items()) or "none"
    asked = stats.get("teacher")
    requests = (f"; teacher: {asked['requests_planned']} requests, {asked['requests_reused']} reused, "
                f"{asked['requests_ok']} ok, {asked['requests_failed']} failed" if asked else "")
    console.print_summary(f"run {outcome.run_id}: {outcome.leaves} leaves, {stats['produced']} samples produced, "
                          f"{stats['kept']} kept, dropped: {dropped}{requests}", False)


@app.command("import-sdg")
def import_sdg(
    source: Annotated[Path, typer.Argument(help="SDG output of `ilab data generate`: a run folder, a parent of "
                                                "several, or one .jsonl file.")],
    taxonomy: TaxonomyArg = settings.DEFAULT_TAXONOMY,
    catalog: CatalogOpt = settings.DEFAULT_CATALOG,
    chunk_size: Annotated[int, typer.Option(help="Document chunk size, in --chunk-unit (as for generate).")] = 300,
    chunk_unit: Annotated[str, typer.Option(help="words or tokens (word pieces and punctuation).")] = "words",
    max_words: Annotated[int, typer.Option(help="Drop samples longer than this (words).")] = 2048,
    documents: DocumentsOpt = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when a record cannot be placed.")] = False,
) -> None:
    """Record InstructLab SDG output as one run, recovering each record's leaf, seeds and document chunks."""
    from builder.stages.import_sdg import ImportOptions
    from builder.stages.import_sdg import import_sdg as run_import
    from registry.chunking import ChunkingConfig
    from registry.samples import FilterConfig

    with console.user_errors(state["debug"]):
        options = ImportOptions(ChunkingConfig(max_size=chunk_size, unit=chunk_unit), FilterConfig(max_words=max_words),
                                documents)
        outcome = run_import(source, taxonomy, catalog, options)
    for where, why in outcome.unplaced:
        console.print_line(f"unplaced {where}: {why}")
    for warning in outcome.warnings:
        console.print_line(f"warning: {warning}")
    stats = outcome.stats

    def counts(key: str) -> str:
        return ", ".join(f"{k} {v}" for k, v in stats[key].items()) or "none"

    console.print_summary(
        f"run {outcome.run_id}: {stats['records_read']} records -> {stats['samples']} samples "
        f"({stats['merged_duplicates']} merged duplicates), {stats['kept']} kept, {stats['unplaced_samples']} "
        f"unplaced; leaf by: {counts('leaf_by')}; seeds by: {counts('seeds_by')}; chunks by: {counts('chunks_by')}",
        bool(outcome.unplaced) and strict)
    if outcome.unplaced and strict:
        raise typer.Exit(console.EXIT_FINDINGS)


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


@app.command()
def rules(
    fmt: Annotated[TableFormat, typer.Option("--format", help="table, csv or json.")] = TableFormat.TABLE,
) -> None:
    """List every validation rule code with its severity and what to do about it."""
    from registry.findings import RULES

    rows = [(r.code, r.name, r.severity.value, r.summary, r.fix) for r in RULES.values()]
    console.print_rows(["code", "name", "severity", "checks", "fix"], rows, fmt)


@dataset_app.command("build")
def dataset_build(
    catalog: CatalogOpt = settings.DEFAULT_CATALOG,
    name: Annotated[str, typer.Option(help="Dataset name: the folder under --out.")] = "default",
    out: Annotated[Path, typer.Option(help="Folder that holds the datasets.")] = settings.DEFAULT_BUILD / "datasets",
    test_fraction: Annotated[float, typer.Option(help="Share of samples in the test split.")] = 0.1,
    mix: Annotated[list[str] | None, typer.Option(help="Ratio per kind: knowledge=1.0, skills=0.5 (repeat).")]
    = None,
    run: Annotated[str | None, typer.Option(help="Only samples of this generation run.")] = None,
) -> None:
    """Write train/test JSONL and Parquet, a dataset card and croissant.json (byte-identical for the same inputs)."""
    from builder.stages.dataset import DatasetOptions, build_dataset

    with console.user_errors(state["debug"]):
        ratios = {"knowledge": 1.0, "skills": 1.0} | _ratios(mix or [])
        outcome = build_dataset(catalog, out, DatasetOptions(name, test_fraction, ratios, run))
    for f in outcome.files:
        console.print_line(f"{f.sha256}  {f.path}  ({f.rows} rows)")
    console.print_summary(f"dataset {name} -> {outcome.folder} (license: {outcome.license_expression})", False)


def _ratios(items: list[str]) -> dict[str, float]:
    from registry.errors import RegistryError

    ratios = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            ratios[key.strip()] = float(value)
        except ValueError:
            raise RegistryError(f"--mix {item!r}: expected KIND=RATIO, e.g. knowledge=0.5") from None
    return ratios


@documents_app.command("fetch")
def documents_fetch(
    taxonomy: TaxonomyArg = settings.DEFAULT_TAXONOMY,
    documents: DocumentsOpt = None,
) -> None:
    """Clone every referenced document repository at its pinned commit into the cache (needs network)."""
    from builder.stages.documents import fetch_documents

    with console.user_errors(state["debug"]):
        outcome = fetch_documents(taxonomy, settings.load().validation(documents))
    for path in outcome.written:
        console.print_line(f"fetched {path}")
    console.print_summary(f"{len(outcome.written)} repository checkout(s) fetched, "
                          f"{outcome.already_cached} already cached", False)
