"""The teacher journal: every finished teacher (and judge) request, persisted the moment it returns.

Rows live in the catalog table `teacher_request`, keyed by `request_sha256` (the sha256 of the canonical
request: model, messages, parameters, seed), the judge's beside the teacher's (`role`). A generator looks a
request up before sending it and reuses a stored `ok` response, so a run killed at any point resumes without
sending a finished request again.

`TeacherJournal` is the table's reader and writer on one DuckDB connection. `JournalWriter` is the single
writer a concurrent generator hands its finished requests to: one thread that owns its own cursor, drains
a queue and commits whatever has arrived in one transaction (group commit), so the event loop that sends the
requests never waits on the disk and no two threads ever write the catalog at once. A row the catalog refuses
is the only one lost from its group (`TeacherJournal.record` writes the group again row by row).
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from registry.errors import CatalogError

OK, FAILED = "ok", "failed"


class StoredRequest(NamedTuple):
    request_sha256: str
    status: str  # ok | failed
    response: str | None  # the endpoint's JSON body, as received
    attempts: int
    error: str | None


class FinishedRequest(NamedTuple):
    request_sha256: str
    run_id: str
    model_ref: str
    request: str  # canonical JSON of what was sent
    response: str | None
    status: str
    attempts: int  # HTTP attempts, over every run that sent it
    error: str | None
    role: str = "teacher"  # teacher | judge: who was asked


class TeacherJournal:
    """Lookups and writes of `teacher_request` (and the teacher's `external_model` row) on one connection."""

    def __init__(self, con: Any) -> None:
        self._con = con

    def lookup(self, request_sha256: str) -> StoredRequest | None:
        return self.lookup_many([request_sha256]).get(request_sha256)

    def lookup_many(self, hashes: Iterable[str]) -> dict[str, StoredRequest]:
        wanted = sorted(set(hashes))
        if not wanted:
            return {}
        rows = self._con.execute(
            "SELECT request_sha256, status, CAST(response AS VARCHAR), attempts, error FROM teacher_request "
            "WHERE request_sha256 IN (SELECT unnest(?::VARCHAR[]))", [wanted]).fetchall()
        return {r[0]: StoredRequest(*r) for r in rows}

    def record(self, finished: Sequence[FinishedRequest]) -> None:
        """Insert (or replace a failed row with) these requests: one statement, committed when it returns.

        When the catalog refuses the statement, each request is written alone: one it cannot take never takes
        the others with it, and is named in the `CatalogError` raised once the others are in.
        """
        try:
            self._insert(finished)
        except Exception as exc:
            if len(finished) == 1:
                raise CatalogError(f"the catalog refused teacher request {finished[0].request_sha256}: {exc}",
                                   hint="report it: a teacher's answer should always be storable") from None
            self._record_apart(finished)

    def _record_apart(self, finished: Sequence[FinishedRequest]) -> None:
        refused: CatalogError | None = None
        for row in finished:
            try:
                self.record([row])
            except CatalogError as exc:
                refused = refused or exc
        if refused is not None:
            raise refused

    def _insert(self, finished: Sequence[FinishedRequest]) -> None:
        if not finished:
            return
        now = datetime.now(UTC)
        rows = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(finished))  # one statement is one transaction
        self._con.execute("INSERT OR REPLACE INTO teacher_request (request_sha256, run_id, model_ref, request, "
                          f"response, status, attempts, error, role, finished_at) VALUES {rows}",
                          [value for row in finished for value in (*row, now)])

    def record_model(self, model_ref: str, license_spdx: str | None, output_terms: str | None) -> None:
        """The teacher (or the judge) in `external_model`; a license or terms given now replace the stored ones."""
        self._con.execute("""
            INSERT INTO external_model (model_ref, license_spdx, output_terms) VALUES (?, ?, ?)
            ON CONFLICT (model_ref) DO UPDATE SET
                license_spdx = coalesce(excluded.license_spdx, external_model.license_spdx),
                output_terms = coalesce(excluded.output_terms, external_model.output_terms)""",
                          [model_ref, license_spdx, output_terms])


def merge_run_stats(con: Any, run_id: str, extra: dict[str, Any]) -> None:
    """Add keys to a recorded run's stats (what a generator counted beside the samples)."""
    con.execute("UPDATE run SET stats = json_merge_patch(coalesce(stats, '{}'), ?::JSON) WHERE run_id = ?",
                [json.dumps(extra, sort_keys=True), run_id])


class JournalWriter:
    """The one writer: `submit` queues a finished request; a thread records and commits it at once.

    Whatever has queued up while the previous commit ran goes into the next transaction, so under load
    one commit carries many requests, and an idle writer commits each request alone, immediately.
    """

    def __init__(self, con: Any) -> None:
        self._journal = TeacherJournal(con.cursor())  # a cursor is a connection of its own, for this thread
        self._queue: queue.SimpleQueue[FinishedRequest | None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self.written = 0
        self._thread = threading.Thread(target=self._drain, name="teacher-journal", daemon=True)
        self._thread.start()

    def submit(self, finished: FinishedRequest) -> None:
        self._raise_if_broken()
        self._queue.put(finished)

    def close(self) -> None:
        """Wait until everything submitted is committed; re-raise a write that failed."""
        self._queue.put(None)
        self._thread.join()
        self._raise_if_broken()

    def _raise_if_broken(self) -> None:
        if self._error is not None:
            raise self._error

    def _drain(self) -> None:
        while True:
            batch = [self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            rows = [row for row in batch if row is not None]
            if rows and self._error is None:
                try:
                    self._journal.record(rows)
                    self.written += len(rows)
                except BaseException as exc:  # handed to the submitting side on its next call
                    self._error = exc
            if len(rows) < len(batch):
                return
