"""attribution.txt: free text of `Field: value` lines, one block per source work."""

from __future__ import annotations

import re
from typing import NamedTuple

from registry.findings import Finding, finding
from registry.licenses import LicensePolicy, normalize
from registry.records import AttributionEntry

FIELDS = {
    "title of work": "title",
    "title": "title",
    "link to work": "link",
    "link": "link",
    "revision": "revision",
    "license of the work": "license",
    "license": "license",
    "creator names": "creators",
    "creator name": "creators",
    "creators": "creators",
}
REQUIRED = ("title", "license", "creators")
# `Field: value`; the value's trailing whitespace is stripped with rstrip(), the same characters as a
# lazy `(.*?)\s*$` leaves out at ~4x less cost (that pattern backtracked at every character of a value).
_FIELD = re.compile(r"\s*([A-Za-z][A-Za-z ]*?)\s*:\s*(.*)")
_EMPTY = {"", "-", "n/a", "na", "none"}


class AttributionResult(NamedTuple):  # sent back by parse workers for every leaf: tuples pickle fastest
    entries: tuple[AttributionEntry, ...]
    findings: tuple[Finding, ...]


def parse(text: str, path: str, policy: LicensePolicy) -> AttributionResult:
    blocks = _blocks(text)
    findings: list[Finding] = []
    entries = []
    for start, lines in blocks:
        fields: dict[str, tuple[str, int]] = {}
        for number, line, match, name in lines:
            if match and name:
                fields[name] = (match.group(2).rstrip(), number)
            elif fields and not match:  # a wrapped continuation of the previous value
                last = list(fields)[-1]
                fields[last] = (f"{fields[last][0]} {line.strip()}", fields[last][1])
            else:
                findings.append(finding("TR302", path, f"unrecognised line {line.strip()[:60]!r}: expected one of "
                                        "'Title of work:', 'Link to work:', 'Revision:', 'License of the work:', "
                                        "'Creator names:'", number))
        missing = [name for name in REQUIRED if not _value(fields.get(name))]
        if missing:
            findings.append(finding("TR302", path, f"this work has no {', '.join(missing)}", start))
        entry, license_findings = _entry(fields, start, path, policy)
        entries.append(entry)
        findings.extend(license_findings)
    if not blocks:
        findings.append(finding("TR302", path, "attribution.txt is empty"))
    return AttributionResult(tuple(entries), tuple(findings))


def _entry(fields: dict[str, tuple[str, int]], start: int, path: str,
           policy: LicensePolicy) -> tuple[AttributionEntry, list[Finding]]:
    raw = _value(fields.get("license"))
    spdx = normalize(raw) if raw else None
    findings = []
    if raw and spdx is None:
        findings.append(finding("TR303", path, f"license {raw!r} is not an SPDX identifier or expression",
                                fields["license"][1]))
    elif raw and spdx and not policy.allows(spdx):
        shown = raw if raw == spdx else f"{raw!r} (SPDX {spdx})"
        allowed = ", ".join(sorted(policy.allowed))
        findings.append(finding("TR304", path, f"license {shown} is not allowed by the license policy "
                                f"(allowed: {allowed})", fields["license"][1]))
    entry = AttributionEntry(
        title=_value(fields.get("title")), link=_value(fields.get("link")),
        revision=_value(fields.get("revision")), license_raw=raw, license_spdx=spdx,
        creators=_value(fields.get("creators")), line=start,
    )
    return entry, findings


def _value(field: tuple[str, int] | None) -> str | None:
    if field is None or field[0].strip().lower() in _EMPTY:
        return None
    return field[0].strip()


# (line number, text, its `Field: value` match, the field it names): each line is matched once
_Line = tuple[int, str, re.Match[str] | None, str | None]


def _blocks(text: str) -> list[tuple[int, list[_Line]]]:
    """One block per work: separated by blank lines, or by a new `Title of work:` line."""
    blocks: list[tuple[int, list[_Line]]] = []
    current: list[_Line] = []
    has_title = False
    for number, line in enumerate(text.splitlines(), start=1):
        match = _FIELD.match(line)
        name = FIELDS.get(match.group(1).lower()) if match else None
        if current and name == "title" and has_title:
            blocks.append((current[0][0], current))
            current, has_title = [], False
        if line.strip():
            current.append((number, line, match, name))
            has_title = has_title or name == "title"
        elif current:
            blocks.append((current[0][0], current))
            current, has_title = [], False
    if current:
        blocks.append((current[0][0], current))
    return blocks
