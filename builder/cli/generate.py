"""`taxreg generate` (samples from seeds and chunks) and `taxreg import-sdg` (InstructLab SDG output as a run)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from builder import console, settings
from builder.cli.common import CatalogOpt, DocumentsOpt, TaxonomyArg, WaitOpt, app, state, writing

if TYPE_CHECKING:
    from builder.generators.run import GenerateOutcome


@app.command()
def generate(
    taxonomy: TaxonomyArg = settings.DEFAULT_TAXONOMY,
    catalog: CatalogOpt = settings.DEFAULT_CATALOG,
    generator: Annotated[str | None, typer.Option(
        help="Which generator: seed (no model needed) or teacher (an OpenAI-compatible endpoint) [default: "
             "taxreg.toml \\[generate] generator, else seed].")] = None,
    since: Annotated[str | None, typer.Option(help="Only leaves changed since this git ref.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed recorded with the run.")] = 0,
    chunk_size: Annotated[int, typer.Option(help="Document chunk size, in --chunk-unit.")] = 300,
    chunk_unit: Annotated[str, typer.Option(help="words or tokens (word pieces and punctuation).")] = "words",
    max_words: Annotated[int, typer.Option(help="Drop samples longer than this (words).")] = 2048,
    documents: DocumentsOpt = None,
    teacher_url: Annotated[str | None, typer.Option(
        help="teacher: base URL of the OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1 [default: \\[generate] "
             "url]. API key from the variable \\[generate] api_key_env names, else TAXREG_TEACHER_API_KEY or "
             "OPENAI_API_KEY.")] = None,
    teacher_model: Annotated[str | None, typer.Option(help="teacher: the model to ask, recorded with the run.")] = None,
    teacher_concurrency: Annotated[int | None, typer.Option(help="teacher: requests in flight at once [16].")] = None,
    teacher_temperature: Annotated[float | None, typer.Option(help="teacher: sampling temperature [0.7].")] = None,
    teacher_max_tokens: Annotated[int | None, typer.Option(help="teacher: max_tokens of each answer [1024].")] = None,
    teacher_timeout: Annotated[float | None, typer.Option(
        help="teacher: seconds per HTTP attempt, from connecting to the last byte [60].")] = None,
    teacher_max_response_bytes: Annotated[int | None, typer.Option(
        help="teacher: the largest response read, in bytes; a larger one fails its request [1 MiB].")] = None,
    teacher_max_wait: Annotated[float | None, typer.Option(
        help="teacher: the longest wait before a retry (seconds), whatever Retry-After asks [30].")] = None,
    teacher_max_failed: Annotated[float | None, typer.Option(
        help="teacher: the run fails when all its requests failed or more than this share (0-1) did [0.1].")] = None,
    teacher_license: Annotated[str | None, typer.Option(help="teacher: SPDX license of the model.")] = None,
    teacher_terms: Annotated[str | None, typer.Option(help="teacher: terms that apply to its outputs.")] = None,
    wait: WaitOpt = 0.0,
    judge_url: Annotated[str | None, typer.Option(
        help="judge: base URL of its OpenAI-compatible API [default: \\[generate.judge] url, else the "
             "teacher's].")] = None,
    judge_model: Annotated[str | None, typer.Option(
        help="judge: the model that scores every teacher sample [default: \\[generate.judge] model, else the "
             "teacher model].")] = None,
    judge_threshold: Annotated[int | None, typer.Option(
        help="judge: the lowest score (1-5) a kept sample may have [4].")] = None,
    no_judge: Annotated[bool, typer.Option("--no-judge", help="Keep the teacher's samples unjudged.")] = False,
    batch_out: Annotated[Path | None, typer.Option(
        help="Write the requests still without an answer to this OpenAI Batch API JSONL file and stop (no HTTP).")] \
        = None,
    batch_in: Annotated[list[Path] | None, typer.Option(
        help="Read answers from this Batch API results file (repeat); requests without one count as failed unless "
             "--batch-out is given.")] = None,
) -> None:
    """Turn seeds and document chunks into training samples with lineage; record the run."""
    from builder.generators.batch import BatchFiles
    from builder.generators.configure import Overrides, resolve
    from builder.generators.run import GenerateOptions
    from builder.generators.run import generate as run_generate
    from registry.chunking import ChunkingConfig
    from registry.samples import FilterConfig

    with console.user_errors(state["debug"]):
        batch = BatchFiles(tuple(batch_in or ()), batch_out) if batch_in or batch_out else None
        teacher = {"url": teacher_url, "model": teacher_model, "concurrency": teacher_concurrency,
                   "temperature": teacher_temperature, "max_tokens": teacher_max_tokens, "timeout": teacher_timeout,
                   "max_response_bytes": teacher_max_response_bytes, "max_wait": teacher_max_wait,
                   "max_failed": teacher_max_failed, "license": teacher_license, "terms": teacher_terms}
        judge = {"url": judge_url, "model": judge_model, "threshold": judge_threshold}
        chosen = resolve(settings.load().generate, Overrides(generator, teacher, judge, no_judge, batch is not None))
        with writing(catalog, wait=wait), console.StepDisplay(chosen.generator) as display:
            options = GenerateOptions(chosen.generator, since, seed, ChunkingConfig(max_size=chunk_size,
                                                                                    unit=chunk_unit),
                                      FilterConfig(max_words=max_words), documents, chosen.teacher, chosen.judge,
                                      batch, display.update)
            outcome = run_generate(taxonomy, catalog, options)
    console.print_summary(_summary(outcome), False)


def _summary(outcome: GenerateOutcome) -> str:
    stats = outcome.stats
    if outcome.pending is not None:
        p = outcome.pending
        return (f"wrote {p.requests} {p.role} requests to {p.path} ({p.answered} answers read in this command, every "
                "answer so far journaled): answer it with a Batch API service (vLLM run-batch, OpenAI Batch, Ray "
                "Data), then run the same command with --batch-in RESULTS")
    dropped = ", ".join(f"{k} {v}" for k, v in stats["dropped"].items()) or "none"
    asked = "".join(f"; {role}: {r['requests_planned']} requests, {r['requests_reused']} reused, {r['requests_ok']} "
                    f"ok, {r['requests_failed']} failed" for role in ("teacher", "judge") if (r := stats.get(role)))
    return (f"run {outcome.run_id}: {outcome.leaves} leaves, {stats['produced']} samples produced, {stats['kept']} "
            f"kept, dropped: {dropped}{asked}")


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
