"""Full disks: recognising one in whatever error a write raised (Python's OSError, DuckDB's IO errors, a library's
message), and naming the file system, so that every command says "no space left on <folder>" the same way."""

from __future__ import annotations

import errno
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

FULL = (errno.ENOSPC, errno.EDQUOT)
_MESSAGES = re.compile(r"No space left on device|Disk quota exceeded|\bENOSPC\b|\"errno\":\s*\"?(?:28|122)\b")
_WRITTEN = re.compile(r"""(?:file|writing|write to|path)\s+\\?["']([^"'\\]+)""", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class DiskFull:
    path: Path | None  # what was being written, when the error says

    @property
    def folder(self) -> Path | None:
        """The mount point of the file system that is full."""
        return mount_of(self.path) if self.path is not None else None

    def message(self) -> str:
        if self.folder is None:
            return "no space left on the disk being written"
        return f"no space left on {self.folder}" + (f" (writing {self.path})" if self.path != self.folder else "")


def full_disk(exc: BaseException) -> DiskFull | None:
    """The full disk behind `exc` (itself, or what caused it), or None when it was something else."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in FULL:
            written = current.filename2 or current.filename
            return DiskFull(Path(os.fsdecode(written)) if written else None)
        text = str(current)
        if _MESSAGES.search(text):
            named = _WRITTEN.search(text)
            return DiskFull(Path(named.group(1)) if named else None)
        current = current.__cause__ or current.__context__
    return None


def mount_of(path: Path) -> Path:
    """The mount point of the file system `path` is (or would be) on."""
    current = Path(os.path.abspath(path))
    while not current.exists() and current != current.parent:
        current = current.parent
    while not os.path.ismount(current) and current != current.parent:
        current = current.parent
    return current


def require_space(folder: Path, needed: int, writing: Path) -> None:
    """Raise the OSError a full disk gives when `folder` has less than `needed` bytes free: for libraries whose own
    writes do not check (onnx's shape inference leaves a file cut short, read back as 'Wire format was corrupt')."""
    if shutil.disk_usage(folder).free < needed:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(writing))
