"""One writer per build directory: every command that writes a build folder takes this lock first (`taxreg build`,
`index`, `generate`, `import-sdg`, `dataset build`, `model init`, `train`, `export`, `site`, `release cut`,
`takedown`). A command given paths (`--catalog`, `--out`) locks the build folders they are in (`lock_paths`).

The lock is an OS file lock (`filelock`): the kernel releases it when its holder dies, even by kill -9,
so a crashed build never leaves a stale lock behind. Beside it, a small note says who holds it, for the
message the second writer gets.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from builder.layout import BuildLayout
from registry import folders
from registry.errors import RegistryError


class BuildDirBusy(RegistryError):
    """Another taxreg process is writing the build directory (exit code 2)."""


@contextmanager
def build_lock(build_dir: Path, wait: float = 0.0, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the build directory's lock; wait up to `wait` seconds for another holder, then give up."""
    layout = BuildLayout(build_dir)
    try:
        layout.lock.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RegistryError(f"cannot create {layout.lock.parent} (the build folder's lock): {exc.strerror}",
                            hint="point the command at a writable build folder") from None
    lock = FileLock(layout.lock, thread_local=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        who = holder(build_dir)
        if wait <= 0:
            raise BuildDirBusy(f"{build_dir} is being written by {who}",
                               hint="wait for it to finish, or pass --wait SECONDS to queue behind it") from None
        if on_wait:
            on_wait(f"{build_dir} is being written by {who}; waiting up to {wait:g}s")
        try:
            lock.acquire(timeout=wait)
        except Timeout:
            raise BuildDirBusy(f"{build_dir} is still being written by {holder(build_dir)} after {wait:g}s",
                               hint="try again later, or pass a longer --wait") from None
    try:
        _write_holder(layout)
        yield
    finally:
        layout.lock_holder.unlink(missing_ok=True)
        lock.release()


@contextmanager
def lock_paths(catalog: Path | None, outputs: tuple[Path, ...] = (), wait: float = 0.0,
               on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the lock of every build folder a command writes: the catalog's folder (a catalog is the `catalog.duckdb`
    of its folder, whatever its name) and the build folder whose layout each output is at (`BuildLayout.owning`;
    an output outside any build folder needs no lock). Taken in one order, so two commands never deadlock."""
    roots = {} if catalog is None else {_key(catalog.parent): catalog.parent}
    for out in outputs:
        owner = BuildLayout.owning(out)
        if owner is not None:
            roots.setdefault(_key(owner.root), owner.root)
    with ExitStack() as stack:
        for key in sorted(roots):
            stack.enter_context(build_lock(roots[key], wait, on_wait))
        yield


def _key(folder: Path) -> str:
    return os.path.realpath(folder)


def holder(build_dir: Path) -> str:
    """'pid N (taxreg ...), since HH:MM:SS' from the note, or a plain phrase when there is none."""
    try:
        note = json.loads(BuildLayout(build_dir).lock_holder.read_text(encoding="utf-8"))
        since = time.strftime("%H:%M:%S", time.localtime(note["since"]))
        return f"pid {note['pid']} ({note['command']}), since {since}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another taxreg process"


def _write_holder(layout: BuildLayout) -> None:
    folders.write_json(layout.lock_holder, {"pid": os.getpid(), "command": " ".join(["taxreg", *sys.argv[1:]])[:200],
                                            "since": time.time()})
