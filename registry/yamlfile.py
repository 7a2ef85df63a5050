"""YAML text to Python values, keeping the line and column of every node.

libyaml composes the node tree (fast, safe: no arbitrary tags are constructed); we then build plain
values ourselves so that every value keeps its position, repeated keys are caught (PyYAML silently
keeps the last one) and alias expansion is bounded (a "billion laughs" file composes to a few nodes
but expands to billions).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NamedTuple

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from registry.errors import EnvironmentProblem

YamlPath = tuple[str | int, ...]
_STR_TAG = "tag:yaml.org,2002:str"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MAP_TAG = "tag:yaml.org,2002:map"
_CONTAINER_TAGS = frozenset((_SEQ_TAG, _MAP_TAG))


class Mark(NamedTuple):  # a NamedTuple: created ~100 times per file, cheaper than a frozen dataclass
    line: int  # 1-based
    col: int  # 1-based


_START = Mark(1, 1)


@dataclass(slots=True)
class ParsedYaml:
    """The values, and the node tree they were built from: positions are looked up in the tree when
    asked for (seed lines, findings), which costs less than recording one for every node of every file."""

    data: Any
    root: Node | None = None

    def mark(self, path: YamlPath, default: Mark | None = _START) -> Mark | None:
        """Where the value at `path` starts."""
        found = self._locate(path)
        return _mark(found[1].start_mark) if found else default

    def key_mark(self, path: YamlPath, default: Mark | None = _START) -> Mark | None:
        """Where the mapping key naming `path` starts."""
        found = self._locate(path)
        return _mark(found[0].start_mark) if found and found[0] is not None else default

    def item_lines(self, path: YamlPath) -> list[dict[str, int]]:
        """For the list at `path`: each item's {key: line where its value starts} ({} for non-mappings)."""
        found = self._locate(path)
        if found is None or type(found[1]) is not SequenceNode:
            return []
        return [{_key_text(k): v.start_mark.line + 1 for k, v in item.value} if type(item) is MappingNode else {}
                for item in found[1].value]

    def _locate(self, path: YamlPath) -> tuple[Node | None, Node] | None:
        """(key node, value node) at `path`; the first of repeated keys (a file with any is rejected)."""
        key: Node | None = None
        node = self.root
        if node is None:
            return None
        for part in path:
            cls = type(node)
            if cls is SequenceNode and type(part) is int and 0 <= part < len(node.value):
                key, node = None, node.value[part]
            elif cls is MappingNode and isinstance(part, str):
                match = next(((k, v) for k, v in node.value if type(k) is ScalarNode and _key_text(k) == part), None)
                if match is None:
                    return None
                key, node = match
            else:
                return None
        return key, node


class YamlProblem(Exception):
    """The text cannot become a value; carries the rule code and the position (and any further problems)."""

    def __init__(self, code: str, message: str, mark: Mark, more: tuple[YamlProblem, ...] = ()) -> None:
        super().__init__(message)
        self.code, self.message, self.mark, self.more = code, message, mark, more

    def all(self) -> tuple[YamlProblem, ...]:
        return (self, *self.more)


def require_libyaml() -> None:
    if not getattr(yaml, "__with_libyaml__", False):
        raise EnvironmentProblem(
            "PyYAML was installed without libyaml, which the registry needs for speed.",
            hint="apt-get install libyaml-dev && pip install --no-binary pyyaml --force-reinstall pyyaml",
        )


