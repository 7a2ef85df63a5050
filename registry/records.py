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


def _json_str(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)  # what json.dumps(ensure_ascii=False) writes


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
        # canonical_json({"context", "question", "answer"}) spelled out: the same bytes, 3x faster
        body = (f'{{"answer":{_json_str(answer)},"context":{_json_str(context)},'
                f'"question":{_json_str(question)}}}')
        return cls(sha256_bytes(body.encode()), ordinal, context, question, answer, line, context_line)


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
