"""Typed records with stable, content-addressed ids. Frozen: a record never changes after it is made."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

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


@dataclass(frozen=True, slots=True)
class SeedExample:
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
        body = canonical_json({"context": context, "question": question, "answer": answer})
        return cls(sha256_bytes(body.encode()), ordinal, context, question, answer, line, context_line)


@dataclass(frozen=True, slots=True)
class DocumentRef:
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
    parsed: str  # canonical JSON of the whole file

    @property
    def grounded(self) -> bool:
        return self.kind is not Kind.KNOWLEDGE and any(s.context for s in self.seeds)


@dataclass(frozen=True, slots=True)
class AttributionEntry:
    title: str | None
    link: str | None
    revision: str | None
    license_raw: str | None
    license_spdx: str | None  # None when the text is not a known SPDX id or expression
    creators: str | None
    line: int


@dataclass(frozen=True, slots=True)
class SourceDocument:
    doc_sha256: str
    repo_url: str
    repo_commit: str
    path: str  # inside the repository
    media_type: str
    byte_size: int
    title: str | None
