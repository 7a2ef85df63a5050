"""The `build` table: one row per `taxreg build`, opened when it starts and closed with its stage stats."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from registry import __version__


def start_build(con: Any, taxonomy_commit: str | None, config_sha256: str, source_date_epoch: int | None) -> str:
    build_id = uuid.uuid4().hex
    con.execute("INSERT INTO build (build_id, taxonomy_commit, builder_version, config_sha256, source_date_epoch, "
                "started_at, status) VALUES (?, ?, ?, ?, ?, ?, 'running')",
                [build_id, taxonomy_commit, __version__, config_sha256, source_date_epoch, datetime.now(UTC)])
    return build_id


def finish_build(con: Any, build_id: str, status: str, stats: dict[str, Any]) -> None:
    con.execute("UPDATE build SET finished_at = ?, status = ?, stats = ? WHERE build_id = ?",
                [datetime.now(UTC), status, json.dumps(stats, sort_keys=True), build_id])


def close_abandoned(con: Any) -> int:
    """Builds still 'running' were killed (the build lock is free when this runs): mark them so."""
    rows = con.execute("UPDATE build SET status = 'killed' WHERE status = 'running' RETURNING build_id").fetchall()
    return len(rows)


def active_leaves_digest(con: Any) -> list[tuple[str, str, list[str]]]:
    """What generation reads: each active contribution's current version and the documents it references."""
    rows = con.execute("""
        SELECT c.contribution_id, c.current_version_id,
               list(DISTINCT cs.doc_sha256 ORDER BY cs.doc_sha256) FILTER (WHERE cs.doc_sha256 IS NOT NULL)
        FROM contribution c
        LEFT JOIN contribution_source cs
               ON cs.contribution_id = c.contribution_id AND cs.version_id = c.current_version_id
        WHERE c.status = 'active'
        GROUP BY ALL ORDER BY 1""").fetchall()
    return [(cid, vid, list(docs or [])) for cid, vid, docs in rows]


def tokenizer_text_digest(con: Any) -> str:
    """A digest of the text the demo tokenizer is trained on: each active leaf's task, outline, seed examples and
    documents, by content. Unlike the leaves' versions, it stays the same for an edit of a comment, an attribution or
    a contributor name: the demo base model is made again only when its text changed."""
    rows = con.execute("""
        SELECT c.contribution_id, v.task_description, v.document_outline,
               (SELECT list([s.context, s.question, s.answer] ORDER BY s.ordinal) FROM seed_example s
                WHERE s.contribution_id = c.contribution_id AND s.version_id = c.current_version_id),
               (SELECT list(DISTINCT cs.doc_sha256 ORDER BY cs.doc_sha256) FROM contribution_source cs
                WHERE cs.contribution_id = c.contribution_id AND cs.version_id = c.current_version_id)
        FROM contribution c JOIN contribution_version v
          ON v.contribution_id = c.contribution_id AND v.version_id = c.current_version_id
        WHERE c.status = 'active' ORDER BY 1""").fetchall()
    return hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest()


def takedown_subjects(con: Any) -> list[str]:
    return [s for (s,) in con.execute("SELECT subject FROM takedown ORDER BY subject").fetchall()]


def catalog_state(con: Any) -> str:
    """A digest of what a release is cut from: the active leaves, takedowns, dataset files and the last index run.
    A cut takes it before its gates and again inside its commit: what it ships is what the gates saw."""
    datasets = [d for (d,) in con.execute("SELECT dataset_id FROM dataset ORDER BY 1").fetchall()]
    last = con.execute("SELECT run_id FROM index_run ORDER BY finished_at DESC, run_id LIMIT 1").fetchall()
    state = [active_leaves_digest(con), takedown_subjects(con), datasets, last[0][0] if last else None]
    return hashlib.sha256(json.dumps(state, default=str).encode()).hexdigest()


def catalog_id(con: Any) -> str:
    """A random id minted once per catalog file: stage keys include it, so a new catalog reruns every stage."""
    con.execute("INSERT OR IGNORE INTO catalog_meta VALUES ('catalog_id', ?)", [uuid.uuid4().hex])
    [(value,)] = con.execute("SELECT value FROM catalog_meta WHERE key = 'catalog_id'").fetchall()
    return str(value)
