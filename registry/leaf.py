"""One leaf file, from bytes to a typed record and the findings that concern only that file.

Everything here is a pure function of the file's bytes and the configured limits, so its result can
be cached by the file's sha256 (see `registry.validation`).
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass
from typing import Any

from registry import schema
from registry.config import ValidationConfig
from registry.discovery import LeafFile
from registry.findings import Finding, finding
from registry.records import ContributionVersion, DocumentRef, Kind, SeedExample, canonical_json, sha256_bytes
from registry.yamlfile import Mark, ParsedYaml, YamlProblem, parse

_BOM = b"\xef\xbb\xbf"
_TRAILING = re.compile(r"[ \t]+$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class LeafResult:
    sha256: str
    byte_size: int
    version: ContributionVersion | None  # None when the file did not pass the schema
    findings: tuple[Finding, ...]


def read_leaf(leaf: LeafFile, config: ValidationConfig) -> LeafResult:
    path = leaf.source_path
    try:
        info = leaf.abs_path.stat()
        if not stat.S_ISREG(info.st_mode):
            return LeafResult("", 0, None, (finding("TR111", path, "not a regular file (a pipe, device or "
                                                    "folder?); qna.yaml must be a plain file"),))
        size = info.st_size
        if size > config.max_file_size:
            return LeafResult("", size, None, (finding(
                "TR104", path, f"the file is {size:,} bytes; the limit is {config.max_file_size:,}"),))
        data = leaf.abs_path.read_bytes()
    except OSError as exc:
        return LeafResult("", 0, None, (finding("TR111", path, f"cannot read the file: {exc.strerror}"),))
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
        return LeafResult(digest, len(data), None, tuple(findings))
    if not text.strip():
        findings.append(finding("TR107", path, "the file is empty"))
        return LeafResult(digest, len(data), None, tuple(findings))
    try:
        parsed = parse(text, config.max_yaml_nodes)
    except YamlProblem as problem:
        findings.append(finding(problem.code, path, problem.message, problem.mark.line, problem.mark.col))
        return LeafResult(digest, len(data), None, tuple(findings))
    if parsed.data is None:
        findings.append(finding("TR107", path, "the file holds no content (only comments or blank lines)"))
        return LeafResult(digest, len(data), None, tuple(findings))
    if not isinstance(parsed.data, dict):
        what = "a list" if isinstance(parsed.data, list) else "a single value"
        findings.append(finding("TR106", path, f"the top level is {what}; qna.yaml must be a mapping of keys "
                                "(version, created_by, seed_examples, ...)"))
        return LeafResult(digest, len(data), None, tuple(findings))
    if schema.file_version(parsed.data) > 1:  # InstructLab lints only version 2+ files
        findings.extend(_layout(path, text))
    schema_findings = schema.check(path, leaf.top_folder, parsed)
    findings.extend(schema_findings)
    version = None
    if not schema_findings:
        version = _record(leaf, digest, len(data), parsed)
        findings.extend(_content(path, version, parsed, config))
    return LeafResult(digest, len(data), version, tuple(findings))


def _layout(path: str, text: str) -> list[Finding]:
    """The checks InstructLab's yamllint profile fails a file for (trailing spaces, final newline, CRLF)."""
    out = []
    for match in _TRAILING.finditer(text):
        line, col = _text_position(text, match.start())
        out.append(finding("TR151", path, "trailing whitespace", line, col))
    if not text.endswith("\n"):
        out.append(finding("TR152", path, "no newline at the end of the file", text.count("\n") + 1))
    crlf = text.find("\r\n")
    if crlf >= 0:
        out.append(finding("TR153", path, "the file uses CRLF (Windows) line endings",
                           _text_position(text, crlf)[0]))
    return out


def _record(leaf: LeafFile, digest: str, size: int, parsed: ParsedYaml) -> ContributionVersion:
    data: dict[str, Any] = parsed.data
    kind = Kind.of_path(leaf.contribution_id)
    if kind is Kind.FOUNDATIONAL_SKILL or kind is Kind.COMPOSITIONAL_SKILL:
        seeds = _skill_seeds(data, parsed)
    else:
        seeds = _knowledge_seeds(data, parsed)
    return ContributionVersion(
        version_id=digest, contribution_id=leaf.contribution_id, source_path=leaf.source_path, kind=kind,
        schema_version=schema.file_version(data), created_by=data["created_by"], domain=data.get("domain"),
        task_description=data.get("task_description"), document_outline=data.get("document_outline"),
        document=_document(data, parsed), seeds=tuple(seeds), byte_size=size,
        word_count=_words(data), parsed=canonical_json(data),
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
    key = parsed.key_marks.get(("document",), Mark(1, 1))
    return DocumentRef(document["repo"], str(document["commit"]), patterns, lines, key.line)


def _content(path: str, version: ContributionVersion, parsed: ParsedYaml,
             config: ValidationConfig) -> list[Finding]:
    limits = config.words
    out = []
    if version.word_count > limits.leaf:
        out.append(finding("TR403", path, f"the leaf has {version.word_count:,} words; the guidance is at most "
                           f"about {limits.leaf:,}"))
    contexts_seen: set[int] = set()
    questions: dict[str, int] = {}
    for seed in version.seeds:
        if seed.context and seed.context_line not in contexts_seen:
            contexts_seen.add(seed.context_line)
            words = len(seed.context.split())
            if words > limits.context:
                out.append(finding("TR401", path, f"the context has {words} words; the limit is {limits.context}",
                                   seed.context_line))
        qa_words = len(seed.question.split()) + len(seed.answer.split())
        if qa_words > limits.qa:
            out.append(finding("TR402", path, f"the question and answer have {qa_words} words; the limit is "
                               f"{limits.qa}", seed.line))
        key = normalize_question(seed.question, seed.context)
        if key in questions:
            out.append(finding("TR405", path, f"this question repeats the one at line {questions[key]}", seed.line))
        else:
            questions[key] = seed.line
    return out


def normalize_question(question: str, context: str | None = None) -> str:
    """A grounded question is the same question only when asked about the same context."""
    return " ".join(question.lower().split()) + "\x00" + " ".join((context or "").split())


def _words(value: Any) -> int:
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_words(v) for v in value)
    if isinstance(value, dict):
        return sum(_words(v) for k, v in value.items() if k != "document")
    return 0


def _line(parsed: ParsedYaml, where: tuple[str | int, ...]) -> int:
    return parsed.marks.get(where, Mark(1, 1)).line


def _text_position(text: str, index: int) -> tuple[int, int]:
    start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - start + 1


def _byte_position(data: bytes, index: int) -> tuple[int, int]:
    start = data.rfind(b"\n", 0, index) + 1
    return data.count(b"\n", 0, index) + 1, len(data[start:index].decode("utf-8", "replace")) + 1


