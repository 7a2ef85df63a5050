"""Where a quoted passage stands in a document, ignoring differences in whitespace and line wrapping.

Contexts in qna.yaml are re-wrapped copies of document paragraphs; lineage needs their exact character
range in the document. The document is indexed once (its words and their offsets) and each search is
a plain substring search on the whitespace-normalised text: no regular expression per passage.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from itertools import accumulate

_GAP = re.compile(r"\s+")


@dataclass(slots=True)
class SpacedText:
    text: str
    normalized: str = ""
    _norm_starts: list[int] = field(default_factory=list)  # where each word starts in `normalized`
    _starts: list[int] = field(default_factory=list)  # ... and in `text`
    _ends: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Offsets from the lengths of words and of the gaps between them: C-level splits and sums.
        words = self.text.split()
        if not words:
            return
        leading = len(self.text) - len(self.text.lstrip())
        gaps = _GAP.findall(self.text.strip())
        lengths = [len(w) for w in words]
        self._starts = list(accumulate([leading] + [w + len(g) for w, g in zip(lengths, gaps, strict=False)]))
        self._ends = [s + n for s, n in zip(self._starts, lengths, strict=True)]
        self._norm_starts = list(accumulate([0] + [n + 1 for n in lengths[:-1]]))
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
