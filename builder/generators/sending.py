"""Asking an OpenAI-compatible endpoint (the teacher, the judge): every request journaled, bounded and retried,
sent live or answered through OpenAI Batch API files (`builder.generators.batch`).

`ask` looks every request up in the catalog's journal (`teacher_request`, keyed by the sha256 of the canonical
request: model, messages, parameters, seed) and asks only for those without a stored `ok` answer, so a run
killed at any point resumes where it stopped.

Live (`Sender`, over `teacher_http`): the official `openai` client (AsyncOpenAI, its own retries off) POSTs to
/chat/completions the very canonical JSON bytes that are hashed and journaled (Idempotency-Key: their sha256),
under a semaphore of `concurrency` requests at once. Each attempt has `timeout` seconds in all, from connecting to
the last byte, and reads at most `max_response_bytes`. Timeouts, connection errors, malformed bodies, 429 and 5xx
are retried with exponential backoff and jitter (`Retry-After` honoured up to `max_wait` seconds); other 4xx and
oversized responses are recorded as failed at once. A body is journaled as received, except that lone surrogates
(JSON allows `\\ud800`, the catalog's JSON type refuses it) are written as U+FFFD, so it always stores. Every
finished request goes to the journal the moment it returns.

The same rules for the teacher and the judge: when the endpoint stays down through every retry, no new request
starts and the run fails with the counts; it also fails when every request it planned failed, or more than
`max_failed` (a share, 10% by default) of them did. Below that share it succeeds without them. Either way the
answers received stay journaled, and the next run sends only the rest.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from builder.generators.completions import MalformedResponse, printable, storable_body
from builder.progress import Report, Step, ignore
from registry.catalog.journal import FAILED, OK, FinishedRequest, JournalWriter, StoredRequest, TeacherJournal
from registry.errors import RegistryError
from registry.records import canonical_json, sha256_bytes
from registry.samples import Message, text_problem

if TYPE_CHECKING:
    from builder.generators.batch import BatchFiles


class EndpointError(RegistryError):
    """The teacher or the judge cannot be used as configured, or stopped answering before the run was done."""


def text_problems(named: Iterable[tuple[str, str | None]]) -> Iterator[tuple[str, str]]:
    """Text that goes into requests, headers and the catalog must be plain: a lone surrogate (from argv bytes that
    were not UTF-8) cannot be encoded, a control character would reach the terminal and the run."""
    for name, value in named:
        if value and text_problem(value):
            yield name, "holds a control character or bytes that are not UTF-8"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Who is asked (the teacher or the judge), where, and the bounds on asking."""

    role: str  # teacher | judge: in the journal, the run's stats, every message and option name
    url: str  # base URL of the OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1
    model: str
    api_key: str = field(default="none", repr=False)
    concurrency: int = 16
    timeout: float = 60.0  # seconds per HTTP attempt, connecting to last byte
    max_attempts: int = 5  # per request and run, the first one included
    backoff: float = 0.5  # seconds before the first retry; doubles with each attempt, jittered
    max_response_bytes: int = 1 << 20
    max_wait: float = 30.0  # seconds: the longest backoff or Retry-After the sender sleeps
    max_failed: float = 0.1  # the run fails when more than this share of its requests failed (or all did)
    batch: bool = False  # answered through Batch API files: no URL is needed

    @property
    def flag(self) -> str:
        """The prefix of its command-line options: --teacher, --judge."""
        return f"--{self.role}"

    @property
    def where(self) -> str:
        return f"the {self.role} at {self.url}" if self.url else f"the {self.role} (batch files)"

    def problems(self) -> list[str]:
        f = self.flag
        return [f"{name} {problem}" for name, problem in (
            (f"{f}-url", "is required" if not self.url and not self.batch else ""),
            (f"{f}-model", "is required" if not self.model else ""),
            (f"{f}-concurrency", "must be at least 1" if self.concurrency < 1 else ""),
            (f"{f}-timeout", "must be a positive number" if not 0 < self.timeout < math.inf else ""),
            (f"{f}-max-response-bytes", "must be at least 1" if self.max_response_bytes < 1 else ""),
            (f"{f}-max-wait", "must be 0 or more" if not self.max_wait >= 0 else ""),
            (f"{f}-max-failed", "must be between 0 and 1" if not 0 <= self.max_failed <= 1 else ""),
            ("max_attempts", "must be at least 1" if self.max_attempts < 1 else ""),
            *text_problems(((f"{f}-url", self.url), (f"{f}-model", self.model), ("the API key", self.api_key))))
            if problem]


def endpoint_of(role: str, config: Any) -> Endpoint:
    """The endpoint a config (the teacher's, the judge's) describes: its fields of the same names."""
    return Endpoint(role, **{f.name: getattr(config, f.name) for f in fields(Endpoint) if f.name != "role"})


# --- requests -------------------------------------------------------------------------------------------

