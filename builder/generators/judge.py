"""The judge: a model scores every teacher sample the filters kept, before it is kept.

The rubrics are versioned Jinja templates beside the teacher's (`templates/judge_*_VERSION.j2`), hashed as one set:

- knowledge: `faithfulness` (every claim of the answer is stated in the document chunk it was written from) and
  `relevance` (the question asks about what the chunk says, and the answer answers it);
- skills: `following` (the pair is an instance of the task description; a grounded skill's answer keeps to its
  context).

Each criterion is a whole number from 1 to 5, read from `criterion: N` lines (case, spacing and markdown emphasis
tolerated); a sample's score is its lowest. A sample under `threshold` is dropped (`judge_below_threshold`), and an
answer without every score (chatter, a refusal) drops its sample as `judge_unparseable`; both stay in the catalog
with their reason. Each judgement is lineage (`sample_judgement`: scores, judge model, rubric and its hash, the
journaled request), shown by `v_sample_provenance`.

Judge requests are asked through `sending.ask` as the teacher's are: keyed, journaled, bounded, retried and
resumable, live or through Batch API files, and the run fails by the same rules. A sample whose judge request
failed is left out of the run (the next run judges it); the run also fails when more than `max_failed` of the
answers could not be read: a judge that does not follow the rubric would otherwise drop everything quietly.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from builder.generators.completions import printable, response_content
from builder.generators.prompts import TemplateSet, versions
from builder.generators.sending import Endpoint, EndpointError, Request, SendReport, ask, endpoint_of, seeded_request
from registry.catalog.generation import Judgement
from registry.catalog.journal import TeacherJournal
from registry.samples import FilterStats, Verdict

if TYPE_CHECKING:
    from builder.generators.batch import BatchFiles

RUBRIC_VERSION = "v1"
RUBRIC_NAMES = ("judge_system", "judge_format", "judge_knowledge", "judge_skill")
CRITERIA = {"knowledge": ("faithfulness", "relevance"), "skill": ("following",)}
REASON_CHARS = 500  # of the judge's words kept with a judgement


class Subject(NamedTuple):
    """What a sample is judged on: the question and answer the teacher wrote, and what they were written from."""

    rubric: str  # knowledge | skill
    question: str
    answer: str
    source: str | None  # the document chunk (knowledge) or the seed context (grounded skills)
    task: str | None  # the task description (skills)


@functools.cache
def rubrics(version: str) -> TemplateSet:
    return TemplateSet(RUBRIC_NAMES, version)


@dataclass(frozen=True, slots=True)
class JudgeConfig:
    url: str  # defaults to the teacher's (see builder.generators.configure)
    model: str
    api_key: str = field(default="none", repr=False)
    threshold: int = 4  # the lowest score (1-5) a kept sample may have
    rubric: str = RUBRIC_VERSION  # which version of the rubric templates
    concurrency: int = 16
    max_tokens: int = 256  # a few score lines and one sentence
    timeout: float = 60.0
    max_attempts: int = 5
    backoff: float = 0.5
    max_response_bytes: int = 1 << 20
    max_wait: float = 30.0
    max_failed: float = 0.1  # of its requests, or of its answers that could not be read
    batch: bool = False

    def __post_init__(self) -> None:
        known = versions("judge_system")
        problems = self.endpoint().problems() + [f"{name} {problem}" for name, problem in (
            ("--judge-threshold", "must be a whole number from 1 to 5" if not 1 <= self.threshold <= 5 else ""),
            ("rubric", f"{self.rubric!r} is not a rubric version (known: {', '.join(known)})"
             if self.rubric not in known else ""),
            ("max_tokens", "must be at least 1" if self.max_tokens < 1 else "")) if problem]
        if problems:
            raise EndpointError("the judge: " + "; ".join(problems),
                                hint="set [generate.judge] in taxreg.toml, or --judge-url/--judge-model (they "
                                     "default to the teacher's)")

    def endpoint(self) -> Endpoint:
        return endpoint_of("judge", self)

    @property
    def rubric_sha256(self) -> str:
        return rubrics(self.rubric).sha256

    def params(self) -> dict[str, Any]:
        """What the run records and the build's generate stage is keyed by (never the API key)."""
        return {"judge_url": self.url, "judge_model": self.model, "threshold": self.threshold,
                "rubric_version": self.rubric, "rubrics": rubrics(self.rubric).hashes(), "max_tokens": self.max_tokens}


# --- reading the judge's answers ------------------------------------------------------------------------

class Read(NamedTuple):
    scores: dict[str, int] | None  # every criterion's score; None when one is missing
    reason: str | None


_REASON = re.compile(r"\[reason\]\s*(.*?)\s*(?:\[end\]|$)", re.IGNORECASE | re.DOTALL)


@functools.cache
def _score_line(criterion: str) -> re.Pattern[str]:
    return re.compile(rf"^[\s*_#-]*{criterion}[\s*_]*[:=][\s*_]*([1-5])(?:\s*/\s*5)?[\s*_.]*$",
                      re.IGNORECASE | re.MULTILINE)


