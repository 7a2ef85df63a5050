"""The site's read model: the catalog read once, in bulk, into what the pages show (one query per table or
roll-up, grouped in Python).

Never a query per page: at 10,000 contributions a query per page costs more than rendering the page.
Rows are plain dicts (column name -> value) so that a page's context is JSON and its cache key a hash of it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.site import impact
from registry.catalog.connection import open_read_only

Row = dict[str, Any]
EXAMPLES_PER_CONTRIBUTION = 3
EXAMPLE_CHARS = 600
TIME_FORMAT = "%Y-%m-%d %H:%M:%S UTC"
GENERATION_STAGES = ("generate", "import")  # runs that make samples; init, train and export make models


@dataclass(slots=True)
class SiteData:
    """Everything the site shows, keyed the way pages look it up."""

    contributions: list[Row]
    versions: dict[str, list[Row]]  # contribution_id -> every version, oldest first
    contributors: dict[str, Row]
    attributions: dict[str, list[Row]]  # contribution_id -> attribution rows of the current version
    seeds: dict[str, list[Row]]  # contribution_id -> seeds of the current version
    sources: dict[str, list[Row]]  # contribution_id -> documents of the current version
    findings: dict[str, list[Row]]  # contribution_id -> findings of the last validation
    documents: dict[str, list[Row]]  # doc_sha256 -> its (repo, commit, path) rows
    document_users: dict[str, list[str]]  # doc_sha256 -> contribution ids (current versions)
    chunks: dict[str, int]  # doc_sha256 -> chunks
    runs: list[Row]
    samples_by_run: dict[str, list[Row]]  # contribution_id -> [{run_id, samples, kept, dropped: "reason n, ..."}]
    chunk_edges: dict[str, dict[str, int]]  # contribution_id -> doc_sha256 -> chunks its samples derive from
    examples: dict[str, list[Row]]  # contribution_id -> a few kept samples
    datasets: dict[str, list[Row]]  # contribution_id -> datasets holding its samples
    takedowns: dict[str, Row]  # subject (contribution id or doc sha256) -> its takedown
    releases: list[Row]
    release_of: dict[str, list[str]]  # contribution_id -> release ids including it
    models_of: dict[str, list[Row]]  # contribution_id -> model artifacts trained on its samples
    release_details: dict[str, dict[str, list[Row]]]  # release_id -> artifacts, licenses, contributors, checks,
    #                                                   takedowns of content it holds
    run_details: dict[str, dict[str, list[Row]]]  # run_id -> drop reasons, contributions, examples
    commits: list[Row]
    license_summary: list[Row]
    document_licenses: list[Row]
    counts: dict[str, int] = field(default_factory=dict)
    impact: impact.Impact = field(default_factory=impact.Impact)  # what each contribution did to the model
    # release_id -> the files published under its page (set by the site build: release_files.locate)
    release_files: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # release_id -> its disclosures as that folder holds them (set with release_files: disclosures.load)
    release_disclosures: dict[str, Row] = field(default_factory=dict)


def load(catalog: Path) -> SiteData:
    con = open_read_only(catalog)
    try:
        # Every time the site shows, in one form: UTC to the second (commit times and run clocks alike).
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"CREATE TEMP MACRO utc(ts) AS strftime(ts, '{TIME_FORMAT}')")
        return _load(con)
    finally:
        con.close()


def rows(con: Any, sql: str, params: list[Any] | None = None) -> list[Row]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def _grouped(items: list[Row], key: str) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = defaultdict(list)
    for item in items:
        out[item.pop(key)].append(item)
    return dict(out)


def _load(con: Any) -> SiteData:  # one statement per roll-up, read top to bottom
    contributions = rows(con, """
        SELECT c.contribution_id, c.kind, c.domain, c.created_by, c.status, c.current_version_id,
               v.schema_version, v.commit_sha, v.task_description, v.document_outline, v.knowledge_domain,
               v.document_repo, v.document_commit, v.document_patterns, v.byte_size, v.word_count, v.source_path
        FROM contribution c
        LEFT JOIN contribution_version v ON v.contribution_id = c.contribution_id
                                         AND v.version_id = c.current_version_id
        ORDER BY c.contribution_id""")
    versions = _grouped(rows(con, """
        SELECT v.contribution_id, v.version_id, v.commit_sha, v.schema_version, v.byte_size, v.created_by,
               utc(r.started_at) AS first_seen
        FROM contribution_version v LEFT JOIN index_run r ON r.run_id = v.first_seen_run
        ORDER BY v.contribution_id, r.started_at, v.version_id"""), "contribution_id")
    contributors = {r["contributor_id"]: r for r in rows(con, "SELECT * FROM contributor ORDER BY contributor_id")}
    attributions = _grouped(rows(con, """
        SELECT a.contribution_id, a.title, a.link, a.revision, a.license_raw, a.license_spdx, a.creators
        FROM contribution c
        JOIN contribution_attribution ca ON ca.contribution_id = c.contribution_id
                                         AND ca.version_id = c.current_version_id
        JOIN attribution a ON a.contribution_id = ca.contribution_id AND a.attribution_sha256 = ca.attribution_sha256
        ORDER BY a.contribution_id, a.ordinal"""), "contribution_id")
    seeds = _grouped(rows(con, """
        SELECT s.contribution_id, s.ordinal, s.context, s.question, s.answer
        FROM seed_example s JOIN contribution c ON c.contribution_id = s.contribution_id
                                                AND c.current_version_id = s.version_id
        ORDER BY s.contribution_id, s.ordinal"""), "contribution_id")
    sources = _grouped(rows(con, """
        SELECT DISTINCT cs.contribution_id, cs.doc_sha256, cs.pattern, cs.path, d.repo_url, d.repo_commit,
               d.license_spdx, d.byte_size
        FROM contribution_source cs
        JOIN contribution c ON c.contribution_id = cs.contribution_id AND c.current_version_id = cs.version_id
        LEFT JOIN source_document d ON d.doc_sha256 = cs.doc_sha256 AND d.path = cs.path
        ORDER BY cs.contribution_id, cs.path, cs.doc_sha256"""), "contribution_id")
    findings = _grouped(rows(con, """
        SELECT contribution_id, code, severity, path, line, col, yaml_path, message FROM finding
        WHERE contribution_id IS NOT NULL ORDER BY contribution_id, line, col, code"""), "contribution_id")
    documents = _grouped(rows(con, """
        SELECT doc_sha256, repo_url, repo_commit, path, title, media_type, byte_size, license_spdx, license_class,
               attribution_required, share_alike
        FROM source_document ORDER BY doc_sha256, repo_url, repo_commit, path"""), "doc_sha256")
    users: dict[str, list[str]] = defaultdict(list)
    for r in rows(con, """
            SELECT DISTINCT cs.doc_sha256, cs.contribution_id FROM contribution_source cs
            JOIN contribution c ON c.contribution_id = cs.contribution_id AND c.current_version_id = cs.version_id
            ORDER BY 1, 2"""):
        users[r["doc_sha256"]].append(r["contribution_id"])
    chunks = {r["doc_sha256"]: r["n"] for r in rows(con, """
        SELECT doc_sha256, count(DISTINCT chunk_sha256) AS n FROM source_chunk GROUP BY ALL""")}
    runs = rows(con, """
        SELECT r.run_id, r.stage, r.generator, r.teacher_model_ref, r.params::VARCHAR AS params, r.random_seed,
               r.prompt_template_sha256, r.taxonomy_commit, r.builder_version, utc(r.started_at) AS started_at,
               utc(r.ended_at) AS ended_at, r.status, r.stats::VARCHAR AS stats, r.build_id,
               r.judge_model_ref, r.rubric_sha256,
               count(rs.sample_id) AS samples, count(rs.sample_id) FILTER (rs.kept) AS kept,
               b.model_ref AS base_model, b.revision AS base_revision, b.license_spdx AS base_license
        FROM run r LEFT JOIN run_sample rs USING (run_id)
        LEFT JOIN (SELECT ri.run_id, m.model_ref, m.revision, m.license_spdx FROM run_input ri
                   JOIN external_model m ON m.model_ref = ri.input_id
                   WHERE ri.input_kind = 'external_model' AND ri.role = 'base') b USING (run_id)
        GROUP BY ALL ORDER BY min(r.started_at) DESC, r.run_id""")
    samples_by_run = _grouped(rows(con, """
        WITH counts AS (
            SELECT l.contribution_id, l.run_id, count(DISTINCT l.sample_id) AS samples,
                   count(DISTINCT l.sample_id) FILTER (s.kept) AS kept
            FROM sample_lineage l JOIN sample s USING (sample_id)
            WHERE l.contribution_id IS NOT NULL GROUP BY ALL
        ), reasons AS (  -- what each run's filters and judge dropped of the leaf's samples, by reason
            SELECT l.contribution_id, l.run_id, rs.drop_reason, count(DISTINCT l.sample_id) AS n
            FROM sample_lineage l JOIN run_sample rs ON rs.run_id = l.run_id AND rs.sample_id = l.sample_id
            WHERE l.contribution_id IS NOT NULL AND NOT rs.kept GROUP BY ALL
        ), dropped AS (
            SELECT contribution_id, run_id, string_agg(drop_reason || ' ' || n, ', ' ORDER BY n DESC, drop_reason)
                   AS dropped
            FROM reasons GROUP BY ALL
        )
        SELECT c.*, d.dropped FROM counts c LEFT JOIN dropped d USING (contribution_id, run_id)
        ORDER BY 1, 2"""), "contribution_id")
    chunk_edges: dict[str, dict[str, int]] = defaultdict(dict)
    for r in rows(con, """
            SELECT seed.contribution_id, chunk.doc_sha256, count(DISTINCT chunk.parent_id) AS chunks
            FROM sample_lineage chunk
            JOIN sample_lineage seed ON seed.sample_id = chunk.sample_id AND seed.parent_kind = 'seed'
            WHERE chunk.parent_kind = 'chunk' GROUP BY ALL ORDER BY 1, 2"""):
        chunk_edges[r["contribution_id"]][r["doc_sha256"]] = r["chunks"]
    # A few kept samples of the run whose count the page shows (the most kept, the newest of equals), so that
    # "3 of 18 samples shown" counts the samples they are drawn from.
    examples = _grouped([_example(r) for r in rows(con, f"""
        WITH per_run AS (
            SELECT l.contribution_id, l.run_id, count(DISTINCT l.sample_id) FILTER (s.kept) AS kept
            FROM sample_lineage l JOIN sample s USING (sample_id)
            WHERE l.contribution_id IS NOT NULL GROUP BY ALL),
        shown AS (
            SELECT p.contribution_id, arg_max(p.run_id, struct_pack(kept := p.kept, started := r.started_at)) AS run_id
            FROM per_run p JOIN run r USING (run_id) GROUP BY ALL)
        SELECT contribution_id, sample_id, messages::VARCHAR AS messages FROM (
            SELECT l.contribution_id, s.sample_id, s.messages,
                   row_number() OVER (PARTITION BY l.contribution_id ORDER BY s.sample_id) AS n
            FROM (SELECT DISTINCT contribution_id, run_id, sample_id FROM sample_lineage
                  WHERE contribution_id IS NOT NULL) l
            JOIN shown USING (contribution_id, run_id)
            JOIN sample s ON s.sample_id = l.sample_id AND s.kept)
        WHERE n <= {EXAMPLES_PER_CONTRIBUTION} ORDER BY contribution_id, sample_id""")], "contribution_id")
    # Every build of a dataset is a row (same name and split, other bytes): the id and date tell them apart
    datasets = _grouped(rows(con, """
        SELECT l.contribution_id, d.dataset_id, d.name, d.split, d.format, d.row_count,
               utc(d.created_at) AS created_at, count(DISTINCT m.sample_id) AS samples
        FROM (SELECT DISTINCT contribution_id, sample_id FROM sample_lineage WHERE contribution_id IS NOT NULL) l
        JOIN dataset_member m USING (sample_id) JOIN dataset d USING (dataset_id)
        GROUP BY ALL ORDER BY 1, d.name, d.split, d.format, 7 DESC, d.dataset_id"""), "contribution_id")
    takedowns = {r["subject"]: r for r in rows(con, """
        SELECT subject, subject_kind, reason, requested_by, utc(taken_down_at) AS taken_down_at FROM takedown
        ORDER BY subject""")}
    releases = rows(con, """
        SELECT release_id, build_id, status, utc(released_at) AS released_at, path, license_expression,
               taxonomy_commit, manifest_sha256, b.model_ref AS base_model, b.revision AS base_revision,
               b.license_spdx AS base_license
        FROM release LEFT JOIN (  -- the model fine-tuned: the base its shipped model artifacts derive from
            SELECT DISTINCT ra.release_id, m.model_ref, m.revision, m.license_spdx FROM release_artifact ra
            JOIN model_artifact ma ON ra.kind = 'model_artifact' AND ma.artifact_id = ra.ref_id
            JOIN external_model m ON m.model_ref = ma.base_model) b USING (release_id)
        ORDER BY release.released_at DESC, release_id DESC""")
    release_of: dict[str, list[str]] = defaultdict(list)
    for r in rows(con, """
            SELECT DISTINCT l.contribution_id, rs.release_id FROM v_release_samples rs
            JOIN sample_lineage l USING (sample_id) WHERE l.contribution_id IS NOT NULL ORDER BY 1, 2"""):
        release_of[r["contribution_id"]].append(r["release_id"])
    # Each model trained on its samples, with the datasets its run read and the model it was derived from (an ONNX
    # export from its adapter): the lineage diagram draws dataset -> adapter -> ONNX from these.
    models_of = _grouped(rows(con, """
        SELECT l.contribution_id, ma.artifact_id, ma.kind, ma.format, ma.run_id, ma.derived_from,
               list(DISTINCT d.name || '/' || d.split ORDER BY d.name || '/' || d.split) AS datasets
        FROM (SELECT DISTINCT contribution_id, sample_id FROM sample_lineage WHERE contribution_id IS NOT NULL) l
        JOIN dataset_member m USING (sample_id) JOIN dataset d USING (dataset_id)
        JOIN run_input ri ON ri.input_kind = 'dataset' AND ri.input_id = m.dataset_id
        JOIN model_artifact ma ON ma.run_id = ri.run_id
        GROUP BY ALL ORDER BY 1, ma.kind, ma.artifact_id"""), "contribution_id")
    return SiteData(
        contributions=contributions, versions=versions, contributors=contributors, attributions=attributions,
        seeds=seeds, sources=sources, findings=findings, documents=documents, document_users=dict(users),
        chunks=chunks, runs=runs, samples_by_run=samples_by_run, chunk_edges=dict(chunk_edges),
        examples=examples, datasets=datasets, takedowns=takedowns, releases=releases, release_of=dict(release_of), models_of=models_of,
        release_details=_release_details(con, releases), run_details=_run_details(con),
        commits=rows(con, """
            SELECT t.commit_sha, utc(t.committed_at) AS committed_at, t.subject,
                   count(DISTINCT v.contribution_id) AS new_contributions
            FROM taxonomy_commit t LEFT JOIN (
                SELECT contribution_id, arg_min(commit_sha, first_seen_run) AS commit_sha
                FROM contribution_version WHERE commit_sha IS NOT NULL GROUP BY contribution_id) v USING (commit_sha)
            GROUP BY ALL ORDER BY min(t.committed_at), t.commit_sha"""),
        license_summary=rows(con, "SELECT license, samples FROM v_license_summary"),
        document_licenses=rows(con, """
            SELECT coalesce(license_spdx, 'UNKNOWN') AS license, license_class, count(DISTINCT doc_sha256) AS documents
            FROM source_document GROUP BY ALL ORDER BY documents DESC, license"""),
        counts=_counts(con),
        impact=impact.load(con, rows),
    )


def _example(row: Row) -> Row:
    """A sample's messages, each cut to EXAMPLE_CHARS: the page shows what was generated, not all of it."""
    messages = json.loads(row.pop("messages"))
    row["messages"] = [{"role": str(m.get("role", "")), "content": _cut(str(m.get("content", "")))}
                       for m in messages if isinstance(m, dict)]
    return row


