"""Knowledge documents: `document.repo` + `commit` + `patterns`, resolved from a local cache.

The cache is laid out as `<host>/<owner>/<repo>/<commit>/<path>` (as InstructLab's taxonomy keeps
`_documents/`), so a taxonomy with its cache resolves offline. `fetch` fills it with git.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import NamedTuple
from urllib.parse import urlparse

from registry import folders
from registry.errors import GitError
from registry.findings import Finding, finding
from registry.records import ContributionVersion, DocumentRef, SourceDocument, sha256_bytes

MEDIA_TYPES = {".md": "text/markdown", ".pdf": "application/pdf"}


_COMMIT = re.compile(r"^[0-9a-f]{7,64}$")
_WILDCARD = re.compile(r"[*?[]")  # what makes a pattern a glob rather than a path
_SCP = re.compile(r"^[\w.-]+@([\w-][\w.-]*):(.+)$")


def repo_problem(repo: str, commit: str) -> str | None:
    """Why a document reference cannot be resolved or fetched safely; None when it can.

    The repository is handed to git and both values become cache paths: only real URLs and hex
    commits are accepted (a repository starting with `-` would be a git option).
    """
    if not _COMMIT.match(commit):
        return f"commit {commit!r} is not a commit id (7-64 hex digits): branches and tags are not pinned"
    if repo.startswith("-") or not (re.match(r"^(https?|ssh|git|file)://", repo) or _SCP.match(repo)):
        return f"repo {repo!r} is not a git URL (https://, ssh://, git://, file:// or user@host:path)"
    if ".." in repo_location(repo).parts or repo_location(repo).parts[0] in (".", ".."):
        return f"repo {repo!r} does not name a host and a repository"
    return None


def repo_location(repo_url: str) -> PurePosixPath:
    """`https://github.com/o/r.git` -> `github.com/o/r`; also scp-style `git@host:o/r` and `file://` URLs."""
    url = repo_url.strip()
    scp = _SCP.match(url)
    if scp:
        host, path = scp.group(1), scp.group(2)
    else:
        parsed = urlparse(url)
        host, path = (parsed.hostname or "localhost"), parsed.path
    path = path.strip("/").removesuffix(".git")
    parts = [p for p in path.split("/") if p not in ("", ".", "..")]
    return PurePosixPath(host if host not in (".", "..") else "invalid-host", *parts)


def commit_dir(documents_root: Path, ref: DocumentRef) -> Path:
    return documents_root / repo_location(ref.repo) / ref.commit


class ResolvedDocument(NamedTuple):
    pattern: str
    document: SourceDocument
    text: str | None  # markdown text; None for PDFs


@dataclass(slots=True)
class Resolution:
    documents: list[ResolvedDocument] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def drop_texts(self) -> None:
        self.documents = [ResolvedDocument(d.pattern, d.document, None) for d in self.documents]


class DocumentResolver:
    """Resolves references against one cache; each file is read and hashed once per resolver, and each
    (repo, commit) is checked and located once (a commit holds many documents)."""

    def __init__(self, documents_root: Path) -> None:
        self.root = documents_root
        self._files: dict[Path, tuple[SourceDocument, str | None] | str] = {}
        self._normalized: dict[str, str] = {}
        self._globs: dict[tuple[Path, str], list[Path]] = {}
        self._real: dict[Path, str] = {}
        self._commits: dict[tuple[str, str], tuple[str | None, Path, bool]] = {}  # (problem, folder, present)

    def resolve(self, version: ContributionVersion) -> Resolution:
        result = Resolution()
        ref = version.document
        if ref is None:
            return result
        path = version.source_path
        problem, base, present = self._commit(ref)
        if problem:
            result.findings.append(finding("TR506", path, problem, ref.line, 1, ".document"))
            return result
        if not present:
            result.findings.append(finding(
                "TR501", path, f"the document cache has no copy of {ref.repo} at commit {ref.commit}: expected "
                f"{base}; run `taxreg documents fetch` with network access, or copy the files there",
                ref.line, 1, ".document"))
            return result
        for k, (pattern, line) in enumerate(zip(ref.patterns, ref.pattern_lines, strict=True)):
            where = f".document.patterns[{k}]"
            if pattern.startswith("/") or ".." in pattern.split("/"):  # absolute, or a '..' part
                result.findings.append(finding("TR502", path, f"pattern {pattern!r} leaves the repository "
                                               "(no '..' or leading '/')", line, 1, where))
                continue
            matches = self._match(base, pattern)
            if not matches:
                result.findings.append(finding("TR503", path, f"pattern {pattern!r} matches no .md or .pdf file "
                                               f"in {base}; `taxreg documents fetch` fetches the pinned commit",
                                               line, 1, where))
            for file in matches:
                loaded = self._load(file, base, ref)
                if isinstance(loaded, str):
                    result.findings.append(finding("TR505", path, loaded, line, 1, where))
                else:
                    result.documents.append(ResolvedDocument(pattern, loaded[0], loaded[1]))
        return result

    def context_findings(self, version: ContributionVersion, resolution: Resolution,
                         normalized: Mapping[int, str] | None = None) -> list[Finding]:
        """Seed contexts that cannot be found (whitespace-insensitively) in any referenced markdown.

        normalized: the contexts already whitespace-normalised, by the line they start at (the loader
        normalises each one for duplicate checks: doing it again was a third of this check).
        """
        texts = [self._normal(d.document.doc_sha256, d.text) for d in resolution.documents if d.text is not None]
        if not texts:
            return []
        normalized = normalized or {}
        out, checked = [], set()
        for seed in version.seeds:
            if not seed.context or seed.context_line in checked:
                continue
            checked.add(seed.context_line)
            needle = normalized.get(seed.context_line)
            if needle is None:
                needle = normalize_space(seed.context)
            if not any(needle in text for text in texts):
                out.append(finding("TR504", version.source_path, "this context is not found in the referenced "
                                   "document(s); samples generated from it cannot be traced to the source",
                                   seed.context_line))
        return out

    def _commit(self, ref: DocumentRef) -> tuple[str | None, Path, bool]:
        """(why the reference cannot be resolved or None, its folder in the cache, whether that exists)."""
        key = (ref.repo, ref.commit)
        found = self._commits.get(key)
        if found is None:
            problem = repo_problem(ref.repo, ref.commit)
            base = self.root if problem else commit_dir(self.root, ref)
            found = self._commits[key] = (problem, base, problem is None and base.is_dir())
        return found

    def _match(self, base: Path, pattern: str) -> list[Path]:
        key = (base, pattern)
        if key not in self._globs:
            literal = self._literal(base, pattern) if pattern and not _WILDCARD.search(pattern) else None
            if literal is not None:
                self._globs[key] = literal
                return literal
            if base not in self._real:
                self._real[base] = os.path.realpath(base) + os.sep
            inside = self._real[base]
            self._globs[key] = [
                file for file in sorted(base.glob(pattern))
                if file.suffix.lower() in MEDIA_TYPES and file.is_file() and os.path.realpath(file).startswith(inside)]
        return self._globs[key]

    @staticmethod
    def _literal(base: Path, pattern: str) -> list[Path] | None:
        """What glob finds for a pattern without wildcards (one file or none), from one lstat per part
        instead of glob and realpath (~10 lstat calls). None when a part is a link: glob decides."""
        parts = [part for part in pattern.split("/") if part not in ("", ".")]
        if not parts:
            return None
        file = base.joinpath(*parts)
        if file.suffix.lower() not in MEDIA_TYPES:
            return []
        current = str(base)
        mode = 0
        for part in parts:
            current = f"{current}/{part}"
            try:
                mode = os.lstat(current).st_mode
            except (OSError, ValueError):  # ValueError: a NUL byte, which glob takes for "no such file"
                return []
            if stat.S_ISLNK(mode):
                return None  # it may lead outside the repository: the general path checks where
        return [file] if stat.S_ISREG(mode) else []

    def _load(self, file: Path, base: Path, ref: DocumentRef) -> tuple[SourceDocument, str | None] | str:
        cached = self._files.get(file)
        if cached is None:
            cached = self._files[file] = self._read(file, base, ref)
        return cached

    def _read(self, file: Path, base: Path, ref: DocumentRef) -> tuple[SourceDocument, str | None] | str:
        try:
            data = file.read_bytes()
        except OSError as exc:
            return f"cannot read {file}: {exc.strerror}"
        media_type = MEDIA_TYPES[file.suffix.lower()]
        text = None
        if media_type == "text/markdown":
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                return f"{file.name} is not UTF-8 text"
        relpath = file.relative_to(base).as_posix()
        doc = SourceDocument(sha256_bytes(data), ref.repo, ref.commit, relpath, media_type, len(data),
                             _title(text) if text else None)
        return doc, text

    def _normal(self, key: str, text: str) -> str:
        if key not in self._normalized:
            self._normalized[key] = normalize_space(text)
        return self._normalized[key]


def normalize_space(text: str) -> str:
    return " ".join(text.split())


# The first line starting with "# ", lines split where str.splitlines() splits them; one search over
# the text instead of a list of every line of every document.
_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
_TITLE = re.compile(f"(?:^|(?<=[{_BREAKS}]))# ([^{_BREAKS}]*)")


def _title(text: str) -> str | None:
    match = _TITLE.search(text)
    return match.group(1).strip() if match else None


def fetch(documents_root: Path, refs: Iterable[DocumentRef], git: str = "git") -> list[Path]:
    """Clone each (repo, commit) not yet in the cache; return the folders written. Needs network access."""
    written = []
    for repo, commit in sorted({(r.repo, r.commit) for r in refs}):
        if repo_problem(repo, commit):
            continue  # validation reports it (TR506); never hand it to git
        ref = DocumentRef(repo, commit, (), (), 0)
        target = commit_dir(documents_root, ref)
        if target.is_dir():
            continue
        with folders.building(target) as work:  # the cache never holds half a checkout
            _clone_at(git, repo, commit, work)
            shutil.rmtree(work / ".git")
            folders.swap_into_place((work, target))
        written.append(target)
    return written


def _clone_at(git: str, repo: str, commit: str, work: Path) -> None:
    work.mkdir(exist_ok=True)
    steps = [[git, "init", "-q"], [git, "fetch", "-q", "--depth", "1", repo, commit],
             [git, "-c", "advice.detachedHead=false", "checkout", "-q", "FETCH_HEAD"], [git, "rev-parse", "HEAD"]]
    try:
        for step in steps:
            done = subprocess.run(step, cwd=work, check=True, capture_output=True, text=True, timeout=600)
        if not done.stdout.strip().startswith(commit):
            raise GitError(f"{repo} gave commit {done.stdout.strip()} for {commit}",
                           hint="the cache keeps only pinned commits: use the full commit hash")
    except FileNotFoundError:
        raise GitError("git is not installed", hint="apt-get install git") from None
    except subprocess.CalledProcessError as exc:
        raise GitError(f"cannot fetch {repo} at {commit}: {exc.stderr.strip() or exc}",
                       hint="check the network, the repository URL and that the commit exists") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"fetching {repo} timed out") from None
