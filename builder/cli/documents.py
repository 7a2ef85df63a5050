"""`taxreg documents fetch`: the document cache filled from the pinned repositories."""

from __future__ import annotations

from builder import console, settings
from builder.cli.common import DocumentsOpt, TaxonomyArg, documents_app, state


@documents_app.command("fetch")
def documents_fetch(
    taxonomy: TaxonomyArg = settings.DEFAULT_TAXONOMY,
    documents: DocumentsOpt = None,
) -> None:
    """Clone every referenced document repository at its pinned commit into the cache (needs network)."""
    from builder.imports.documents import fetch_documents

    with console.user_errors(state["debug"]):
        outcome = fetch_documents(taxonomy, settings.load().validation(documents))
    for path in outcome.written:
        console.print_line(f"fetched {path}")
    console.print_summary(f"{len(outcome.written)} repository checkout(s) fetched, "
                          f"{outcome.already_cached} already cached", False)