def _cut(text: str) -> str:
    return text if len(text) <= EXAMPLE_CHARS else text[:EXAMPLE_CHARS] + " …"


def _release_details(con: Any, releases: list[Row]) -> dict[str, dict[str, list[Row]]]:
    if not releases:
        return {}
    parts = {
        "artifacts": _grouped(rows(con, """
            SELECT release_id, kind, ref_id, relpath, sha256 FROM release_artifact ORDER BY release_id, relpath"""),
            "release_id"),
        "licenses": _grouped(rows(con, "SELECT * FROM v_release_license_summary"), "release_id"),
        "contributors": _grouped(rows(con, "SELECT * FROM v_release_contributors"), "release_id"),
        "checks": _grouped(rows(con, """
            SELECT release_id, rule, subject, severity, passed, overridden FROM v_release_checks
            ORDER BY release_id, rule, subject"""), "release_id"),  # refused attempts are not the release's
        "takedowns": _grouped(rows(con, """
            SELECT hit.release_id, t.subject, t.subject_kind, t.reason, t.requested_by,
                   utc(t.taken_down_at) AS taken_down_at, count(DISTINCT hit.sample_id) AS samples
            FROM (SELECT rs.release_id, rs.sample_id, l.contribution_id AS subject
                  FROM v_release_samples rs JOIN sample_lineage l USING (sample_id)
                  UNION SELECT rs.release_id, rs.sample_id, l.doc_sha256
                  FROM v_release_samples rs JOIN sample_lineage l USING (sample_id)) hit
            JOIN takedown t USING (subject)
            GROUP BY ALL ORDER BY hit.release_id, t.subject"""), "release_id"),
    }
    return {r["release_id"]: {name: part.get(r["release_id"], []) for name, part in parts.items()}
            for r in releases}


