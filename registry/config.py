"""What validation is configured with. Part of the verdict cache key: change it and files are re-checked."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from registry.licenses import LicensePolicy
from registry.records import canonical_json

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class WordLimits:
    context: int = 500
    qa: int = 250
    leaf: int = 2300


@dataclass(frozen=True, slots=True)
class ValidationConfig:
    max_file_size: int = MIB
    max_yaml_nodes: int = 200_000
    words: WordLimits = field(default_factory=WordLimits)
    policy: LicensePolicy = field(default_factory=LicensePolicy)
    documents_dir: Path | None = None  # None: <taxonomy>/_documents

    def __post_init__(self) -> None:
        if self.max_file_size <= 0:
            raise ValueError("max_file_size must be positive")

    def documents(self, taxonomy_root: Path) -> Path:
        return documents_root(taxonomy_root, self.documents_dir)

    def file_rules_key(self) -> str:
        """Hash of everything a leaf's verdict depends on besides its files: limits, policy, rule versions."""
        key = {"max_file_size": self.max_file_size, "max_yaml_nodes": self.max_yaml_nodes,
               "words": asdict(self.words), "allowed": sorted(self.policy.allowed), "versions": _versions()}
        return hashlib.sha256(canonical_json(key).encode()).hexdigest()


def documents_root(taxonomy_root: Path, documents_dir: Path | None = None) -> Path:
    """The document cache: `--documents DIR` when given, else `_documents/` inside the taxonomy."""
    return documents_dir if documents_dir is not None else taxonomy_root / "_documents"


@functools.cache
def _versions() -> dict[str, str]:
    """The code that decides verdicts: a new release of any of it re-checks every leaf."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("taxonomy-registry", "instructlab-schema", "license-expression", "jsonschema-rs", "pyyaml"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "none"
    return found
