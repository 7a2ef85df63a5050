"""The facts every disclosure of a release is written from, gathered once at cut time: the catalog's lineage of the
shipped samples, the training split measured with the release's tokenizer, and the provider's own settings."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.settings import Disclosure
from registry.catalog import disclosure as reads
from registry.documents import repo_location
from registry.release.manifest import Manifest

TOKENIZER = "tokenizer.json"


@dataclass(frozen=True, slots=True)
class Size:
    """The training split as measured: its rows, words and (with a tokenizer) tokens."""

    rows: int
    words: int
    tokens: int | None  # None: no tokenizer ships with a data-only release and the build has no base model
    tokenizer: str | None  # what counted them: the tokenizer file's release path or name, and its sha256


@dataclass(frozen=True, slots=True)
class Share:
    """One document repository (or host) and its share of the shipped document text."""

    name: str
    byte_size: int
    share: float


@dataclass(frozen=True, slots=True)
class ReleaseFacts:
    manifest: Manifest  # the draft manifest of the cut (everything but its file list)
    size: Size
    attributions: list[reads.Attribution]
    documents: list[reads.Document]
    takedowns: list[reads.Takedown]
    generators: list[reads.Generator]
    contributors: list[str]
    collected: tuple[str | None, str | None]  # first and last collection dates (YYYY-MM-DD), where known
    dropped: dict[str, int]
    settings: Disclosure

    @property
    def teachers(self) -> list[reads.Generator]:
        return [g for g in self.generators if g.teacher]

    @property
    def judges(self) -> list[str]:
        return sorted({g.judge for g in self.generators if g.judge})

    def repositories(self) -> list[Share]:
        """Document repositories by share of the document text the shipped samples derive from."""
        return _shares(self.documents, lambda d: f"{repo_location(d.repo_url)}@{d.repo_commit}")

    def domains(self) -> list[Share]:
        """Host names by share of that text (the EU summary's "most relevant domain names")."""
        return _shares(self.documents, lambda d: repo_location(d.repo_url).parts[0])


def gather(con: Any, draft: Manifest, train_split: Path, tokenizer: tuple[Path, str] | None,
           settings: Disclosure) -> ReleaseFacts:
    """`tokenizer`: the tokenizer.json to count with and the name the disclosures give it."""
    ids = sorted(d["dataset_id"] for d in draft.inputs["datasets"])
    first, last = reads.contribution_dates(con, ids)
    return ReleaseFacts(
        draft, measure(train_split, tokenizer), reads.attributions(con, ids), reads.documents(con, ids),
        reads.takedowns(con), reads.generators(con, ids), reads.contributors(con, ids),
        (first.date().isoformat() if first else None, last.date().isoformat() if last else None),
        reads.dropped(con), settings)


def measure(train_split: Path, tokenizer: tuple[Path, str] | None) -> Size:
    """Rows, words and tokens of the message texts of a JSONL split (each copy of a sample counts: it is trained on
    as often as it appears). Tokens without special tokens or the chat template: the text itself."""
    records = [json.loads(line) for line in train_split.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [m["content"] for record in records for m in record["messages"]]
    rows = len(records)
    words = sum(len(t.split()) for t in texts)
    if tokenizer is None:
        return Size(rows, words, None, None)
    from tokenizers import Tokenizer

    path, name = tokenizer
    encoded = Tokenizer.from_file(str(path)).encode_batch(texts, add_special_tokens=False)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Size(rows, words, sum(len(e.ids) for e in encoded), f"{name} (sha256 {digest})")


def _shares(documents: list[reads.Document], key: Any) -> list[Share]:
    sizes: dict[str, int] = {}
    for doc in {d.doc_sha256: d for d in documents}.values():  # the same bytes at two paths count once
        sizes[key(doc)] = sizes.get(key(doc), 0) + doc.byte_size
    total = sum(sizes.values()) or 1
    return sorted((Share(name, n, n / total) for name, n in sizes.items()), key=lambda s: (-s.byte_size, s.name))
