"""Writing output folders so that nothing partial is ever visible: build beside, then swap into place."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any


def swap_into_place(work: Path, out: Path) -> None:
    """Replace `out` with the finished folder `work` (same filesystem); on failure the old `out` is restored."""
    old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:12]}"
    if out.exists():
        out.rename(old)
    try:
        work.rename(out)
    except BaseException:
        if old.exists():
            old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Sorted keys, two-space indent, newline at the end: equal payloads give equal bytes."""
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
