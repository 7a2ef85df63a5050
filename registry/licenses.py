"""SPDX license identifiers: normalising what contributors write, and the policy of allowed licenses."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

# The licenses the InstructLab taxonomy accepts for contributed text (its CONTRIBUTING guide).
DEFAULT_ALLOWED = ("CC0-1.0", "CDLA-Permissive-2.0", "CC-BY-4.0", "CC-BY-SA-4.0", "Apache-2.0", "MIT")


@functools.cache
def _licensing() -> Any:
    from license_expression import get_spdx_licensing  # 0.1 s to load: only when licenses are checked

    return get_spdx_licensing()


@functools.cache
def normalize(text: str) -> str | None:
    """The SPDX expression for `text`, accepting common spellings ("CC BY-NC-SA 4.0"); None if unknown."""
    text = text.strip()
    if not text:
        return None
    candidates = [text]
    if not re.search(r"\s(AND|OR|WITH)\s", text, re.IGNORECASE):
        candidates.append(re.sub(r"\s+", "-", text))
    for candidate in candidates:
        info = _licensing().validate(candidate)
        if not info.errors and info.normalized_expression:
            return str(info.normalized_expression)
    return None


@dataclass(frozen=True, slots=True)
class LicenseClass:
    commercial: bool
    share_alike: bool
    attribution_required: bool

    @property
    def label(self) -> str:
        return "commercial" if self.commercial else "non_commercial"


def classify(spdx: str | None) -> LicenseClass | None:
    if spdx is None:
        return None
    upper = spdx.upper()
    return LicenseClass(
        commercial="-NC" not in upper,
        share_alike="-SA" in upper or "GPL" in upper,
        attribution_required=not upper.startswith(("CC0", "UNLICENSE", "0BSD")),
    )


@dataclass(frozen=True, slots=True)
class LicensePolicy:
    allowed: frozenset[str] = frozenset(DEFAULT_ALLOWED)

    def allows(self, spdx: str) -> bool:
        """An expression is allowed when every AND term is, and at least one OR branch is."""
        return _allows(self.allowed, spdx)


@functools.cache
def _allows(allowed: frozenset[str], spdx: str) -> bool:
    return _allowed_expression(allowed, _licensing().parse(spdx))


def _allowed_expression(allowed: frozenset[str], expression: Any) -> bool:
    args = getattr(expression, "args", ())
    operator = getattr(expression, "operator", "").strip()
    if operator == "AND":
        return all(_allowed_expression(allowed, arg) for arg in args)
    if operator == "OR":
        return any(_allowed_expression(allowed, arg) for arg in args)
    return str(expression) in allowed or str(getattr(expression, "key", "")) in allowed