def _run_details(con: Any) -> dict[str, dict[str, list[Row]]]:
    parts = {
        "dropped": _grouped(rows(con, """
            SELECT run_id, drop_reason, count(*) AS samples FROM run_sample WHERE NOT kept
            GROUP BY ALL ORDER BY run_id, samples DESC, drop_reason"""), "run_id"),
        "contributions": _grouped(rows(con, """
            SELECT run_id, contribution_id, count(DISTINCT sample_id) AS samples FROM sample_lineage
            WHERE contribution_id IS NOT NULL GROUP BY ALL ORDER BY run_id, contribution_id"""), "run_id"),
        "models": _grouped(rows(con, """
            SELECT run_id, artifact_id, kind, format, derived_from, byte_size FROM model_artifact
            ORDER BY run_id, kind, artifact_id"""), "run_id"),
        "inputs": _grouped(rows(con, """
            SELECT run_id, input_kind, input_id, role FROM run_input
            WHERE input_kind NOT IN ('contribution', 'document') ORDER BY run_id, input_kind, role, input_id"""),
            "run_id"),  # (a base model's tokenizer text: every leaf and document, listed on their own pages)
    }
    run_ids = {r["run_id"] for r in rows(con, "SELECT run_id FROM run")}
    return {run_id: {name: part.get(run_id, []) for name, part in parts.items()} for run_id in run_ids}


