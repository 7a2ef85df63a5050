"""OpenAI Batch API files: a run's requests written as JSONL for a batch service, and the results read back.

A request line (`--batch-out FILE`), one per request the journal holds no answer to:

    {"custom_id": KEY, "method": "POST", "url": "/v1/chat/completions", "body": {...}}

`body` is byte for byte the request a live run sends and `custom_id` its journal key (the sha256 of that body), so
vLLM's `run-batch`, an OpenAI-compatible batch service or a Ray Data job answers the very requests a live run asks.
A result line (`--batch-in FILE`, repeatable; lines in any order):

    {"id": ..., "custom_id": KEY, "response": {"status_code": 200, "request_id": ..., "body": {...}}, "error": null}

Each result of a request the run plans is journaled as a live answer is (`ok` with its body, or `failed` with the
status or error), so samples, sample ids and lineage are those of a live run, and a rerun reuses them. Results
of requests it does not plan (another round's, another run's) are left alone.

The round trip, the judge included (each step is the same `taxreg generate` command plus these options):

1. `--batch-out teacher.jsonl`: the teacher requests; nothing else is done, no run is recorded.
2. `--batch-in teacher-results.jsonl --batch-out judge.jsonl`: the teacher's answers are journaled and turned
   into samples, and the judge requests for the samples the filters kept are written.
3. `--batch-in judge-results.jsonl`: the judge's answers are journaled and the run is recorded, as a live run's.

Without a judge, step 2 without `--batch-out` records the run. Wherever `--batch-out` is given and requests of
the current round have no result yet (results that failed included), those are written and the command stops
there; without it, a request with no result counts as failed, and the teacher's failure rules decide.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.generators.completions import MalformedResponse, printable, storable_body
from builder.generators.sending import Recorder, Sendable
from registry import folders
from registry.errors import RegistryError

REQUEST_URL = "/v1/chat/completions"


class BatchPending(Exception):
    """Not an error: the requests of a round were written to a batch file, to be answered before the run goes on."""

    def __init__(self, role: str, path: Path, requests: int, answered: int) -> None:
        super().__init__(f"{requests} {role} requests written to {path}")
        self.role, self.path, self.requests, self.answered = role, path, requests, answered


@dataclass(frozen=True, slots=True)
class BatchFiles:
    results: tuple[Path, ...] = ()  # --batch-in: result files to journal
    out: Path | None = None  # --batch-out: where the requests still without an answer are written

    def check(self) -> None:
        """Before any work: the result files can be read, the request file can be written."""
        for path in self.results:
            if not path.is_file():
                raise RegistryError(f"--batch-in {path}: no such file",
                                    hint="pass the results file the batch service wrote")
        if self.out is not None and not self.out.parent.is_dir():
            raise RegistryError(f"--batch-out {self.out}: the folder {self.out.parent} does not exist",
                                hint="create it, or pass a path inside an existing folder")

    def answer(self, todo: Sequence[Sendable], recorder: Recorder) -> None:
        """Journal the results of `todo`; write what has none to `out` (`BatchPending`), or count it as failed."""
        found = _results(self.results, {r.request_sha256 for r in todo})
        left = []
        for request in todo:
            result = found.get(request.request_sha256)
            if result is None:
                left.append(request)
                continue
            body, error = _outcome(result)
            recorder.report.batch_results += 1
            recorder.finish(request, body, recorder.attempts_before(request) + 1, error)
        failed = [r for r in todo if r.request_sha256 in found and r.request_sha256 not in recorder.answers]
        if self.out is not None and (left or failed):
            write_requests(self.out, [*left, *failed])
            raise BatchPending(recorder.endpoint.role, self.out, len(left) + len(failed), len(recorder.answers))
        if left:
            recorder.fail(f"no result in the --batch-in files for {len(left)} requests", len(left))


def write_requests(path: Path, requests: Sequence[Sendable]) -> None:
    """One Batch API request line per request, its body the exact canonical bytes a live run sends."""
    folders.write_lines(path, (f'{{"body":{r.request_json},"custom_id":"{r.request_sha256}","method":"POST",'
                               f'"url":"{REQUEST_URL}"}}' for r in requests))


def _results(paths: Sequence[Path], wanted: set[str]) -> dict[str, dict[str, Any]]:
    """The result lines of the wanted keys (the last one of a key wins); a line that is not a result: one message."""
    found: dict[str, dict[str, Any]] = {}
    for path, number, line in _lines(paths):
        try:
            result = json.loads(line)
        except ValueError as exc:
            raise RegistryError(f"{path}:{number}: not JSON ({exc})",
                                hint="pass the results file of a Batch API run (one JSON object a line)") from None
        if not isinstance(result, dict) or not isinstance(result.get("custom_id"), str):
            raise RegistryError(f"{path}:{number}: not a Batch API result (no custom_id)",
                                hint="each line is {\"custom_id\", \"response\": {\"status_code\", \"body\"}, "
                                     "\"error\"}")
        if result["custom_id"] in wanted:
            found[result["custom_id"]] = result
    return found


def _lines(paths: Sequence[Path]) -> Iterator[tuple[Path, int, str]]:
    for path in paths:
        try:
            with path.open(encoding="utf-8") as handle:
                for number, line in enumerate(handle, 1):
                    if line.strip():
                        yield path, number, line
        except OSError as exc:
            raise RegistryError(f"--batch-in {path}: {exc.strerror}", hint="pass a readable results file") from None
        except UnicodeDecodeError:
            raise RegistryError(f"--batch-in {path}: not UTF-8 text", hint="pass the JSONL results file") from None


def _outcome(result: dict[str, Any]) -> tuple[str | None, str | None]:
    """(the body to journal, None) for a chat completion; (None, the error) for anything else."""
    error, response = result.get("error"), result.get("response")
    if error:
        message = error.get("message", error) if isinstance(error, dict) else error
        return None, printable(f"batch error: {message}"[:500])
    if not isinstance(response, dict):
        return None, "batch result without a response"
    status, body = response.get("status_code"), response.get("body")
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    if status != 200:
        return None, printable(f"HTTP {status}: {text[:500]}")
    try:
        return storable_body(text), None
    except MalformedResponse as exc:
        return None, printable(str(exc))
