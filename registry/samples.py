"""Training samples, their lineage edges, and the filters that keep or drop them (always with a reason)."""

from __future__ import annotations

import hashlib
import re
import string
from collections import Counter
from dataclasses import dataclass, replace
from json.encoder import encode_basestring
from typing import NamedTuple

from registry.records import canonical_json, sha256_bytes

Message = dict[str, str]


class Edge(NamedTuple):
    """sample wasDerivedFrom parent: a seed, a document chunk or another sample."""

    parent_kind: str  # seed | chunk | sample
    parent_id: str
    role: str  # e.g. seed_example, grounding_chunk
    contribution_id: str | None = None
    version_id: str | None = None
    doc_sha256: str | None = None
    method: str = "generated"  # how the edge is known: generated | text_match | file_name ...


@dataclass(frozen=True, slots=True)
class Sample:
    sample_id: str  # sha256 of the canonical messages
    messages: tuple[tuple[str, str], ...]  # (role, content)
    kind: str
    lineage: tuple[Edge, ...]
    body: str = ""  # the canonical JSON of the messages (what sample_id hashes), kept to be stored as is
    words: int = -1  # word count, counted once (-1: not counted yet)

    @classmethod
    def make(cls, messages: list[Message], kind: str, lineage: list[Edge]) -> Sample:
        # canonical_json([{"role", "content"}...]) spelled out: the same bytes, several times faster
        body = "[" + ",".join(f'{{"content":{encode_basestring(m["content"])},"role":{encode_basestring(m["role"])}}}'
                              for m in messages) + "]"
        try:
            encoded = body.encode()
        except UnicodeEncodeError:  # a lone surrogate cannot be stored: U+FFFD stands in, the filters drop it
            return cls.make([{"role": m["role"], "content": without_surrogates(m["content"])} for m in messages],
                            kind, lineage)
        pairs = tuple((m["role"], m["content"]) for m in messages)
        words = sum(len(m["content"].split()) for m in messages)
        return cls(sha256_bytes(encoded), pairs, kind, tuple(lineage), body, words)

    def messages_json(self) -> str:
        return self.body or canonical_json([{"role": r, "content": c} for r, c in self.messages])

    def text(self, role: str | None = None) -> str:
        return "\n".join(c for r, c in self.messages if role is None or r == role)

    @property
    def n_words(self) -> int:
        return self.words if self.words >= 0 else sum(len(c.split()) for _, c in self.messages)


@dataclass(frozen=True, slots=True)
class FilterConfig:
    max_words: int = 2048
    min_answer_words: int = 1


class Verdict(NamedTuple):
    sample: Sample
    kept: bool
    drop_reason: str | None


@dataclass(slots=True)
class FilterStats:
    produced: int = 0
    kept: int = 0
    dropped: Counter[str] | None = None

    def as_dict(self) -> dict[str, object]:
        return {"produced": self.produced, "kept": self.kept, "dropped": dict(sorted((self.dropped or {}).items()))}


_SURROGATE = re.compile("[\ud800-\udfff]")
_BROKEN = re.compile("[\ud800-\udfff\ufffd]")  # a lone surrogate, or what one (or an undecodable byte) became
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # C0, DEL and C1 but tab, newline, return


def without_surrogates(text: str) -> str:
    """Lone surrogates (what JSON's `\\ud800` decodes to) as U+FFFD: UTF-8 and DuckDB cannot hold them."""
    return _SURROGATE.sub("\ufffd", text)


def text_problem(text: str) -> str | None:
    """The drop reason text earns on its own: `invalid_unicode` (a lone surrogate or U+FFFD, the mark of bytes
    that were not UTF-8) or `control_characters` (NUL and the other C0/C1 controls but tab, newline, return)."""
    if _BROKEN.search(text):
        return "invalid_unicode"
    if _CONTROL.search(text):
        return "control_characters"
    return None


_PUNCTUATION = str.maketrans({c: " " for c in string.punctuation})


def near_key(sample: Sample) -> str:
    """Case, punctuation and spacing ignored (system turns too): equal keys are near duplicates."""
    text = "\n".join(c for r, c in sample.messages if r != "system").lower().translate(_PUNCTUATION)
    return hashlib.blake2b(" ".join(text.split()).encode(), digest_size=16).hexdigest()


def apply_filters(samples: list[Sample], config: FilterConfig) -> tuple[list[Verdict], FilterStats]:
    """Exact duplicates merge (same id, lineage united); the rest are kept or dropped with a reason."""
    stats = FilterStats(dropped=Counter())
    assert stats.dropped is not None
    merged: dict[str, Sample] = {}
    for sample in samples:
        stats.produced += 1
        if sample.sample_id in merged:
            stats.dropped["exact_duplicate"] += 1
            old = merged[sample.sample_id]
            merged[sample.sample_id] = replace(old, lineage=tuple(dict.fromkeys(old.lineage + sample.lineage)))
        else:
            merged[sample.sample_id] = sample
    verdicts: list[Verdict] = []
    near_seen: set[str] = set()
    for sample in sorted(merged.values(), key=lambda s: s.sample_id):
        reason = _reason(sample, config, near_seen)
        if reason:
            stats.dropped[reason] += 1
        else:
            stats.kept += 1
        verdicts.append(Verdict(sample, reason is None, reason))
    return verdicts, stats


def _reason(sample: Sample, config: FilterConfig, near_seen: set[str]) -> str | None:
    broken = text_problem(sample.text())
    if broken:
        return broken
    answer = sample.text("assistant")
    if len(answer.split()) < config.min_answer_words:
        return "empty_answer"
    if sample.n_words > config.max_words:
        return "too_long"
    key = near_key(sample)
    if key in near_seen:
        return "near_duplicate"
    near_seen.add(key)
    return None
