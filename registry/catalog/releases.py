"""Release rows (release, release_artifact), what a release ships (read from the catalog), and takedowns."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from registry.catalog.columns import insert
from registry.catalog.connection import transaction
from registry.errors import RegistryError
from registry.release.manifest import ContributionEntry, Manifest

SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class DatasetFile:
    dataset_id: str
    name: str
    split: str
    format: str
    rows: int
    license_expression: str | None
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ReleaseArtifact:
    kind: str  # dataset | model_artifact | file
    ref_id: str
    relpath: str
    sha256: str


def dataset_files(con: Any, sha256s: list[str]) -> dict[str, DatasetFile]:
    """The dataset rows of files on disk (dataset_id = sha256 of the file); a file the catalog lacks is absent."""
    rows = con.execute("""
        SELECT dataset_id, name, split, format, row_count, license_expression, params FROM dataset
        WHERE dataset_id IN (SELECT unnest(?::VARCHAR[]))""", [sha256s]).fetchall()
    return {r[0]: DatasetFile(r[0], r[1], r[2], r[3], int(r[4]), r[5], json.loads(r[6])) for r in rows}


def shipped_contributions(con: Any, dataset_ids: list[str]) -> list[ContributionEntry]:
    """Each contribution the shipped samples derive from, its version, and a digest of exactly which samples."""
    rows = con.execute("""
        WITH shipped AS (SELECT DISTINCT sample_id FROM dataset_member
                         WHERE dataset_id IN (SELECT unnest(?::VARCHAR[]))),
        edges AS (SELECT DISTINCT l.contribution_id, l.version_id, l.sample_id, l.run_id,
                         coalesce(r.started_at, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS run_started
                  FROM sample_lineage l LEFT JOIN run r USING (run_id)
                  SEMI JOIN shipped USING (sample_id) WHERE l.contribution_id IS NOT NULL),
        licenses AS (SELECT contribution_id, list(DISTINCT coalesce(license_spdx, 'UNKNOWN') ORDER BY 1) AS ids
                     FROM v_sample_license SEMI JOIN shipped USING (sample_id) GROUP BY 1)
        -- an unchanged sample keeps its edges to older versions: the version is that of the newest run's edge
        SELECT e.contribution_id, arg_max(e.version_id, struct_pack(e.run_started, e.run_id, e.version_id)),
               any_value(c.kind), count(DISTINCT e.sample_id),
               sha256(string_agg(DISTINCT e.sample_id, chr(10) ORDER BY e.sample_id)), any_value(l.ids)
        FROM edges e LEFT JOIN contribution c USING (contribution_id) LEFT JOIN licenses l USING (contribution_id)
        GROUP BY e.contribution_id ORDER BY e.contribution_id""", [dataset_ids]).fetchall()
    return [ContributionEntry(cid, vid, kind or "unknown", int(n), digest, tuple(lic or ()))
            for cid, vid, kind, n, digest, lic in rows]


def shipped_samples(con: Any, dataset_ids: list[str]) -> dict[str, int]:
    rows = con.execute("""
        SELECT s.kind, count(*) FROM sample s
        WHERE s.sample_id IN (SELECT sample_id FROM dataset_member WHERE dataset_id IN (SELECT unnest(?::VARCHAR[])))
        GROUP BY 1 ORDER BY 1""", [dataset_ids]).fetchall()
    counts = {f"kind:{kind}": int(n) for kind, n in rows}
    return {"total": sum(counts.values()), **counts}


def license_mix(con: Any, dataset_ids: list[str]) -> list[dict[str, Any]]:
    """License x class -> samples, documents, contributions (like v_release_license_summary, before the release)."""
    rows = con.execute("""
        SELECT coalesce(license_spdx, 'UNKNOWN'), license_class, count(DISTINCT sample_id),
               count(DISTINCT doc_sha256), count(DISTINCT contribution_id)
        FROM v_sample_license
        WHERE sample_id IN (SELECT sample_id FROM dataset_member WHERE dataset_id IN (SELECT unnest(?::VARCHAR[])))
        GROUP BY ALL ORDER BY 1, 2""", [dataset_ids]).fetchall()
    return [{"license": lic, "license_class": cls, "samples": int(s), "documents": int(d), "contributions": int(c)}
            for lic, cls, s, d, c in rows]


def teachers(con: Any, dataset_ids: list[str]) -> list[dict[str, Any]]:
    rows = con.execute("""
        SELECT DISTINCT r.teacher_model_ref, m.revision, m.license_spdx, m.output_terms
        FROM run_sample rs JOIN run r USING (run_id) LEFT JOIN external_model m ON m.model_ref = r.teacher_model_ref
        WHERE rs.kept AND r.teacher_model_ref IS NOT NULL
          AND rs.sample_id IN (SELECT sample_id FROM dataset_member WHERE dataset_id IN (SELECT unnest(?::VARCHAR[])))
        ORDER BY 1""", [dataset_ids]).fetchall()
    return [{"model_ref": ref, "revision": rev, "license": lic, "output_terms": terms} for ref, rev, lic, terms in rows]


def generation_seeds(con: Any, dataset_ids: list[str]) -> list[dict[str, Any]]:
    """The runs that made the shipped samples: generator, seed, template hash (no run ids: they are random)."""
    rows = con.execute("""
        SELECT DISTINCT r.generator, r.random_seed, r.prompt_template_sha256, r.teacher_model_ref
        FROM run_sample rs JOIN run r USING (run_id)
        WHERE rs.sample_id IN (SELECT sample_id FROM dataset_member WHERE dataset_id IN (SELECT unnest(?::VARCHAR[])))
        ORDER BY ALL""", [dataset_ids]).fetchall()
    return [{"generator": g, "random_seed": int(seed), "prompt_template_sha256": t, "teacher": teacher}
            for g, seed, t, teacher in rows]


def model_artifacts(con: Any, kinds: tuple[str, ...]) -> dict[str, tuple[dict[str, Any], dict[str, str]]]:
    """The newest artifact of each kind with its files {relpath: sha256}."""
    rows = con.execute("""
        SELECT DISTINCT ON (kind) artifact_id, kind, base_model, derived_from, format, path, sha256, metrics
        FROM model_artifact WHERE kind IN (SELECT unnest(?::VARCHAR[])) ORDER BY kind, created_at DESC""",
                       [list(kinds)]).fetchall()
    found = {}
    for artifact_id, kind, base, derived, fmt, path, sha, metrics in rows:
        files = dict(con.execute("SELECT relpath, sha256 FROM artifact_file WHERE artifact_id = ?",
                                 [artifact_id]).fetchall())
        found[kind] = ({"artifact_id": artifact_id, "kind": kind, "base_model": base, "derived_from": derived,
                        "format": fmt, "path": path, "sha256": sha,
                        "metrics": json.loads(metrics) if metrics else None}, files)
    return found


def external_model(con: Any, model_ref: str) -> dict[str, Any] | None:
    rows = con.execute("SELECT model_ref, revision, license_spdx, output_terms, weights_sha256 FROM external_model "
                       "WHERE model_ref = ?", [model_ref]).fetchall()
    if not rows:
        return None
    ref, rev, lic, terms, weights = rows[0]
    return {"model_ref": ref, "revision": rev, "license": lic, "output_terms": terms, "weights_sha256": weights}


def release_exists(con: Any, version: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM release WHERE release_id = ?", [version]).fetchall()[0][0])


PENDING = "pending_release:"  # catalog_meta key of a cut's folder, written before it is renamed into place


def mark_pending(con: Any, version: str, manifest_sha256: str) -> None:
    """Before a cut renames its folder into place (and commits): the folder a kill would leave is this one. Only a
    folder with this manifest is adopted by the next cut; a hand-made one, however consistent, is not."""
    con.execute("INSERT OR REPLACE INTO catalog_meta VALUES (?, ?)", [PENDING + version, manifest_sha256])


def pending(con: Any, version: str) -> str | None:
    rows = con.execute("SELECT value FROM catalog_meta WHERE key = ?", [PENDING + version]).fetchall()
    return str(rows[0][0]) if rows else None


def clear_pending(con: Any, version: str) -> None:
    con.execute("DELETE FROM catalog_meta WHERE key = ?", [PENDING + version])


def record_release(con: Any, manifest: Manifest, path: str, manifest_sha256: str, build_id: str | None,
                   artifacts: list[ReleaseArtifact], released_at: datetime) -> None:
    """The release row and one release_artifact row per shipped file (the caller holds the transaction)."""
    con.execute("INSERT INTO release VALUES (?, ?, 'published', ?, ?, ?, ?, ?, ?)",
                [manifest.version, build_id, released_at, path, manifest.license,
                 manifest.inputs.get("taxonomy_commit"), manifest_sha256, json.dumps(list(manifest.allowed))])
    unique = sorted({(a.kind, a.ref_id, a.relpath): a for a in artifacts}.values(), key=lambda a: a.relpath)
    insert(con, "release_artifact", {
        "release_id": [manifest.version] * len(unique), "kind": [a.kind for a in unique],
        "ref_id": [a.ref_id for a in unique], "relpath": [a.relpath for a in unique],
        "sha256": [a.sha256 for a in unique]})


def list_releases(con: Any) -> tuple[list[str], list[tuple[Any, ...]]]:
    """One row per release; `files` counts what its SHA256SUMS lists, as cut and verify count (the manifest's
    files and manifest.json itself)."""
    columns = ["release_id", "status", "released_at", "license_expression", "taxonomy_commit", "files", "samples",
               "path"]
    rows = con.execute("""
        SELECT r.release_id, r.status, CAST(r.released_at AS VARCHAR), r.license_expression, r.taxonomy_commit,
               (SELECT count(*) FROM release_artifact ra WHERE ra.release_id = r.release_id) + 1,
               (SELECT count(*) FROM v_release_samples rs WHERE rs.release_id = r.release_id), r.path
        FROM release r ORDER BY r.released_at, r.release_id""").fetchall()
    return columns, rows


# Takedowns


@dataclass(frozen=True, slots=True)
class Impact:
    subject: str
    subject_kind: str  # document | contribution
    rows: list[tuple[str, str, str]]  # (what, id, detail) from the takedown_impact macro

    def ids(self, what: str) -> list[str]:
        return sorted({i for w, i, _ in self.rows if w == what})


def subject_kind(con: Any, subject: str) -> str:
    """A document (its sha256) or a contribution (its taxonomy path); anything else is a usage error."""
    if SHA256.match(subject) and con.execute("SELECT count(*) FROM source_document WHERE doc_sha256 = ?",
                                             [subject]).fetchall()[0][0]:
        return "document"
    if con.execute("SELECT count(*) FROM contribution WHERE contribution_id = ?", [subject]).fetchall()[0][0]:
        return "contribution"
    raise RegistryError(f"{subject!r} is neither a document sha256 nor a contribution in the catalog",
                        hint="find one with: taxreg query \"SELECT doc_sha256, path FROM source_document\" "
                             "or \"SELECT contribution_id FROM contribution\"")


def takedown_impact(con: Any, subject: str) -> Impact:
    kind = subject_kind(con, subject)
    rows = con.execute("SELECT what, id, coalesce(detail, '') FROM takedown_impact(?) ORDER BY 1, 2",
                       [subject]).fetchall()
    return Impact(subject, kind, [(w, i, d) for w, i, d in rows])


def check_reason(reason: str) -> None:
    if not reason.strip():
        raise RegistryError("a takedown needs a reason", hint="pass --reason 'why it must go' (or --dry-run)")


def take_down(con: Any, impact: Impact, reason: str, requested_by: str | None, when: datetime) -> bool:
    """Record the takedown (once) and retire a contribution; False when it was already taken down."""
    check_reason(reason)
    with transaction(con):
        inserted = con.execute("INSERT OR IGNORE INTO takedown VALUES (?, ?, ?, ?, ?) RETURNING subject",
                               [impact.subject, impact.subject_kind, reason, requested_by, when]).fetchall()
        if impact.subject_kind == "contribution":
            con.execute("UPDATE contribution SET status = 'taken_down' WHERE contribution_id = ?", [impact.subject])
    return bool(inserted)
