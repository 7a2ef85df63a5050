"""What git knows about a taxonomy: changes since a ref, its commits, the last commit of each leaf.

Uses the `git` command (the maintained, complete implementation) with machine-readable output.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

from registry.discovery import LEAF_FILE
from registry.errors import GitError
from registry.records import TOP_FOLDERS

_STATUS = {"A": "added", "M": "modified", "D": "removed", "R": "renamed", "T": "modified", "C": "added"}


@dataclass(frozen=True, slots=True)
class Change:
    status: str  # added | modified | removed | renamed
    path: str  # qna.yaml path relative to the taxonomy root (the new path for renames)
    old_path: str | None = None


@dataclass(frozen=True, slots=True)
class Commit:
    commit_sha: str
    parents: tuple[str, ...]
    author: str
    committed_at: str  # ISO 8601
    subject: str
    signed_off: bool


def _git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise GitError("git is not installed", hint="install git, or run without --since") from None
    if done.returncode != 0:
        raise GitError(f"git {args[0]} failed: {done.stderr.strip()}")
    return done.stdout


def is_repository(root: Path) -> bool:
    try:
        return _git(root, "rev-parse", "--is-inside-work-tree").strip() == "true"
    except GitError:
        return False


def head(root: Path) -> str | None:
    try:
        return _git(root, "rev-parse", "--verify", "-q", "HEAD^{commit}").strip() or None
    except GitError:
        return None


def last_commit_time(root: Path) -> int | None:
    """The committer time (seconds since the epoch) of the last commit that touched `root`, as `commits` sees the
    history; None outside a repository. Not HEAD's: a commit elsewhere in the repository changes no release."""
    try:
        return int(_git(root, "log", "-1", "--format=%ct", "HEAD", "--", ".").strip() or "x")
    except (GitError, ValueError):
        return None


def resolve_ref(root: Path, ref: str) -> str:
    if not is_repository(root):
        raise GitError(f"{root} is not inside a git repository, so --since {ref} has nothing to compare with",
                       hint="run `git init` in the taxonomy, or leave out --since")
    try:
        return _git(root, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}").strip()
    except GitError:
        raise GitError(f"unknown git ref {ref!r}",
                       hint="use a branch, tag or commit that exists (see `git log --oneline`)") from None


def changes_since(root: Path, ref: str) -> list[Change]:
    """Leaves added, modified, removed or renamed between `ref` and the working tree (untracked included)."""
    sha = resolve_ref(root, ref)
    out = _git(root, "diff", "--relative", "--name-status", "-M", "-z", sha, "--")
    fields = out.split("\0")
    changes: list[Change] = []
    i = 0
    while i < len(fields) - 1:
        code = fields[i][:1]
        if code in ("R", "C"):
            old, new = fields[i + 1], fields[i + 2]
            i += 3
            changes.append(Change(_STATUS[code], new, old) if code == "R" else Change("added", new))
        else:
            changes.append(Change(_STATUS.get(code, "modified"), fields[i + 1]))
            i += 2
    untracked = _git(root, "ls-files", "--others", "--exclude-standard", "-z").split("\0")
    changes.extend(Change("added", path) for path in untracked if path)
    leaves = [c for c in changes if _is_leaf(c.path) or (c.old_path and _is_leaf(c.old_path))]
    touched = {c.path for c in leaves}
    for c in changes:  # a new attribution.txt is a change of its leaf too
        leaf = c.path.rsplit("/", 1)[0] + "/" + LEAF_FILE
        if c.path.endswith("/attribution.txt") and leaf not in touched and (root / leaf).is_file():
            leaves.append(Change("modified", leaf))
            touched.add(leaf)
    return sorted(leaves, key=lambda c: c.path)


def _is_leaf(path: str) -> bool:
    parts = path.split("/")
    return parts[-1] == LEAF_FILE and parts[0] in TOP_FOLDERS


def commits(root: Path) -> list[Commit]:
    if head(root) is None:
        return []
    out = _git(root, "log", "--format=%H%x1f%P%x1f%an%x1f%cI%x1f%s%x1f%b%x1e", "--", ".")
    found = []
    for raw in out.split("\x1e"):
        record = raw.strip("\n")
        if not record:
            continue
        sha, parents, author, when, subject, body = record.split("\x1f")
        found.append(Commit(sha, tuple(parents.split()), author, when, subject, "Signed-off-by:" in body))
    return found


def last_commits(root: Path) -> dict[str, str]:
    """For every leaf path ever committed: the newest commit that touched it (paths relative to root)."""
    if head(root) is None:
        return {}
    out = _git(root, "log", "--relative", "-z", "--format=%x1e%H", "--name-only", "--", ".")
    last: dict[str, str] = {}
    for record in out.split("\x1e"):  # -z: "<sha>\0\n<path>\0<path>\0..." (paths never quoted)
        sha, *names = record.split("\0")
        for path in (name.strip("\n") for name in names):
            if sha and _is_leaf(path):
                last.setdefault(path, sha.strip())
    return last


@dataclass(frozen=True, slots=True)
class TreeState:
    """The working tree under a taxonomy root as it was read: HEAD, what differs from it, and a digest of it."""

    commit: str
    dirty: tuple[str, ...]  # paths (relative to root) that differ from HEAD, untracked files included; sorted
    tree_sha256: str  # sha256 of "<git blob id> <path>" lines of every file: equal to that of a commit of this tree


def tree_state(root: Path) -> TreeState | None:
    """None outside a repository or before its first commit."""
    commit = head(root)
    if commit is None:
        return None
    dirty = sorted(dirty_paths(root))
    blobs = {}
    for entry in _git(root, "ls-tree", "-r", "-z", "HEAD").split("\0"):  # "<mode> <type> <id>\t<path>", root-relative
        if entry:
            meta, _, path = entry.partition("\t")
            blobs[path] = meta.split()[2]
    present = [p for p in dirty if (root / p).is_file()]
    for path in dirty:
        blobs.pop(path, None)
    if present:  # what `git add` would store for each: the same ids a commit of this tree gets
        ids = _git(root, "hash-object", "--", *present).split()
        blobs.update(zip(present, ids, strict=True))
    lines = "".join(f"{blobs[p]} {p}\n" for p in sorted(blobs))
    return TreeState(commit, tuple(dirty), hashlib.sha256(lines.encode()).hexdigest())


def dirty_paths(root: Path) -> set[str]:
    """Paths (relative to root) that differ from HEAD in the working tree, untracked files included."""
    if head(root) is None:
        return set()
    changed = _git(root, "diff", "--relative", "--name-only", "-z", "HEAD", "--").split("\0")
    untracked = _git(root, "ls-files", "--others", "--exclude-standard", "-z").split("\0")
    return {p for p in (*changed, *untracked) if p}