def format_path(path: YamlPath) -> str:
    """`.seed_examples[2].question`: the same shape as jsonschema's json_path without `$`."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)


MAX_DEPTH = 500  # libyaml composes recursively in C: ~30,000 levels crash the interpreter


def parse(text: str, max_nodes: int = 200_000) -> ParsedYaml:
    require_libyaml()
    _check_depth(text)
    try:
        root = yaml.compose(text, Loader=yaml.CSafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise YamlProblem("TR101", _syntax_message(exc, text), _syntax_mark(exc)) from None
    except yaml.YAMLError as exc:  # reader errors: control characters, bad encoding
        raise YamlProblem("TR103", _reader_message(exc), _reader_mark(exc, text)) from None
    parsed = ParsedYaml(None, root)
    if root is None:
        return parsed
    builder = _Builder(max_nodes, track_aliases="*" in text)
    try:
        parsed.data = builder.build(root)
    except RecursionError:
        raise YamlProblem("TR101", "the YAML nests too deeply to be a qna.yaml", _mark(root.start_mark)) from None
    if builder.duplicates:
        first, *rest = builder.duplicates
        raise YamlProblem(first.code, first.message, first.mark, tuple(rest))
    return parsed


class _Builder:
    def __init__(self, max_nodes: int, track_aliases: bool) -> None:
        self.budget = max_nodes
        self.track_aliases = track_aliases  # without a `*` in the text no node can be visited twice
        self.seen: set[int] = set()
        self.aliases = 0
        self.duplicates: list[YamlProblem] = []

    # build() and _mapping() run for every node of every file: kept flat, no positions recorded.
    def build(self, node: Node) -> Any:
        self.budget -= 1
        if self.track_aliases or self.budget < 0:
            self._account(node)
        cls = type(node)
        if cls is ScalarNode:
            return node.value if node.tag == _STR_TAG else _scalar(node)
        if node.tag not in _CONTAINER_TAGS:
            raise YamlProblem("TR101", f"unsupported YAML tag {node.tag!r}: write plain values", _mark(node.start_mark))
        if cls is SequenceNode:
            build = self.build
            return [build(child) for child in node.value]
        return self._mapping(node)

    def _mapping(self, node: Node) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if type(key_node) is not ScalarNode:
                raise YamlProblem("TR101", "a mapping key must be plain text", _mark(key_node.start_mark))
            self.budget -= 1
            key = key_node.value if key_node.tag == _STR_TAG else _scalar(key_node)
            if key in out:  # collected, not raised: every repeated key of the file is reported
                line, col = _first_key(node, key)
                self.duplicates.append(YamlProblem(
                    "TR102",
                    f"duplicate key '{key}' (first defined at line {line}, column {col}); "
                    "YAML would silently keep only the last value",
                    _mark(key_node.start_mark),
                ))
            out[key] = self.build(value_node)
        return out

    def _account(self, node: Node) -> None:
        if self.track_aliases:
            if id(node) in self.seen and type(node) is not ScalarNode:
                self.aliases += 1
            self.seen.add(id(node))
        if self.budget < 0:
            what = "aliases expand" if self.aliases else "the document holds"
            raise YamlProblem(
                "TR105",
                f"{what} to more nodes than the limit allows (a YAML expansion bomb?); "
                "write the values out instead of using anchors and aliases",
                _mark(node.start_mark),
            )


def _scalar(node: Node) -> Any:
    """A non-text scalar (number, boolean, date...) built the YAML 1.1 way; a fresh constructor each
    time, as a constructor keeps every node it has built."""
    try:
        return SafeConstructor().construct_object(node, deep=True)
    except yaml.MarkedYAMLError as exc:
        raise YamlProblem("TR101", _syntax_message(exc, ""), _mark(node.start_mark)) from None


def _key_text(key_node: Node) -> str:
    """A mapping key as paths name it: its text, or its value written as text (`1:` -> "1")."""
    return key_node.value if key_node.tag == _STR_TAG else str(_scalar(key_node))


def _first_key(node: Node, key: Any) -> Mark:
    """Where `key` first appears in a mapping node (only asked for when it appears again)."""
    for key_node, _ in node.value:
        if type(key_node) is ScalarNode and (key_node.value if key_node.tag == _STR_TAG else _scalar(key_node)) == key:
            return _mark(key_node.start_mark)
    return _START


def _mark(mark: Any) -> Mark:
    if mark is None:
        return Mark(1, 1)
    return Mark(mark.line + 1, mark.column + 1)


_DEEP = re.compile(rf"(?:[\[{{]\s*){{{MAX_DEPTH}}}|(?:-[ \t]+){{{MAX_DEPTH}}}")


def _check_depth(text: str) -> None:
    """Refuse absurd nesting before libyaml sees it (cheap: two C-level scans in the common case)."""
    # single characters are counted at memchr speed; "-" bounds "- " from above (3x cheaper to count)
    if text.count("[") + text.count("{") < MAX_DEPTH and text.count("-") < MAX_DEPTH:
        return
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(depth - 1, 0)
    match = _DEEP.search(text)
    if deepest >= MAX_DEPTH or match:
        index = match.start() if match else 0
        line = text.count("\n", 0, index) + 1
        raise YamlProblem("TR101", f"the YAML nests more than {MAX_DEPTH} levels deep; a qna.yaml needs a few",
                          Mark(line, index - (text.rfind("\n", 0, index) + 1) + 1))


def _syntax_message(exc: yaml.MarkedYAMLError, text: str) -> str:
    problem = exc.problem or "invalid YAML"
    context = exc.context or ""
    started = exc.context_mark
    if context and started is not None and exc.problem_mark is not None and started.line != exc.problem_mark.line:
        context = f"{context} (which starts at line {started.line + 1}, column {started.column + 1})"
    message = f"{context}: {problem}" if context else problem
    if _tab_at(exc.problem_mark, text) or "tab" in problem:
        message += " (tabs cannot indent YAML: use spaces)"
    return message


def _syntax_mark(exc: yaml.MarkedYAMLError) -> Mark:
    """An unclosed quote or bracket is reported at the end of the file: point where it was opened."""
    if exc.context_mark is not None and "end of stream" in (exc.problem or ""):
        return _mark(exc.context_mark)
    return _mark(exc.problem_mark)


def _tab_at(mark: Any, text: str) -> bool:
    if mark is None or not text:
        return False
    lines = text.splitlines()
    return mark.line < len(lines) and "\t" in lines[mark.line][: mark.column + 1]


def _reader_message(exc: yaml.YAMLError) -> str:
    return f"the text holds a character YAML does not allow ({exc}); save the file as plain UTF-8 text"


def _reader_mark(exc: yaml.YAMLError, text: str) -> Mark:
    position = getattr(exc, "position", None)
    if not isinstance(position, int):
        return Mark(1, 1)
    before = text.encode()[:position].decode("utf-8", "ignore")  # libyaml counts bytes, not characters
    return Mark(before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1)
