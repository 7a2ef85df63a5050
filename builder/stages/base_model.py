"""base model: the demo Granite, with a tokenizer trained on the taxonomy's text; or, with [model] base
(--base-model), the local folder given, checked (no weights loaded) and named by the digest of its files."""

from __future__ import annotations

from collections.abc import Mapping
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

    def check(self, ctx: BuildContext, con: Any, saved: Mapping[str, Any]) -> None:
        """A given base that training, export or serving would refuse is refused before any stage runs."""
        from builder.model import base_model

        given = ctx.options.model_settings.base
        if given is not None:
            base_model.check_base(given)

    def key(self, ctx: BuildContext) -> Any:
        given = ctx.options.model_settings.base
        if given is not None:
            from registry.catalog.models import hash_directory

            return {"base": hash_directory(given).artifact_id}  # its content: another folder, same files, same key
        from builder.model.demo import DemoSpec
        from registry.catalog import builds
        from registry.catalog.connection import open_catalog

        with open_catalog(ctx.layout.catalog) as con:  # a takedown is a new base model: its text leaves the tokenizer
            takedowns, text = builds.takedown_subjects(con), builds.tokenizer_text_digest(con)
        return {"takedowns": takedowns, "text": text, "spec": asdict(DemoSpec(seed=ctx.options.seed))}

    def outputs(self, ctx: BuildContext) -> list[Path]:
        # a given base is outside the build folder and its content is the key: nothing of its own to compare
        return [] if ctx.options.model_settings.base is not None else [ctx.layout.model.base]

    def skipped_detail(self, ctx: BuildContext) -> str:
        given = ctx.options.model_settings.base
        return f"{given}: files unchanged" if given is not None else "inputs unchanged"

    def run(self, ctx: BuildContext) -> StageResult:
        if ctx.options.model_settings.base is not None:
            return _given(ctx.options.model_settings.base)
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


def _given(folder: Path) -> StageResult:
    """The folder checked and named; the train run records it in the catalog (model_artifact, external_model)."""
    from builder.model import base_model
    from registry.catalog.models import describe_base_model, hash_directory

    facts = base_model.check_base(folder)
    artifact = hash_directory(folder)
    described = describe_base_model(folder, artifact)
    warning = None if described.license_spdx else (
        f"the base model {described.model_ref} names no license (README front matter `license:`, a LICENSE file or "
        "config.json): the release's card and BOMs say it is unknown; add it to the folder's README front matter")
    detail = (f"{described.model_ref} ({facts.model_type}, {facts.parameters / 1e6:.1f}M parameters, vocabulary "
              f"{facts.tokens}), license {described.license_spdx or 'unknown'}")
    return StageResult(detail, {"model_ref": described.model_ref, "artifact_id": artifact.artifact_id,
                                "license": described.license_spdx, "model_type": facts.model_type,
                                "parameters": facts.parameters, "vocab_size": facts.vocab_size},
                       digest=artifact.artifact_id, warning=warning)


STAGE = BaseModelStage()
