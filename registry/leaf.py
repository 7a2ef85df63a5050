"""One leaf file, from bytes to a typed record and the findings that concern only that file.

Everything here is a pure function of the file's bytes and the configured limits, so its result can
be cached by the file's sha256 (see `registry.validation`).
"""

from __future__ import annotations

import hashlib
import re
import stat
from dataclasses import dataclass
from typing import Any

from registry import schema
from registry.config import ValidationConfig
from registry.discovery import LeafFile
from registry.findings import Finding, finding
from registry.records import ContributionVersion, DocumentRef, Kind, SeedExample, sha256_bytes
from registry.yamlfile import ParsedYaml, YamlProblem, parse

_BOM = b"\xef\xbb\xbf"
_TRAILING = re.compile(r"[ \t]+$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class LeafResult:
    sha256: str
    version: ContributionVersion | None  # None when the file did not pass the schema
    findings: tuple[Finding, ...]
    question_keys: tuple[tuple[str, int], ...] = ()  # (digest of normalised question + context, line)


def read_leaf(leaf: LeafFile, config: ValidationConfig) -> LeafResult:
    path = leaf.source_path
    try:
        info = leaf.abs_path.stat()
        if not stat.S_ISREG(info.st_mode):
            return LeafResult("", None, (finding("TR111", path, "not a regular file (a pipe, device or "
                                                    "folder?); qna.yaml must be a plain file"),))
        size = info.st_size
        if size > config.max_file_size:
            return LeafResult("", None, (finding(
                "TR104", path, f"the file is {size:,} bytes; the limit is {config.max_file_size:,}"),))
        data = leaf.abs_path.read_bytes()
    except OSError as exc:
        return LeafResult("", None, (finding("TR111", path, f"cannot read the file: {exc.strerror}"),))
    return check_bytes(leaf, data, config)


def check_bytes(leaf: LeafFile, data: bytes, config: ValidationConfig) -> LeafResult:
    digest = sha256_bytes(data)
    path = leaf.source_path
    findings: list[Finding] = []
    if data.startswith(_BOM):
        findings.append(finding("TR110", path, "the file starts with a UTF-8 byte order mark"))
        data = data[len(_BOM):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _byte_position(data, exc.start)
        findings.append(finding("TR103", path, f"byte 0x{data[exc.start]:02x} is not UTF-8 (Latin-1 or binary "
                                "data?); save the file as UTF-8", line, col))
        return LeafResult(digest, None, tuple(findings))
    if not text.strip():
        findings.append(finding("TR107", path, "the file is empty"))
        return LeafResult(digest, None, tuple(findings))
    try:
        parsed = parse(text, config.max_yaml_nodes)
    except YamlProblem as problem:
        findings.extend(finding(p.code, path, p.message, p.mark.line, p.mark.col) for p in problem.all())
        return LeafResult(digest, None, tuple(findings))
    if parsed.data is None:
        findings.append(finding("TR107", path, "the file holds no content (only comments or blank lines)"))
        return LeafResult(digest, None, tuple(findings))
    if not isinstance(parsed.data, dict):
        what = "a list" if isinstance(parsed.data, list) else "a single value"
        findings.append(finding("TR106", path, f"the top level is {what}; qna.yaml must be a mapping of keys "
                                "(version, created_by, seed_examples, ...)"))
        return LeafResult(digest, None, tuple(findings))
    if schema.file_version(parsed.data) > 1:  # InstructLab lints only version 2+ files
        findings.extend(_layout(path, text))
    schema_findings = schema.check(path, leaf.top_folder, parsed)
    findings.extend(schema_findings)
    if schema_findings:
        return LeafResult(digest, None, tuple(findings))
    words = _Words.count(parsed.data)
    version = _record(leaf, digest, len(data), parsed, words.total)
    keys = tuple((question_digest(s.question, s.context), s.line) for s in version.seeds)
    findings.extend(_content(path, version, words, keys, config))
    findings.extend(_long_contexts(path, words, parsed, config.words.context))
    return LeafResult(digest, version, tuple(findings), keys)


def _layout(path: str, text: str) -> list[Finding]:
    """The checks InstructLab's yamllint profile fails a file for (trailing spaces, final newline, CRLF)."""
    out = []
    if " \n" in text or "\t\n" in text or " \r\n" in text or text.endswith((" ", "\t")):
        matches = list(_TRAILING.finditer(text))
    else:
        matches = []
    for match in matches:
        line, col = _text_position(text, match.start())
        out.append(finding("TR151", path, "trailing whitespace", line, col))
    if not text.endswith("\n"):
        out.append(finding("TR152", path, "no newline at the end of the file", text.count("\n") + 1))
    crlf = text.find("\r\n")
    if crlf >= 0:
        out.append(finding("TR153", path, "the file uses CRLF (Windows) line endings",
                           _text_position(text, crlf)[0]))
    return out


def _record(leaf: LeafFile, digest: str, size: int, parsed: ParsedYaml, word_count: int) -> ContributionVersion:
    data: dict[str, Any] = parsed.data
    kind = Kind.of_path(leaf.contribution_id)
    # the shape follows the schema the file was checked with (a foundational skill may be knowledge-shaped)
    if schema.schema_name(leaf.top_folder, data) == "knowledge":
        seeds = _knowledge_seeds(data, parsed)
    else:
        seeds = _skill_seeds(data, parsed)
    return ContributionVersion(
        version_id=digest, contribution_id=leaf.contribution_id, source_path=leaf.source_path, kind=kind,
        schema_version=schema.file_version(data), created_by=data["created_by"], domain=data.get("domain"),
        task_description=data.get("task_description"), document_outline=data.get("document_outline"),
        document=_document(data, parsed), seeds=tuple(seeds), byte_size=size,
        word_count=word_count,
    )


def _skill_seeds(data: dict[str, Any], parsed: ParsedYaml) -> list[SeedExample]:
    seeds = []
    for i, seed in enumerate(data["seed_examples"]):
        context = seed.get("context")
        seeds.append(SeedExample.make(
            i, context, seed["question"], seed["answer"], _line(parsed, ("seed_examples", i, "question")),
            _line(parsed, ("seed_examples", i, "context")) if context else 0))
    return seeds


def _knowledge_seeds(data: dict[str, Any], parsed: ParsedYaml) -> list[SeedExample]:
    seeds: list[SeedExample] = []
    for i, seed in enumerate(data["seed_examples"]):
        context_line = _line(parsed, ("seed_examples", i, "context"))
        for j, qa in enumerate(seed["questions_and_answers"]):
            where = ("seed_examples", i, "questions_and_answers", j, "question")
            seeds.append(SeedExample.make(len(seeds), seed["context"], qa["question"], qa["answer"],
                                          _line(parsed, where), context_line))
    return seeds


def _document(data: dict[str, Any], parsed: ParsedYaml) -> DocumentRef | None:
    document = data.get("document")
    if not isinstance(document, dict):
        return None
    patterns = tuple(document["patterns"])
    lines = tuple(_line(parsed, ("document", "patterns", k)) for k in range(len(patterns)))
    key = parsed.key_marks.get(("document",), (1, 1))
    return DocumentRef(document["repo"], str(document["commit"]), patterns, lines, key[0])


@dataclass(frozen=True, slots=True)
class _Words:
    """Word counts, each text split once: per context, per question + answer, and the whole leaf."""

    contexts: tuple[int | None, ...]  # per seed_examples item (None when it has no context)
    qas: tuple[int, ...]  # per question/answer pair, in seed order
    total: int

    @classmethod
    def count(cls, data: dict[str, Any]) -> _Words:
        contexts: list[int | None] = []
        qas: list[int] = []
        for seed in data["seed_examples"]:
            contexts.append(len(seed["context"].split()) if seed.get("context") else None)
            pairs = seed.get("questions_and_answers") or [seed]
            qas.extend(len(qa["question"].split()) + len(qa["answer"].split()) for qa in pairs)
        header = sum(len(str(data.get(k) or "").split()) for k in ("task_description", "domain", "document_outline"))
        return cls(tuple(contexts), tuple(qas), header + sum(c or 0 for c in contexts) + sum(qas))


def _content(path: str, version: ContributionVersion, words: _Words, keys: tuple[tuple[str, int], ...],
             config: ValidationConfig) -> list[Finding]:
    limits = config.words
    out = []
    if words.total > limits.leaf:
        out.append(finding("TR403", path, f"the leaf has {words.total:,} words; the guidance is at most "
                           f"about {limits.leaf:,}"))
    seen: dict[str, int] = {}
    for seed, qa_words, (key, line) in zip(version.seeds, words.qas, keys, strict=True):
        if qa_words > limits.qa:
            out.append(finding("TR402", path, f"the question and answer have {qa_words} words; the limit is "
                               f"{limits.qa}", seed.line))
        if key in seen:
            out.append(finding("TR405", path, f"this question repeats the one at line {seen[key]}", line))
        else:
            seen[key] = line
    return out


def _long_contexts(path: str, words: _Words, parsed: ParsedYaml, limit: int) -> list[Finding]:
    return [finding("TR401", path, f"the context has {count} words; the limit is {limit}",
                    _line(parsed, ("seed_examples", i, "context")), yaml_path=f".seed_examples[{i}].context")
            for i, count in enumerate(words.contexts) if count is not None and count > limit]


def question_digest(question: str, context: str | None) -> str:
    """Identity of a question for duplicate checks: case and spacing ignored; grounded ones with their context."""
    text = " ".join(question.lower().split()) + "\x00" + " ".join((context or "").split())
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _line(parsed: ParsedYaml, where: tuple[str | int, ...]) -> int:
    return parsed.marks.get(where, (1, 1))[0]


def _text_position(text: str, index: int) -> tuple[int, int]:
    start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - start + 1


def _byte_position(data: bytes, index: int) -> tuple[int, int]:
    start = data.rfind(b"\n", 0, index) + 1
    return data.count(b"\n", 0, index) + 1, len(data[start:index].decode("utf-8", "replace")) + 1


