"""dataset: train/test splits, card and croissant.json from the catalog's kept samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builder.layout import DEFAULT_DATASET
from builder.stage import BuildContext, BuildStage, Lineage, StageResult, files_digest

SPLIT_FILES = ("train.jsonl", "test.jsonl", "train.parquet", "test.parquet")


class DatasetStage(BuildStage):
    name = "dataset"
    needs = ("generate",)

    def key(self, ctx: BuildContext) -> Any:
        from builder.datasets import DatasetOptions
        from registry.catalog import builds
        from registry.catalog.connection import open_catalog
        from registry.catalog.datasets import license_inputs

        with open_catalog(ctx.layout.catalog) as con:
            # licenses too: a changed attribution license keeps the samples but changes the dataset's license
            return {"takedowns": builds.takedown_subjects(con), "licenses": license_inputs(con),
                    "name": DEFAULT_DATASET, "min_test": DatasetOptions().min_test}

    def outputs(self, ctx: BuildContext) -> list[Path]:
        return [ctx.layout.dataset()]

    def lineage(self, ctx: BuildContext) -> Lineage:
        from registry.catalog.datasets import ELIGIBLE_SQL

        return Lineage(sql=ELIGIBLE_SQL)

    def run(self, ctx: BuildContext) -> StageResult:
        from builder.datasets import DatasetOptions, build_dataset

        outcome = build_dataset(ctx.layout.catalog, ctx.layout.datasets, DatasetOptions(DEFAULT_DATASET))
        rows = {f"{f.split}_rows": f.rows for f in outcome.files if f.format == "parquet"}
        # the splits, not the card or croissant.json: their dates change nothing a model learns
        splits = [ctx.layout.dataset() / name for name in SPLIT_FILES]
        return StageResult(f"{outcome.folder}: " + ", ".join(f"{k.removesuffix('_rows')} {v}" for k, v in rows.items()),
                           rows, digest=files_digest(splits, ctx.layout.root))


STAGE = DatasetStage()
