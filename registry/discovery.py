"""Finding the leaves of a taxonomy tree: every `qna.yaml` under the three top folders."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import NamedTuple

from registry.errors import TaxonomyNotFound
from registry.findings import Finding, finding
from registry.records import TOP_FOLDERS

LEAF_FILE = "qna.yaml"
ATTRIBUTION_FILE = "attribution.txt"


class LeafFile(NamedTuple):  # a NamedTuple: made for every leaf on every run and sent to a worker, ~3x cheaper
    contribution_id: str  # the leaf directory, relative to the taxonomy root
    source_path: str  # the qna.yaml, relative to the taxonomy root
    # The qna.yaml as the walk reached it (the root joined with source_path). A string: the files of every
    # leaf are opened on every run, and building a Path for each costs ~10x more than the string.
    file: str

    @property
    def top_folder(self) -> str:
        return self.source_path.split("/", 1)[0]

    @property
    def attribution_file(self) -> str:
        """The attribution.txt beside the leaf."""
        return os.path.join(os.path.dirname(self.file), ATTRIBUTION_FILE)


Stamp = tuple[int, int]  # (mtime_ns, size): a file whose stamp is unchanged is not read again
DOCUMENTS_PREFIX = "documents:"  # stamps of the document cache's files are keyed by this + their path


@dataclass(slots=True)
class Discovery:
    leaves: list[LeafFile] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # folders that could not be listed
    # Every file walked (a link: its target), by path relative to the root: one walk serves both change
    # detection (`registry.fingerprint`) and the verdict cache, instead of a walk and two stat calls a leaf.
    stamps: dict[str, Stamp] = field(default_factory=dict)


def require_taxonomy(root: Path) -> None:
    """A clear error before anything is written when the root is not a taxonomy."""
    if not root.is_dir():
        raise TaxonomyNotFound(f"taxonomy root {root} is not a directory",
                               hint="pass the folder that holds knowledge/ and compositional_skills/")
    if not any((root / top).is_dir() for top in TOP_FOLDERS):
        raise TaxonomyNotFound(f"{root} has none of the taxonomy folders {', '.join(TOP_FOLDERS)}",
                               hint="pass the folder that holds knowledge/ and compositional_skills/")


def discover(root: Path, documents_root: Path | None = None) -> Discovery:
    """The leaves under the top folders, and the stamp of every file there and under `documents_root`
    (walked for stamps only)."""
    if not root.is_dir():
        raise TaxonomyNotFound(f"taxonomy root {root} is not a directory",
                               hint="pass the folder that holds knowledge/ and compositional_skills/")
    tops = [top for top in TOP_FOLDERS if (root / top).is_dir()]
    if not tops:
        raise TaxonomyNotFound(f"{root} has none of the taxonomy folders {', '.join(TOP_FOLDERS)}",
                               hint="pass the folder that holds knowledge/ and compositional_skills/")
    walk = _Walk(root)
    for top in tops:
        walk.folder(top)
    if documents_root is not None:
        _stamp_tree(documents_root, walk.found.stamps)
    return walk.found


def _stamp_tree(base: Path, stamps: dict[str, Stamp]) -> None:
    stack = [str(base)]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    _stamp(entry, DOCUMENTS_PREFIX + entry.path, stamps)


def _stamp(entry: os.DirEntry[str], key: str, stamps: dict[str, Stamp]) -> None:
    try:  # a linked file counts by its target: editing the target is a change
        info = entry.stat(follow_symlinks=entry.is_symlink())
    except OSError:
        return
    stamps[key] = (info.st_mtime_ns, info.st_size)


_name = attrgetter("name")


class _Walk:
    """os.scandir walk with relative posix paths: d_type answers "dir or link?" without extra syscalls."""

    def __init__(self, root: Path) -> None:
        self.root = os.fspath(root)
        self.real_root = root.resolve()
        self.found = Discovery()

    def folder(self, rel: str) -> None:
        try:
            entries = sorted(os.scandir(f"{self.root}/{rel}"), key=_name)
        except OSError as exc:  # reported, and its leaves are never taken for removed ones
            self.found.unreadable.append(rel)
            self.found.findings.append(finding("TR112", rel, f"cannot list this folder ({exc.strerror}); the "
                                               "leaves inside it are not checked"))
            return
        stamps = self.found.stamps
        for entry in entries:
            child = f"{rel}/{entry.name}"
            if entry.is_symlink():
                _stamp(entry, child, stamps)
                self._link(entry, child)
            elif entry.is_dir():
                if not entry.name.startswith("."):
                    self.folder(child)
            else:
                _stamp(entry, child, stamps)
                self._file(entry.name, child)

    def _link(self, entry: os.DirEntry[str], child: str) -> None:
        path = Path(entry.path)
        inside = Path(os.path.realpath(path)).is_relative_to(self.real_root)  # realpath: loops do not raise
        try:
            is_dir = entry.is_dir()
        except OSError:  # a loop: reading it will say so (TR111)
            is_dir = False
        if is_dir:  # links to folders are never followed
            if not inside:
                self.found.findings.append(_outside(path, child))
        elif entry.name.endswith((".yaml", ".yml")) or entry.name == ATTRIBUTION_FILE:
            if not inside:
                self.found.findings.append(_outside(path, child))
            else:
                self._file(entry.name, child)

    def _file(self, name: str, rel: str) -> None:
        if name == LEAF_FILE:
            self.found.leaves.append(LeafFile(rel.rsplit("/", 1)[0], rel, f"{self.root}/{rel}"))
        elif name.endswith((".yaml", ".yml")):
            self.found.findings.append(finding("TR109", rel, f"found '{name}': taxonomy files must be named "
                                               f"'{LEAF_FILE}'; this file is not checked"))


def _outside(path: Path, rel: str) -> Finding:
    return finding("TR108", rel, f"symbolic link to {os.readlink(path)!r} leaves the taxonomy root; "
                   "it is not followed")
