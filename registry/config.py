"""What validation is configured with. Part of the verdict cache key: change it and files are re-checked."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from registry.licenses import LicensePolicy
from registry.records import canonical_json

MIB = 1024 * 1024
# The modules of this package whose code decides a leaf's verdict (its findings, version id and question keys) or
# the findings of a whole validation: registry.validation and everything of the package it imports. Their source
# is part of the rules key, so a new or changed rule re-checks every cached leaf, and `taxreg index` of an
# unchanged tree runs again. tests/test_rule_cache.py fails when a module that emits findings, or one that
# registry.validation imports, is missing here.
RULE_MODULES = ("attribution", "config", "discovery", "documents", "errors", "findings", "fingerprint", "folders",
                "gitrepo", "leaf", "licenses", "records", "schema", "validation", "yamlfile")


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
        """Hash of everything a leaf's verdict depends on besides its files: limits, policy, the versions of the
        checking packages and the source of the rules (RULE_MODULES)."""
        key = {"max_file_size": self.max_file_size, "max_yaml_nodes": self.max_yaml_nodes,
               "words": asdict(self.words), "allowed": sorted(self.policy.allowed), "versions": _versions(),
               "rules": rules_source_digest()}
        return hashlib.sha256(canonical_json(key).encode()).hexdigest()


def documents_root(taxonomy_root: Path, documents_dir: Path | None = None) -> Path:
    """The document cache: `--documents DIR` when given, else `_documents/` inside the taxonomy."""
    return documents_dir if documents_dir is not None else taxonomy_root / "_documents"


@functools.cache
def rules_source_digest() -> str:
    """sha256 over the source of RULE_MODULES, read once per process. The package version alone misses an edited
    rule (a development tree keeps its version). A module whose source cannot be read (a bytecode-only install)
    counts by name only: the package version then stands for its code."""
    digest = hashlib.sha256()
    folder = Path(__file__).parent
    for name in RULE_MODULES:
        try:
            source = (folder / f"{name}.py").read_bytes()
        except OSError:
            source = b""
        digest.update(f"{name}\0{len(source)}\0".encode())
        digest.update(source)
    return digest.hexdigest()


@functools.cache
def _versions() -> dict[str, str]:
    """The packages that decide verdicts: a new release of any of them re-checks every leaf."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    # jsonschema words the messages of files that fail the schema (TR209)
    for package in ("taxonomy-registry", "instructlab-schema", "license-expression", "jsonschema-rs", "jsonschema",
                    "pyyaml"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "none"
    return found
