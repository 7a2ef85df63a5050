"""Training examples from a `taxreg dataset build` folder: messages read from JSONL (or Parquet), rendered with the
tokenizer's chat template, labels on assistant tokens only (-100 elsewhere), truncated to a maximum length.

Imported lazily (transformers through the tokenizer it is given).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.model import chat_template
from registry.catalog.models import file_sha256
from registry.errors import RegistryError

IGNORE = -100  # the label PyTorch's cross-entropy skips
Messages = list[dict[str, str]]
ROLES = frozenset({"system", "user", "assistant"})


@dataclass(frozen=True, slots=True)
class SplitFile:
    split: str  # train | test
    path: Path
    sha256: str
    format: str  # jsonl | parquet


def dataset_files(folder: Path) -> dict[str, SplitFile]:
    """train (required) and test (optional) of a dataset folder, JSONL preferred over Parquet."""
    if not folder.is_dir():
        raise RegistryError(f"no dataset folder at {folder}",
                            hint="run `taxreg dataset build` first, or pass --dataset with a dataset folder")
    found: dict[str, SplitFile] = {}
    for split in ("train", "test"):
        for fmt in ("jsonl", "parquet"):
            path = folder / f"{split}.{fmt}"
            if path.exists() and not path.is_file():
                raise RegistryError(f"{path} is not a file", hint="rebuild the dataset with `taxreg dataset build`")
            if path.is_file():
                found[split] = SplitFile(split, path, file_sha256(path), fmt)
                break
    if "train" not in found:
        raise RegistryError(f"{folder} has no train.jsonl or train.parquet",
                            hint="pass the folder `taxreg dataset build` wrote (build/datasets/<name>)")
    return found


REBUILD = "rebuild the dataset with `taxreg dataset build`, or pass --dataset with a folder it wrote"


def read_conversations(file: SplitFile) -> list[Messages]:
    return [messages for _, messages in read_rows(file)]


def read_rows(file: SplitFile) -> list[tuple[str | None, Messages]]:
    """(sample id, messages) of every row, in file order; the id is None where a row has none."""
    rows = _parquet_rows(file.path) if file.format == "parquet" else _jsonl_rows(file.path)
    return [(_row_id(row), _messages(row, f"{file.path}:{where}")) for where, row in rows]


def _row_id(row: Any) -> str | None:
    value = row.get("id") if isinstance(row, dict) else None
    return value if isinstance(value, str) else None


def token_mask(tokenizer: Any, messages: Messages) -> tuple[list[int], list[int]]:
    """A conversation's token ids and its assistant mask (1 on the tokens the loss is computed on)."""
    marked = chat_template.marks_assistant_turns(tokenizer.chat_template)
    return _marked(tokenizer, messages) if marked else _by_prefix(tokenizer, messages)


def check_trainable(file: SplitFile, conversations: list[Messages]) -> None:
    """The train split holds something to learn: rows, and an assistant turn in at least one of them."""
    if not conversations:
        raise RegistryError(f"{file.path} is empty: no training rows", hint=REBUILD)
    if not any(m["role"] == "assistant" for messages in conversations for m in messages):
        raise RegistryError(f"{file.path} has no assistant turn in any of its {len(conversations)} rows: nothing "
                            "to learn (the loss is on assistant tokens only)", hint=REBUILD)


def _jsonl_rows(path: Path) -> list[tuple[str, Any]]:
    rows = []
    try:
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, 1):
                line = _utf8(raw, path, number)
                if line.strip():
                    rows.append((str(number), _json(line, path, number)))
    except OSError as exc:
        raise RegistryError(f"cannot read {path}: {exc.strerror or exc}", hint=REBUILD) from None
    return rows


