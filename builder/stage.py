"""What a stage of `taxreg build` is, what it is given and what it gives back.

A stage is one module in `builder/stages/` exporting `STAGE`: a name, the names of the stages it reads (`needs`),
a `key` of everything else it reads, and `run`, a thin adapter over one library call. The pipeline folds the
fingerprints of the stages a stage needs into its key, so a change upstream reruns what depends on it without
anyone listing it by hand; a stage whose key and outputs are unchanged is skipped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from builder.evaluation_settings import EvalSettings
from builder.layout import DEFAULT, BuildLayout
from builder.progress import Report, ignore
from builder.settings import Disclosure, LineageTarget, ModelSettings
from registry.config import ValidationConfig

if TYPE_CHECKING:
    from builder.generators.configure import Generation


@dataclass(frozen=True, slots=True)
class BuildOptions:
    taxonomy: Path = Path("taxonomy")
    build_dir: Path = DEFAULT.root
    release: str | None = None
    seed: int = 0
    # [model], [train], [export] and their `taxreg build` options: the base model, its training, its variants
    model_settings: ModelSettings = field(default_factory=ModelSettings)
    allow: tuple[str, ...] = ()
    license: str | None = None  # the release license (SPDX); None: the union of the sources, with a warning
    sign_key: Path | None = None
    force: tuple[str, ...] = ()  # stages to run even when their inputs did not change
    model: bool = True  # base, train and export (off: a data-only build)
    site: bool = True
    disclosure: Disclosure = field(default_factory=Disclosure)  # [provider]: facts the release's disclosures ask
    lineage: LineageTarget = field(default_factory=LineageTarget)  # [lineage]: where the run events go
    generation: Generation | None = None  # the generator and its endpoints ([generate]); None: the seed generator
    evaluation: EvalSettings = field(default_factory=EvalSettings)  # taxreg.toml [eval]


@dataclass(slots=True)
class BuildContext:
    """What every stage is given: the options, the validation settings, the build folder, this build's id, and
    where a long stage reports its progress (the stage board renders it)."""

    options: BuildOptions
    config: ValidationConfig
    build_id: str = ""
    progress: Report = ignore

    @property
    def layout(self) -> BuildLayout:
        return BuildLayout(self.options.build_dir)

    @property
    def base_model(self) -> Path:
        """The folder the build fine-tunes: [model] base (--base-model), else the demo model it builds."""
        return self.options.model_settings.base or self.layout.model.base


@dataclass(frozen=True, slots=True)
class StageResult:
    """What a stage that ran gives back."""

    detail: str  # one line for the stage board
    stats: Mapping[str, Any] = field(default_factory=dict)  # figures recorded in the catalog's build row
    unchanged: bool = False  # it ran and found nothing to do (a stage that is incremental by itself)
    # What the stages that need this one see: a digest of what it produced (e.g. its files' hashes), so that
    # equal outputs from changed inputs do not rerun them. None: the stage's key stands for its output.
    digest: str | None = None
    warning: str | None = None  # said once at the end of the build
    saved: Mapping[str, Any] = field(default_factory=dict)  # kept with the stage's key; `check` sees it next time


@dataclass(frozen=True, slots=True)
class Lineage:
    """What a stage's OpenLineage run events say besides its `needs` (whose outputs are its inputs) and its
    `outputs` (see builder/lineage.py)."""

    sources: tuple[str, ...] = ()  # what it reads from outside the build folder: "taxonomy", "documents"
    reads: tuple[str, ...] = ()  # stages whose outputs it reads without its key depending on them
    tables: tuple[str, ...] = ()  # the catalog tables it writes: its outputs when it writes no files
    sql: str | None = None  # the query that is the stage's work, where there is one


class Stage(Protocol):
    @property
    def name(self) -> str:
        """As the stage board and `--force` say it."""

    @property
    def needs(self) -> tuple[str, ...]:
        """The stages it reads (earlier in the tuple); their fingerprints are folded into its key."""

    def wanted(self, options: BuildOptions) -> bool:
        """Whether this build runs the stage at all (e.g. release only with --release)."""

    def key(self, ctx: BuildContext) -> Any:
        """Everything the stage reads besides the stages it needs (JSON-able); None: no key, it runs every time
        (the stage is incremental by itself)."""

    def outputs(self, ctx: BuildContext) -> list[Path]:
        """Files and folders whose hashes must still match for a skip."""

    def check(self, ctx: BuildContext, con: Any, saved: Mapping[str, Any]) -> None:
        """Before any stage runs: refuse what would fail this stage after hours of work. `saved` is what its
        last run kept."""

    def skipped_detail(self, ctx: BuildContext) -> str:
        """The stage board's line when the stage is skipped."""

    def lineage(self, ctx: BuildContext) -> Lineage:
        """What the stage reads and writes beyond `needs` and `outputs`, for its OpenLineage events."""

    def run(self, ctx: BuildContext) -> StageResult: ...


class BuildStage:
    """Defaults for a `Stage`: wanted always, no outputs, nothing to check."""

    name: ClassVar[str]
    needs: ClassVar[tuple[str, ...]] = ()

    def wanted(self, options: BuildOptions) -> bool:
        return True

    def key(self, ctx: BuildContext) -> Any:
        return None

    def outputs(self, ctx: BuildContext) -> list[Path]:
        return []

    def check(self, ctx: BuildContext, con: Any, saved: Mapping[str, Any]) -> None:
        return None

    def skipped_detail(self, ctx: BuildContext) -> str:
        return "inputs unchanged"

    def lineage(self, ctx: BuildContext) -> Lineage:
        return Lineage()


def digest_of(value: Any) -> str:
    """sha256 of canonical JSON: the key of a stage's inputs."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def hash_outputs(paths: list[Path], root: Path) -> dict[str, str]:
    """sha256 of every file under the given paths, named relative to `root` (the build folder: the same build
    reached by another path hashes the same); missing paths hash to ''."""
    hashes: dict[str, str] = {}
    for base in paths:
        files = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else [base]
        for path in files:
            name = _relative(path, root)
            try:
                with path.open("rb") as f:
                    hashes[name] = hashlib.file_digest(f, "sha256").hexdigest()
            except OSError:
                hashes[name] = ""
    return hashes


def files_digest(paths: list[Path], root: Path) -> str:
    """One digest of the contents of `paths`: what a stage's dependents see."""
    return digest_of(hash_outputs(paths, root))


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()
