"""Typed records with stable, content-addressed ids. Frozen: a record never changes after it is made."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from json.encoder import encode_basestring
from typing import Any, NamedTuple

TOP_FOLDERS = ("knowledge", "compositional_skills", "foundational_skills")


class Kind(StrEnum):
    KNOWLEDGE = "knowledge"
    COMPOSITIONAL_SKILL = "compositional_skill"
    FOUNDATIONAL_SKILL = "foundational_skill"

    @classmethod
    def of_path(cls, contribution_id: str) -> Kind:
        top = contribution_id.split("/", 1)[0]
        return {
            "knowledge": cls.KNOWLEDGE,
            "compositional_skills": cls.COMPOSITIONAL_SKILL,
            "foundational_skills": cls.FOUNDATIONAL_SKILL,
        }[top]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 kept: the same value always gives the same text (and hash)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class SeedExample(NamedTuple):
    seed_id: str  # sha256 of canonical {context, question, answer}
    ordinal: int  # position in the file, counting every Q/A pair
    context: str | None
    question: str
    answer: str
    line: int  # where the question starts in qna.yaml
    context_line: int  # where the context starts (0 when there is none)

    @classmethod
    def make(cls, ordinal: int, context: str | None, question: str, answer: str, line: int,
             context_line: int = 0) -> SeedExample:
        # canonical_json({"context", "question", "answer"}) spelled out: the same bytes, 3x faster (made
        # for every seed of every leaf: helpers inlined)
        body = (f'{{"answer":{encode_basestring(answer)},'
                f'"context":{"null" if context is None else encode_basestring(context)},'
                f'"question":{encode_basestring(question)}}}')
        return cls(hashlib.sha256(body.encode()).hexdigest(), ordinal, context, question, answer, line, context_line)


class DocumentRef(NamedTuple):
    repo: str
    commit: str
    patterns: tuple[str, ...]
    pattern_lines: tuple[int, ...]  # where each pattern is written in qna.yaml
    line: int  # where `document:` starts


@dataclass(frozen=True, slots=True)
class ContributionVersion:
    """One version of one leaf: the parsed content of its qna.yaml bytes."""

    version_id: str  # sha256 of the qna.yaml bytes
    contribution_id: str  # the leaf's taxonomy path, e.g. knowledge/science/birds/chickadee
    source_path: str  # the qna.yaml path relative to the taxonomy root
    kind: Kind
    schema_version: int
    created_by: str
    domain: str | None
    task_description: str | None
    document_outline: str | None
    document: DocumentRef | None
    seeds: tuple[SeedExample, ...]
    byte_size: int
    word_count: int

    @property
    def grounded(self) -> bool:
        return self.kind is not Kind.KNOWLEDGE and any(s.context for s in self.seeds)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Parse workers send every version to the parent: the seeds travel as columns of plain values,
        which pickle about 2x faster both ways than a dozen named tuples per leaf."""
        fields = tuple(getattr(self, name) for name in _VERSION_FIELDS)
        return _rebuild_version, (fields, tuple(zip(*self.seeds, strict=True)))


_VERSION_FIELDS = tuple(f for f in ContributionVersion.__dataclass_fields__ if f != "seeds")


def _rebuild_version(fields: tuple[Any, ...], seed_columns: tuple[tuple[Any, ...], ...]) -> ContributionVersion:
    seeds = tuple(map(SeedExample._make, zip(*seed_columns, strict=True)))
    return ContributionVersion(**dict(zip(_VERSION_FIELDS, fields, strict=True)), seeds=seeds)


class AttributionEntry(NamedTuple):
    title: str | None
    link: str | None
    revision: str | None
    license_raw: str | None
    license_spdx: str | None  # None when the text is not a known SPDX id or expression
    creators: str | None
    line: int


class SourceDocument(NamedTuple):
    doc_sha256: str
    repo_url: str
    repo_commit: str
    path: str  # inside the repository
    media_type: str
    byte_size: int
    title: str | None
