"""Settings: defaults, then `taxreg.toml` in the working directory, then command-line options.

Every [section] is read through `Table`, which refuses what it does not know: a key that is not a setting, a value
of the wrong type, a folder that is not there. Each refusal is one message naming the file, the key and the fix,
and every problem is found before any work starts.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from builder import layout
from builder.evaluation_settings import KEYS as EVAL_KEYS
from builder.evaluation_settings import EvalJudge, EvalSettings, Thresholds
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


# Under the int8 top-1 target, at most this share of the matmul weights may stay fp32 (0: all-int8, no search).
INT8_FP32_SHARE = 0.1
VARIANTS = ("fp32", "int8", "int4")  # what [export] variants may name; fp32 is the parity gate, always built
DEFAULT_VARIANTS = ("fp32", "int8")
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True, slots=True)
class TrainSettings:
    """[train] (and `taxreg build`'s training options): None leaves a setting to the train stage's default."""

    rank: int | None = None
    alpha: int | None = None
    targets: tuple[str, ...] | None = None
    steps: int | None = None
    epochs: float | None = None
    lr: float | None = None
    batch_size: int | None = None
    max_length: int | None = None

    def __post_init__(self) -> None:
        wrong = [what for what, bad in (("epochs must be > 0", self.epochs is not None and not self.epochs > 0),
                                        ("lr must be in (0, 1)", self.lr is not None and not 0 < self.lr < 1)) if bad]
        if wrong:
            raise SettingsError(f"training settings: {'; '.join(wrong)}",
                                hint="fix --train-epochs / --lr (or [train] in taxreg.toml)")
        if self.steps is not None and self.epochs is not None:
            raise SettingsError(f"training takes steps or epochs, not both (steps {self.steps}, epochs "
                                f"{self.epochs:g})", hint="keep one of [train] steps / epochs (--train-steps / "
                                                          "--train-epochs)")

    def over(self, below: TrainSettings) -> TrainSettings:
        """These settings where given, `below`'s elsewhere (command-line options over taxreg.toml); steps and
        epochs are one choice: either given here replaces both below."""
        mine, theirs = self.given(), below.given()
        if {"steps", "epochs"} & set(mine):
            theirs.pop("steps", None)
            theirs.pop("epochs", None)
        return TrainSettings(**{**theirs, **mine})

    def given(self) -> dict[str, Any]:
        """The settings that were given (not left to the default)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass(frozen=True, slots=True)
class ModelSettings:
    """[model], [train] and [export]: the base model a build fine-tunes, how, and what it exports."""

    base: Path | None = None  # None: the embedded demo model
    train: TrainSettings = field(default_factory=TrainSettings)
    variants: tuple[str, ...] = DEFAULT_VARIANTS
    device: str = "cpu"  # where the export's parity gate runs the ONNX graphs
    int8_fp32_share: float = INT8_FP32_SHARE

    def over(self, base: Path | None, train: TrainSettings, variants: list[str] | None) -> ModelSettings:
        """`taxreg build`'s options over these (taxreg.toml's): each one given replaces its setting."""
        return ModelSettings(base if base is not None else self.base, train.over(self.train),
                             export_variants(variants) if variants else self.variants, self.device,
                             self.int8_fp32_share)


@dataclass(frozen=True, slots=True)
class Disclosure:
    """[provider] and [release] require_complete_disclosure: what a release's EU training-content summary cannot
    learn from the catalog. Left out, a field is marked "to be completed by the provider" and the
    disclosure.complete gate warns (fails when `required`)."""

    provider_name: str | None = None
    provider_contact: str | None = None
    representative: str | None = None  # the authorised representative in the Union, with contact details
    code_of_practice: bool | None = None  # a signatory of the GPAI Code of Practice (the summary's 3.1)
    required: bool = False


@dataclass(frozen=True, slots=True)
class LineageTarget:
    """[lineage]: where `taxreg build` sends its OpenLineage run events (a JSONL file in the build folder without a
    url)."""

    url: str | None = None
    namespace: str = "taxreg"
    timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class JudgeSettings:
    """[generate.judge]: what scores the teacher's samples. Unset values default to the teacher's (url, model, API
    key) or to the judge's own defaults (builder.generators.judge.JudgeConfig)."""

    enabled: bool = True
    url: str | None = None
    model: str | None = None
    api_key_env: str | None = None  # the NAME of the environment variable that holds the key
    rubric: str | None = None  # a version of the rubric templates, e.g. "v1"
    threshold: int | None = None
    concurrency: int | None = None


@dataclass(frozen=True, slots=True)
class GenerateSettings:
    """[generate]: which generator `taxreg build` and `taxreg generate` run, and the teacher's endpoint. Unset values
    take the teacher's defaults (builder.generators.teacher.TeacherConfig)."""

    generator: str = "seed"
    url: str | None = None
    model: str | None = None
    api_key_env: str | None = None  # the NAME of the environment variable that holds the key, never the key
    concurrency: int | None = None
    skill_requests: int | None = None
    pairs: int | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    timeout: float | None = None
    max_failed: float | None = None
    license: str | None = None
    terms: str | None = None
    judge: JudgeSettings = field(default_factory=JudgeSettings)


@dataclass(frozen=True, slots=True)
class Settings:
    allowed_licenses: tuple[str, ...] = DEFAULT_ALLOWED
    max_file_size: int = 1024 * 1024
    words: WordLimits = field(default_factory=WordLimits)
    release_license: str | None = None  # [release] license: what the license gates check against
    disclosure: Disclosure = field(default_factory=Disclosure)
    lineage: LineageTarget = field(default_factory=LineageTarget)
    model: ModelSettings = field(default_factory=ModelSettings)
    generate: GenerateSettings = field(default_factory=GenerateSettings)
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
    release = Table.of(raw, path, "release", {
        "license": _SPDX,
        "require_complete_disclosure": "true or false (a release whose disclosures lack provider facts fails)"})
    return Settings(spdx_ids(licenses, str(path)), size, WordLimits(**words), _release_license(release, path),
                    _disclosure(raw, path, release.get("require_complete_disclosure", bool, False, lambda v: True)),
                    _lineage(raw, path), _model_settings(raw, path), _generate(raw, path),
                    _evaluation(raw, path))


SECTIONS = ("validate", "release", "provider", "lineage", "model", "train", "export", "generate", "eval")
_URL = "an http(s) URL of an OpenAI-compatible API, e.g. \"http://127.0.0.1:8000/v1\""
_KEY_ENV = "the NAME of the environment variable that holds the API key, e.g. \"OPENAI_API_KEY\""
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _evaluation(raw: dict[str, Any], path: Path) -> EvalSettings:
    """[eval]: the regression thresholds of the eval.no_regression gate, the bootstrap, the judge."""
    table = Table.of(raw, path, "eval", EVAL_KEYS)
    defaults, limits = EvalSettings(), Thresholds()
    thresholds = Thresholds(**{key: _number(table, key, getattr(limits, key), (lambda v: v >= 0) if key ==
                                            "max_nll_increase" else (lambda v: 0 <= v <= 1))
                               for key in limits.as_dict()})
    judge = EvalJudge(table.get("judge_url", str, ""), table.get("judge_model", str, ""),
                      _key_env(table, "judge_api_key_env"))
    if bool(judge.url) != bool(judge.model):
        raise SettingsError(f"{path}: [eval] judge_url and judge_model go together",
                            hint="set both (an OpenAI-compatible endpoint and its model), or neither")
    return EvalSettings(
        thresholds, seed=table.get("seed", int, defaults.seed, lambda v: True),
        bootstrap=table.get("bootstrap", int, defaults.bootstrap, lambda v: v >= 100),
        confidence=_number(table, "confidence", defaults.confidence, lambda v: 0.5 <= v < 1),
        max_new_tokens=table.get("max_new_tokens", int, defaults.max_new_tokens, lambda v: 1 <= v <= 1024),
        judge=judge)


def _model_settings(raw: dict[str, Any], path: Path) -> ModelSettings:
    model = Table.of(raw, path, "model", {"base": "a local Hugging Face causal-LM folder, e.g. \"models/SmolLM2\""})
    export = Table.of(raw, path, "export", {
        "variants": f"a list of {', '.join(VARIANTS)} that holds fp32, e.g. [\"fp32\", \"int8\"]",
        "device": "\"cpu\" or \"cuda\" (where the parity gate runs the ONNX graphs)",
        "int8_fp32_share": "a share between 0 and 1: how much of the matmul weights may stay fp32 when all-int8 "
                           "misses the top-1 target (0: ship all-int8, no search)"})
    variants = export.get("variants", list, list(DEFAULT_VARIANTS), lambda v: _variants(v) is not None)
    return ModelSettings(model.folder("base"), _train_settings(raw, path), tuple(_variants(variants) or ()),
                         export.get("device", str, "cpu", lambda v: v in DEVICES),
                         _number(export, "int8_fp32_share", INT8_FP32_SHARE, lambda v: 0 <= v <= 1))


def _train_settings(raw: dict[str, Any], path: Path) -> TrainSettings:
    train = Table.of(raw, path, "train", {
        "rank": "a whole number >= 1 (LoRA rank)", "alpha": "a whole number >= 1 (LoRA alpha)",
        "targets": "\"all-linear\" or a list of module names, e.g. [\"q_proj\", \"v_proj\"]",
        "steps": "a whole number >= 1 of optimizer steps (or set epochs)",
        "epochs": "a number > 0 of passes over the train split (or set steps)",
        "lr": "a number in (0, 1): the peak learning rate", "batch_size": "a whole number >= 1",
        "max_length": "a whole number >= 8 of tokens per example"})
    targets = train.get("targets", (str, list), None, lambda v: bool(v) and (
        isinstance(v, str) or all(isinstance(t, str) and t for t in v)))
    epochs = train.get("epochs", (int, float), None, lambda v: v > 0)
    return TrainSettings(
        rank=train.get("rank", int, None, _positive), alpha=train.get("alpha", int, None, _positive),
        targets=None if targets is None else tuple([targets] if isinstance(targets, str) else targets),
        steps=train.get("steps", int, None, _positive), epochs=None if epochs is None else float(epochs),
        lr=train.get("lr", float, None, lambda v: 0 < v < 1), batch_size=train.get("batch_size", int, None, _positive),
        max_length=train.get("max_length", int, None, lambda v: _positive(v) and v >= 8))


def _variants(values: Any) -> tuple[str, ...] | None:
    """The export variants in their fixed order; None unless a list of known names that holds fp32."""
    if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
        return None
    if "fp32" not in values or set(values) - set(VARIANTS):
        return None
    return tuple(v for v in VARIANTS if v in values)


def export_device(value: str) -> str:
    if value not in DEVICES:
        raise SettingsError(f"--device {value!r}: the parity gate runs on {' or '.join(DEVICES)}",
                            hint="pass --device cpu or --device cuda")
    return value


def export_variants(values: list[str], where: str = "--variant") -> tuple[str, ...]:
    """Variants named on the command line, refused like [export] variants."""
    found = _variants(values)
    if found is None:
        raise SettingsError(f"{where} {', '.join(values)}: the export variants are {', '.join(VARIANTS)}, and fp32 "
                            "(the parity gate) is always among them", hint=f"e.g. {where} fp32 {where} int8")
    return found


def _generate(raw: dict[str, Any], path: Path) -> GenerateSettings:
    """[generate] and [generate.judge]."""
    table = Table.of(raw, path, "generate", {
        "generator": "\"seed\" or \"teacher\"", "url": _URL,
        "model": "the teacher model's name, as the endpoint knows it",
        "api_key_env": _KEY_ENV, "concurrency": "a positive whole number of requests in flight",
        "skill_requests": "a whole number (0 or more) of requests per freeform skill leaf",
        "pairs": "a positive whole number of question/answer pairs asked per request",
        "temperature": "a number from 0 to 2", "max_tokens": "a positive whole number of tokens per answer",
        "timeout": "a positive number of seconds per HTTP attempt",
        "max_failed": "a share from 0 to 1 of requests that may fail", "license": _SPDX,
        "terms": "the terms on the teacher's outputs, as text", "judge": "the table [generate.judge]"})
    return GenerateSettings(
        table.get("generator", str, "seed", lambda v: v in ("seed", "teacher")), _url(table),
        table.get("model", str, None, bool), _key_env(table), table.get("concurrency", int, None, _positive),
        table.get("skill_requests", int, None, lambda v: v >= 0), table.get("pairs", int, None, _positive),
        table.get("temperature", (int, float), None, lambda v: 0 <= v <= 2),
        table.get("max_tokens", int, None, _positive), table.get("timeout", (int, float), None, lambda v: v > 0),
        table.get("max_failed", (int, float), None, lambda v: 0 <= v <= 1), _spdx(table, "license"),
        table.get("terms", str, None, bool), _judge(raw, path))


def _judge(raw: dict[str, Any], path: Path) -> JudgeSettings:
    table = Table.of(raw, path, "generate.judge", {
        "enabled": "true or false (false: the teacher's samples are kept unjudged)",
        "url": _URL + " (default: the teacher's)", "model": "the judge model's name (default: the teacher model)",
        "api_key_env": _KEY_ENV + " (default: the teacher's key)", "rubric": "a rubric version, e.g. \"v1\"",
        "threshold": "a whole number from 1 to 5: the lowest score a kept sample may have",
        "concurrency": "a positive whole number of requests in flight"})
    return JudgeSettings(table.get("enabled", bool, True, lambda v: True), _url(table),
                         table.get("model", str, None, bool), _key_env(table), table.get("rubric", str, None, bool),
                         table.get("threshold", int, None, lambda v: 1 <= v <= 5),
                         table.get("concurrency", int, None, _positive))


def _url(table: Table) -> str | None:
    return table.get("url", str, None, lambda v: v.startswith(("http://", "https://")))


def _key_env(table: Table, key: str = "api_key_env") -> str | None:
    """The name of a variable; its value is never echoed (someone may have written the key itself here)."""
    name = table.get(key, str, None, lambda v: True)
    if name is not None and not _ENV_NAME.fullmatch(name):
        raise SettingsError(f"{table.path}: [{table.name}] {key} is not the name of an environment variable",
                            hint=f"write the variable's NAME (e.g. {key} = \"OPENAI_API_KEY\") and put the key "
                                 "itself in the environment, never in taxreg.toml")
    return name


def _spdx(table: Table, key: str, example: str = "e.g. license = \"Apache-2.0\"") -> str | None:
    value = table.get(key, str, None, bool)
    if value is None:
        return None
    spdx = normalize(value)
    if spdx is None:
        raise SettingsError(f"{table.path}: [{table.name}] {key} {value!r} is not an SPDX license expression",
                            hint=example)
    return spdx


def _number(table: Table, key: str, default: float, check: Callable[[Any], bool]) -> float:
    return float(table.get(key, (int, float), default, check))


def _disclosure(raw: dict[str, Any], path: Path, required: bool) -> Disclosure:
    """[provider]: who places the model on the market, as the EU summary's section 1.1 asks."""
    text = "a non-empty string"
    provider = Table.of(raw, path, "provider", {
        "name": text, "contact": f"{text} (an e-mail or postal address)",
        "representative": f"{text}: the authorised representative in the EU and their contact, or \"none\"",
        "code_of_practice": "true or false: a signatory of the GPAI Code of Practice"})
    signatory = provider.get("code_of_practice", bool, False, lambda v: True) \
        if "code_of_practice" in provider.values else None
    name, contact, representative = (provider.get(key, str, "", _filled) or None
                                     for key in ("name", "contact", "representative"))
    return Disclosure(name, contact, representative, signatory, required)


def _lineage(raw: dict[str, Any], path: Path) -> LineageTarget:
    """[lineage]: an OpenLineage HTTP endpoint for the build's run events."""
    lineage = Table.of(raw, path, "lineage", {
        "url": "an http(s) URL of an OpenLineage endpoint, e.g. \"http://127.0.0.1:5000\"",
        "namespace": "a non-empty string naming this build's jobs", "timeout": "a positive number of seconds"})
    url = lineage.get("url", str, "", lambda v: v.startswith(("http://", "https://")))
    return LineageTarget(url or None, lineage.get("namespace", str, "taxreg", _filled),
                         float(lineage.get("timeout", (int, float), 5.0, lambda v: v > 0)))


def _filled(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _release_license(release: Table, path: Path) -> str | None:
    """[release] license = "SPDX expression": the license a release is declared under."""
    return _spdx(release, "license", "e.g. license = \"CC-BY-4.0\" or \"CC-BY-SA-4.0 AND Apache-2.0\"")


_SPDX = "an SPDX license expression, e.g. \"CC-BY-4.0\""


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
