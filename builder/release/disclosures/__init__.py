"""A release's disclosures of its training data, generated from the catalog at cut time: the EU AI Act's public
summary of training content (md + json), California AB 2013, ATTRIBUTION.md and the SLSA provenance. One module per
form; `write` is the cut's one call, after every other file is in place (the provenance lists them all)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.layout import BuildLayout, ReleaseLayout
from builder.release.disclosures import ab2013, attribution, eu_summary, facts, provenance
from builder.settings import Disclosure
from registry.catalog import disclosure as reads
from registry.release.manifest import PUBLIC_KEY, Manifest, listed


@dataclass(frozen=True, slots=True)
class Inputs:
    """What the disclosures take from the cut besides the catalog and the draft manifest."""

    build_dir: Path
    settings: Disclosure
    sign_key: Path | None


def gaps(con: Any, dataset_ids: list[str], settings: Disclosure) -> list[str]:
    """The EU summary's items that will be marked "to be completed by the provider" (the disclosure.complete gate)."""
    latest = reads.contribution_dates(con, dataset_ids)[1]
    return [k for k, v in eu_summary.asked(settings, latest.date().isoformat() if latest else None).items() if not v]


def write(con: Any, staging: Path, draft: Manifest, given: Inputs) -> None:
    release = ReleaseLayout(staging)
    known = facts.gather(con, draft, release.data / "train.jsonl", _tokenizer(release, BuildLayout(given.build_dir)),
                         given.settings)
    sections = eu_summary.summary(known)
    eu_summary.write(release.eu_summary, release.eu_summary_json, known, sections)
    ab2013.write(release.ab2013, known)
    attribution.write(release.attribution, draft.version, known.attributions)
    subjects = listed(staging, frozenset({release.relpath(release.provenance), PUBLIC_KEY}))
    provenance.write(release.provenance, staging, subjects, known, given.sign_key)


def command(version: str, dataset: str, license: str | None, allow: tuple[str, ...], with_model: bool,
            signed: bool) -> list[str]:
    """The cut as a `taxreg release cut` command line (a build's cut is the same cut), without local paths."""
    return ["taxreg", "release", "cut", version, "--dataset", dataset, *(["--license", license] if license else []),
            *(a for rule in sorted(allow) for a in ("--allow", rule)), *([] if with_model else ["--no-model"]),
            *(["--sign", "KEY"] if signed else [])]


def _tokenizer(release: ReleaseLayout, build: BuildLayout) -> tuple[Path, str] | None:
    """The shipped model's tokenizer, else (a data-only release) the build's base model's, else none."""
    for path in (release.model.onnx / facts.TOKENIZER, build.model.base / facts.TOKENIZER):
        if path.is_file():
            where = release.relpath(path) if path.is_relative_to(release.root) else \
                f"the build's base model ({path.parent.name}/{path.name})"
            return path, where
    return None

