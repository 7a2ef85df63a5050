"""Finding the leaves of a taxonomy tree: every `qna.yaml` under the three top folders."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from registry.errors import TaxonomyNotFound
from registry.findings import Finding, finding
from registry.records import TOP_FOLDERS

LEAF_FILE = "qna.yaml"


@dataclass(frozen=True, slots=True)
class LeafFile:
    contribution_id: str  # the leaf directory, relative to the taxonomy root
    source_path: str  # the qna.yaml, relative to the taxonomy root
    abs_path: Path

    @property
    def top_folder(self) -> str:
        return self.source_path.split("/", 1)[0]

    @property
    def attribution_path(self) -> Path:
        return self.abs_path.parent / "attribution.txt"


@dataclass(slots=True)
class Discovery:
    leaves: list[LeafFile] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # folders that could not be listed


def require_taxonomy(root: Path) -> None:
    """A clear error before anything is written when the root is not a taxonomy."""
    if not root.is_dir():
        raise TaxonomyNotFound(f"taxonomy root {root} is not a directory",
                               hint="pass the folder that holds knowledge/ and compositional_skills/")
    if not any((root / top).is_dir() for top in TOP_FOLDERS):
        raise TaxonomyNotFound(f"{root} has none of the taxonomy folders {', '.join(TOP_FOLDERS)}",
                               hint="pass the folder that holds knowledge/ and compositional_skills/")


def discover(root: Path) -> Discovery:
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
    return walk.found


class _Walk:
    """os.scandir walk with relative posix paths: d_type answers "dir or link?" without extra syscalls."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.real_root = root.resolve()
        self.found = Discovery()

    def folder(self, rel: str) -> None:
        try:
            entries = sorted(os.scandir(self.root / rel), key=lambda e: e.name)
        except OSError as exc:  # reported, and its leaves are never taken for removed ones
            self.found.unreadable.append(rel)
            self.found.findings.append(finding("TR112", rel, f"cannot list this folder ({exc.strerror}); the "
                                               "leaves inside it are not checked"))
            return
        for entry in entries:
            child = f"{rel}/{entry.name}"
            if entry.is_symlink():
                self._link(entry, child)
            elif entry.is_dir():
                if not entry.name.startswith("."):
                    self.folder(child)
            else:
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
        elif entry.name.endswith((".yaml", ".yml")) or entry.name == "attribution.txt":
            if not inside:
                self.found.findings.append(_outside(path, child))
            else:
                self._file(entry.name, child)

    def _file(self, name: str, rel: str) -> None:
        if name == LEAF_FILE:
            self.found.leaves.append(LeafFile(rel.rsplit("/", 1)[0], rel, self.root / rel))
        elif name.endswith((".yaml", ".yml")):
            self.found.findings.append(finding("TR109", rel, f"found '{name}': taxonomy files must be named "
                                               f"'{LEAF_FILE}'; this file is not checked"))


def _outside(path: Path, rel: str) -> Finding:
    return finding("TR108", rel, f"symbolic link to {os.readlink(path)!r} leaves the taxonomy root; "
                   "it is not followed")
