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


def discover(root: Path) -> Discovery:
    if not root.is_dir():
        raise TaxonomyNotFound(f"taxonomy root {root} is not a directory",
                               hint="pass the folder that holds knowledge/ and compositional_skills/")
    tops = [root / top for top in TOP_FOLDERS if (root / top).is_dir()]
    if not tops:
        raise TaxonomyNotFound(f"{root} has none of the taxonomy folders {', '.join(TOP_FOLDERS)}",
                               hint="pass the folder that holds knowledge/ and compositional_skills/")
    real_root = root.resolve()
    found = Discovery()
    for top in tops:
        for dirpath, dirnames, filenames in os.walk(top):
            here = Path(dirpath)
            dirnames[:] = sorted(d for d in dirnames if _keep_dir(here / d, root, real_root, found))
            for name in sorted(filenames):
                _visit_file(here / name, root, real_root, found)
    return found


def _keep_dir(path: Path, root: Path, real_root: Path, found: Discovery) -> bool:
    if path.name.startswith("."):
        return False
    if path.is_symlink():  # never followed; a link leaving the tree is reported
        if not _inside(path, real_root):
            found.findings.append(_outside(path, root))
        return False
    return True


def _visit_file(path: Path, root: Path, real_root: Path, found: Discovery) -> None:
    name = path.name
    is_yaml = name.endswith((".yaml", ".yml"))
    if path.is_symlink() and (is_yaml or name == "attribution.txt") and not _inside(path, real_root):
        found.findings.append(_outside(path, root))
        return
    rel = path.relative_to(root).as_posix()
    if name == LEAF_FILE:
        found.leaves.append(LeafFile(path.parent.relative_to(root).as_posix(), rel, path))
    elif is_yaml:
        found.findings.append(finding("TR109", rel, f"found '{name}': taxonomy files must be named "
                                      f"'{LEAF_FILE}'; this file is not checked"))


def _inside(path: Path, real_root: Path) -> bool:
    return path.resolve().is_relative_to(real_root)


def _outside(path: Path, root: Path) -> Finding:
    target = os.readlink(path)
    return finding("TR108", path.relative_to(root).as_posix(),
                   f"symbolic link to {target!r} leaves the taxonomy root; it is not followed")
