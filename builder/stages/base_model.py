"""base model: the demo Granite, with a tokenizer trained on the taxonomy's text."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from builder.stage import BuildContext, BuildOptions, BuildStage, StageResult, files_digest


class BaseModelStage(BuildStage):
    name = "base model"
    # No `needs`: the demo tokenizer reads the taxonomy's text, which its key digests by content (a new version of a
    # leaf with the same text, e.g. an edited comment or attribution, keeps the base model)

    def wanted(self, options: BuildOptions) -> bool:
        return options.model

    def key(self, ctx: BuildContext) -> Any:
        from builder.model.demo import DemoSpec
        from registry.catalog import builds
        from registry.catalog.connection import open_catalog

        with open_catalog(ctx.layout.catalog) as con:  # a takedown is a new base model: its text leaves the tokenizer
            takedowns, text = builds.takedown_subjects(con), builds.tokenizer_text_digest(con)
        return {"takedowns": takedowns, "text": text, "spec": asdict(DemoSpec(seed=ctx.options.seed))}

    def outputs(self, ctx: BuildContext) -> list[Path]:
        return [ctx.layout.model.base]

    def run(self, ctx: BuildContext) -> StageResult:
        from builder.model.demo import DemoSpec, init_demo_model

        base = ctx.layout.model.base
        before = vocabulary(base)
        outcome = init_demo_model(ctx.options.taxonomy, base, DemoSpec(seed=ctx.options.seed), ctx.config,
                                  force=True, catalog=ctx.layout.catalog, build_id=ctx.build_id)
        moved = _moved(before, vocabulary(base))
        # what train and export read: not the card, whose corpus digest changes with any edit of the text
        model_files = sorted(p for p in base.iterdir() if p.name != "README.md")
        return StageResult(f"demo Granite, {outcome.parameters / 1e6:.1f}M parameters, vocabulary {outcome.vocab_size}"
                           f"; {moved}", {"parameters": outcome.parameters, "vocab_size": outcome.vocab_size},
                           digest=files_digest(model_files, ctx.layout.root))


def vocabulary(base: Path) -> dict[str, int] | None:
    """token -> id of a base model's tokenizer.json (None when there is none)."""
    import json

    try:
        vocab = json.loads((base / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return vocab if isinstance(vocab, dict) else None


def _moved(before: dict[str, int] | None, after: dict[str, int] | None) -> str:
    """Why the stage board shows a new base model, in words: its key (the taxonomy's text, takedowns, the seed)
    changed, and what that did to the tokenizer."""
    if before is None or after is None:
        return "tokenizer trained on the taxonomy's text"
    differ = sum(before.get(token) != i for token, i in after.items()) + len(before.keys() - after.keys())
    return "made again (its text, takedowns or seed changed): " + (
        "the tokenizer came out the same" if not differ else
        f"{differ} of {len(after)} token ids differ from the previous tokenizer")


STAGE = BaseModelStage()
