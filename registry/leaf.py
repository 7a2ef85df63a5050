"""One leaf file, from bytes to a typed record and the findings that concern only that file.

Everything here is a pure function of the file's bytes and the configured limits, so its result can
be cached by the file's sha256 (see `registry.validation`).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
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
    contexts: dict[int, str] = field(default_factory=dict)  # each seed context whitespace-normalised, by line


def read_leaf(leaf: LeafFile, config: ValidationConfig) -> LeafResult:
    path = leaf.source_path
    try:
        info = os.stat(leaf.file)
        if not stat.S_ISREG(info.st_mode):  # before opening: opening a pipe would block
            return LeafResult("", None, (finding("TR111", path, "not a regular file (a pipe, device or "
                                                    "folder?); qna.yaml must be a plain file"),))
        size = info.st_size
        if size > config.max_file_size:
            return LeafResult("", None, (finding(
                "TR104", path, f"the file is {size:,} bytes; the limit is {config.max_file_size:,}"),))
        data = read_file(leaf.file, size)
    except OSError as exc:
        return LeafResult("", None, (finding("TR111", path, f"cannot read the file: {exc.strerror}"),))
    return check_bytes(leaf, data, config)


def read_file(path: str, size: int) -> bytes:
    """The bytes of a regular file `stat` said is `size` bytes long: one read, without the buffered file
    object `open()` builds and the `fstat` calls it makes (~10 us a file, most of what reading one cost)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, size + 1)
        if len(data) == size:
            return data
        chunks = [data]  # it changed since, or a short read: read to the end, as open().read() would
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


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
    seeds = _Seeds(parsed, knowledge=schema.schema_name(leaf.top_folder, parsed.data) == "knowledge")
    version = _record(leaf, digest, len(data), parsed, seeds)
    findings.extend(_content(path, seeds, parsed, config))
    return LeafResult(digest, version, tuple(findings), tuple(seeds.keys), seeds.contexts)


def _layout(path: str, text: str) -> list[Finding]:
    """The checks InstructLab's yamllint profile fails a file for (trailing spaces, final newline, CRLF)."""
    out = []
    # Cheap tests first: one-character searches run at memchr speed, and only `" \n"` needs a real scan.
    if "\t" in text or "\r" in text or " \n" in text or text.endswith(" "):
        for match in _TRAILING.finditer(text):
            line, col = _text_position(text, match.start())
            out.append(finding("TR151", path, "trailing whitespace", line, col))
    if not text.endswith("\n"):
        out.append(finding("TR152", path, "no newline at the end of the file", text.count("\n") + 1))
    crlf = text.find("\r\n") if "\r" in text else -1
    if crlf >= 0:
        out.append(finding("TR153", path, "the file uses CRLF (Windows) line endings",
                           _text_position(text, crlf)[0]))
    return out


def _record(leaf: LeafFile, digest: str, size: int, parsed: ParsedYaml, seeds: _Seeds) -> ContributionVersion:
    data: dict[str, Any] = parsed.data
    return ContributionVersion(
        version_id=digest, contribution_id=leaf.contribution_id, source_path=leaf.source_path,
        kind=Kind.of_path(leaf.contribution_id), schema_version=schema.file_version(data),
        created_by=data["created_by"], domain=data.get("domain"), task_description=data.get("task_description"),
        document_outline=data.get("document_outline"), document=_document(data, parsed), seeds=tuple(seeds.seeds),
        byte_size=size, word_count=seeds.total,
    )


