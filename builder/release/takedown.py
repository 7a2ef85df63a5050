"""`taxreg takedown SUBJECT`: what depends on a document or contribution, and marking it taken down.

The next `taxreg dataset build` (and so the next `taxreg build`) leaves out every sample derived from it;
releases already cut keep their files, and `release cut` refuses a dataset that still holds them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from registry.catalog import releases
from registry.catalog.connection import open_catalog, open_read_only


def takedown(catalog: Path, subject: str, reason: str, requested_by: str | None,
             dry_run: bool) -> tuple[releases.Impact, bool]:
    """(impact, newly taken down); a dry run only reads the catalog (and needs no reason)."""
    if not dry_run:
        releases.check_reason(reason)
    with open_read_only(catalog) if dry_run else open_catalog(catalog) as con:
        impact = releases.takedown_impact(con, subject)
        if dry_run:
            return impact, False
        return impact, releases.take_down(con, impact, reason, requested_by, datetime.now(UTC))