def _counts(con: Any) -> dict[str, int]:
    queries = {
        "contributions": "SELECT count(*) FROM contribution WHERE status <> 'retired'",
        "contributors": "SELECT count(*) FROM contributor",
        "documents": "SELECT count(DISTINCT doc_sha256) FROM source_document",
        "seeds": "SELECT count(*) FROM seed_example s JOIN contribution c ON c.contribution_id = s.contribution_id "
                 "AND c.current_version_id = s.version_id",
        "samples": "SELECT count(*) FROM sample WHERE kept",  # every run's, older builds' included
        # What the datasets hold now: the newest build of each dataset file (name, split, format). Builds of one
        # taxonomy commit share created_at (SOURCE_DATE_EPOCH): the later row is the newer build.
        "dataset_samples": """SELECT count(DISTINCT m.sample_id) FROM dataset_member m JOIN (
                                  SELECT arg_max(dataset_id, struct_pack(t := created_at, r := rowid)) AS dataset_id
                                  FROM dataset GROUP BY name, split, format) USING (dataset_id)""",
        "runs": "SELECT count(*) FROM run",
        "generation_runs": f"SELECT count(*) FROM run WHERE stage IN {GENERATION_STAGES}",
        "datasets": "SELECT count(DISTINCT name) FROM dataset",
        "releases": "SELECT count(*) FROM release",
        "models": "SELECT count(*) FROM model_artifact",
    }
    return {name: int(con.execute(sql).fetchall()[0][0]) for name, sql in queries.items()}
