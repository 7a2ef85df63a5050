"""Where a quoted passage stands in a document, ignoring differences in whitespace and line wrapping.

Contexts in qna.yaml are re-wrapped copies of document paragraphs; lineage needs their exact character
range in the document. The document is indexed once (its words and their offsets) and each search is
a plain substring search on the whitespace-normalised text: no regular expression per passage.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

_WORD = re.compile(r"\S+")


@dataclass(slots=True)
class SpacedText:
    text: str
    normalized: str = ""
    _norm_starts: list[int] = field(default_factory=list)  # where each word starts in `normalized`
    _starts: list[int] = field(default_factory=list)  # ... and in `text`
    _ends: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        words, position = [], 0
        for match in _WORD.finditer(self.text):
            words.append(match.group())
            self._norm_starts.append(position)
            self._starts.append(match.start())
            self._ends.append(match.end())
            position += len(match.group()) + 1
        self.normalized = " ".join(words)

    def find(self, passage: str) -> tuple[int, int] | None:
        """[start, end) of the passage in the original text, matched on whole words; None if absent."""
        needle = " ".join(passage.split())
        if not needle:
            return None
        at = self.normalized.find(needle)
        while at >= 0:
            first = bisect.bisect_left(self._norm_starts, at)
            end = at + len(needle)
            if first < len(self._norm_starts) and self._norm_starts[first] == at and (
                    end == len(self.normalized) or self.normalized[end] == " "):
                last = bisect.bisect_right(self._norm_starts, end - 1) - 1
                return self._starts[first], self._ends[last]
            at = self.normalized.find(needle, at + 1)
        return None
