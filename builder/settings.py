"""Settings: defaults, then `taxreg.toml` in the working directory, then command-line options."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry.config import ValidationConfig, WordLimits
from registry.errors import RegistryError
from registry.licenses import DEFAULT_ALLOWED, LicensePolicy

SETTINGS_FILE = "taxreg.toml"
DEFAULT_TAXONOMY = Path("taxonomy")
DEFAULT_BUILD = Path("build")
DEFAULT_CATALOG = DEFAULT_BUILD / "catalog.duckdb"


@dataclass(frozen=True, slots=True)
class Settings:
    allowed_licenses: tuple[str, ...] = DEFAULT_ALLOWED
    max_file_size: int = 1024 * 1024
    words: WordLimits = field(default_factory=WordLimits)

    def validation(self, documents: Path | None = None, max_file_size: int | None = None,
                   allowed: list[str] | None = None) -> ValidationConfig:
        return ValidationConfig(
            max_file_size=max_file_size or self.max_file_size, words=self.words,
            policy=LicensePolicy(frozenset(allowed or self.allowed_licenses)), documents_dir=documents)


def load(path: Path = Path(SETTINGS_FILE)) -> Settings:
    if not path.is_file():
        return Settings()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{path}: {exc}", hint="fix the TOML syntax") from None
    section: dict[str, Any] = raw.get("validate", {})
    unknown = set(section) - {"allowed_licenses", "max_file_size", "words"}
    if unknown:
        raise RegistryError(f"{path}: unknown settings in [validate]: {', '.join(sorted(unknown))}",
                            hint="known: allowed_licenses, max_file_size, words.{context,qa,leaf}")
    try:
        return Settings(
            allowed_licenses=tuple(section.get("allowed_licenses", DEFAULT_ALLOWED)),
            max_file_size=int(section.get("max_file_size", 1024 * 1024)),
            words=WordLimits(**section.get("words", {})),
        )
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"{path}: invalid [validate] settings: {exc}") from None
