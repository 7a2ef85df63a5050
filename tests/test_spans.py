"""Finding a re-wrapped passage in a document, with exact character offsets."""

from __future__ import annotations

import pytest

from registry.spans import SpacedText

TEXT = "  The quick\nbrown   fox\n\njumps over the\tlazy dog.  "


@pytest.mark.parametrize("passage", ["The quick brown", "brown fox jumps", "lazy dog.", "The", "over the lazy"])
def test_passages_are_found_at_their_exact_offsets(passage: str) -> None:
    span = SpacedText(TEXT).find(passage.replace(" ", "\n  "))
    assert span is not None
    assert " ".join(TEXT[span[0]:span[1]].split()) == passage
    assert TEXT[span[0]] != " " and TEXT[span[1] - 1] != " "


@pytest.mark.parametrize("passage", ["he quick", "brown fo", "cat", "", "   "])
def test_partial_words_and_absent_passages_are_not_found(passage: str) -> None:
    assert SpacedText(TEXT).find(passage) is None


def test_empty_and_single_word_documents() -> None:
    assert SpacedText("").find("x") is None
    assert SpacedText("word").find("word") == (0, 4)
