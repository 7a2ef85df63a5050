"""`taxreg generate` (samples from seeds and chunks) and `taxreg import-sdg` (InstructLab SDG output as a run)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from builder import console, settings
from builder.cli.common import CatalogOpt, DocumentsOpt, TaxonomyArg, WaitOpt, app, state, writing


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
    teacher_timeout: Annotated[float, typer.Option(
        help="teacher: seconds per HTTP attempt, from connecting to the last byte.")] = 60.0,
    teacher_max_response_bytes: Annotated[int, typer.Option(
        help="teacher: the largest response read, in bytes; a larger one fails its request.")] = 1 << 20,
    teacher_max_wait: Annotated[float, typer.Option(
        help="teacher: the longest wait before a retry (seconds), whatever Retry-After asks.")] = 30.0,
    teacher_max_failed: Annotated[float, typer.Option(
        help="teacher: the run fails when all its requests failed or more than this share (0-1) did.")] = 0.1,
    teacher_license: Annotated[str | None, typer.Option(help="teacher: SPDX license of the model.")] = None,
    teacher_terms: Annotated[str | None, typer.Option(help="teacher: terms that apply to its outputs.")] = None,
    wait: WaitOpt = 0.0,
) -> None:
    """Turn seeds and document chunks into training samples with lineage; record the run."""
    from builder.generators.run import GenerateOptions
    from builder.generators.run import generate as run_generate
    from builder.generators.teacher import TeacherConfig, api_key_from_environment
    from registry.chunking import ChunkingConfig
    from registry.samples import FilterConfig

    with console.user_errors(state["debug"]):
        teacher = TeacherConfig(
            teacher_url or "", teacher_model or "", api_key_from_environment(), teacher_concurrency,
            teacher_temperature, teacher_max_tokens, teacher_timeout, license=teacher_license,
            terms=teacher_terms, max_response_bytes=teacher_max_response_bytes, max_wait=teacher_max_wait,
            max_failed=teacher_max_failed) if generator == "teacher" else None
        with writing(catalog, wait=wait), console.StepDisplay(generator) as display:
            options = GenerateOptions(generator, since, seed, ChunkingConfig(max_size=chunk_size, unit=chunk_unit),
                                      FilterConfig(max_words=max_words), documents, teacher, display.update)
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
    wait: WaitOpt = 0.0,
) -> None:
    """Record InstructLab SDG output as one run, recovering each record's leaf, seeds and document chunks."""
    from builder.imports.sdg import ImportOptions
    from builder.imports.sdg import import_sdg as run_import
    from registry.chunking import ChunkingConfig
    from registry.samples import FilterConfig

    with console.user_errors(state["debug"]):
        options = ImportOptions(ChunkingConfig(max_size=chunk_size, unit=chunk_unit), FilterConfig(max_words=max_words),
                                documents)
        with writing(catalog, wait=wait):
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
