"""Which generator a command runs, and its endpoints: `[generate]` and `[generate.judge]` of taxreg.toml, overridden
by command-line options, the API keys read from the environment variables they name. Every problem (a missing url
or model, an unset key variable, a bad bound) is one message before any work.

With the teacher, the judge is on unless `[generate.judge] enabled = false` or `--no-judge`; its url, model and key
default to the teacher's. A key is only ever held in the configs' `api_key` (never printed, hashed or recorded).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from builder.generators import GENERATORS
from builder.generators.judge import JudgeConfig
from builder.generators.teacher import TeacherConfig, api_key_from_environment
from builder.settings import GenerateSettings, SettingsError


@dataclass(frozen=True, slots=True)
class Generation:
    """What generation runs: the generator, and the teacher and judge when the teacher does."""

    generator: str = "seed"
    teacher: TeacherConfig | None = None
    judge: JudgeConfig | None = None

    def key(self) -> dict[str, Any]:
        """What a build's generate stage is keyed by: endpoints, models, parameters and template hashes (no key)."""
        if self.teacher is None:
            return {"generator": self.generator}
        teacher = self.teacher.params() | {"license": self.teacher.license, "terms": self.teacher.terms}
        return {"generator": self.generator, "teacher": teacher, "judge": self.judge.params() if self.judge else None}


SEED = Generation()


@dataclass(frozen=True, slots=True)
class Overrides:
    """Command-line options over [generate]; None: not given."""

    generator: str | None = None
    teacher: Mapping[str, Any] | None = None  # TeacherConfig fields: url, model, concurrency, timeout...
    judge: Mapping[str, Any] | None = None  # JudgeConfig fields: url, model, threshold...
    no_judge: bool = False
    batch: bool = False  # through Batch API files: no URL is needed


def resolve(settings: GenerateSettings, given: Overrides | None = None,
            environ: Mapping[str, str] = os.environ) -> Generation:
    given = given or Overrides()
    generator = given.generator or settings.generator
    if generator not in GENERATORS:
        raise SettingsError(f"--generator {generator}: no such generator", hint=f"one of: {', '.join(GENERATORS)}")
    if generator == "seed":
        return SEED
    teacher_key = api_key(environ, settings.api_key_env, "[generate] api_key_env") or api_key_from_environment()
    values = _given(settings, TeacherConfig) | _given(given.teacher or {}, TeacherConfig)
    teacher = TeacherConfig(**({"url": "", "model": ""} | values | {"api_key": teacher_key, "batch": given.batch}))
    return Generation(generator, teacher, _judge(settings, given, environ, teacher))


def _judge(settings: GenerateSettings, given: Overrides, environ: Mapping[str, str],
           teacher: TeacherConfig) -> JudgeConfig | None:
    if given.no_judge or not settings.judge.enabled:
        return None
    key = api_key(environ, settings.judge.api_key_env, "[generate.judge] api_key_env") or teacher.api_key
    values = _given(settings.judge, JudgeConfig) | _given(given.judge or {}, JudgeConfig)
    return JudgeConfig(**({"url": teacher.url, "model": teacher.model} | values | {"api_key": key,
                                                                                   "batch": given.batch}))


def _given(source: Any, config: type) -> dict[str, Any]:
    """The values `source` (settings, or a mapping of options) sets among `config`'s fields, None left out."""
    names = {f.name for f in fields(config)} - {"api_key", "batch"}
    items = source.items() if isinstance(source, Mapping) else ((n, getattr(source, n, None)) for n in names)
    return {name: value for name, value in items if name in names and value is not None}


def api_key(environ: Mapping[str, str], variable: str | None, setting: str) -> str | None:
    """The value of the variable a setting (`[generate] api_key_env`...) names; None when none is named. The
    message names the variable only."""
    if variable is None:
        return None
    value = environ.get(variable, "")
    if not value:
        raise SettingsError(f"{setting} = {variable!r}: the environment variable {variable} is not set",
                            hint=f"export {variable}=THE_KEY before running taxreg (the key itself never goes into "
                                 "taxreg.toml)")
    return value
