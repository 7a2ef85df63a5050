"""Writing outputs so that nothing partial is ever visible: build beside the target, fsync, swap into place, and
sweep what killed runs left behind; and checking first that an output can be written.

Every writer of a build folder's outputs (datasets, site, export, train, init, release, the audit copy, the
document cache, JSON state) goes through `building` + `swap_into_place` or `write_json`. Temporary names carry the
process id (`.NAME-new-PID-RANDOM`, `.NAME-old-PID-RANDOM`), so the next run removes those of a dead process and
leaves a live one's alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from registry.errors import RegistryError

Move = tuple[Path | None, Path]  # (finished new entry beside the target, or None to remove it; the target)


def temp_name(target: Path, role: str = "new") -> Path:
    """A name beside `target` for its next version (`new`) or its previous one (`old`), owned by this process."""
    return target.parent / f".{target.name}-{role}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


@contextlib.contextmanager
def building(target: Path) -> Iterator[Path]:
    """A fresh empty folder beside `target` to build it in (stale ones of dead runs are swept first). It is removed
    on exit, whatever happens; once swapped into place there is nothing left to remove."""
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    work = temp_name(target)
    work.mkdir()
    try:
        yield work
    finally:
        _remove(work)


def swap_into_place(*moves: Move, background: bool = False) -> None:
    """Each `(new, target)`: the finished `new` (same folder as `target`) replaces `target`; `new=None` removes
    `target`. All or nothing: if the filesystem refuses a rename, what was moved goes back and the OSError is
    raised. New trees are fsynced first; what they replaced is deleted once all are in place (by a background
    `rm` when `background`: a site has tens of thousands of files)."""
    for new, _ in moves:
        if new is not None:
            _fsync_tree(new)
    aside: list[tuple[Path, Path]] = []
    placed: list[tuple[Path, Path]] = []
    try:
        for new, target in moves:
            if target.exists() or target.is_symlink():
                old = temp_name(target, "old")
                os.replace(target, old)
                aside.append((old, target))
            if new is not None:
                os.replace(new, target)
                placed.append((new, target))
    except BaseException:
        _put_back(placed, aside)
        raise
    for parent in {target.parent for _, target in moves}:
        _fsync_dir(parent)
    for old, _ in aside:
        _remove(old, background)


def _put_back(placed: list[tuple[Path, Path]], aside: list[tuple[Path, Path]]) -> None:
    for new, target in reversed(placed):
        with contextlib.suppress(OSError):
            os.replace(target, new)
    for old, target in reversed(aside):
        try:
            os.replace(old, target)
        except OSError as exc:
            raise RegistryError(f"{target} could not be swapped, nor its previous version put back: "
                                f"{exc.strerror or exc}", hint=f"the previous version is in {old}: move it back to "
                                f"{target} now (the next run removes folders named like it)") from None


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Sorted keys, two-space indent, newline at the end (equal payloads give equal bytes); written beside and
    renamed, so a reader never sees half a file."""
    write_lines(path, [json.dumps(payload, indent=2, sort_keys=True, default=str)])


def write_lines(path: Path, lines: Iterable[str]) -> None:
    """A text file of `lines` (each ended by a newline), written beside and renamed: all of it or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            for line in lines:
                handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale_temps(target: Path) -> list[Path]:
    """The temporary folders of `target` (named by `temp_name`, or `.NAME.tmp-...` by earlier versions) that a
    killed run left beside it."""
    return remove_stale(target.parent, re.compile(rf"\.{re.escape(target.name)}(?:-new|-old|\.tmp)-(?:(\d+)-)?\w+",
                                                  re.ASCII))


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


def _fsync_tree(root: Path) -> None:
    """Data on disk before the rename that publishes it: a crash after the swap cannot leave empty files."""
    if root.is_file():
        _fsync_file(root)
        return
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if not path.is_symlink():
                _fsync_file(path)
        _fsync_dir(Path(folder))


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # some filesystems refuse fsync on a directory: nothing more to do there
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove(path: Path, background: bool = False) -> None:
    if not (path.exists() or path.is_symlink()):
        return
    if path.is_dir() and not path.is_symlink():
        if background:
            try:
                subprocess.Popen(["rm", "-rf", "--", str(path)], start_new_session=True, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                return
            except OSError:
                pass
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
