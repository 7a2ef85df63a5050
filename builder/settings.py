"""Settings: defaults, then `taxreg.toml` in the working directory, then command-line options.

Every [section] is read through `Table`, which refuses what it does not know: a key that is not a setting, a value
of the wrong type, a folder that is not there. Each refusal is one message naming the file, the key and the fix,
and every problem is found before any work starts.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from builder import layout
from builder.evaluation.config import KEYS as EVAL_KEYS
from builder.evaluation.config import EvalSettings, JudgeSettings, Thresholds
from registry.config import ValidationConfig, WordLimits
from registry.errors import RegistryError
from registry.licenses import DEFAULT_ALLOWED, LicensePolicy, normalize

SETTINGS_FILE = "taxreg.toml"
DEFAULT_TAXONOMY = Path("taxonomy")
DEFAULT_BUILD = layout.DEFAULT.root
DEFAULT_CATALOG = layout.DEFAULT.catalog
T = TypeVar("T")


class SettingsError(RegistryError):
    """taxreg.toml holds something taxreg cannot use (exit code 2)."""


@dataclass(frozen=True, slots=True)
class Settings:
    allowed_licenses: tuple[str, ...] = DEFAULT_ALLOWED
    max_file_size: int = 1024 * 1024
    words: WordLimits = field(default_factory=WordLimits)
    release_license: str | None = None  # [release] license: what the license gates check against
    evaluation: EvalSettings = field(default_factory=EvalSettings)  # [eval]

    def validation(self, documents: Path | None = None, max_file_size: int | None = None,
                   allowed: list[str] | None = None) -> ValidationConfig:
        if max_file_size is not None and max_file_size <= 0:
            raise RegistryError(f"--max-file-size {max_file_size}: must be a positive number of bytes")
        licenses = spdx_ids(allowed, "--allow-license") if allowed else self.allowed_licenses
        return ValidationConfig(
            max_file_size=max_file_size or self.max_file_size, words=self.words,
            policy=LicensePolicy(frozenset(licenses)), documents_dir=documents)


@dataclass(frozen=True, slots=True)
class Table:
    """One [section] of taxreg.toml, with the keys it may hold (key -> what it is, for messages)."""

    path: Path
    name: str
    values: dict[str, Any]
    known: dict[str, str]

    @classmethod
    def of(cls, raw: dict[str, Any], path: Path, name: str, known: dict[str, str]) -> Table:
        """[name] (dotted for a sub-table: "generate.judge"), empty when absent; unknown keys are refused."""
        values: Any = raw
        for part in name.split("."):
            values = values.get(part, {}) if isinstance(values, dict) else None
        if not isinstance(values, dict):
            raise SettingsError(f"{path}: [{name}] must be a table", hint=f"write [{name}] on a line of its own")
        unknown = sorted(set(values) - set(known))  # a sub-table ([generate.judge]) is a known key of its parent
        if unknown:
            raise SettingsError(f"{path}: unknown setting{'s' if len(unknown) > 1 else ''} in [{name}]: "
                                f"{', '.join(unknown)}", hint="known: " + "; ".join(f"{k} ({v})" for k, v in
                                                                                   known.items()))
        return cls(path, name, values, known)

    def get(self, key: str, kind: type[T] | tuple[type, ...], default: T, check: Callable[[Any], bool] = bool,
            ) -> T:
        """The value of `key` (the default when absent), refused unless it is a `kind` that passes `check`."""
        if key not in self.values:
            return default
        value = self.values[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int in Python; a setting that wants a number never means true
        wrong_type = not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)
        if wrong_type or not check(value):
            raise SettingsError(f"{self.path}: [{self.name}] {key} = {value!r} is not {self.known[key]}",
                                hint=f"set {key} to {self.known[key]} in [{self.name}], or remove it for the default")
        return value  # type: ignore[no-any-return]

    def folder(self, key: str) -> Path | None:
        """A folder that must exist, relative to taxreg.toml's own folder when not absolute."""
        value = self.get(key, str, "")
        if not value:
            return None
        folder = (self.path.parent / Path(value).expanduser()) if not Path(value).expanduser().is_absolute() \
            else Path(value).expanduser()
        if not folder.is_dir():
            raise SettingsError(f"{self.path}: [{self.name}] {key} = {value!r}: no folder at {folder}",
                                hint=f"set {key} to an existing folder (relative paths are read from "
                                     f"{self.path.parent or '.'})")
        return folder


