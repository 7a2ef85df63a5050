"""Beside every dataset: a Hugging Face dataset card (README.md) and Croissant 1.1 metadata (croissant.json).

The Croissant file is built with `mlcroissant` (so it follows the library's own JSON-LD context), with
Responsible-AI fields and PROV links to the contributions the samples derive from, and is validated
with the same library before the dataset is published.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from registry import __version__
from registry.catalog.datasets import LINEAGE, DatasetSample, WrittenFile
from registry.errors import RegistryError

if TYPE_CHECKING:
    from builder.datasets import DatasetOptions

FORMATS = {"jsonl": "application/jsonlines", "parquet": "application/x-parquet"}
CROISSANT_1_1 = "http://mlcommons.org/croissant/1.1"


def write(folder: Path, options: DatasetOptions, samples: list[DatasetSample], files: list[WrittenFile],
          license_expression: str, created: datetime) -> None:
    (folder / "README.md").write_text(_card(options, samples, files, license_expression, created), encoding="utf-8")
    croissant = _croissant(options, samples, files, license_expression, created)
    path = folder / "croissant.json"
    path.write_text(json.dumps(croissant, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    validate_croissant(path)


def validate_croissant(path: Path) -> None:
    import mlcroissant as mlc
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)  # its warnings would land in our output
    try:
        mlc.Dataset(jsonld=path)
    except Exception as exc:  # mlcroissant raises its own ValidationError and plain ValueErrors
        raise RegistryError(f"{path} does not pass Croissant validation: {exc}") from None


def _teachers(samples: list[DatasetSample]) -> list[str]:
    return sorted({t for s in samples for t in s.teacher_model_refs})


def _card(options: DatasetOptions, samples: list[DatasetSample], files: list[WrittenFile],
          license_expression: str, created: datetime) -> str:
    teachers = _teachers(samples)
    kinds = Counter(s.kind for s in samples)
    contributions = sorted({c for s in samples for c in s.contribution_ids})
    rows = {f.split: f.rows for f in files if f.format == "parquet"}
    single = " AND " not in license_expression and license_expression != "UNKNOWN"
    header = {
        "license": license_expression.lower() if single else "other",
        **({} if single else {"license_name": "mixed", "license_details": license_expression}),
        "language": ["en"],
        "task_categories": ["text-generation"],
        "annotations_creators": ["machine-generated"] if teachers else ["expert-generated"],
        "source_datasets": ["original"],
        "size_categories": [_size_category(len(samples))],
        "pretty_name": f"Taxonomy Registry dataset {options.name}",
        "configs": [{"config_name": "default", "data_files": [
            {"split": split, "path": f"{split}.parquet"} for split in ("train", "test")]}],
        "dataset_info": {"features": [
            {"name": "id", "dtype": "string"}, {"name": "kind", "dtype": "string"},
            {"name": "messages", "list": [{"name": "role", "dtype": "string"},
                                          {"name": "content", "dtype": "string"}]},
            *({"name": column, "dtype": "string"} for column in LINEAGE)],
            "splits": [{"name": split, "num_examples": n} for split, n in rows.items()]},
    }
    lines = ["---", _yaml(header).rstrip(), "---", "",
             f"# Taxonomy Registry dataset `{options.name}`", "",
             "Chat-format training samples generated from the community taxonomy. Every sample can be traced, in "
             "SQL, to the seed example or document chunk it came from, the contribution version, the source "
             "document with its commit and license, the contributor and the run that made it "
             "(`SELECT * FROM v_sample_provenance` in the catalog).", "",
             "| split | rows |", "|---|---|", *(f"| {split} | {n} |" for split, n in rows.items()), "",
             "| kind | samples |", "|---|---|", *(f"| {kind} | {n} |" for kind, n in sorted(kinds.items())), "",
             f"- Contributions: {len(contributions)}",
             f"- Licenses of the sources: {license_expression}",
             f"- Teacher models: {', '.join(teachers) if teachers else 'none (samples are the seed examples)'}",
             f"- Split: test = samples whose id hash falls under {options.test_fraction:.0%}, and each "
             f"contribution keeps at least {options.min_test} in test (at most half of its samples) so it can be "
             "evaluated on what it was not trained on; stable when leaves are added",
             f"- Mix: {', '.join(f'{k}={v:g}' for k, v in sorted(options.mix.items()))}",
             f"- Built by taxonomy-registry {__version__}, {created.date().isoformat()}", "",
             "## Files", "", "| file | rows | sha256 |", "|---|---|---|",
             *(f"| {Path(f.path).name} | {f.rows} | `{f.sha256}` |" for f in files), ""]
    return "\n".join(lines)


def _collection(samples: list[DatasetSample]) -> str:
    documents = {d for s in samples for d in s.documents}
    generators = sorted({g for s in samples for g in s.generators})
    contributions = {c for s in samples for c in s.contribution_ids}
    return (f"Contributors write seed examples (qna.yaml) in a taxonomy: {len(contributions)} contributions; "
            f"knowledge seeds quote {len(documents)} documents pinned by "
            f"repository and commit. Samples made by: {', '.join(generators) or 'none'}. Each record names its "
            "contribution, document and generator; its license follows from them (v_sample_license in the audit "
            "database).")


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return label
    return "n>1M"


def _yaml(value: dict[str, Any]) -> str:
    import yaml

    return str(yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=1000))


def _croissant(options: DatasetOptions, samples: list[DatasetSample], files: list[WrittenFile],
               license_expression: str, created: datetime) -> dict[str, Any]:
    import mlcroissant as mlc

    teachers = _teachers(samples)
    distribution = [mlc.FileObject(id=Path(f.path).name, name=Path(f.path).name, content_url=Path(f.path).name,
                                   encoding_formats=[FORMATS[f.format]], sha256=f.sha256,
                                   content_size=f"{f.byte_size} B") for f in files]
    described = {"id": "The sample's id: sha256 of its canonical messages.", "kind": "knowledge or a skill kind.",
                 **LINEAGE}
    record_sets = [mlc.RecordSet(id=split, name=split, fields=[
        mlc.Field(id=f"{split}/{column}", name=column, description=text, data_types=[mlc.DataType.TEXT],
                  source=mlc.Source(file_object=f"{split}.parquet", extract=mlc.Extract(column=column)))
        for column, text in described.items()]) for split in ("train", "test")]
    metadata = mlc.Metadata(
        name=f"taxonomy-registry-{options.name}",
        description="Chat-format training samples generated from a community taxonomy of knowledge and skills, "
                    "with per-sample lineage to seeds, document chunks, contributions and runs.",
        conforms_to=CROISSANT_1_1, license=[license_expression], url="https://example.invalid/taxonomy-registry",
        version="1.0.0", date_published=created,
        cite_as="Taxonomy Registry contributors. Community taxonomy training data.",
        distribution=distribution, record_sets=record_sets,
        data_collection=_collection(samples),
        data_collection_type=["Manual Human Curator", "Machine generated" if teachers else "Manual Human Curator"],
        data_preprocessing_protocol=["Schema and rule validation (taxreg validate); exact and near-duplicate "
                                     "removal, length and empty-answer filters with recorded reasons."],
        data_annotation_protocol="Samples are seed examples or teacher-model outputs; no human annotation.",
        machine_annotation_tools=teachers or None,
        data_biases=["Topics follow what contributors chose to write about; coverage is uneven."],
        data_limitations=["Small and community-written; facts are only as good as the contributions and their "
                          "sources."],
        data_use_cases=["Fine-tuning and evaluating small language models on the taxonomy's knowledge and skills."],
        data_social_impact="Makes a language model answer in the areas the community documented, with every "
                           "answer traceable to its contributor, source and license; its reach is bounded by what "
                           "contributors chose to write and by the review their contributions got.",
        personal_sensitive_information=["None intended: contributions are reviewed public text."],
    )
    jsonld: dict[str, Any] = metadata.to_json()
    jsonld["@context"]["prov"] = "http://www.w3.org/ns/prov#"
    jsonld["rai:hasSyntheticData"] = bool(teachers)  # teacher-model outputs; the seed replay is no model's text
    contributions = sorted({c for s in samples for c in s.contribution_ids})
    # taxonomy paths may hold spaces and other characters an IRI cannot: percent-encode them
    jsonld["prov:wasDerivedFrom"] = [{"@id": f"taxonomy:{quote(c, safe='/')}"} for c in contributions]
    jsonld["prov:wasGeneratedBy"] = {"@type": "prov:Activity", "prov:label": "taxreg dataset build",
                                     "prov:wasAssociatedWith": f"taxonomy-registry {__version__}"}
    jsonld["@context"]["taxonomy"] = "https://example.invalid/taxonomy-registry/contributions/"
    return jsonld
