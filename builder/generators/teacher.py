"""`teacher`: an OpenAI-compatible model writes new question/answer pairs from seeds and document chunks.

What is asked (one request each, prompts from the versioned Jinja templates in `templates/`):

- knowledge: every chunk of every markdown document the leaf references, with the leaf's domain and
  outline and one seed context with its Q/A pairs as in-context examples (InstructLab's simple pipeline);
- freeform skills: `skill_requests` per leaf, the task description and `examples` seed Q/A;
- grounded skills: every seed context, the task description and `examples` other seeds (with contexts).

The prompt asks for `pairs` blocks in one strict format, parsed by `parse_pairs` (case and whitespace are
tolerated; chatter outside the blocks is ignored):

    [Question]
    ...
    [Answer]
    ...
    [End]

Each pair becomes a sample (system, user: context + question, assistant: answer) with lineage edges to the
seeds shown as examples (`in_context_example`), and to the chunk (`source_chunk`) or to the seed whose context
it is about (`source_context`). An answer without a single good block, or with a broken one, becomes a
dropped sample (`unparseable`) holding the teacher's text. Text that cannot be trusted is dropped by the filters
with its reason (`registry.samples.text_problem`): `invalid_unicode` (a lone surrogate such as JSON's `"\\ud800"`,
or U+FFFD where bytes were not UTF-8), `control_characters` (NUL and the other controls but tab, newline, return).

How it is sent (`teacher_http`): the official `openai` client (AsyncOpenAI, its own retries off) POSTs to
/chat/completions the very canonical JSON bytes that are hashed and journaled (Idempotency-Key: their sha256),
under a semaphore of `concurrency` requests at once. Each attempt has `timeout` seconds in all, from connecting to
the last byte, and reads at most `max_response_bytes`. Timeouts, connection errors, malformed bodies, 429 and 5xx
are retried with exponential backoff and jitter (`Retry-After` honoured up to `max_wait` seconds); other 4xx and
oversized responses are recorded as failed at once. A body is journaled as received, except that lone surrogates
(JSON allows `\\ud800`, the catalog's JSON type refuses it) are written as U+FFFD, so it always stores.
Every request carries a `seed` derived from the run's seed and the request, and is keyed by the sha256 of its
canonical JSON (model, messages, parameters, seed). Every finished request goes to the catalog's
`teacher_request` journal the moment it returns; a request found there with status ok is never sent again,
so a run killed at any point resumes where it stopped. When the endpoint stays down through every retry,
no new request starts, the run fails with the counts, and the next run resumes. A run also fails when every
request it planned failed, or more than `max_failed` (a share, 10% by default) of them did: its successes stay
in the journal, and the next run sends only the failed ones. Below that share the run succeeds without them.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import os
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, NamedTuple

from builder.generators.base import GeneratorInput
from builder.generators.seed import SYSTEM_PROMPT, user_turn
from builder.progress import Report, Step, ignore
from registry.catalog.generation import LeafInput, SeedRow
from registry.catalog.journal import FAILED, OK, FinishedRequest, JournalWriter, StoredRequest, TeacherJournal
from registry.errors import RegistryError
from registry.records import canonical_json, sha256_bytes
from registry.samples import Edge, Message, Sample, text_problem, without_surrogates

TEMPLATE_VERSION = "v1"
TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE_NAMES = ("system", "format", "knowledge", "freeform", "grounded")
API_KEY_VARIABLES = ("TAXREG_TEACHER_API_KEY", "OPENAI_API_KEY")


class TeacherError(RegistryError):
    """The teacher cannot be used as configured, or stopped answering before the run was done."""


@dataclass(frozen=True, slots=True)
class TeacherConfig:
    url: str  # base URL of the OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1
    model: str
    api_key: str = field(default="none", repr=False)
    concurrency: int = 16  # twice a typical endpoint limit: hides the client's own per-request work
    temperature: float = 0.7
    max_tokens: int = 1024
    timeout: float = 60.0  # seconds per HTTP attempt, connecting to last byte
    max_attempts: int = 5  # per request and run, the first one included
    backoff: float = 0.5  # seconds before the first retry; doubles with each attempt, jittered
    pairs: int = 3  # Q/A pairs asked for per request
    examples: int = 3  # seed Q/A shown per request
    skill_requests: int = 1  # requests per freeform skill leaf
    license: str | None = None  # SPDX id of the teacher model's license
    terms: str | None = None  # the terms that apply to its outputs
    max_response_bytes: int = 1 << 20  # a body past this fails its request (a 1024-token answer is ~10 KB)
    max_wait: float = 30.0  # seconds: the longest backoff or Retry-After the sender sleeps
    max_failed: float = 0.1  # the run fails when more than this share of its requests failed (or all did)

    def __post_init__(self) -> None:
        problems = [f"{name} {problem}" for name, problem in (
            ("--teacher-url", "is required" if not self.url else ""),
            ("--teacher-model", "is required" if not self.model else ""),
            ("--teacher-concurrency", "must be at least 1" if self.concurrency < 1 else ""),
            ("--teacher-max-tokens", "must be at least 1" if self.max_tokens < 1 else ""),
            ("--teacher-timeout", "must be a positive number" if not 0 < self.timeout < math.inf else ""),
            ("--teacher-max-response-bytes", "must be at least 1" if self.max_response_bytes < 1 else ""),
            ("--teacher-max-wait", "must be 0 or more" if not self.max_wait >= 0 else ""),
            ("--teacher-max-failed", "must be between 0 and 1" if not 0 <= self.max_failed <= 1 else ""),
            ("max_attempts", "must be at least 1" if self.max_attempts < 1 else ""),
            ("pairs", "must be at least 1" if self.pairs < 1 else ""),
            ("examples", "must be at least 1" if self.examples < 1 else ""),
            *self._text_problems()) if problem]
        if problems:
            raise TeacherError("the teacher generator: " + "; ".join(problems),
                               hint="e.g. --teacher-url http://127.0.0.1:8000/v1 --teacher-model NAME")

    def _text_problems(self) -> Iterator[tuple[str, str]]:
        """Text that goes into requests, headers and the catalog must be plain: a lone surrogate (from argv
        bytes that were not UTF-8) cannot be encoded, a control character would reach the terminal and the run."""
        for name, value in (("--teacher-url", self.url), ("--teacher-model", self.model),
                            ("--teacher-license", self.license), ("--teacher-terms", self.terms),
                            ("the API key", self.api_key)):
            if value and text_problem(value):
                yield name, "holds a control character or bytes that are not UTF-8"

    def params(self) -> dict[str, Any]:
        """What the run records (never the API key)."""
        return {"teacher_url": self.url, "teacher_model": self.model, "temperature": self.temperature,
                "max_tokens": self.max_tokens, "pairs": self.pairs, "examples": self.examples,
                "skill_requests": self.skill_requests, "template_version": TEMPLATE_VERSION,
                "templates": {name: sha256_bytes(text.encode()) for name, text in TEMPLATES.items()}}


def api_key_from_environment() -> str:
    return next((os.environ[v] for v in API_KEY_VARIABLES if os.environ.get(v)), "none")


# --- templates ------------------------------------------------------------------------------------------

def _read_templates() -> dict[str, str]:
    return {f"{name}_{TEMPLATE_VERSION}.j2": (TEMPLATE_DIR / f"{name}_{TEMPLATE_VERSION}.j2").read_text("utf-8")
            for name in TEMPLATE_NAMES}


TEMPLATES = _read_templates()
TEMPLATES_SHA256 = sha256_bytes(canonical_json({"version": TEMPLATE_VERSION, "templates": TEMPLATES}).encode())


@functools.cache
def _environment() -> Any:
    import jinja2  # only a teacher run renders prompts

    return jinja2.Environment(loader=jinja2.DictLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                              autoescape=False, keep_trailing_newline=False)


def render(name: str, **variables: Any) -> str:
    return str(_environment().get_template(f"{name}_{TEMPLATE_VERSION}.j2").render(**variables)).strip()


# --- parsing the teacher's answers ----------------------------------------------------------------------

_BLOCK = re.compile(r"\[question\]\s*(.*?)\s*\[answer\]\s*(.*?)\s*\[end\]", re.IGNORECASE | re.DOTALL)
_MARKER = re.compile(r"\[(?:question|answer|end)\]", re.IGNORECASE)


class Parsed(NamedTuple):
    pairs: list[tuple[str, str]]
    unparseable: str | None  # the whole answer when no block parsed, else the text of broken blocks


def parse_pairs(text: str) -> Parsed:
    """`[Question] q [Answer] a [End]` blocks; a block with an empty part or a stray marker is broken."""
    pairs: list[tuple[str, str]] = []
    broken: list[str] = []
    end = 0
    for match in _BLOCK.finditer(text):
        broken.append(text[end:match.start()])
        end = match.end()
        question, answer = match.group(1), match.group(2)
        if question and answer and not _MARKER.search(question) and not _MARKER.search(answer):
            pairs.append((question, answer))
        else:
            broken.append(match.group(0))
    broken.append(text[end:])
    if not pairs:
        return Parsed([], text.strip())
    rest = "\n\n".join(part.strip() for part in broken if _MARKER.search(part))
    return Parsed(pairs, rest or None)


class MalformedResponse(Exception):
    """The endpoint answered 200 with a body that is not a chat completion."""


def _parsed(body: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # nesting deeper than Python's stack is not a chat completion either
        raise MalformedResponse(f"the body is not JSON: {body[:200]!r}") from None


def response_content(body: str) -> str:
    """The assistant text of a chat completion body."""
    try:
        content = _parsed(body)["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise MalformedResponse(f"the body has no choices[0].message.content: {body[:200]!r}") from None
    return content if isinstance(content, str) else ""


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def storable_body(body: str) -> str:
    """A chat completion body (`MalformedResponse` if it is not one) as the journal keeps it: as received, but
    with lone surrogates as U+FFFD (DuckDB's JSON type refuses `"\\ud800"`; the filters then drop the answer)."""
    response_content(body)
    if not _SURROGATE_ESCAPE.search(body):
        return body
    try:
        return json.dumps(_without_surrogates(_parsed(body)), ensure_ascii=False)
    except RecursionError:
        raise MalformedResponse(f"the body nests too deep: {body[:200]!r}") from None


def _without_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return without_surrogates(value)
    if isinstance(value, list):
        return [_without_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    return value


# --- planning: which requests, with which lineage -------------------------------------------------------

class Planned(NamedTuple):
    request_sha256: str  # sha256 of request_json
    request_json: str  # canonical JSON of the body: model, messages, temperature, max_tokens, seed (what is sent)
    body: dict[str, Any]
    kind: str
    context: str | None  # what the generated questions are asked about (goes before them in the user turn)
    lineage: tuple[Edge, ...]


class _Prompt(NamedTuple):
    template: str
    variables: dict[str, Any]
    kind: str
    context: str | None
    lineage: list[Edge]


class Planner:
    """Turns leaves and chunks into requests, deterministically: the same inputs give the same hashes."""

    def __init__(self, config: TeacherConfig, given: GeneratorInput, outlines: dict[str, tuple[str, str]]) -> None:
        self.config, self.given, self.outlines = config, given, outlines
        self.system = render("system")

    def requests(self) -> list[Planned]:
        planned: dict[str, Planned] = {}
        for prompt in (p for leaf in self.given.leaves for p in self._prompts(leaf)):
            request = self._request(prompt)
            known = planned.get(request.request_sha256)
            lineage = known.lineage + request.lineage if known else request.lineage
            planned[request.request_sha256] = request._replace(lineage=tuple(dict.fromkeys(lineage)))
        return list(planned.values())

    def _prompts(self, leaf: LeafInput) -> Iterator[_Prompt]:
        if not leaf.seeds:
            return iter(())
        if leaf.kind == "knowledge":
            return self._knowledge(leaf)
        grounded = [s for s in leaf.seeds if s.context]
        return self._grounded(leaf, grounded) if grounded else self._freeform(leaf)

    def _knowledge(self, leaf: LeafInput) -> Iterator[_Prompt]:
        groups: dict[str | None, list[SeedRow]] = {}
        for seed in leaf.seeds:
            groups.setdefault(seed.context, []).append(seed)
        domain, outline = self.outlines.get(leaf.version_id, ("", ""))
        for row in leaf.documents:
            document = self.given.documents.get(row.doc_sha256)
            if document is None:  # not markdown: nothing was chunked
                continue
            for chunk in document.chunks:
                examples = self._rng(chunk.chunk_sha256).choice(list(groups.values()))[:self.config.examples]
                text = chunk.text(document.text)
                lineage = [Edge("chunk", chunk.chunk_sha256, "source_chunk", leaf.contribution_id, leaf.version_id,
                                chunk.doc_sha256), *_seed_edges(leaf, examples, "in_context_example")]
                yield _Prompt("knowledge", {"domain": domain, "outline": outline, "chunk": text,
                                            "examples": examples}, leaf.kind, text, lineage)

    def _freeform(self, leaf: LeafInput) -> Iterator[_Prompt]:
        order = self._rng(leaf.version_id).sample(leaf.seeds, len(leaf.seeds))
        for i in range(self.config.skill_requests):  # a window sliding over a shuffle: different examples each
            window = {order[(i + j) % len(order)].seed_id for j in range(min(self.config.examples, len(order)))}
            examples = [s for s in leaf.seeds if s.seed_id in window]
            yield _Prompt("freeform", {"task": leaf.task_description or "", "examples": examples}, leaf.kind, None,
                          _seed_edges(leaf, examples, "in_context_example"))

    def _grounded(self, leaf: LeafInput, grounded: list[SeedRow]) -> Iterator[_Prompt]:
        for target in grounded:
            others = [s for s in grounded if s.seed_id != target.seed_id] or grounded
            examples = self._pick(others, target.seed_id)
            lineage = [*_seed_edges(leaf, [target], "source_context"),
                       *_seed_edges(leaf, examples, "in_context_example")]
            yield _Prompt("grounded", {"task": leaf.task_description or "", "context": target.context,
                                       "examples": examples}, leaf.kind, target.context, lineage)

    def _pick(self, seeds: list[SeedRow], salt: str) -> list[SeedRow]:
        chosen = self._rng(salt).sample(range(len(seeds)), min(self.config.examples, len(seeds)))
        return [seeds[i] for i in sorted(chosen)]

    def _rng(self, salt: str) -> random.Random:
        return random.Random(f"{self.given.random_seed}:{salt}")  # str seeds hash with sha512: stable

    def _request(self, prompt: _Prompt) -> Planned:
        user = render(prompt.template, pairs=self.config.pairs, **prompt.variables)
        body: dict[str, Any] = {"model": self.config.model, "temperature": self.config.temperature,
                                "max_tokens": self.config.max_tokens,
                                "messages": [{"role": "system", "content": self.system},
                                             {"role": "user", "content": user}]}
        unseeded = sha256_bytes(canonical_json(body).encode())
        body["seed"] = int(sha256_bytes(f"{self.given.random_seed}:{unseeded}".encode())[:8], 16) >> 1
        text = canonical_json(body)
        return Planned(sha256_bytes(text.encode()), text, body, prompt.kind, prompt.context, tuple(prompt.lineage))


def request_sha256(body: dict[str, Any]) -> str:
    return sha256_bytes(canonical_json(body).encode())


def _seed_edges(leaf: LeafInput, seeds: list[SeedRow], role: str) -> list[Edge]:
    return [Edge("seed", s.seed_id, role, leaf.contribution_id, leaf.version_id) for s in seeds]


# --- sending --------------------------------------------------------------------------------------------

class _Failure(NamedTuple):
    retry: bool
    wait: float | None  # what the endpoint asked for (Retry-After), in seconds
    error: str
    oversized: bool = False


@dataclass(slots=True)
class SendReport:
    planned: int = 0
    reused: int = 0  # found ok in the journal: not sent
    sent: int = 0  # started in this run
    ok: int = 0
    failed: int = 0  # recorded as failed (not retried, or out of attempts)
    attempts: int = 0  # HTTP attempts in this run
    unparseable: int = 0  # answers with no usable block, or with broken ones
    oversized: int = 0  # failed: the response was over max_response_bytes
    first_error: str | None = None
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"requests_planned": self.planned, "requests_reused": self.reused, "requests_sent": self.sent,
                "requests_ok": self.ok, "requests_failed": self.failed, "http_attempts": self.attempts,
                "answers_unparseable": self.unparseable, "responses_oversized": self.oversized}


class Sender:
    """Sends what the journal does not hold yet, `concurrency` at a time; journals each one as it finishes."""

    def __init__(self, config: TeacherConfig, writer: JournalWriter, run_id: str,
                 previous: dict[str, StoredRequest], report: SendReport, progress: Report = ignore) -> None:
        self.config, self.writer, self.run_id, self.previous, self.report = config, writer, run_id, previous, report
        self.progress = progress
        self.answers: dict[str, str] = {}
        self.gave_up = False  # a request ran out of attempts on errors worth retrying: start no new ones

    async def send_all(self, todo: list[Planned]) -> dict[str, str]:
        from builder.generators.teacher_http import open_client  # only a teacher run needs the client

        c = self.config
        slots = asyncio.Semaphore(c.concurrency)
        async with open_client(c.url, c.api_key, c.timeout, c.concurrency, c.max_response_bytes) as client:
            await asyncio.gather(*(self._when_free(slots, client, planned) for planned in todo))
        return self.answers

    async def _when_free(self, slots: asyncio.Semaphore, client: Any, planned: Planned) -> None:
        async with slots:
            if not self.gave_up:
                await self._send(client, planned)

    async def _send(self, client: Any, planned: Planned) -> None:
        self.report.sent += 1
        before = self.previous.get(planned.request_sha256)
        attempts = before.attempts if before else 0
        for attempt in range(1, self.config.max_attempts + 1):
            attempts += 1
            self.report.attempts += 1
            try:
                body = await self._post(client, planned)
            except Exception as exc:
                failure = _failure(exc, self.config)
                if failure is None:
                    raise
                if failure.retry and attempt < self.config.max_attempts and not self.gave_up:
                    await asyncio.sleep(_delay(self.config, attempt, failure.wait))
                    continue
                self.report.oversized += int(failure.oversized)
                self._finish(planned, None, attempts, failure.error)
                self.gave_up = self.gave_up or failure.retry
                return
            self._finish(planned, body, attempts, None)
            return

    async def _post(self, client: Any, planned: Planned) -> str:
        """The journaled bytes are exactly the bytes sent; a 200 that is not a chat completion is retried."""
        from builder.generators.teacher_http import post

        text = await post(client, planned.request_json.encode(), planned.request_sha256, self.config.timeout)
        return storable_body(text)

    def _finish(self, planned: Planned, body: str | None, attempts: int, error: str | None) -> None:
        status = OK if body is not None else FAILED
        self.writer.submit(FinishedRequest(planned.request_sha256, self.run_id, self.config.model,
                                           planned.request_json, body, status, attempts, error))
        if body is not None:
            self.answers[planned.request_sha256] = body
            self.report.ok += 1
        else:
            self.report.failed += 1
            self.report.first_error = self.report.first_error or error
            self.report.last_error = error
        r = self.report
        self.progress(Step(r.reused + r.ok + r.failed, r.planned, f"{r.failed} failed" if r.failed else "",
                           unit="request"))


def _failure(exc: Exception, config: TeacherConfig) -> _Failure | None:
    """What an exception from the client means for the request; None: not the endpoint's doing."""
    import openai

    from builder.generators.teacher_http import EncodedResponse, OversizedResponse

    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        error = f"HTTP {status}: {printable(exc.response.text[:500])}"
        return _Failure(status == 429 or status >= 500, retry_after(exc.response.headers), error)
    if isinstance(exc, openai.APITimeoutError | TimeoutError):
        return _Failure(True, None, f"timed out (--teacher-timeout {config.timeout:g} s)")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return _Failure(True, None, printable(f"connection error: {str(cause) or type(cause).__name__}"))
    if isinstance(exc, OversizedResponse):  # asked again, a seeded request would get the same answer
        return _Failure(False, None, f"{exc} (--teacher-max-response-bytes)", oversized=True)
    if isinstance(exc, MalformedResponse | EncodedResponse):
        return _Failure(True, None, printable(str(exc)))
    return None


_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(text: str) -> str:
    """An endpoint's words on one line, safe for the terminal and the catalog: controls and surrogates escaped."""
    return _UNPRINTABLE.sub(lambda m: ascii(m.group())[1:-1], text)


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


def _delay(config: TeacherConfig, attempt: int, asked: float | None) -> float:
    if asked is not None:
        return min(asked, config.max_wait)
    return min(config.backoff * 2.0 ** (attempt - 1), config.max_wait) * random.uniform(0.5, 1.0)


# --- the generator --------------------------------------------------------------------------------------

class TeacherGenerator:
    name = "teacher"
    template_sha256: str | None = TEMPLATES_SHA256

    def __init__(self) -> None:
        self.rejected: list[tuple[Sample, str]] = []  # answers that gave no sample: kept, dropped, with a reason
        self.report = SendReport()

    def generate(self, given: GeneratorInput) -> list[Sample]:
        config = given.teacher
        if config is None or given.catalog is None:
            raise TeacherError("the teacher generator needs a teacher endpoint and the catalog",
                               hint="pass --teacher-url URL --teacher-model NAME")
        journal = TeacherJournal(given.catalog)
        journal.record_model(config.model, config.license, config.terms)
        planned = Planner(config, given, _outlines(given.catalog, given.leaves)).requests()
        stored = journal.lookup_many(p.request_sha256 for p in planned)
        answers = {h: row.response for h, row in stored.items() if row.status == OK and row.response is not None}
        todo = [p for p in planned if p.request_sha256 not in answers]
        self.report.planned, self.report.reused = len(planned), len(planned) - len(todo)
        writer = JournalWriter(given.catalog)
        try:
            sender = Sender(config, writer, given.run_id, stored, self.report, given.progress)
            answers.update(asyncio.run(sender.send_all(todo)) if todo else {})
        finally:
            writer.close()
        if sender.gave_up:
            raise self._unavailable(config, len(todo))
        if self._too_many_failed(config):
            raise self._refused(config)
        return [s for p in planned if p.request_sha256 in answers for s in self._samples(p, answers[p.request_sha256])]

    def _samples(self, planned: Planned, body: str) -> Iterator[Sample]:
        parsed = parse_pairs(response_content(body))
        for question, answer in parsed.pairs:
            messages: list[Message] = [{"role": "system", "content": SYSTEM_PROMPT},
                                       {"role": "user", "content": user_turn(question, planned.context)},
                                       {"role": "assistant", "content": answer}]
            yield Sample.make(messages, planned.kind, list(planned.lineage))
        if parsed.unparseable is not None:
            self.report.unparseable += 1
            said = [*planned.body["messages"], {"role": "assistant", "content": parsed.unparseable}]
            self.rejected.append((Sample.make(said, planned.kind, list(planned.lineage)), "unparseable"))

    def _too_many_failed(self, config: TeacherConfig) -> bool:
        r = self.report
        return r.failed > 0 and (r.ok + r.reused == 0 or r.failed > config.max_failed * r.planned)

    def _refused(self, config: TeacherConfig) -> TeacherError:
        r = self.report
        rule = "none succeeded" if r.ok + r.reused == 0 else \
            f"more than {config.max_failed:.0%} failed (--teacher-max-failed {config.max_failed:g})"
        return TeacherError(
            f"the teacher at {config.url} failed {r.failed} of {r.planned} requests ({r.ok} ok in this run, "
            f"{r.reused} reused from earlier runs): {rule}; first error: {r.first_error}",
            hint="fix what the first error says (URL, model, API key, limits); the answers received are saved: "
                 "run the same command again to send only the failed requests")

    def _unavailable(self, config: TeacherConfig, todo: int) -> TeacherError:
        r = self.report
        return TeacherError(
            f"the teacher at {config.url} stopped answering: {r.ok + r.failed} of {todo} requests finished in "
            f"this run ({r.ok} ok, {r.failed} failed), {todo - r.ok - r.failed} not finished, {r.reused} reused "
            f"from earlier runs; last error: {r.last_error}",
            hint="every finished request is saved in the catalog: run the same command again to resume")


def _outlines(con: Any, leaves: list[LeafInput]) -> dict[str, tuple[str, str]]:
    """Domain and document outline of the knowledge leaves, for the knowledge prompt."""
    versions = [leaf.version_id for leaf in leaves if leaf.kind == "knowledge"]
    if not versions:
        return {}
    rows = con.execute("SELECT version_id, coalesce(knowledge_domain, ''), coalesce(document_outline, '') "
                       "FROM contribution_version WHERE version_id IN (SELECT unnest(?::VARCHAR[]))",
                       [versions]).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}