def load(path: Path = Path(SETTINGS_FILE)) -> Settings:
    if not path.is_file():
        return Settings()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: {exc}", hint="fix the TOML syntax") from None
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise SettingsError(f"{path}: unknown section{'s' if len(unknown) > 1 else ''} "
                            f"{', '.join(f'[{u}]' for u in unknown)}", hint=f"known: {', '.join(SECTIONS)}")
    validate = Table.of(raw, path, "validate", {
        "allowed_licenses": "a list of SPDX ids, e.g. [\"MIT\", \"CC-BY-4.0\"]",
        "max_file_size": "a positive whole number of bytes",
        "words": "a table of positive whole numbers: context, qa, leaf"})
    licenses = validate.get("allowed_licenses", list, list(DEFAULT_ALLOWED),
                            lambda v: all(isinstance(x, str) for x in v))
    words = validate.get("words", dict, {}, lambda v: not set(v) - {"context", "qa", "leaf"} and all(
        _positive(x) for x in v.values()))
    size = validate.get("max_file_size", int, 1024 * 1024, _positive)
    return Settings(spdx_ids(licenses, str(path)), size, WordLimits(**words), _release_license(raw, path),
                    _evaluation(raw, path))


SECTIONS = ("validate", "release", "eval")


def _evaluation(raw: dict[str, Any], path: Path) -> EvalSettings:
    """[eval]: the regression thresholds of the eval.no_regression gate, the bootstrap, the judge."""
    table = Table.of(raw, path, "eval", EVAL_KEYS)
    defaults, limits = EvalSettings(), Thresholds()
    thresholds = Thresholds(**{key: _number(table, key, getattr(limits, key), (lambda v: v >= 0) if key ==
                                            "max_nll_increase" else (lambda v: 0 <= v <= 1))
                               for key in limits.as_dict()})
    judge = JudgeSettings(table.get("judge_url", str, ""), table.get("judge_model", str, ""))
    if bool(judge.url) != bool(judge.model):
        raise SettingsError(f"{path}: [eval] judge_url and judge_model go together",
                            hint="set both (an OpenAI-compatible endpoint and its model), or neither")
    return EvalSettings(
        thresholds, seed=table.get("seed", int, defaults.seed, lambda v: True),
        bootstrap=table.get("bootstrap", int, defaults.bootstrap, lambda v: v >= 100),
        confidence=_number(table, "confidence", defaults.confidence, lambda v: 0.5 <= v < 1),
        max_new_tokens=table.get("max_new_tokens", int, defaults.max_new_tokens, lambda v: 1 <= v <= 1024),
        judge=judge)


def _release_license(raw: dict[str, Any], path: Path) -> str | None:
    """[release] license = "SPDX expression": the license a release is declared under."""
    release = Table.of(raw, path, "release", {"license": "an SPDX license expression, e.g. \"CC-BY-4.0\""})
    value = release.get("license", str, "")
    if not value:
        return None
    spdx = normalize(value)
    if spdx is None:
        raise SettingsError(f"{path}: [release] license {value!r} is not an SPDX license expression",
                            hint="e.g. license = \"CC-BY-4.0\" or \"CC-BY-SA-4.0 AND Apache-2.0\"")
    return spdx


def _number(table: Table, key: str, default: float, check: Callable[[Any], bool]) -> float:
    return float(table.get(key, (int, float), default, check))


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
