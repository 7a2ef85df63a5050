"""manifest.json: what went into a release and every byte that came out, as canonical JSON.

The manifest holds no wall-clock time, random id or absolute path: two cuts from the same inputs write the
same bytes. Every file of a release is expected to reproduce too (the audit copy included: its catalog
snapshot is rewritten by registry.catalog.reproducible.Steady); a file that cannot is listed with
`reproducible: false`, and `reproducible_view` drops its hash for comparing two builds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from registry.errors import RegistryError
from registry.release.canonical import canonical_bytes

SCHEMA_VERSION = 1
KIND = "taxonomy-registry/release-manifest"
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
SIGNATURE = "release.sig"
PUBLIC_KEY = "release.pub.pem"
UNLISTED = (SUMS, SIGNATURE)  # SHA256SUMS cannot list itself; the signature is made after it and covers it


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str  # relative to the release folder, '/'-separated
    sha256: str
    size: int
    reproducible: bool = True


@dataclass(frozen=True, slots=True)
class ContributionEntry:
    contribution_id: str
    version_id: str
    kind: str
    samples: int
    samples_sha256: str  # sha256 of the sorted sample ids, one per line: equal means the same samples
    licenses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PolicyResult:
    rule: str
    subject: str
    severity: str  # error | warning | info
    passed: bool
    overridden: bool
    details: dict[str, Any]

    @property
    def blocks(self) -> bool:
        return self.severity == "error" and not self.passed and not self.overridden


@dataclass(frozen=True, slots=True)
class Manifest:
    version: str
    released_at: str  # ISO 8601, UTC, from SOURCE_DATE_EPOCH
    builder_version: str
    license: str
    inputs: dict[str, Any]  # taxonomy commit, config, seeds, base and teacher models, datasets
    model: dict[str, Any] | None  # None: a data-only release (--no-model)
    contributions: tuple[ContributionEntry, ...]
    samples: dict[str, int]
    license_mix: tuple[dict[str, Any], ...]
    metrics: dict[str, Any]
    policy: tuple[PolicyResult, ...]
    allowed: tuple[str, ...]  # gates overridden with --allow
    files: tuple[FileEntry, ...]
    determinism: dict[str, Any]
    signature: dict[str, Any] | None = None
    schema_version: int = SCHEMA_VERSION
    kind: str = field(default=KIND)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_bytes(self) -> bytes:
        return canonical_bytes(self.to_dict())

    def file(self, path: str) -> FileEntry | None:
        return next((f for f in self.files if f.path == path), None)

    def with_files(self, files: list[FileEntry]) -> Manifest:
        return replace(self, files=tuple(sorted(files, key=lambda f: f.path.encode())))


def listed(folder: Path, leave_out: frozenset[str] = frozenset()) -> list[str]:
    """Every file of a release folder the manifest lists (all but the manifest, SHA256SUMS and the signature, and
    `leave_out`): sorted, '/'-separated."""
    skip = {MANIFEST, SUMS, SIGNATURE, *leave_out}
    return sorted((p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()
                   and p.relative_to(folder).as_posix() not in skip), key=str.encode)


def reproducible_view(manifest: Manifest) -> dict[str, Any]:
    """The manifest without the hashes of files that are not byte-reproducible: equal for equal inputs."""
    view = manifest.to_dict()
    view["files"] = [f if f["reproducible"] else {**f, "sha256": None, "size": None} for f in view["files"]]
    return view


def from_dict(data: Any, where: str = MANIFEST) -> Manifest:
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise RegistryError(f"{where} is not a taxonomy-registry release manifest")
    version = data.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise RegistryError(f"{where} has manifest schema {version!r}; this taxreg reads up to {SCHEMA_VERSION}",
                            hint="upgrade taxonomy-registry")
    try:
        return Manifest(
            **{k: data[k] for k in ("version", "released_at", "builder_version", "license", "inputs", "model",
                                    "samples", "metrics", "determinism", "signature", "schema_version", "kind")},
            contributions=tuple(ContributionEntry(**{**c, "licenses": tuple(c["licenses"])})
                                for c in data["contributions"]),
            license_mix=tuple(data["license_mix"]),
            policy=tuple(PolicyResult(**p) for p in data["policy"]),
            allowed=tuple(data["allowed"]),
            files=tuple(FileEntry(**f) for f in data["files"]))
    except (KeyError, TypeError) as exc:
        raise RegistryError(f"{where} is missing or has a malformed field: {exc}") from None


def read_manifest(folder: Path) -> tuple[Manifest, bytes]:
    """The manifest of a release folder and the bytes it was read from."""
    path = folder / MANIFEST
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RegistryError(f"cannot read {path}: {exc.strerror}", hint="is this a release folder?") from None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise RegistryError(f"{path} is not valid JSON: {exc}") from None
    return from_dict(data, str(path)), raw