def read_verdict(text: str, criteria: tuple[str, ...]) -> Read:
    """`criterion: N` for each criterion (the first line of each counts), and the `[Reason]` sentence."""
    found = {c: _score_line(c).search(text) for c in criteria}
    if not all(found.values()):
        return Read(None, printable(text.strip())[:REASON_CHARS] or None)
    reason = _REASON.search(text)
    return Read({c: int(m.group(1)) for c, m in found.items() if m},
                printable(reason.group(1))[:REASON_CHARS] if reason else None)


# --- judging --------------------------------------------------------------------------------------------

@dataclass(slots=True)
class JudgeReport:
    requests: SendReport = field(default_factory=SendReport)
    verdicts: Counter[str] = field(default_factory=Counter)  # passed | below_threshold | unparseable
    unjudged: int = 0  # kept by the filters, but the judge's request failed: left out of the run
    first_unread: str | None = None  # the first answer without every score

    def as_dict(self) -> dict[str, Any]:
        return self.requests.as_dict() | {"samples_passed": self.verdicts["passed"],
                                          "samples_below_threshold": self.verdicts["below_threshold"],
                                          "answers_unparseable": self.verdicts["unparseable"],
                                          "samples_unjudged": self.unjudged}


class Judge:
    def __init__(self, config: JudgeConfig) -> None:
        self.config = config
        self.report = JudgeReport()
        self.rubrics = rubrics(config.rubric)

    def judge(self, verdicts: list[Verdict], subjects: dict[str, Subject], stats: FilterStats, con: Any,
              run_id: str, random_seed: int, batch: BatchFiles | None = None) -> tuple[list[Verdict], list[Judgement]]:
        """The verdicts with the judge's applied (kept samples with a subject are scored), and its judgements."""
        TeacherJournal(con).record_model(self.config.model, None, None)
        requests = {v.sample.sample_id: self.request(subjects[v.sample.sample_id], random_seed)
                    for v in verdicts if v.kept and v.sample.sample_id in subjects}
        answers = ask(list({r.request_sha256: r for r in requests.values()}.values()), self.config.endpoint(), con,
                      run_id, self.report.requests, batch)
        judged: list[Verdict] = []
        judgements: list[Judgement] = []
        for verdict in verdicts:
            request = requests.get(verdict.sample.sample_id)
            if request is None:
                judged.append(verdict)
            elif request.request_sha256 not in answers:
                self.report.unjudged += 1
            else:
                judgement = self._judgement(verdict, subjects[verdict.sample.sample_id], request,
                                            answers[request.request_sha256])
                judgements.append(judgement)
                judged.append(self._applied(verdict, judgement, stats))
        stats.kept -= self.report.unjudged
        self._check_readable(len(judgements))
        return judged, judgements

    def request(self, subject: Subject, random_seed: int) -> Request:
        r, c = self.rubrics, self.config
        user = r.render(f"judge_{subject.rubric}", question=subject.question, answer=subject.answer,
                        source=subject.source, task=subject.task, criteria=CRITERIA[subject.rubric])
        return seeded_request(c.model, 0.0, c.max_tokens, [{"role": "system", "content": r.render("judge_system")},
                                                           {"role": "user", "content": user}], random_seed)

    def _judgement(self, verdict: Verdict, subject: Subject, request: Request, body: str) -> Judgement:
        read = read_verdict(response_content(body), CRITERIA[subject.rubric])
        score = min(read.scores.values()) if read.scores else None
        outcome = "unparseable" if score is None else "passed" if score >= self.config.threshold else "below_threshold"
        self.report.verdicts[outcome] += 1
        if outcome == "unparseable":
            self.report.first_unread = self.report.first_unread or read.reason
        return Judgement(verdict.sample.sample_id, request.request_sha256, self.config.model,
                         f"{subject.rubric}_{self.config.rubric}", self.rubrics.sha256, read.scores, score,
                         self.config.threshold, outcome, read.reason)

    @staticmethod
    def _applied(verdict: Verdict, judgement: Judgement, stats: FilterStats) -> Verdict:
        if judgement.verdict == "passed":
            return verdict
        reason = f"judge_{judgement.verdict}"
        stats.kept -= 1
        if stats.dropped is not None:
            stats.dropped[reason] += 1
        return Verdict(verdict.sample, False, reason)

    def _check_readable(self, judged: int) -> None:
        unread = self.report.verdicts["unparseable"]
        if unread and (unread == judged or unread > self.config.max_failed * judged):
            raise EndpointError(
                f"{self.config.endpoint().where} answered {unread} of {judged} requests without every score the "
                f"rubric asks for (more than --judge-max-failed {self.config.max_failed:g}); first answer: "
                f"{self.report.first_unread!r}",
                hint="use a judge model that follows the rubric's format ([generate.judge] model), or another "
                     "rubric version; its answers are saved in the catalog (teacher_request, role judge)")
