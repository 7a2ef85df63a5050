"""Reading InstructLab SDG output, and the text matching that recovers what it lost.

`ilab data generate` writes JSONL files (see ../shared/design/INSTRUCTLAB.md):
- `node_datasets_*/<leaf>.jsonl` (skills) and `node_datasets_*/<leaf>_p07.jsonl` / `_p10.jsonl` (knowledge),
- `*_train_msgs_*.jsonl`, the mixed training sets,
- `messages_*.jsonl`, the legacy messages format (system prompt in the metadata),
- `generated_*/<leaf>.jsonl` and `checkpoints/*/data_checkpoint_*.jsonl`, the raw teacher outputs with the
  seed examples they were prompted with (read only to recover the seeds of knowledge samples).

Records are `{messages, metadata, id, unmask, ...}` where `metadata` is a JSON *string*. Leaf names in file
names and in `leaf_node_path` join the taxonomy path with `_`, which is lossy: they are resolved against the
catalog's contribution ids, and an ambiguous name is reported, not guessed.

Documents: `sdg_document` is docling's text of a chunk (headings prefixed, lines reflowed, links rewritten).
It is located in the raw markdown by comparing word sequences with link targets, markup and punctuation
ignored; where no exact location exists, a fuzzy alignment (difflib) gives a span and a score.
"""

from __future__ import annotations

import bisect
import difflib
import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from registry.errors import RegistryError
from registry.records import sha256_bytes

Message = dict[str, str]

NODE_DATASET, MIXED, LEGACY_MESSAGES, GENERATED = "node_dataset", "train_msgs", "messages", "generated"
IMPORTED_KINDS = (NODE_DATASET, MIXED, LEGACY_MESSAGES)
FUZZY_MIN_SCORE = 0.6


class SdgFormatError(RegistryError):
    """An SDG output file is not what InstructLab writes: malformed JSON, a missing field, a foreign shape."""

    hint = ("import-sdg reads the JSONL files `ilab data generate` writes (node_datasets_*/, *_train_msgs_*, "
            "messages_*): one JSON object per line with a `messages` list")


# ---------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class SdgFile:
    path: str  # as shown to the user: relative to the imported directory
    kind: str  # node_dataset | train_msgs | messages | generated
    sha256: str
    records: int


@dataclass(slots=True)
class SdgRecord:
    file: str
    line: int  # 1-based line of the record in its file
    messages: list[Message]
    fields: dict[str, Any]  # the record's own keys and its parsed metadata (the record's keys win)
    record_id: str | None
    file_leaf: str | None  # the leaf name in the file name (node_datasets_* only)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def text_field(self, name: str) -> str | None:
        value = self.fields.get(name)
        return value if isinstance(value, str) and value.strip() else None

    @property
    def answer(self) -> str:
        return "\n".join(m["content"] for m in self.messages if m["role"] == "assistant")

    @property
    def user(self) -> str:
        return "\n".join(m["content"] for m in self.messages if m["role"] == "user")


@dataclass(frozen=True, slots=True)
class GeneratedRow:
    """A raw teacher output of the knowledge pipeline with the seed context and Q/A it was prompted with."""

    where: str
    leaf: str
    document: str
    output: str
    icl_context: str | None
    icl_pairs: tuple[tuple[str, str], ...]


@dataclass(slots=True)
class SdgInput:
    root: Path
    files: list[SdgFile] = field(default_factory=list)
    records: list[SdgRecord] = field(default_factory=list)
    generated: list[GeneratedRow] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # files that are neither samples nor teacher outputs


def classify(path: Path) -> str | None:
    """What a file of an SDG output directory holds, from its name (None: nothing to import)."""
    name, parent = path.name, path.parent.name
    if not name.endswith(".jsonl"):
        return None
    if parent.startswith("node_datasets_"):
        return None if name.startswith("mmlubench_") else NODE_DATASET
    if "_train_msgs_" in name:
        return MIXED
    if name.startswith("messages_"):
        return LEGACY_MESSAGES
    if parent.startswith("generated_") or name.startswith("data_checkpoint_"):
        return GENERATED
    return None


_LEAF_SUFFIX = re.compile(r"_p\d\d$")


def read_sdg(root: Path) -> SdgInput:
    """Every importable file under `root` (a run directory, a parent of several, or one file), parsed."""
    if not root.exists():
        raise SdgFormatError(f"{root} does not exist", hint="pass the directory `ilab data generate` wrote")
    found = SdgInput(root)
    paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for path in paths:
        shown = path.name if path == root else path.relative_to(root).as_posix()
        kind = classify(path) or (MIXED if path == root else None)
        if kind is None:
            found.skipped.append(shown)
            continue
        data = path.read_bytes()
        count = 0
        for line, value in _json_lines(data, shown):
            if kind == GENERATED:
                row = _generated_row(value, f"{shown}:{line}")
                if row is not None:
                    found.generated.append(row)
            else:
                found.records.append(_record(value, shown, line, kind, path))
            count += 1
        found.files.append(SdgFile(shown, kind, sha256_bytes(data), count))
    if not any(f.kind in IMPORTED_KINDS for f in found.files):
        raise SdgFormatError(f"{root}: no InstructLab SDG sample files found "
                             f"({len(found.skipped)} other file(s) skipped)")
    return found


