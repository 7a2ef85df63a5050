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

How it is asked (`sending.ask`): every request is keyed by the sha256 of its canonical JSON (model, messages,
parameters, and a `seed` derived from the run's seed and the request), journaled in the catalog the moment it
returns and never sent again once it succeeded, sent live (concurrent, bounded, retried) or through OpenAI Batch
API files (`batch`). A run fails when the teacher stopped answering, when every request failed, or when more
than `max_failed` of them did; the answers received stay journaled and the next run sends only the rest.

Each sample remembers what it was written from (`subjects`: question, answer, chunk or context, task), for the
judge (`judge`), which scores every sample the filters kept before it is kept.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from builder.generators.base import GeneratorInput
from builder.generators.completions import response_content
from builder.generators.judge import Subject
from builder.generators.prompts import TemplateSet
from builder.generators.seed import SYSTEM_PROMPT, user_turn
from builder.generators.sending import (
    Endpoint,
    EndpointError,
    SendReport,
    ask,
    endpoint_of,
    seeded_request,
    text_problems,
)
from registry.catalog.generation import LeafInput, SeedRow
from registry.catalog.journal import TeacherJournal
from registry.samples import Edge, Message, Sample

TEMPLATE_VERSION = "v1"
TEMPLATE_NAMES = ("system", "format", "knowledge", "freeform", "grounded")
API_KEY_VARIABLES = ("TAXREG_TEACHER_API_KEY", "OPENAI_API_KEY")  # read when no api_key_env is configured
TeacherError = EndpointError  # what a teacher that cannot be used, or stopped answering, raises


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
    batch: bool = False  # answered through Batch API files (--batch-in/--batch-out): no URL is needed

    def __post_init__(self) -> None:
        problems = self.endpoint().problems() + [f"{name} {problem}" for name, problem in (
            ("--teacher-max-tokens", "must be at least 1" if self.max_tokens < 1 else ""),
            ("pairs", "must be at least 1" if self.pairs < 1 else ""),
            ("examples", "must be at least 1" if self.examples < 1 else ""),
            ("skill_requests", "must be 0 or more" if self.skill_requests < 0 else ""),
            *text_problems((("--teacher-license", self.license), ("--teacher-terms", self.terms)))) if problem]
        if problems:
            raise TeacherError("the teacher generator: " + "; ".join(problems),
                               hint="e.g. --teacher-url http://127.0.0.1:8000/v1 --teacher-model NAME, or [generate] "
                                    "url and model in taxreg.toml")

    def endpoint(self) -> Endpoint:
        return endpoint_of("teacher", self)

    def params(self) -> dict[str, Any]:
        """What the run records and the build's generate stage is keyed by (never the API key)."""
        return {"teacher_url": self.url, "teacher_model": self.model, "temperature": self.temperature,
                "max_tokens": self.max_tokens, "pairs": self.pairs, "examples": self.examples,
                "skill_requests": self.skill_requests, "template_version": TEMPLATE_VERSION,
                "templates": PROMPTS.hashes()}


def api_key_from_environment() -> str:
    return next((os.environ[v] for v in API_KEY_VARIABLES if os.environ.get(v)), "none")


PROMPTS = TemplateSet(TEMPLATE_NAMES, TEMPLATE_VERSION)
TEMPLATES = PROMPTS.texts
TEMPLATES_SHA256 = PROMPTS.sha256
render = PROMPTS.render


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


# --- planning: which requests, with which lineage -------------------------------------------------------

class Planned(NamedTuple):
    request_sha256: str  # sha256 of request_json
    request_json: str  # canonical JSON of the body: model, messages, temperature, max_tokens, seed (what is sent)
    body: dict[str, Any]
    kind: str
    context: str | None  # what the generated questions are asked about (goes before them in the user turn)
    lineage: tuple[Edge, ...]
    task: str | None = None  # a skill's task description: what the judge checks its samples against


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
        c = self.config
        request = seeded_request(c.model, c.temperature, c.max_tokens, [{"role": "system", "content": self.system},
                                                                       {"role": "user", "content": user}],
                                 self.given.random_seed)
        return Planned(*request, prompt.kind, prompt.context, tuple(prompt.lineage), prompt.variables.get("task"))


def _seed_edges(leaf: LeafInput, seeds: list[SeedRow], role: str) -> list[Edge]:
    return [Edge("seed", s.seed_id, role, leaf.contribution_id, leaf.version_id) for s in seeds]


# --- the generator --------------------------------------------------------------------------------------

class TeacherGenerator:
    name = "teacher"
    template_sha256: str | None = TEMPLATES_SHA256

    def __init__(self) -> None:
        self.rejected: list[tuple[Sample, str]] = []  # answers that gave no sample: kept, dropped, with a reason
        self.report = SendReport()
        self.subjects: dict[str, Subject] = {}  # sample_id -> what the judge scores it on

    def generate(self, given: GeneratorInput) -> list[Sample]:
        config = given.teacher
        if config is None or given.catalog is None:
            raise TeacherError("the teacher generator needs a teacher endpoint and the catalog",
                               hint="pass --teacher-url URL --teacher-model NAME")
        TeacherJournal(given.catalog).record_model(config.model, config.license, config.terms)
        planned = Planner(config, given, _outlines(given.catalog, given.leaves)).requests()
        answers = ask(planned, config.endpoint(), given.catalog, given.run_id, self.report, given.batch, given.progress)
        return [s for p in planned if p.request_sha256 in answers for s in self._samples(p, answers[p.request_sha256])]

    def _samples(self, planned: Planned, body: str) -> Iterator[Sample]:
        parsed = parse_pairs(response_content(body))
        rubric = "knowledge" if planned.kind == "knowledge" else "skill"
        for question, answer in parsed.pairs:
            messages: list[Message] = [{"role": "system", "content": SYSTEM_PROMPT},
                                       {"role": "user", "content": user_turn(question, planned.context)},
                                       {"role": "assistant", "content": answer}]
            sample = Sample.make(messages, planned.kind, list(planned.lineage))
            self.subjects.setdefault(sample.sample_id, Subject(rubric, question, answer, planned.context,
                                                               planned.task))
            yield sample
        if parsed.unparseable is not None:
            self.report.unparseable += 1
            said = [*planned.body["messages"], {"role": "assistant", "content": parsed.unparseable}]
            self.rejected.append((Sample.make(said, planned.kind, list(planned.lineage)), "unparseable"))


def _outlines(con: Any, leaves: list[LeafInput]) -> dict[str, tuple[str, str]]:
    """Domain and document outline of the knowledge leaves, for the knowledge prompt."""
    versions = [leaf.version_id for leaf in leaves if leaf.kind == "knowledge"]
    if not versions:
        return {}
    rows = con.execute("SELECT version_id, coalesce(knowledge_domain, ''), coalesce(document_outline, '') "
                       "FROM contribution_version WHERE version_id IN (SELECT unnest(?::VARCHAR[]))",
                       [versions]).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}
