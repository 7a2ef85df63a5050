"""site: the public static site from the catalog (incremental by itself: unchanged pages are reused)."""

from __future__ import annotations

from pathlib import Path

from builder.stage import BuildContext, BuildOptions, BuildStage, Lineage, StageResult


class SiteStage(BuildStage):
    name = "site"

    def wanted(self, options: BuildOptions) -> bool:
        return options.site

    def outputs(self, ctx: BuildContext) -> list[Path]:
        return [ctx.layout.site]  # no key: it runs every time, so this only names what it writes

    def lineage(self, ctx: BuildContext) -> Lineage:  # it pages through the whole catalog, releases included
        return Lineage(reads=("validate+index", "generate", "dataset", "release"))

    def run(self, ctx: BuildContext) -> StageResult:
        from builder.site.build import SiteOptions, build_site

        layout = ctx.layout
        outcome = build_site(SiteOptions(layout.catalog, layout.site, ctx.options.taxonomy, vendor=layout.vendor))
        return StageResult(f"{outcome.pages_rendered} page(s) rendered, {outcome.pages_reused} reused",
                           {"pages_rendered": outcome.pages_rendered, "pages_reused": outcome.pages_reused})


STAGE = SiteStage()
