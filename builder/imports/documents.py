"""`taxreg documents fetch`: fill the document cache with every repository the taxonomy references."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from registry.config import ValidationConfig
from registry.documents import fetch
from registry.validation import validate


@dataclass(frozen=True, slots=True)
class FetchOutcome:
    written: list[Path]  # checkouts fetched now
    already_cached: int


def fetch_documents(taxonomy: Path, config: ValidationConfig) -> FetchOutcome:
    report = validate(taxonomy, config)
    refs = [s.version.document for s in report.leaves if s.version and s.version.document]
    written = fetch(config.documents(taxonomy), refs)
    return FetchOutcome(written, len({(r.repo, r.commit) for r in refs}) - len(written))
