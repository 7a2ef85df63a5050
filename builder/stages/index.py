"""validate+index: the taxonomy into the catalog (incremental by itself, so it runs every time)."""

from __future__ import annotations

from builder.stage import BuildContext, BuildStage, Lineage, StageResult, digest_of


class IndexStage(BuildStage):
    name = "validate+index"

    def lineage(self, ctx: BuildContext) -> Lineage:
        return Lineage(sources=("taxonomy", "documents"), tables=(
            "contribution", "contribution_version", "attribution", "seed_example", "source_document", "finding"))

    def run(self, ctx: BuildContext) -> StageResult:
        from registry.catalog import builds
        from registry.catalog.connection import open_catalog
        from registry.catalog.indexer import index

        outcome = index(ctx.options.taxonomy, ctx.layout.catalog, ctx.config)
        with open_catalog(ctx.layout.catalog) as con:
            leaves = builds.active_leaves_digest(con)  # what every later stage reads of the taxonomy
        return StageResult(
            f"{outcome.leaves_total} leaves: {outcome.status}, {outcome.leaves_indexed} indexed, "
            f"{outcome.leaves_retired} retired, {outcome.warnings} warning(s)",
            {"leaves": outcome.leaves_total, "indexed": outcome.leaves_indexed, "warnings": outcome.warnings},
            unchanged=outcome.status == "unchanged", digest=digest_of(leaves))


STAGE = IndexStage()
