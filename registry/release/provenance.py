"""provenance.intoto.jsonl: reading a release's SLSA provenance and checking its subjects against the files.

The file holds one line: an in-toto Statement v1 (unsigned release) or a DSSE envelope whose payload is that
statement (signed). The statement's subjects are every file the manifest lists but the provenance itself and the public
key (the signer's identity, not a product of the build), each with its sha256. The envelope's
signature is checked in the builder, with the signing library.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.release.manifest import MANIFEST, PUBLIC_KEY, SUMS

PROVENANCE = "provenance.intoto.jsonl"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"


@dataclass(frozen=True, slots=True)
class Provenance:
    statement: dict[str, Any]
    envelope: dict[str, Any] | None  # None: the statement is not signed


def read(path: Path) -> Provenance:
    """The statement (and the envelope it came in); ValueError says what is malformed."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(lines) != 1:
        raise ValueError(f"{len(lines)} lines; the cut writes one")
    entry = json.loads(lines[0])
    if not isinstance(entry, dict):
        raise ValueError("not a JSON object")
    envelope = entry if "payloadType" in entry else None
    if envelope is not None:
        if envelope.get("payloadType") != PAYLOAD_TYPE:
            raise ValueError(f"payloadType {envelope.get('payloadType')!r}, not {PAYLOAD_TYPE}")
        try:
            entry = json.loads(base64.b64decode(str(envelope.get("payload", "")), validate=True))
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"the envelope's payload is not a base64 JSON statement: {exc}") from None
    if not isinstance(entry, dict) or entry.get("_type") != STATEMENT_TYPE or \
            entry.get("predicateType") != PREDICATE_TYPE:
        raise ValueError(f"not an in-toto statement ({STATEMENT_TYPE}) with predicate {PREDICATE_TYPE}")
    return Provenance(entry, envelope)


def subject_problems(statement: dict[str, Any], listed: dict[str, str | None]) -> list[tuple[str, str]]:
    """(path, problem) for each subject that names no listed file or another sha256, and each listed file (but the
    provenance and the public key) that is not a subject. `listed`: each file's sha256 as the release's other
    witnesses agree on it (None: they do not, and say so themselves). A changed file or an edited SHA256SUMS line
    or manifest is reported once, by them; a file whose hashes were all rewritten is caught here."""
    subjects: dict[str, str] = {}
    for subject in statement.get("subject") or []:
        if isinstance(subject, dict):
            subjects[str(subject.get("name"))] = str((subject.get("digest") or {}).get("sha256"))
    problems = []
    for name, sha in sorted(subjects.items()):
        if name not in listed:
            problems.append((name, "a provenance subject, but not a file of the release"))
        elif listed[name] is not None and listed[name] != sha:
            problems.append((name, f"the provenance names sha256 {sha}; {SUMS}, the manifest and the file have "
                                   f"{listed[name]}"))
    unlisted = set(listed) - set(subjects) - {PROVENANCE, PUBLIC_KEY, MANIFEST}
    problems += [(name, "not a subject of the provenance") for name in sorted(unlisted)]
    return problems