class Request(NamedTuple):
    request_sha256: str  # sha256 of request_json: the journal's key, a batch line's custom_id
    request_json: str  # canonical JSON of the body: exactly what is sent
    body: dict[str, Any]


def seeded_request(model: str, temperature: float, max_tokens: int, messages: list[Message],
                   random_seed: int) -> Request:
    """A chat completion request with a `seed` derived from the run's seed and the request itself."""
    body: dict[str, Any] = {"model": model, "temperature": temperature, "max_tokens": max_tokens,
                            "messages": messages}
    unseeded = sha256_bytes(canonical_json(body).encode())
    body["seed"] = int(sha256_bytes(f"{random_seed}:{unseeded}".encode())[:8], 16) >> 1
    text = canonical_json(body)
    return Request(sha256_bytes(text.encode()), text, body)


def request_sha256(body: dict[str, Any]) -> str:
    return sha256_bytes(canonical_json(body).encode())


class Sendable(Protocol):
    @property
    def request_sha256(self) -> str: ...

    @property
    def request_json(self) -> str: ...

    @property
    def body(self) -> dict[str, Any]: ...


@dataclass(slots=True)
class SendReport:
    planned: int = 0
    reused: int = 0  # found ok in the journal: not sent
    sent: int = 0  # started in this run
    ok: int = 0
    failed: int = 0  # recorded as failed (not retried, or out of attempts), or without a batch result
    attempts: int = 0  # HTTP attempts in this run
    unparseable: int = 0  # answers that could not be read (no usable block, no score)
    oversized: int = 0  # failed: the response was over max_response_bytes
    batch_results: int = 0  # answers read from --batch-in files
    first_error: str | None = None
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"requests_planned": self.planned, "requests_reused": self.reused, "requests_sent": self.sent,
                "requests_ok": self.ok, "requests_failed": self.failed, "http_attempts": self.attempts,
                "answers_unparseable": self.unparseable, "responses_oversized": self.oversized,
                "batch_results": self.batch_results}


class Recorder:
    """Journals each finished request of one endpoint the moment it finishes, and counts it."""

    def __init__(self, endpoint: Endpoint, writer: JournalWriter, run_id: str, previous: dict[str, StoredRequest],
                 report: SendReport, progress: Report = ignore) -> None:
        self.endpoint, self.writer, self.run_id, self.previous, self.report = endpoint, writer, run_id, previous, report
        self.progress = progress
        self.answers: dict[str, str] = {}

    def attempts_before(self, request: Sendable) -> int:
        before = self.previous.get(request.request_sha256)
        return before.attempts if before else 0

    def finish(self, request: Sendable, body: str | None, attempts: int, error: str | None) -> None:
        status = OK if body is not None else FAILED
        self.writer.submit(FinishedRequest(request.request_sha256, self.run_id, self.endpoint.model,
                                           request.request_json, body, status, attempts, error, self.endpoint.role))
        if body is not None:
            self.answers[request.request_sha256] = body
            self.report.ok += 1
            self._progress()
        else:
            self.fail(error)

    def fail(self, error: str | None, count: int = 1) -> None:
        self.report.failed += count
        self.report.first_error = self.report.first_error or error
        self.report.last_error = error
        self._progress()

    def _progress(self) -> None:
        r = self.report
        self.progress(Step(r.reused + r.ok + r.failed, r.planned, f"{r.failed} failed" if r.failed else "",
                           unit="request"))


def ask(requests: Sequence[Sendable], endpoint: Endpoint, con: Any, run_id: str, report: SendReport,
        batch: BatchFiles | None = None, progress: Report = ignore) -> dict[str, str]:
    """The answer body of every request that has one, journaled before or received now, by request key.

    Raises `EndpointError` when the endpoint stopped answering or too many requests failed, and
    `batch.BatchPending` when the requests left were written to a batch file instead.
    """
    stored = TeacherJournal(con).lookup_many(r.request_sha256 for r in requests)
    answers = {h: row.response for h, row in stored.items() if row.status == OK and row.response is not None}
    todo = [r for r in requests if r.request_sha256 not in answers]
    report.planned, report.reused = len(requests), len(requests) - len(todo)
    writer = JournalWriter(con)
    recorder = Recorder(endpoint, writer, run_id, stored, report, progress)
    gave_up = False
    try:
        if batch is not None:
            batch.answer(todo, recorder)
        elif todo:
            sender = Sender(recorder)
            asyncio.run(sender.send_all(todo))
            gave_up = sender.gave_up
    finally:
        writer.close()
    if gave_up:
        raise _unavailable(endpoint, report, len(todo))
    if too_many_failed(endpoint, report):
        raise _refused(endpoint, report)
    return answers | recorder.answers


def too_many_failed(endpoint: Endpoint, report: SendReport) -> bool:
    r = report
    return r.failed > 0 and (r.ok + r.reused == 0 or r.failed > endpoint.max_failed * r.planned)


