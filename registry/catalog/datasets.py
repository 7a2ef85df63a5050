"""What goes into a dataset (eligible samples with their provenance), and the record of what was written."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from registry.catalog.columns import insert


@dataclass(frozen=True, slots=True)
class DatasetSample:
    sample_id: str
    kind: str
    messages: list[dict[str, str]]
    contribution_ids: tuple[str, ...]
    licenses: tuple[str, ...]  # SPDX ids of its sources ("UNKNOWN" where none is known)
    teacher_model_refs: tuple[str, ...]


def eligible_samples(con: Any, run_id: str | None = None) -> list[DatasetSample]:
    """Kept samples derived from the current version of an active contribution (none taken down)."""
    rows = con.execute("""
        WITH live AS (
            SELECT DISTINCT l.sample_id FROM sample_lineage l JOIN contribution c
              ON c.contribution_id = l.contribution_id AND c.current_version_id = l.version_id
            WHERE c.status = 'active'
        ), blocked AS (
            SELECT DISTINCT l.sample_id FROM sample_lineage l JOIN contribution c USING (contribution_id)
            WHERE c.status = 'taken_down'
        ), licenses AS (
            SELECT l.sample_id, coalesce(d.license_spdx, a.license_spdx, 'UNKNOWN') AS license
            FROM sample_lineage l
            LEFT JOIN (SELECT DISTINCT doc_sha256, license_spdx FROM source_document) d
                   ON l.parent_kind = 'chunk' AND d.doc_sha256 = l.doc_sha256
            LEFT JOIN contribution_attribution ca
                   ON l.parent_kind = 'seed' AND ca.contribution_id = l.contribution_id AND ca.version_id = l.version_id
            LEFT JOIN attribution a
                   ON a.contribution_id = ca.contribution_id AND a.attribution_sha256 = ca.attribution_sha256
        )
        SELECT s.sample_id, s.kind, s.messages,
               list(DISTINCT l.contribution_id ORDER BY l.contribution_id) FILTER (l.contribution_id IS NOT NULL),
               (SELECT list(DISTINCT license ORDER BY license) FROM licenses x WHERE x.sample_id = s.sample_id),
               (SELECT list(DISTINCT r.teacher_model_ref ORDER BY r.teacher_model_ref) FROM run_sample rs
                  JOIN run r USING (run_id) WHERE rs.sample_id = s.sample_id AND r.teacher_model_ref IS NOT NULL)
        FROM sample s JOIN sample_lineage l USING (sample_id)
        WHERE s.kept AND s.sample_id IN (SELECT sample_id FROM live)
          AND s.sample_id NOT IN (SELECT sample_id FROM blocked)
          AND (? IS NULL OR s.sample_id IN (SELECT sample_id FROM run_sample WHERE run_id = ?))
        GROUP BY s.sample_id, s.kind, s.messages
        ORDER BY s.sample_id""", [run_id, run_id]).fetchall()
    return [DatasetSample(sid, kind, json.loads(messages), tuple(cids or ()), tuple(lic or ("UNKNOWN",)),
                          tuple(teachers or ())) for sid, kind, messages, cids, lic, teachers in rows]


def source_date(con: Any) -> datetime | None:
    """The end of the newest successful run: a date that depends only on the catalog (reproducible)."""
    row = con.execute("SELECT epoch(max(ended_at)) FROM run WHERE status = 'succeeded'").fetchone()
    return datetime.fromtimestamp(int(row[0]), UTC) if row and row[0] is not None else None


@dataclass(frozen=True, slots=True)
class WrittenFile:
    split: str
    format: str
    path: str
    sha256: str
    byte_size: int
    rows: int
    members: dict[str, int]  # sample_id -> copies


def record_dataset(con: Any, name: str, files: list[WrittenFile], license_expression: str,
                   params: dict[str, Any], created_at: datetime) -> None:
    con.execute("BEGIN TRANSACTION")
    try:
        insert(con, "dataset", {
            "dataset_id": [f.sha256 for f in files], "name": [name] * len(files), "split": [f.split for f in files],
            "row_count": [f.rows for f in files], "path": [f.path for f in files],
            "format": [f.format for f in files], "sha256": [f.sha256 for f in files],
            "byte_size": [f.byte_size for f in files], "license_expression": [license_expression] * len(files),
            "params": [json.dumps(params, sort_keys=True)] * len(files), "created_at": [created_at] * len(files)})
        members = [(f.sha256, sid, copies) for f in files for sid, copies in sorted(f.members.items())]
        insert(con, "dataset_member", {"dataset_id": [m[0] for m in members], "sample_id": [m[1] for m in members],
                                       "copies": [m[2] for m in members]})
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
