"""Has anything changed? Hashes of every input's path, size and mtime (no file is read)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from registry.config import ValidationConfig
from registry.discovery import Discovery


def documents_fingerprint(documents_root: Path) -> str:
    return _tree_digest([documents_root], key=str(documents_root.resolve()))


def input_fingerprint(root: Path, config: ValidationConfig, found: Discovery, extra: str = "") -> str:
    """A hash of every input's path, size and mtime plus the config: equal means nothing changed.

    `found` must come from `discover(root, config.documents(root))`, whose walk stamped every file of
    the taxonomy and of its document cache.
    """
    key = f"{config.file_rules_key()}|{config.documents(root).resolve()}|{extra}"
    lines = sorted(f"{path}\0{size}\0{mtime_ns}" for path, (mtime_ns, size) in found.stamps.items())
    return hashlib.sha256("\n".join([key, *lines]).encode()).hexdigest()


def _tree_digest(bases: list[Path], key: str = "") -> str:
    lines = []
    stack = [str(b) for b in bases]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                    continue
                try:  # a linked file counts by its target: editing the target is a change
                    info = entry.stat(follow_symlinks=entry.is_symlink())
                except OSError:
                    continue
                lines.append(f"{entry.path}\0{info.st_size}\0{info.st_mtime_ns}")
    lines.sort()  # one sort of plain strings: the walk's order does not matter
    return hashlib.sha256("\n".join([key, *lines]).encode()).hexdigest()