class _Seeds:
    """One walk over `seed_examples`: the seed records, word counts and duplicate-question keys, with
    each text split once (splitting the same texts for each of them was ~10% of a leaf's check).

    The shape follows the schema the file was checked with (a foundational skill may be knowledge-shaped):
    knowledge items hold a context and several Q&A pairs, skill items one pair and maybe a context.
    """

    def __init__(self, parsed: ParsedYaml, knowledge: bool) -> None:
        self.seeds: list[SeedExample] = []
        self.qa_words: list[int] = []  # per question/answer pair, in seed order
        self.keys: list[tuple[str, int]] = []  # (question_digest, line) per seed
        self.context_words: list[tuple[int, int]] = []  # (item index, words) per item with a context
        self.contexts: dict[int, str] = {}  # normalised context by the line it starts at
        item_lines = parsed.item_lines(("seed_examples",))
        for i, (item, lines) in enumerate(zip(parsed.data["seed_examples"], item_lines, strict=True)):
            context = item.get("context")
            context_line = 0
            normal_context = ""
            if context:
                split = context.split()
                self.context_words.append((i, len(split)))
                context_line = lines.get("context", 1)
                normal_context = " ".join(split)
                self.contexts.setdefault(context_line, normal_context)  # the first, as the resolver checks
            if knowledge:
                qa_lines = parsed.item_lines(("seed_examples", i, "questions_and_answers"))
                for qa, qa_line in zip(item["questions_and_answers"], qa_lines, strict=True):
                    self._add(qa, context, normal_context, qa_line.get("question", 1), context_line)
            else:
                self._add(item, context, normal_context, lines.get("question", 1), context_line)
        data = parsed.data
        header = sum(len(str(data.get(k) or "").split()) for k in ("task_description", "domain", "document_outline"))
        self.total = header + sum(n for _, n in self.context_words) + sum(self.qa_words)  # the leaf's words

    def _add(self, qa: dict[str, Any], context: str | None, normal_context: str, line: int, context_line: int) -> None:
        question, answer = qa["question"], qa["answer"]
        words = question.split()
        self.qa_words.append(len(words) + len(answer.split()))
        self.keys.append((_digest(" ".join(words).lower(), normal_context), line))
        self.seeds.append(SeedExample.make(len(self.seeds), context, question, answer, line, context_line))


def _document(data: dict[str, Any], parsed: ParsedYaml) -> DocumentRef | None:
    document = data.get("document")
    if not isinstance(document, dict):
        return None
    patterns = tuple(document["patterns"])
    lines = tuple(_line(parsed, ("document", "patterns", k)) for k in range(len(patterns)))
    key = parsed.key_mark(("document",)) or (1, 1)
    return DocumentRef(document["repo"], str(document["commit"]), patterns, lines, key[0])


def _content(path: str, seeds: _Seeds, parsed: ParsedYaml, config: ValidationConfig) -> list[Finding]:
    """InstructLab's word guidance (TR401-TR403) and questions repeated within the file (TR405)."""
    limits = config.words
    out = []
    if seeds.total > limits.leaf:
        out.append(finding("TR403", path, f"the leaf has {seeds.total:,} words; the guidance is at most "
                           f"about {limits.leaf:,}"))
    seen: dict[str, int] = {}
    for qa_words, (key, line) in zip(seeds.qa_words, seeds.keys, strict=True):
        if qa_words > limits.qa:
            out.append(finding("TR402", path, f"the question and answer have {qa_words} words; the limit is "
                               f"{limits.qa}", line))
        if key in seen:
            out.append(finding("TR405", path, f"this question repeats the one at line {seen[key]}", line))
        else:
            seen[key] = line
    out.extend(finding("TR401", path, f"the context has {count} words; the limit is {limits.context}",
                       _line(parsed, ("seed_examples", i, "context")), yaml_path=f".seed_examples[{i}].context")
               for i, count in seeds.context_words if count > limits.context)
    return out


def _digest(normal_question: str, normal_context: str) -> str:
    """Identity of a question for duplicate checks (case and spacing already normalised; grounded ones with their
    context)."""
    return hashlib.blake2b(f"{normal_question}\x00{normal_context}".encode(), digest_size=8).hexdigest()


def _line(parsed: ParsedYaml, where: tuple[str | int, ...]) -> int:
    return (parsed.mark(where) or (1, 1))[0]


def _text_position(text: str, index: int) -> tuple[int, int]:
    start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - start + 1


def _byte_position(data: bytes, index: int) -> tuple[int, int]:
    start = data.rfind(b"\n", 0, index) + 1
    return data.count(b"\n", 0, index) + 1, len(data[start:index].decode("utf-8", "replace")) + 1


