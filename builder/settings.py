"""Settings: defaults, then `taxreg.toml` in the working directory, then command-line options."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder import layout
from registry.config import ValidationConfig, WordLimits
from registry.errors import RegistryError
from registry.licenses import DEFAULT_ALLOWED, LicensePolicy, normalize

SETTINGS_FILE = "taxreg.toml"
DEFAULT_TAXONOMY = Path("taxonomy")
DEFAULT_BUILD = layout.DEFAULT.root
DEFAULT_CATALOG = layout.DEFAULT.catalog


@dataclass(frozen=True, slots=True)
class Settings:
    allowed_licenses: tuple[str, ...] = DEFAULT_ALLOWED
    max_file_size: int = 1024 * 1024
    words: WordLimits = field(default_factory=WordLimits)
    release_license: str | None = None  # [release] license: what the license gates check against

    def validation(self, documents: Path | None = None, max_file_size: int | None = None,
                   allowed: list[str] | None = None) -> ValidationConfig:
        if max_file_size is not None and max_file_size <= 0:
            raise RegistryError(f"--max-file-size {max_file_size}: must be a positive number of bytes")
        licenses = spdx_ids(allowed, "--allow-license") if allowed else self.allowed_licenses
        return ValidationConfig(
            max_file_size=max_file_size or self.max_file_size, words=self.words,
            policy=LicensePolicy(frozenset(licenses)), documents_dir=documents)


def load(path: Path = Path(SETTINGS_FILE)) -> Settings:
    if not path.is_file():
        return Settings()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{path}: {exc}", hint="fix the TOML syntax") from None
    section = raw.get("validate", {})
    if not isinstance(section, dict):
        raise RegistryError(f"{path}: [validate] must be a table", hint="write [validate] on a line of its own")
    unknown = set(section) - {"allowed_licenses", "max_file_size", "words"}
    if unknown:
        raise RegistryError(f"{path}: unknown settings in [validate]: {', '.join(sorted(unknown))}",
                            hint="known: allowed_licenses, max_file_size, words.{context,qa,leaf}")
    licenses = section.get("allowed_licenses", list(DEFAULT_ALLOWED))
    if not isinstance(licenses, list) or not all(isinstance(x, str) for x in licenses):
        raise RegistryError(f"{path}: allowed_licenses must be a list of SPDX ids, e.g. [\"MIT\", \"CC-BY-4.0\"]")
    words = section.get("words", {})
    if not isinstance(words, dict) or set(words) - {"context", "qa", "leaf"} or not all(
            _positive(v) for v in words.values()):
        raise RegistryError(f"{path}: words must be a table of positive whole numbers: context, qa, leaf")
    size = section.get("max_file_size", 1024 * 1024)
    if not _positive(size):
        raise RegistryError(f"{path}: max_file_size must be a positive whole number of bytes")
    return Settings(spdx_ids(licenses, str(path)), size, WordLimits(**words), _release_license(raw, path))


def _release_license(raw: dict[str, Any], path: Path) -> str | None:
    """[release] license = "SPDX expression": the license a release is declared under."""
    section = raw.get("release", {})
    if not isinstance(section, dict):
        raise RegistryError(f"{path}: [release] must be a table", hint="write [release] on a line of its own")
    unknown = set(section) - {"license"}
    if unknown:
        raise RegistryError(f"{path}: unknown settings in [release]: {', '.join(sorted(unknown))}",
                            hint="known: license")
    if "license" not in section:
        return None
    value = section["license"]
    spdx = normalize(value) if isinstance(value, str) else None
    if spdx is None:
        raise RegistryError(f"{path}: [release] license {value!r} is not an SPDX license expression",
                            hint="e.g. license = \"CC-BY-4.0\" or \"CC-BY-SA-4.0 AND Apache-2.0\"")
    return spdx


def _positive(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def spdx_ids(values: list[str], where: str) -> tuple[str, ...]:
    """Allowed licenses as SPDX ids; an unknown id is a usage error, not a silent never-match."""
    out = []
    for value in values:
        spdx = normalize(value)
        if spdx is None:
            raise RegistryError(f"{where}: {value!r} is not an SPDX license id",
                                hint="see https://spdx.org/licenses/ (e.g. CC-BY-4.0, Apache-2.0)")
        out.append(spdx)
    return tuple(out)
