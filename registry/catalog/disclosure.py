"""What a release's disclosures say about its training data, read from the catalog: the attributions and documents
its samples derive from, the takedowns it honours, the models that generated or judged samples, and when the
material was collected. Every read takes the dataset files the release ships (their dataset ids)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

SHIPPED = "SELECT DISTINCT sample_id FROM dataset_member WHERE dataset_id IN (SELECT unnest(?::VARCHAR[]))"


@dataclass(frozen=True, slots=True)
class Attribution:
    """One work credited in a shipped contribution's attribution.txt, as written there."""

    contribution_id: str
    kind: str
    title: str | None
    creators: str | None
    link: str | None
    revision: str | None
    license_raw: str | None
    license_spdx: str | None
    samples: int  # shipped samples derived from the contribution


@dataclass(frozen=True, slots=True)
class Document:
    doc_sha256: str
    repo_url: str
    repo_commit: str
    path: str
    title: str | None
    byte_size: int
    license_spdx: str | None
    samples: int  # shipped samples derived from its chunks


@dataclass(frozen=True, slots=True)
class Takedown:
    subject: str
    subject_kind: str  # document | contribution
    reason: str  # (its time is left out: a wall-clock time would make two cuts differ)
    samples_excluded: int  # kept samples derived from it, none of which ships (takedown.excluded)


@dataclass(frozen=True, slots=True)
class Generator:
    """One generator of shipped samples: the seed replay, or a teacher model (with its judge, when one scored)."""

    generator: str
    teacher: str | None
    revision: str | None
    license_spdx: str | None
    output_terms: str | None
    judge: str | None
    samples: int


def attributions(con: Any, dataset_ids: list[str]) -> list[Attribution]:
    rows = con.execute(f"""
        WITH edges AS (SELECT DISTINCT contribution_id, version_id, sample_id FROM sample_lineage
                       WHERE contribution_id IS NOT NULL AND sample_id IN ({SHIPPED}))
        SELECT e.contribution_id, any_value(c.kind), a.title, a.creators, a.link, a.revision, a.license_raw,
               a.license_spdx, count(DISTINCT e.sample_id)
        FROM edges e JOIN contribution c USING (contribution_id)
        JOIN contribution_attribution ca ON ca.contribution_id = e.contribution_id AND ca.version_id = e.version_id
        JOIN attribution a ON a.contribution_id = ca.contribution_id AND a.attribution_sha256 = ca.attribution_sha256
        GROUP BY e.contribution_id, a.title, a.creators, a.link, a.revision, a.license_raw, a.license_spdx
        ORDER BY ALL""", [dataset_ids]).fetchall()
    return [Attribution(cid, kind, title, creators, link, revision, raw, spdx, int(n))
            for cid, kind, title, creators, link, revision, raw, spdx, n in rows]


def documents(con: Any, dataset_ids: list[str]) -> list[Document]:
    rows = con.execute(f"""
        SELECT d.doc_sha256, d.repo_url, d.repo_commit, d.path, d.title, d.byte_size, d.license_spdx,
               count(DISTINCT l.sample_id)
        FROM sample_lineage l JOIN source_document d USING (doc_sha256)
        WHERE l.sample_id IN ({SHIPPED})
        GROUP BY ALL ORDER BY d.repo_url, d.repo_commit, d.path, d.doc_sha256""", [dataset_ids]).fetchall()
    return [Document(sha, repo, commit, path, title, int(size), lic, int(n))
            for sha, repo, commit, path, title, size, lic, n in rows]


def takedowns(con: Any) -> list[Takedown]:
    rows = con.execute("""
        SELECT t.subject, t.subject_kind, t.reason,
               (SELECT count(DISTINCT l.sample_id) FROM sample_lineage l JOIN sample s USING (sample_id)
                WHERE s.kept AND (l.doc_sha256 = t.subject OR l.contribution_id = t.subject))
        FROM takedown t ORDER BY t.subject""").fetchall()
    return [Takedown(s, k, r, int(n)) for s, k, r, n in rows]


def generators(con: Any, dataset_ids: list[str]) -> list[Generator]:
    rows = con.execute(f"""
        SELECT r.generator, r.teacher_model_ref, any_value(m.revision), any_value(m.license_spdx),
               any_value(m.output_terms), json_extract_string(r.params, '$.judge_model'), count(DISTINCT rs.sample_id)
        FROM run_sample rs JOIN run r USING (run_id) LEFT JOIN external_model m ON m.model_ref = r.teacher_model_ref
        WHERE rs.kept AND rs.sample_id IN ({SHIPPED})
        GROUP BY r.generator, r.teacher_model_ref, json_extract_string(r.params, '$.judge_model')
        ORDER BY ALL""", [dataset_ids]).fetchall()
    return [Generator(generator, teacher, revision, lic, terms, judge, int(n))
            for generator, teacher, revision, lic, terms, judge, n in rows]


def contribution_dates(con: Any, dataset_ids: list[str]) -> tuple[datetime | None, datetime | None]:
    """The first and last taxonomy commit dates of the contribution versions the shipped samples derive from."""
    [(first, last)] = con.execute(f"""
        SELECT min(t.committed_at), max(t.committed_at) FROM sample_lineage l
        JOIN contribution_version v USING (contribution_id, version_id)
        JOIN taxonomy_commit t ON t.commit_sha = v.commit_sha
        WHERE l.sample_id IN ({SHIPPED})""", [dataset_ids]).fetchall()
    return first, last


def contributors(con: Any, dataset_ids: list[str]) -> list[str]:
    """The logins of the contributors whose contributions the shipped samples derive from."""
    rows = con.execute(f"""
        SELECT DISTINCT c.created_by FROM sample_lineage l JOIN contribution c USING (contribution_id)
        WHERE c.created_by IS NOT NULL AND l.sample_id IN ({SHIPPED}) ORDER BY 1""", [dataset_ids]).fetchall()
    return [str(r[0]) for r in rows]


def dropped(con: Any) -> dict[str, int]:
    """Samples the filters dropped, by reason (the cleaning a disclosure describes)."""
    rows = con.execute("SELECT drop_reason, count(*) FROM sample WHERE NOT kept GROUP BY 1 ORDER BY 1").fetchall()
    return {str(reason or "unspecified"): int(n) for reason, n in rows}
