"""What an endpoint answered: a chat completion body, read, checked and made storable in the journal."""

from __future__ import annotations

import json
import re
from typing import Any

from registry.samples import without_surrogates


class MalformedResponse(Exception):
    """The endpoint answered 200 with a body that is not a chat completion."""


def _parsed(body: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # nesting deeper than Python's stack is not a chat completion either
        raise MalformedResponse(f"the body is not JSON: {body[:200]!r}") from None


def response_content(body: str) -> str:
    """The assistant text of a chat completion body."""
    try:
        content = _parsed(body)["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise MalformedResponse(f"the body has no choices[0].message.content: {body[:200]!r}") from None
    return content if isinstance(content, str) else ""


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def storable_body(body: str) -> str:
    """A chat completion body (`MalformedResponse` if it is not one) as the journal keeps it: as received, but
    with lone surrogates as U+FFFD (DuckDB's JSON type refuses `"\\ud800"`; the filters then drop the answer)."""
    response_content(body)
    if not _SURROGATE_ESCAPE.search(body):
        return body
    try:
        return json.dumps(_without_surrogates(_parsed(body)), ensure_ascii=False)
    except RecursionError:
        raise MalformedResponse(f"the body nests too deep: {body[:200]!r}") from None


def _without_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return without_surrogates(value)
    if isinstance(value, list):
        return [_without_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    return value


_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(text: str) -> str:
    """An endpoint's words on one line, safe for the terminal and the catalog: controls and surrogates escaped."""
    return _UNPRINTABLE.sub(lambda m: ascii(m.group())[1:-1], text)
