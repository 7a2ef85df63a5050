"""The InstructLab JSON Schemas (package `instructlab-schema`), selected by each file's `version`.

Verdicts come from jsonschema-rs (about 200x faster than the reference implementation); when a file
fails, the reference `jsonschema` implementation, which InstructLab itself uses, lists every error so
that messages and verdicts match what contributors see upstream.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING, Any

import jsonschema_rs
from instructlab.schema import schema_base, schema_versions

from registry.findings import Finding, finding
from registry.yamlfile import Mark, ParsedYaml, YamlPath, format_path

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

_TYPE_NAMES = {"string": "text", "array": "a list", "object": "a mapping of keys", "integer": "a whole number"}


@functools.cache
def supported_versions() -> tuple[int, ...]:
    return tuple(int(v.name[1:]) for v in schema_versions())


def file_version(data: dict[str, Any]) -> int:
    """The schema version a file asks for, read the way InstructLab reads it (absent means 1)."""
    value = data.get("version", 1)
    if isinstance(value, bool):  # YAML `true` is not a version (InstructLab crashes on it)
        return 1
    if isinstance(value, int):
        return value
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return 1


def schema_name(top_folder: str, data: dict[str, Any]) -> str:
    """InstructLab's choice: the top folder, and for other folders (foundational skills) the content."""
    if top_folder in ("knowledge", "compositional_skills"):
        return top_folder
    return "knowledge" if "document" in data else "compositional_skills"


def check(path: str, top_folder: str, parsed: ParsedYaml) -> list[Finding]:
    data = parsed.data
    version = file_version(data)
    name = schema_name(top_folder, data)
    if version not in supported_versions():
        known = ", ".join(map(str, supported_versions()))
        mark = parsed.mark(("version",)) or Mark(1, 1)
        return [finding("TR207", path, f"unsupported version {data.get('version')!r}: the registry knows {known}",
                        mark.line, mark.col, ".version")]
    schema = _schema(version, name)
    if schema.get("deprecated"):
        message = schema.get("description") or f"{name} schema version {version} is deprecated"
        mark = parsed.mark(("version",)) or Mark(1, 1)
        return [finding("TR208", path, message, mark.line, mark.col, ".version" if "version" in data else "")]
    if _fast_verdict(version, name, data):
        return []
    findings = [f for error in _reference_validator(version, name).iter_errors(data)
                for f in _findings(path, error, parsed)]
    if not findings:  # the two validators disagree: report rather than pass silently
        findings = [finding("TR209", path, "the file does not satisfy the InstructLab schema")]
    return findings


def _fast_verdict(version: int, name: str, data: dict[str, Any]) -> bool:
    try:
        return bool(_fast_validator(version, name).is_valid(data))
    except ValueError:  # values JSON has no type for (dates, binary, integer keys): let the reference decide
        return False


def _findings(path: str, error: ValidationError, parsed: ParsedYaml) -> Iterator[Finding]:
    where: YamlPath = tuple(error.absolute_path)
    mark = _mark_for(parsed, where)
    yaml_path = format_path(where) or "."
    validator = error.validator
    value: Any = error.validator_value
    instance: Any = error.instance
    subschema: Any = error.schema
    if validator == "required":
        missing = [key for key in value if key not in instance]
        for key in missing:
            yield finding("TR201", path, f"missing required key '{key}'", mark.line, mark.col, yaml_path)
    elif validator in ("unevaluatedProperties", "additionalProperties"):
        for key in _unexpected_keys(error):
            key_mark = parsed.key_mark((*where, key), mark) or mark
            allowed = ", ".join(sorted(subschema.get("properties", {})))
            yield finding("TR202", path, f"unknown key '{key}' (allowed here: {allowed})",
                          key_mark.line, key_mark.col, format_path((*where, key)))
    elif validator == "type":
        expected = _TYPE_NAMES.get(str(value), str(value))
        yield finding("TR203", path, f"expected {expected}, found {_describe(instance)}",
                      mark.line, mark.col, yaml_path)
    elif validator == "minItems":
        mark = parsed.key_mark(where, mark) or mark  # the list's key reads better than its first item
        yield finding("TR204", path, f"has {len(instance)} item(s); at least {value} are required",
                      mark.line, mark.col, yaml_path)
    elif validator == "uniqueItems":
        yield from _duplicates(path, where, instance, parsed)
    elif validator == "minLength":
        yield finding("TR206", path, "must not be empty", mark.line, mark.col, yaml_path)
    elif validator == "const" and where == ("version",):
        yield finding("TR207", path, f"version must be {value} for this schema", mark.line, mark.col, yaml_path)
    else:
        yield finding("TR209", path, error.message, mark.line, mark.col, yaml_path)


def _duplicates(path: str, where: YamlPath, items: list[Any], parsed: ParsedYaml) -> Iterator[Finding]:
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        key = json.dumps(item, sort_keys=True, default=str)
        if key in seen:
            mark = _mark_for(parsed, (*where, index))
            label = _label(item)
            yield finding("TR205", path,
                          f"item {index} repeats item {seen[key]}{label}: every item must be unique",
                          mark.line, mark.col, format_path((*where, index)))
        else:
            seen[key] = index


def _label(item: Any) -> str:
    if isinstance(item, dict):
        text = item.get("question") or item.get("context") or ""
        if isinstance(text, str) and text:
            first = text.strip().splitlines()[0] if text.strip() else ""
            return f" ('{first[:80]}')"
    if isinstance(item, str):
        return f" ('{item[:80]}')"
    return ""


def _unexpected_keys(error: ValidationError) -> list[str]:
    subschema: Any = error.schema
    allowed = set(subschema.get("properties", {})) | {"version"}
    keys = [str(k) for k in error.instance if k not in allowed] if isinstance(error.instance, dict) else []
    return keys or re.findall(r"'([^']*)'", error.message)


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return f"true/false ({value})"
    names = {str: "text", list: "a list", dict: "a mapping", int: "a number", float: "a number"}
    return f"{names.get(type(value), type(value).__name__)} ({json.dumps(value, default=str)[:60]})"


def _mark_for(parsed: ParsedYaml, where: YamlPath) -> Mark:
    path = tuple(where)
    while path:
        mark = parsed.mark(path, None) or parsed.mark(tuple(str(p) for p in path), None)
        if mark:
            return mark
        path = path[:-1]
    return parsed.mark(()) or Mark(1, 1)


def _version_dir(version: int) -> Traversable:
    return schema_base().joinpath(f"v{version}")


@functools.cache
def _schema(version: int, name: str) -> dict[str, Any]:
    return json.loads(_version_dir(version).joinpath(f"{name}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _retrieve_json(version: int, uri: str) -> Any:
    return json.loads(_version_dir(version).joinpath(uri.rsplit("/", 1)[-1]).read_text(encoding="utf-8"))


@functools.cache
def _fast_validator(version: int, name: str) -> Any:
    return jsonschema_rs.validator_for(_schema(version, name), retriever=lambda uri: _retrieve_json(version, uri))


@functools.cache
def _reference_validator(version: int, name: str) -> Any:
    # imported here: only files that fail need the reference implementation (80 ms to import)
    from jsonschema.validators import validator_for
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    def retrieve(uri: str) -> Resource[Any]:
        return Resource.from_contents(_retrieve_json(version, uri), default_specification=DRAFT202012)

    schema = _schema(version, name)
    return validator_for(schema)(schema, registry=Registry(retrieve=retrieve))  # type: ignore[call-arg]
