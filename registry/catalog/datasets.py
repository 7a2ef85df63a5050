"""What goes into a dataset (eligible samples with their provenance), and the record of what was written."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from registry.catalog.columns import insert, upsert
from registry.catalog.connection import transaction

# The per-record lineage columns of a dataset split, after id, kind and messages: what each sample derives from.
# Not its license: a changed attribution license must leave the split's bytes (and the model trained on them) as
# they are; the license follows from the contribution and document (v_sample_license in the catalog).
LINEAGE = {"contribution": "The taxonomy contribution(s) the sample derives from (their taxonomy paths).",
           "document": "The knowledge document(s) its text comes from, as repo@commit#path.",
           "generator": "The generator(s) that made it: seed, or teacher:<model>."}


@dataclass(frozen=True, slots=True)
class DatasetSample:
    sample_id: str
    kind: str
    contribution_ids: tuple[str, ...]
    licenses: tuple[str, ...]  # SPDX ids of its sources ("UNKNOWN" where none is known)
    teacher_model_refs: tuple[str, ...]
    documents: tuple[str, ...] = ()  # repo@commit#path of the documents its chunks come from
    generators: tuple[str, ...] = ()  # the runs that made it: "seed", or "teacher:<model>"

    def lineage(self) -> dict[str, str | None]:
        """The per-record lineage columns of a dataset split (and its Croissant fields)."""
        return {"contribution": ", ".join(self.contribution_ids) or None,
                "document": ", ".join(self.documents) or None, "generator": ", ".join(self.generators) or None}


# Samples derived from a taken-down contribution or document (`taxreg takedown`): never in a new dataset.
_BLOCKED = """
    SELECT DISTINCT l.sample_id FROM sample_lineage l LEFT JOIN contribution c USING (contribution_id)
    WHERE c.status = 'taken_down' OR l.contribution_id IN (SELECT subject FROM takedown)
       OR l.doc_sha256 IN (SELECT subject FROM takedown)"""


def blocked_samples(con: Any) -> set[str]:
    """The ids of samples a takedown keeps out of every dataset built from now on."""
    return {sid for (sid,) in con.execute(_BLOCKED).fetchall()}


def dataset_samples(con: Any, dataset_ids: list[str]) -> set[str]:
    """The sample ids the given dataset files hold."""
    return {sid for (sid,) in con.execute("SELECT DISTINCT sample_id FROM dataset_member WHERE dataset_id IN "
                                          "(SELECT unnest(?::VARCHAR[]))", [dataset_ids]).fetchall()}


# Kept samples derived from the current version of an active contribution, none from a taken-down one, with their
# contributions, licenses and teachers (? twice: a run id, or NULL for every run).
ELIGIBLE_SQL = f"""
        WITH live AS (
            SELECT DISTINCT l.sample_id FROM sample_lineage l JOIN contribution c
              ON c.contribution_id = l.contribution_id AND c.current_version_id = l.version_id
            WHERE c.status = 'active'
        ), blocked AS ({_BLOCKED}), chosen AS (
            SELECT s.sample_id, s.kind FROM sample s
            WHERE s.kept AND s.sample_id IN (SELECT sample_id FROM live)
              AND s.sample_id NOT IN (SELECT sample_id FROM blocked)
              AND (? IS NULL OR s.sample_id IN (SELECT sample_id FROM run_sample WHERE run_id = ?))
        ), edges AS (  -- per contribution, the newest run's version: an older one's attribution is not current
            SELECT l.* FROM sample_lineage l LEFT JOIN run r USING (run_id) SEMI JOIN chosen USING (sample_id)
            QUALIFY l.version_id IS NOT DISTINCT FROM arg_max(l.version_id, row(
                coalesce(r.started_at, TIMESTAMPTZ '1970-01-01 00:00:00+00'), l.run_id, l.version_id))
                OVER (PARTITION BY l.sample_id, l.contribution_id)
        ), contributions AS (
            SELECT sample_id, list(DISTINCT contribution_id ORDER BY contribution_id) AS ids
            FROM edges WHERE contribution_id IS NOT NULL GROUP BY sample_id
        ), licenses AS (
            SELECT l.sample_id,
                   list(DISTINCT coalesce(d.license_spdx, a.license_spdx, 'UNKNOWN') ORDER BY 1) AS ids
            FROM edges l
            LEFT JOIN (SELECT DISTINCT doc_sha256, license_spdx FROM source_document) d
                   ON l.parent_kind = 'chunk' AND d.doc_sha256 = l.doc_sha256
            LEFT JOIN contribution_attribution ca
                   ON l.parent_kind = 'seed' AND ca.contribution_id = l.contribution_id AND ca.version_id = l.version_id
            LEFT JOIN attribution a
                   ON a.contribution_id = ca.contribution_id AND a.attribution_sha256 = ca.attribution_sha256
            WHERE l.parent_kind IN ('seed', 'chunk') GROUP BY l.sample_id
        ), teachers AS (
            SELECT rs.sample_id, list(DISTINCT r.teacher_model_ref ORDER BY r.teacher_model_ref) AS ids
            FROM run_sample rs JOIN run r USING (run_id) SEMI JOIN chosen USING (sample_id)
            WHERE r.teacher_model_ref IS NOT NULL GROUP BY rs.sample_id
        ), documents AS (
            SELECT e.sample_id, list(DISTINCT d.repo_url || '@' || d.repo_commit || '#' || d.path ORDER BY 1) AS ids
            FROM edges e JOIN source_document d USING (doc_sha256) GROUP BY e.sample_id
        ), generators AS (  -- the runs that kept the sample: seed, or teacher:<model>
            SELECT rs.sample_id, list(DISTINCT r.generator || coalesce(':' || r.teacher_model_ref, '') ORDER BY 1)
                   AS ids
            FROM run_sample rs JOIN run r USING (run_id) SEMI JOIN chosen USING (sample_id)
            WHERE rs.kept GROUP BY rs.sample_id
        )
        SELECT c.sample_id, c.kind, k.ids, l.ids, t.ids, d.ids, g.ids
        FROM chosen c LEFT JOIN contributions k USING (sample_id) LEFT JOIN licenses l USING (sample_id)
        LEFT JOIN teachers t USING (sample_id) LEFT JOIN documents d USING (sample_id)
        LEFT JOIN generators g USING (sample_id)
        ORDER BY c.sample_id"""


def eligible_samples(con: Any, run_id: str | None = None) -> list[DatasetSample]:
    """Kept samples derived from the current version of an active contribution, none from a taken-down one."""
    rows = con.execute(ELIGIBLE_SQL, [run_id, run_id]).fetchall()
    return [DatasetSample(sid, kind, tuple(cids or ()), tuple(lic or ("UNKNOWN",)), tuple(teachers or ()),
                          tuple(docs or ()), tuple(generators or ()))
            for sid, kind, cids, lic, teachers, docs, generators in rows]


def license_inputs(con: Any) -> list[tuple[str, str, str | None]]:
    """The licenses a dataset's roll-up reads (attributions of current versions, documents): a build keys its
    dataset stage by them, since a changed license leaves the samples, and so the file bytes, the same."""
    rows = con.execute("""
        SELECT 'attribution', ca.contribution_id, a.license_spdx FROM contribution c
        JOIN contribution_attribution ca ON ca.contribution_id = c.contribution_id
                                         AND ca.version_id = c.current_version_id
        JOIN attribution a ON a.contribution_id = ca.contribution_id AND a.attribution_sha256 = ca.attribution_sha256
        WHERE c.status = 'active'
        UNION ALL
        SELECT DISTINCT 'document', doc_sha256, license_spdx FROM source_document
        ORDER BY ALL""").fetchall()
    return [(kind, subject, lic) for kind, subject, lic in rows]


@dataclass(frozen=True, slots=True)
class WrittenFile:
    split: str
    format: str
    path: str
    sha256: str
    byte_size: int
    rows: int
    members: dict[str, int]  # sample_id -> copies


def record_dataset(con: Any, name: str, files: list[WrittenFile], license_expression: str, params: dict[str, Any],
                   created_at: datetime, before_commit: Callable[[], None] | None = None) -> None:
    """The dataset's files and members in one transaction; `before_commit` runs inside it (renaming the files into
    place), so the catalog never names files that are not there."""
    with transaction(con):
        # Same bytes, new inputs (an attribution's license changed): the row follows the current inputs
        upsert(con, "dataset", {
            "dataset_id": [f.sha256 for f in files], "name": [name] * len(files), "split": [f.split for f in files],
            "row_count": [f.rows for f in files], "path": [f.path for f in files],
            "format": [f.format for f in files], "sha256": [f.sha256 for f in files],
            "byte_size": [f.byte_size for f in files], "license_expression": [license_expression] * len(files),
            "params": [json.dumps(params, sort_keys=True)] * len(files), "created_at": [created_at] * len(files)},
            key=("dataset_id",), update=("license_expression", "params"))
        members = [(f.sha256, sid, copies) for f in files for sid, copies in sorted(f.members.items())]
        insert(con, "dataset_member", {"dataset_id": [m[0] for m in members], "sample_id": [m[1] for m in members],
                                       "copies": [m[2] for m in members]})
        if before_commit is not None:
            before_commit()
