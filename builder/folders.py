"""Writing output folders so that nothing partial is ever visible: build beside, then swap into place; check
first that they can be written, and clear what killed runs left behind."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from registry.errors import RegistryError


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


def require_writable(path: Path, option: str) -> None:
    """`path` (a folder to create or replace) can be written: a folder can be made where it will be made."""
    if path.exists() and not path.is_dir():
        raise RegistryError(f"{option} {path} is a file", hint=f"pass a folder path for {option}")
    where = path.parent
    while not where.exists():
        where = where.parent
    if not where.is_dir():
        raise RegistryError(f"{option} {path}: {where} is a file, not a folder", hint=f"pass another {option}")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".taxreg-write-probe-", dir=where))
    except OSError as exc:
        raise RegistryError(f"{option} {path} cannot be written: {where}: {exc.strerror or exc}",
                            hint=f"pass another {option}, or make {where} writable") from None


def check_output_folder(path: Path, option: str, ours: Callable[[Path], bool], what: str, hint: str) -> None:
    """`path` may be created or replaced: it is new, empty, or a folder `ours` recognises as `what` (anything else
    is left untouched), and it can be written. Checked before any work."""
    if path.exists() and not path.is_dir():
        raise RegistryError(f"{option} {path} is a file; it is left untouched", hint=f"pass a folder path for {option}")
    if path.is_dir() and any(path.iterdir()) and not ours(path):
        raise RegistryError(f"{option} {path} exists and is not {what}; it is left untouched", hint=hint)
    require_writable(path, option)


def temp_folder(out: Path) -> Path:
    """Where `out` is built before it is renamed into place; the process id tells later runs if it is stale."""
    return out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}"


def remove_stale_temps(out: Path) -> list[Path]:
    """The temp folders of `out` (named by `temp_folder`) that a killed run left beside it."""
    return remove_stale(out.parent, re.compile(rf"\.{re.escape(out.name)}\.tmp-(?:(\d+)-)?[0-9a-f]{{12}}"))


def remove_stale(parent: Path, pattern: re.Pattern[str]) -> list[Path]:
    """The folders in `parent` named by `pattern` whose process is gone: what killed runs left behind. The
    pattern's group 1 is the process id (names from versions without one count as stale). Nothing else is
    touched."""
    if not parent.is_dir():
        return []
    stale = []
    for path in sorted(parent.iterdir()):
        match = pattern.fullmatch(path.name)
        if match and path.is_dir() and not path.is_symlink() and not process_alive(match.group(1)):
            shutil.rmtree(path, ignore_errors=True)
            stale.append(path)
    return stale


def process_alive(pid: str | None) -> bool:
    """Whether the process that named a temporary folder still runs (on this machine)."""
    if pid is None:
        return False  # named by a version without the pid: only a killed run leaves one for this long
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, OverflowError):
        return False
    except OSError:
        return True  # exists, owned by another user
    return True
