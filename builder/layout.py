"""Where everything lives in a build folder. No other module spells a build-folder name: commands and stages take
their paths from a `BuildLayout` (or the `ModelLayout` of a model folder)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from registry.release.provenance import PROVENANCE

DEFAULT_DATASET = "default"


@dataclass(frozen=True, slots=True)
class ModelLayout:
    """A model folder: the base, the adapter trained on it, its checkpoints, and the exported ONNX variants with
    their parity report. `taxreg export --out DIR` writes this layout into DIR, a release into its `model/`."""

    root: Path

    # export variant -> folder, and the catalog's model_artifact kinds -> folder
    VARIANTS: ClassVar[dict[str, str]] = {"fp32": "onnx", "int8": "onnx-int8", "int4": "onnx-int4"}
    KINDS: ClassVar[dict[str, str]] = {"base": "base", "adapter": "adapter", "onnx": "onnx", "onnx_int8": "onnx-int8",
                                       "onnx_int4": "onnx-int4", "onnx_base": "onnx-base"}

    @property
    def base(self) -> Path:
        return self.root / "base"

    @property
    def adapter(self) -> Path:
        return self.root / "adapter"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def artifact(self, kind: str) -> Path:
        """The folder of a model artifact of this kind (as the catalog names kinds)."""
        return self.root / self.KINDS[kind]

    def variant(self, name: str) -> Path:
        """The folder of an exported variant: fp32, int8 or int4."""
        return self.root / self.VARIANTS[name]

    @property
    def onnx(self) -> Path:
        return self.variant("fp32")

    @property
    def onnx_int8(self) -> Path:
        return self.variant("int8")

    @property
    def parity(self) -> Path:
        return self.root / "parity.json"

    @property
    def onnx_base(self) -> Path:
        """The base model as ONNX, what `taxreg eval` compares the fine-tuned graph with (not an export variant:
        `taxreg export` neither writes nor removes it)."""
        return self.artifact("onnx_base")

    @property
    def evaluation(self) -> Path:
        """The last evaluation's results (`taxreg eval`): what a release ships as evaluation.json."""
        return self.root / "evaluation.json"

    @property
    def parity_failed(self) -> Path:
        """The figures of an export the gate refused (the previous export stays in place)."""
        return self.root / "parity.failed.json"

    @property
    def export_work(self) -> Path:
        """Named for the temporary folder an export builds in (beside the variants, so they rename into place)."""
        return self.root / "export"


@dataclass(frozen=True, slots=True)
class BuildLayout:
    """A build folder (`taxreg build --build-dir`, default ./build)."""

    root: Path

    @property
    def catalog(self) -> Path:
        return self.root / "catalog.duckdb"

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    def dataset(self, name: str = DEFAULT_DATASET) -> Path:
        return self.datasets / name

    @property
    def model(self) -> ModelLayout:
        return ModelLayout(self.root / "model")

    @property
    def releases(self) -> Path:
        return self.root / "releases"

    def release(self, version: str) -> Path:
        return self.releases / version

    @property
    def site(self) -> Path:
        return self.root / "site"

    @property
    def vendor(self) -> Path:
        """Front-end engines the site bundles (mermaid, DuckDB-WASM), kept between builds."""
        return self.root / "vendor"

    @property
    def lineage(self) -> Path:
        """OpenLineage run events of each build, one JSONL file per build (`lineage_events`)."""
        return self.root / "lineage"

    def lineage_events(self, build_id: str) -> Path:
        return self.lineage / f"{build_id}.jsonl"

    @property
    def state(self) -> Path:
        """The stage keys of the last build: what `taxreg build` skips."""
        return self.root / ".taxreg" / "stages.json"

    @property
    def lock(self) -> Path:
        return self.root / ".taxreg" / "build.lock"

    @property
    def lock_holder(self) -> Path:
        """Who holds the lock, for the message the next writer gets."""
        return self.root / ".taxreg" / "build.lock.holder"

    def places(self) -> set[Path]:
        """The outputs a command may be pointed at directly (`--out`, `--catalog`): what makes a path part of this
        build folder."""
        model = self.model
        return {self.catalog, self.datasets, self.site, self.vendor, self.releases, model.root, model.base,
                model.adapter, model.checkpoints, *(model.variant(v) for v in ModelLayout.VARIANTS)}

    @classmethod
    def owning(cls, path: Path) -> BuildLayout | None:
        """The build folder whose layout puts `path` at one of its places (a dataset folder included), or None:
        `--out build/model/base` is the base model of `build`, `--out /tmp/x` belongs to no build folder."""
        path = Path(os.path.abspath(path))
        for root in path.parents[:3]:  # the deepest place (model/base, datasets/NAME) is two levels down
            layout = cls(root)
            if path in layout.places() or path.parent == layout.datasets:
                return layout
        return None


@dataclass(frozen=True, slots=True)
class SiteLayout:
    """A built site's own folders (its pages' addresses are builder/site/urls.py's)."""

    root: Path

    @property
    def audit(self) -> Path:
        """The public audit database, its Parquet files and the SQL console's engine."""
        return self.root / "audit"

    @property
    def search_index(self) -> Path:
        return self.root / "search" / "search_index.json"


@dataclass(frozen=True, slots=True)
class ReleaseLayout:
    """A release folder (releases/VERSION): what `release cut` writes and `release verify` checks."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def model(self) -> ModelLayout:
        """The model files, in the layout of a model folder (onnx/, onnx-int8/, adapter/)."""
        return ModelLayout(self.root / "model")

    @property
    def model_card(self) -> Path:
        return self.model.root / "README.md"

    @property
    def parity(self) -> Path:
        return self.root / "parity.json"

    @property
    def evaluation(self) -> Path:
        """What the evaluation found (the model folder's evaluation.json), when the release has a model."""
        return self.root / "evaluation.json"

    @property
    def audit(self) -> Path:
        return self.root / "audit"

    @property
    def bom(self) -> Path:
        return self.root / "bom"

    @property
    def disclosures(self) -> Path:
        """The training-data disclosures: the EU AI Act summary (md, json) and California AB 2013."""
        return self.root / "disclosures"

    @property
    def eu_summary(self) -> Path:
        return self.disclosures / "eu-training-content-summary.md"

    @property
    def eu_summary_json(self) -> Path:
        return self.disclosures / "eu-training-content-summary.json"

    @property
    def ab2013(self) -> Path:
        return self.disclosures / "ab2013.md"

    @property
    def attribution(self) -> Path:
        return self.root / "ATTRIBUTION.md"

    @property
    def provenance(self) -> Path:
        """The SLSA build provenance: an in-toto statement, in a DSSE envelope when the release is signed."""
        return self.root / PROVENANCE

    def relpath(self, path: Path) -> str:
        """`path` as the manifest and SHA256SUMS name it: relative, '/'-separated."""
        return path.relative_to(self.root).as_posix()


DEFAULT = BuildLayout(Path("build"))