def _json_lines(data: bytes, shown: str) -> Iterator[tuple[int, Any]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = data[:exc.start].count(b"\n") + 1
        raise SdgFormatError(f"{shown}:{where}: not UTF-8 text (byte {exc.start})") from None
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == 1 and _is_json_document(text):
                what = "a JSON array" if text.lstrip().startswith("[") else "a JSON document over several lines"
                raise SdgFormatError(f"{shown}:1: {what}, not JSONL (one JSON object per line)") from None
            raise SdgFormatError(f"{shown}:{number}: malformed JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(value, dict):
            raise SdgFormatError(f"{shown}:{number}: {_json_type(value)}, expected a JSON object (one record "
                                 "per line)")
        yield number, value


def _is_json_document(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "a JSON array"
    if isinstance(value, str):
        return "a JSON string"
    if value is None:
        return "null"
    return f"a JSON {type(value).__name__}"


def _record(value: dict[str, Any], shown: str, line: int, kind: str, path: Path) -> SdgRecord:
    where = f"{shown}:{line}"
    if "messages" not in value:
        keys = ", ".join(sorted(value)) or "none"
        raise SdgFormatError(f"{where}: the record has no `messages` (its keys: {keys})")
    messages = value["messages"]
    if not isinstance(messages, list) or not messages:
        raise SdgFormatError(f"{where}: `messages` must be a non-empty list of {{role, content}} objects")
    checked: list[Message] = []
    for i, message in enumerate(messages, 1):
        if not (isinstance(message, dict) and isinstance(message.get("role"), str) and message["role"]
                and isinstance(message.get("content"), str)):
            raise SdgFormatError(f"{where}: message {i} must be an object with string `role` and `content`")
        checked.append({"role": message["role"], "content": message["content"]})
    metadata = _metadata(value.get("metadata"), where)
    fields = {**metadata, **{k: v for k, v in value.items() if k not in ("messages", "metadata")}}
    record_id = value.get("id")
    file_leaf = path.stem if kind == NODE_DATASET else None
    return SdgRecord(shown, line, checked, fields, record_id if isinstance(record_id, str) else None,
                     file_leaf)


def _metadata(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if isinstance(raw, str):
        if not raw.strip():
            return {}
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SdgFormatError(f"{where}: `metadata` is a string but not JSON: {exc.msg}") from None
    if not isinstance(raw, dict):
        raise SdgFormatError(f"{where}: `metadata` must be a JSON object (or a string holding one), "
                             f"found {_json_type(raw)}")
    return raw


def _generated_row(value: dict[str, Any], where: str) -> GeneratedRow | None:
    """Knowledge teacher outputs only (they carry `document`); skill outputs add nothing to their records."""
    fields = [value.get(k) for k in ("leaf_node_path", "document", "output")]
    if not all(isinstance(f, str) and f.strip() for f in fields):
        return None
    leaf, document, output = (str(f) for f in fields)
    pairs = []
    for i in range(1, 10):
        q, a = value.get(f"icl_query_{i}"), value.get(f"icl_response_{i}")
        if isinstance(q, str) and isinstance(a, str):
            pairs.append((q, a))
    context = value.get("icl_document")
    return GeneratedRow(where, leaf, document, output, context if isinstance(context, str) else None, tuple(pairs))


def leaf_names_of_file(stem: str) -> list[str]:
    """`<leaf>_p07` is a knowledge leaf's file: try the stem as it is, then without the suffix."""
    stripped = _LEAF_SUFFIX.sub("", stem)
    return [stem] if stripped == stem else [stem, stripped]


# ---------------------------------------------------------------------------------------------- leaves


class LeafResolver:
    """InstructLab leaf names (`a_b_c`, `a->b->c` or `a/b/c`) to contribution ids."""

    def __init__(self, contribution_ids: list[str]) -> None:
        self.ids = set(contribution_ids)
        self.by_flat: dict[str, list[str]] = {}
        for cid in sorted(contribution_ids):
            self.by_flat.setdefault(cid.replace("/", "_"), []).append(cid)

    def resolve(self, names: list[str]) -> tuple[str | None, str | None]:
        """(contribution id, None), or (None, why not) for the first name when none resolves."""
        problem: str | None = None
        for name in names:
            cid, why = self._one(name)
            if cid is not None:
                return cid, None
            problem = problem or why
        return None, problem

    def _one(self, name: str) -> tuple[str | None, str]:
        path = "/".join(part.strip() for part in re.split(r"->|/", name.strip()))
        if path in self.ids:
            return path, ""
        hits = self.by_flat.get(path.replace("/", "_"), [])
        if len(hits) == 1:
            return hits[0], ""
        if hits:
            return None, f"leaf {name!r} is ambiguous: it matches {', '.join(hits)}"
        return None, f"leaf {name!r} matches no contribution in the catalog"


# ---------------------------------------------------------------------------------------------- text

_MARKUP = re.compile(r"\]\((?:[^()\n]|\([^()\n]*\)){0,500}\)|<[^<>\n]{1,300}>|&#?\w{1,10};")
_WORD = re.compile(r"[^\W_]+")
_TAGS = re.compile(r"\[(?:question|answer|end)\]", re.IGNORECASE)


def words(text: str) -> list[str]:
    return [w for _, _, w in _tokens(text)]


@functools.lru_cache(maxsize=1 << 14)
def word_key(text: str | None) -> str:
    """Case, spacing, punctuation and markup ignored: the same text under InstructLab's reformatting."""
    return " ".join(words(text or ""))


def _tokens(text: str) -> list[tuple[int, int, str]]:
    """Words with their character offsets; link targets, HTML tags and entities are not words of the text."""
    out: list[tuple[int, int, str]] = []
    pos = 0
    for mask in (*_MARKUP.finditer(text), None):
        end = mask.start() if mask else len(text)
        out.extend((m.start(), m.end(), m.group().lower()) for m in _WORD.finditer(text, pos, end))
        pos = mask.end() if mask else pos
    return out


class Span(NamedTuple):
    start: int  # character offsets in the document
    end: int
    method: str  # document_text_match | fuzzy_text_match
    score: float


class DocumentText:
    """A document's words with their offsets, to locate reformatted excerpts of it."""

    def __init__(self, text: str) -> None:
        tokens = _tokens(text)
        self.starts = [s for s, _, _ in tokens]
        self.ends = [e for _, e, _ in tokens]
        self.words = [w for _, _, w in tokens]
        self.positions: list[int] = []  # where each word starts in `joined`
        pos = 1
        for w in self.words:
            self.positions.append(pos)
            pos += len(w) + 1
        self.joined = " " + " ".join(self.words) + " "
        self.headings = {word_key(m.group(1)) for m in re.finditer(r"(?m)^#{1,6}[ \t]+(.+?)[ \t#]*$", text)}

    def locate(self, excerpt: str) -> Span | None:
        """Where the excerpt lies: exactly (after dropping leading heading lines docling prefixes), or fuzzily."""
        body = excerpt
        while True:
            found = self._exact(words(body))
            if found is not None:
                return found
            first, newline, rest = body.lstrip().partition("\n")
            if not newline or word_key(first) not in self.headings:
                break
            body = rest
        return self._fuzzy(words(body))

    def _exact(self, needle: list[str]) -> Span | None:
        if not needle:
            return None
        at = self.joined.find(" " + " ".join(needle) + " ")
        if at < 0:
            return None
        first = bisect.bisect_left(self.positions, at + 1)
        return Span(self.starts[first], self.ends[first + len(needle) - 1], "document_text_match", 1.0)

    def _fuzzy(self, needle: list[str]) -> Span | None:
        if len(needle) < 8 or not self.words:
            return None
        anchor = difflib.SequenceMatcher(None, self.words, needle, autojunk=False).find_longest_match(
            0, len(self.words), 0, len(needle))
        if anchor.size < 3:
            return None
        slack = len(needle) // 4 + 10
        lo = max(0, anchor.a - anchor.b - slack)
        hi = min(len(self.words), anchor.a + len(needle) - anchor.b + slack)
        blocks = [b for b in difflib.SequenceMatcher(None, self.words[lo:hi], needle, autojunk=False)
                  .get_matching_blocks() if b.size >= 2]
        score = sum(b.size for b in blocks) / len(needle)
        if not blocks or score < FUZZY_MIN_SCORE:
            return None
        first, last = lo + blocks[0].a, lo + blocks[-1].a + blocks[-1].size - 1
        return Span(self.starts[first], self.ends[last], "fuzzy_text_match", round(score, 3))


def question_then_answer(output: str, user: str, answer: str) -> bool:
    """A teacher output holds this sample when it holds its answer and the question before it ends the user turn."""
    out, ans = word_key(_TAGS.sub(" ", output)), word_key(answer)
    if not ans:
        return False
    at = f" {out} ".find(f" {ans} ")
    if at < 0:
        return False
    question = out[:at].strip()
    return not question or f" {word_key(user)}".endswith(f" {question}")
