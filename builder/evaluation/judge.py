"""The optional LLM judge: any OpenAI-compatible endpoint grades each greedy answer, the base model's and the
fine-tuned model's, with a versioned rubric (templates/judge_*_v1.j2):

- skills and the guard set: MT-Bench's single-answer grading, a rating from 1 to 10 (`Rating: [[7]]`);
- knowledge: a DK-Bench-style rubric against the reference answer, a score from 1 to 5 (`Score: [[4]]`).

A verdict becomes a `judge` score scaled to 0-1 ((score - 1) / (top - 1)); one without a readable score is left
out (counted). Requests go through the teacher's client, journal and resume (builder/generators/sending.py): every
finished request is in `teacher_request` the moment it returns, keyed by the sha256 of its canonical body
(temperature 0, a seed derived from the request), and one found there is never sent again. So a judge that stops
answering fails the run with the counts, and running it again sends only what is missing.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.evaluation.evalset import EvalItem
from builder.generators.completions import response_content
from builder.generators.configure import api_key
from builder.generators.sending import Endpoint, EndpointError, Request, SendReport, ask, seeded_request
from builder.generators.teacher import api_key_from_environment
from registry.catalog.journal import TeacherJournal
from registry.errors import RegistryError
from registry.records import canonical_json, sha256_bytes

TEMPLATE_VERSION = "v1"
TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATES = {name: (TEMPLATE_DIR / f"judge_{name}_{TEMPLATE_VERSION}.j2").read_text(encoding="utf-8")
             for name in ("system", "skill", "knowledge")}
TEMPLATES_SHA256 = sha256_bytes(canonical_json({"version": TEMPLATE_VERSION, "templates": TEMPLATES}).encode())
SCALES = {"skill": 10, "knowledge": 5}  # the top of each rubric (both start at 1)
_VERDICT = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")


class JudgeUnavailable(RegistryError):
    """The judge did not answer every request: the run is recorded as failed and can be resumed."""


@dataclass(frozen=True, slots=True)
class JudgeConfig:
    url: str
    model: str
    api_key: str = field(default="none", repr=False)
    concurrency: int = 8
    timeout: float = 60.0
    max_tokens: int = 512
    max_attempts: int = 5  # per request and run, as the teacher's

    def __post_init__(self) -> None:
        missing = [name for name, value in (("--judge-url", self.url), ("--judge-model", self.model)) if not value]
        if missing:
            raise RegistryError(f"the judge needs {' and '.join(missing)}",
                                hint="pass --judge-url URL --judge-model NAME together (or [eval] judge_url and "
                                     "judge_model in taxreg.toml), or neither for no judge")

    @classmethod
    def of(cls, url: str, model: str, api_key_env: str | None = None) -> JudgeConfig:
        """The key from the variable [eval] judge_api_key_env names, else the teacher's usual variables."""
        return cls(url, model, api_key(os.environ, api_key_env, "[eval] judge_api_key_env")
                   or api_key_from_environment())

    def endpoint(self) -> Endpoint:
        """The judge's sending settings (retries, timeouts, byte budget: the teacher's rules); every answer is
        needed, so no share of failures is tolerated."""
        endpoint = Endpoint("judge", self.url, self.model, api_key=self.api_key, concurrency=self.concurrency,
                            timeout=self.timeout, max_attempts=self.max_attempts, max_failed=0.0)
        problems = endpoint.problems()
        if problems:
            raise RegistryError("the evaluation judge: " + "; ".join(problems),
                                hint="e.g. --judge-url http://127.0.0.1:8000/v1 --judge-model NAME")
        return endpoint


@dataclass(frozen=True, slots=True)
class Verdict:
    score: float | None  # 0-1; None: the judge's text held no readable score
    raw: str


def rubric(item: EvalItem) -> str:
    return "knowledge" if item.kind == "knowledge" else "skill"


def plan(config: JudgeConfig, item: EvalItem, answer: str, seed: int) -> Request:
    user = _render(rubric(item), question=item.question, answer=answer,
                   reference=item.reference if rubric(item) == "knowledge" else "")
    return seeded_request(config.model, 0.0, config.max_tokens, [{"role": "system", "content": _render("system")},
                                                                 {"role": "user", "content": user}], seed)


def judge_all(con: Any, config: JudgeConfig, run_id: str, planned: list[Request]) -> tuple[dict[str, str], SendReport]:
    """request sha256 -> the judge's text, every request answered (else JudgeUnavailable); with the counts."""
    endpoint = config.endpoint()
    TeacherJournal(con).record_model(config.model, None, None)
    unique = list({p.request_sha256: p for p in planned}.values())
    report = SendReport()
    try:
        bodies = ask(unique, endpoint, con, run_id, report)
    except EndpointError as exc:
        bodies = {}
        error: str | None = str(exc)
    else:
        error = None
    if error is not None or len(bodies) < len(unique):
        todo = report.planned - report.reused
        raise JudgeUnavailable(
            f"the judge at {config.url} answered {report.ok} of {todo} requests in this run ({report.failed} failed, "
            f"{todo - report.ok - report.failed} not sent, {report.reused} reused from earlier runs); last error: "
            f"{report.last_error or error}",
            hint="every answer received is saved in the catalog: run `taxreg eval` again when the judge is back, "
                 "and only the missing requests are sent")
    return {h: _content(body) for h, body in bodies.items()}, report


def verdict(item: EvalItem, text: str) -> Verdict:
    found = _VERDICT.findall(text)
    top = SCALES[rubric(item)]
    if not found or not 1 <= float(found[-1]) <= top:
        return Verdict(None, text)
    return Verdict((float(found[-1]) - 1) / (top - 1), text)


def _content(body: str) -> str:
    try:
        return response_content(body)
    except Exception:  # a journaled body that is not a chat completion: no verdict in it
        return ""


@functools.cache
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(loader=jinja2.DictLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                              autoescape=False, keep_trailing_newline=False)


def _render(name: str, **variables: Any) -> str:
    return str(_environment().get_template(name).render(**variables)).strip()
