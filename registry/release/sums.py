"""SHA256SUMS in the format of GNU coreutils `sha256sum` (so `sha256sum -c SHA256SUMS` checks a release too).

A line is `<hex>  <path>` (two spaces: text mode; `<hex> *<path>` is binary mode, also read). A path holding
a backslash or a newline is escaped and the line starts with a backslash, as coreutils does.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from registry.errors import RegistryError

LINE = re.compile(r"^(\\?)([0-9a-fA-F]{64}) [ *](.+)$")


@dataclass(slots=True)
class Sums:
    """SHA256SUMS as read: each good line's path, sha256 and line number, and the bad lines."""

    digests: dict[str, str] = field(default_factory=dict)  # path -> sha256 (lower case)
    lines: dict[str, int] = field(default_factory=dict)  # path -> the line that lists it
    bad: list[tuple[int, str]] = field(default_factory=list)  # (line number, problem)


def file_sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def format_sums(entries: Iterable[tuple[str, str]]) -> str:
    """Lines sorted by path (byte order), so the same files give the same text."""
    lines = []
    for path, digest in sorted(entries, key=lambda e: e[0].encode()):
        escaped = path.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        marker = "\\" if escaped != path else ""
        lines.append(f"{marker}{digest}  {escaped}\n")
    return "".join(lines)


def parse_sums(text: str, where: str = "SHA256SUMS") -> dict[str, str]:
    """{path: sha256}; a malformed line or a path listed twice is an error naming the line."""
    sums = read_sums(text)
    if sums.bad:
        number, problem = sums.bad[0]
        raise RegistryError(f"{where}:{number}: {problem}", hint="each line is `<64 hex digits>  <path>`")
    return sums.digests


def read_sums(text: str) -> Sums:
    """Every good line and every bad one: like `sha256sum -c`, one malformed line does not hide the others."""
    sums = Sums()
    # \n only: splitlines() would also split at \r, \x0b, \u2028... and accept a file taxreg never writes
    for number, line in enumerate(text.removesuffix("\n").split("\n") if text else [], 1):
        match = LINE.match(line)
        if not match:
            sums.bad.append((number, f"not a sha256sum line: {line[:80]!r}"))
            continue
        escaped, digest, path = match.groups()
        if escaped:
            path = re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), path)
        if path in sums.digests:
            sums.bad.append((number, f"{path} is listed twice"))
            continue
        sums.digests[path], sums.lines[path] = digest.lower(), number
    return sums
