"""Markdown-aware chunking: exact slices, stable ids, whole blocks, sizes respected."""

from __future__ import annotations

import pytest

from registry.chunking import ChunkingConfig, chunk_document
from registry.records import sha256_bytes
from tests.conftest import EXAMPLE_TAXONOMY

DOC = """# Title

First paragraph with a few words. It has two sentences.

## Section

| a | b |
|---|---|
| 1 | 2 |

```python
print("code stays whole")
```

- item one
- item two
"""


def test_chunks_are_exact_slices_with_content_ids() -> None:
    chunks = chunk_document(DOC, "doc", ChunkingConfig(max_size=12))
    assert chunks, "no chunks"
    for chunk in chunks:
        text = chunk.text(DOC)
        assert text == DOC[chunk.char_start:chunk.char_end] and text.strip() == text
        assert chunk.chunk_sha256 == sha256_bytes(text.encode())
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert any('```python\nprint("code stays whole")\n```' in c.text(DOC) for c in chunks)
    assert not any(c.text(DOC).startswith("#") and "\n" not in c.text(DOC) for c in chunks)  # no bare heading
    assert any("| a | b |\n|---|---|\n| 1 | 2 |" in c.text(DOC) for c in chunks)
    assert chunks[-1].heading == "Section"


def test_headings_start_new_chunks_and_sizes_hold() -> None:
    chunks = chunk_document(DOC, "doc", ChunkingConfig(max_size=200))
    assert [c.text(DOC).splitlines()[0] for c in chunks] == ["# Title", "## Section"]


def test_a_long_paragraph_is_cut_at_sentence_ends() -> None:
    text = " ".join(f"Sentence number {i} has exactly seven words." for i in range(40))
    chunks = chunk_document(text, "d", ChunkingConfig(max_size=50))
    assert all(c.size <= 50 for c in chunks) and len(chunks) >= 6
    assert all(c.text(text).endswith(".") for c in chunks)
    assert " ".join(c.text(text) for c in chunks) == text


def test_same_text_same_ids() -> None:
    a = chunk_document(DOC, "doc", ChunkingConfig(max_size=12))
    b = chunk_document(DOC, "doc", ChunkingConfig(max_size=12))
    assert a == b


def test_example_documents_chunk_and_cover_every_seed_context() -> None:
    docs = sorted((EXAMPLE_TAXONOMY / "_documents").rglob("*.md"))
    docs = [d for d in docs if d.name not in ("README.md",)]
    assert len(docs) >= 6
    for doc in docs:
        text = doc.read_text()
        chunks = chunk_document(text, sha256_bytes(text.encode()), ChunkingConfig(max_size=200))
        assert chunks and all(c.size <= 200 for c in chunks)
        covered = "\n".join(text[c.char_start:c.char_end] for c in chunks)
        assert len(covered.split()) == len(text.split())  # no word lost


def test_tiny_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 10"):
        ChunkingConfig(max_size=3)




def test_sizes_in_tokens_count_word_pieces_and_punctuation() -> None:
    from registry.chunking import count_tokens

    assert count_tokens("Hello, world! It's 2026.") == 9
    text = " ".join(f"Sentence {i}, with punctuation; and more." for i in range(60))
    chunks = chunk_document(text, "d", ChunkingConfig(max_size=40, unit="tokens"))
    assert all(c.size <= 40 for c in chunks) and len(chunks) > len(chunk_document(text, "d", ChunkingConfig(40)))
    with pytest.raises(ValueError, match="unit"):
        ChunkingConfig(unit="bytes")