def _utf8(raw: bytes, path: Path, number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RegistryError(f"{path}:{number}: not UTF-8 text (byte {exc.start + 1} of the line is "
                            f"0x{raw[exc.start]:02x})", hint=f"save the file as UTF-8, or {REBUILD}") from None


def _json(line: str, path: Path, number: int) -> Any:
    try:
        return json.loads(line)
    except ValueError as exc:
        raise RegistryError(f"{path}:{number}: not a JSON object ({exc})",
                            hint="each line must be one JSON object with a `messages` list") from None


def _parquet_rows(path: Path) -> list[tuple[str, Any]]:
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
        table = pq.read_table(path, columns=["messages", *(["id"] if "id" in names else [])])
    except Exception as exc:  # pyarrow raises several types for unreadable files and missing columns
        raise RegistryError(f"{path}: cannot read the messages column ({exc})",
                            hint="pass a Parquet file written by `taxreg dataset build`") from None
    ids = table.column("id").to_pylist() if "id" in table.column_names else [None] * table.num_rows
    return [(f"row {i}", {"messages": m, "id": sid})
            for i, (m, sid) in enumerate(zip(table.column("messages").to_pylist(), ids, strict=True))]


def _messages(row: Any, where: str) -> Messages:
    messages = row.get("messages") if isinstance(row, dict) else None
    if not isinstance(messages, list) or not messages:
        raise RegistryError(f"{where}: no `messages` list", hint="rows need messages: [{role, content}, ...]")
    for k, message in enumerate(messages):
        if not (isinstance(message, dict) and message.get("role") in ROLES
                and isinstance(message.get("content"), str)):
            raise RegistryError(f"{where}: messages[{k}] is not {{role: system|user|assistant, content: text}}",
                                hint="fix the dataset, or rebuild it with `taxreg dataset build`")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


@dataclass(slots=True)
class TokenStats:
    examples: int = 0
    dropped_no_answer: int = 0  # nothing of the answer left within max_length
    truncated: int = 0
    tokens: int = 0
    answer_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"examples": self.examples, "dropped_no_answer": self.dropped_no_answer,
                "truncated": self.truncated, "tokens": self.tokens, "answer_tokens": self.answer_tokens}


@dataclass(slots=True)
class Encoded:
    examples: list[dict[str, list[int]]] = field(default_factory=list)
    stats: TokenStats = field(default_factory=TokenStats)


def encode(conversations: list[Messages], tokenizer: Any, max_length: int) -> Encoded:
    """input_ids, attention_mask and labels per conversation; the mask comes from the template's generation
    markers, or, for templates without them, from the token span each assistant turn adds."""
    out = Encoded()
    for messages in conversations:
        ids, mask = token_mask(tokenizer, messages)
        if len(ids) > max_length:
            out.stats.truncated += 1
            ids, mask = ids[:max_length], mask[:max_length]
        labels = [token if keep else IGNORE for token, keep in zip(ids, mask, strict=True)]
        answer = sum(1 for keep in mask if keep)
        if not answer:
            out.stats.dropped_no_answer += 1
            continue
        out.examples.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
        out.stats.examples += 1
        out.stats.tokens += len(ids)
        out.stats.answer_tokens += answer
    return out


def _marked(tokenizer: Any, messages: Messages) -> tuple[list[int], list[int]]:
    encoded = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True)
    return list(encoded["input_ids"]), list(encoded["assistant_masks"])


def _by_prefix(tokenizer: Any, messages: Messages) -> tuple[list[int], list[int]]:
    full = _ids(tokenizer, messages, False)
    mask = [0] * len(full)
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start, end = len(_ids(tokenizer, messages[:i], True)), len(_ids(tokenizer, messages[: i + 1], False))
        if full[:end] != _ids(tokenizer, messages[: i + 1], False):
            raise RegistryError("the base model's chat template renders earlier turns differently once later "
                                "turns follow, so assistant tokens cannot be located",
                                hint="use a base model whose template marks {% generation %}, or the demo model")
        mask[start:end] = [1] * (end - start)
    return full, mask


def _ids(tokenizer: Any, messages: Messages, generation_prompt: bool) -> list[int]:
    if not messages:
        return []
    encoded = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                            add_generation_prompt=generation_prompt)
    return list(encoded["input_ids"])