def _refused(endpoint: Endpoint, report: SendReport) -> EndpointError:
    r, e = report, endpoint
    rule = "none succeeded" if r.ok + r.reused == 0 else \
        f"more than {e.max_failed:.0%} failed ({e.flag}-max-failed {e.max_failed:g})"
    again = "write them to a batch file again (--batch-out) and read its results" if e.batch else \
        "run the same command again to send only the failed requests"
    return EndpointError(
        f"{e.where} failed {r.failed} of {r.planned} requests ({r.ok} ok in this run, {r.reused} reused from "
        f"earlier runs): {rule}; first error: {r.first_error}",
        hint=f"fix what the first error says (URL, model, API key, limits); the answers received are saved: {again}")


def _unavailable(endpoint: Endpoint, report: SendReport, todo: int) -> EndpointError:
    r = report
    return EndpointError(
        f"{endpoint.where} stopped answering: {r.ok + r.failed} of {todo} requests finished in this run ({r.ok} ok, "
        f"{r.failed} failed), {todo - r.ok - r.failed} not finished, {r.reused} reused from earlier runs; last "
        f"error: {r.last_error}",
        hint="every finished request is saved in the catalog: run the same command again to resume")


# --- sending live ---------------------------------------------------------------------------------------

class _Failure(NamedTuple):
    retry: bool
    wait: float | None  # what the endpoint asked for (Retry-After), in seconds
    error: str
    oversized: bool = False


class Sender:
    """Sends what the journal does not hold yet, `concurrency` at a time; journals each one as it finishes."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder, self.endpoint, self.report = recorder, recorder.endpoint, recorder.report
        self.gave_up = False  # a request ran out of attempts on errors worth retrying: start no new ones

    async def send_all(self, todo: Sequence[Sendable]) -> None:
        from builder.generators.teacher_http import open_client  # only a live run needs the client

        e = self.endpoint
        slots = asyncio.Semaphore(e.concurrency)
        async with open_client(e.url, e.api_key, e.timeout, e.concurrency, e.max_response_bytes) as client:
            await asyncio.gather(*(self._when_free(slots, client, request) for request in todo))

    async def _when_free(self, slots: asyncio.Semaphore, client: Any, request: Sendable) -> None:
        async with slots:
            if not self.gave_up:
                await self._send(client, request)

    async def _send(self, client: Any, request: Sendable) -> None:
        self.report.sent += 1
        attempts = self.recorder.attempts_before(request)
        for attempt in range(1, self.endpoint.max_attempts + 1):
            attempts += 1
            self.report.attempts += 1
            try:
                body = await self._post(client, request)
            except Exception as exc:
                failure = _failure(exc, self.endpoint)
                if failure is None:
                    raise
                if failure.retry and attempt < self.endpoint.max_attempts and not self.gave_up:
                    await asyncio.sleep(_delay(self.endpoint, attempt, failure.wait))
                    continue
                self.report.oversized += int(failure.oversized)
                self.recorder.finish(request, None, attempts, failure.error)
                self.gave_up = self.gave_up or failure.retry
                return
            self.recorder.finish(request, body, attempts, None)
            return

    async def _post(self, client: Any, request: Sendable) -> str:
        """The journaled bytes are exactly the bytes sent; a 200 that is not a chat completion is retried."""
        from builder.generators.teacher_http import post

        text = await post(client, request.request_json.encode(), request.request_sha256, self.endpoint.timeout)
        return storable_body(text)


def _failure(exc: Exception, endpoint: Endpoint) -> _Failure | None:
    """What an exception from the client means for the request; None: not the endpoint's doing."""
    import openai

    from builder.generators.teacher_http import EncodedResponse, OversizedResponse

    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        error = f"HTTP {status}: {printable(exc.response.text[:500])}"
        return _Failure(status == 429 or status >= 500, retry_after(exc.response.headers), error)
    if isinstance(exc, openai.APITimeoutError | TimeoutError):
        return _Failure(True, None, f"timed out ({endpoint.flag}-timeout {endpoint.timeout:g} s)")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return _Failure(True, None, printable(f"connection error: {str(cause) or type(cause).__name__}"))
    if isinstance(exc, OversizedResponse):  # asked again, a seeded request would get the same answer
        return _Failure(False, None, f"{exc} ({endpoint.flag}-max-response-bytes)", oversized=True)
    if isinstance(exc, MalformedResponse | EncodedResponse):
        return _Failure(True, None, printable(str(exc)))
    return None


def retry_after(headers: Any) -> float | None:
    """Seconds from `retry-after-ms` or `Retry-After` (seconds or an HTTP date); None when absent or bad."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            pass
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            continue
    return None


def _delay(endpoint: Endpoint, attempt: int, asked: float | None) -> float:
    if asked is not None:
        return min(asked, endpoint.max_wait)
    return min(endpoint.backoff * 2.0 ** (attempt - 1), endpoint.max_wait) * random.uniform(0.5, 1.0)
