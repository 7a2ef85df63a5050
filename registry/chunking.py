"""Splitting knowledge documents into chunks with character offsets and content-addressed ids.

Markdown-aware: markdown-it-py finds the top-level blocks (headings, paragraphs, lists, tables, code
fences), and chunks are packed from whole blocks, so a table or a code fence is never cut in half
unless it alone exceeds the size. Every chunk is an exact slice `text[char_start:char_end]` of the
document, so lineage can point at the very characters a sample came from.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from registry.records import sha256_bytes

Counter = Callable[[str], int]


def count_words(text: str) -> int:
    return len(text.split())


_TOKEN = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    """Word pieces and punctuation marks, the way BPE pre-tokenizers split text: closer to model token
    counts than words (about 1.2-1.3 per English word), without depending on one model's vocabulary."""
    return len(_TOKEN.findall(text))


COUNTERS: dict[str, Counter] = {"words": count_words, "tokens": count_tokens}


@dataclass(frozen=True, slots=True)
class ChunkingConfig:
    max_size: int = 300  # in `unit`
    unit: str = "words"  # words | tokens

    def __post_init__(self) -> None:
        if self.max_size < 10:
            raise ValueError("max_size must be at least 10")
        if self.unit not in COUNTERS:
            raise ValueError(f"unit must be one of {', '.join(COUNTERS)}")


class Chunk(NamedTuple):
    chunk_sha256: str  # sha256 of the chunk's UTF-8 text
    doc_sha256: str
    ordinal: int
    char_start: int
    char_end: int
    size: int  # in the config's unit
    heading: str | None  # the nearest heading above the chunk

    def text(self, document: str) -> str:
        return document[self.char_start:self.char_end]


class _Block(NamedTuple):
    start: int
    end: int
    heading: str | None
    is_heading: bool


def chunk_document(text: str, doc_sha256: str, config: ChunkingConfig | None = None,
                   counter: Counter | None = None) -> list[Chunk]:
    config = config or ChunkingConfig()
    counter = counter or COUNTERS[config.unit]
    pieces: list[tuple[int, int, str | None]] = []
    current: list[_Block] = []
    size = 0
    for block in _split_large(_blocks(text), text, config.max_size, counter):
        block_size = counter(text[block.start:block.end])
        only_headings = all(b.is_heading for b in current)  # a heading always stays with what follows it
        if current and not only_headings and (size + block_size > config.max_size or block.is_heading):
            pieces.append((current[0].start, current[-1].end, current[0].heading))
            current, size = [], 0
        current.append(block)
        size += block_size
    if current:
        pieces.append((current[0].start, current[-1].end, current[0].heading))
    return [Chunk(sha256_bytes(text[s:e].encode()), doc_sha256, i, s, e, counter(text[s:e]), h)
            for i, (s, e, h) in enumerate(pieces)]


def _blocks(text: str) -> list[_Block]:
    """Top-level markdown blocks as character ranges, each with the heading it sits under."""
    line_starts = [0, *(m.end() for m in re.finditer("\n", text))]
    blocks: list[_Block] = []
    heading: str | None = None
    tokens = _parser().parse(text)
    for i, token in enumerate(tokens):
        if token.level != 0 or token.map is None or token.nesting == -1:
            continue
        first, last = token.map
        start = line_starts[first]
        end = line_starts[last] if last < len(line_starts) else len(text)
        end = len(text[:end].rstrip())
        if token.type == "heading_open":
            heading = tokens[i + 1].content.strip()
        blocks.append(_Block(start, max(end, start), heading, token.type == "heading_open"))
    return blocks


def _split_large(blocks: list[_Block], text: str, max_size: int, counter: Counter) -> list[_Block]:
    """A block over the size limit is cut between words, at a sentence end where one is near."""
    out: list[_Block] = []
    for block in blocks:
        if counter(text[block.start:block.end]) <= max_size:
            out.append(block)
            continue
        words = [(block.start + m.start(), block.start + m.end())
                 for m in re.finditer(r"\S+", text[block.start:block.end])]
        i = 0
        while i < len(words):
            j, best = i, None
            while j < len(words) and _size(text, words, i, j, counter) <= max_size:
                if text[words[j][1] - 1] in ".!?":
                    best = j
                j += 1
            last = best if best is not None and best >= i + (j - i) // 2 else max(j - 1, i)
            out.append(_Block(words[i][0], words[last][1], block.heading, block.is_heading and i == 0))
            i = last + 1
    return [b for b in out if text[b.start:b.end].strip()]


def _size(text: str, words: list[tuple[int, int]], i: int, j: int, counter: Counter) -> int:
    return j - i + 1 if counter is count_words else counter(text[words[i][0]:words[j][1]])


@functools.cache
def _parser() -> Any:
    from markdown_it import MarkdownIt

    # Only the block structure is used: inline parsing (emphasis, links...) would be a third of the time.
    return MarkdownIt("commonmark").enable("table").disable("inline")
