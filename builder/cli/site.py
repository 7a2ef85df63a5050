"""`taxreg site`: the public static site, generated from the catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from builder import console, layout, settings
from builder.cli.common import CatalogOpt, WaitOpt, app, state, writing


@app.command()
def site(
    catalog: CatalogOpt = settings.DEFAULT_CATALOG,
    out: Annotated[Path, typer.Option("--out", help="Folder of the built site (replaced whole, atomically).")]
    = layout.DEFAULT.site,
    taxonomy: Annotated[Path, typer.Option("--taxonomy", help="Taxonomy whose README the home page shows.")]
    = settings.DEFAULT_TAXONOMY,
    full: Annotated[bool, typer.Option("--full", help="Render every page again (no reuse of unchanged pages).")]
    = False,
    no_audit: Annotated[bool, typer.Option("--no-audit", help=(
        "Quicker preview: do not publish the audit database again; the previous site's downloads and console "
        "are kept, and the audit page says so."))] = False,
    wait: WaitOpt = 0.0,
) -> None:
    """Build the static site (mkdocs-material) from the catalog: pages, search, audit database, SQL console."""
    from builder.site.build import SiteOptions, build_site

    with console.user_errors(state["debug"]), writing(catalog, out, layout.DEFAULT.vendor, wait=wait):
        outcome = build_site(SiteOptions(catalog, out, taxonomy if taxonomy.is_dir() else None,
                                         layout.DEFAULT.vendor, incremental=not full, audit=not no_audit, wait=wait))
    for note in outcome.notes:
        console.print_line(f"warning: {note}")
    steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in outcome.timings.items())
    console.print_summary(
        f"site -> {outcome.out} in {outcome.seconds:.1f} s ({steps}): {outcome.pages_rendered} pages rendered, "
        f"{outcome.pages_reused} unchanged, search index {outcome.search_bytes / 1e6:.1f} MB. "
        f"Serve it: python -m http.server -d {out} -b 127.0.0.1 8080", False)
