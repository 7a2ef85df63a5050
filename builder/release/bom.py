"""bom/cyclonedx.json: an AI bill of materials (CycloneDX 1.6 ML-BOM) of the release, validated against the
1.6 JSON schema that `cyclonedx-python-lib` ships (offline).

The library has no model card type yet, so `modelCard` and dataset `data` entries are added to its JSON
before validation. Serial number and bom-refs derive from the manifest, the timestamp from its release
date: the same release gives the same bytes.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from registry.errors import RegistryError
from registry.release.canonical import canonical_sha256
from registry.release.manifest import Manifest
from registry.release.sums import file_sha256

BOM_FILE = "cyclonedx.json"
NAMESPACE = uuid.UUID("6f1d3c1e-5f0b-4a51-9a53-7d0c2a3f9e10")  # taxonomy-registry release BOMs


def write_bom(folder: Path, manifest: Manifest, release_dir: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    document = cyclonedx(manifest, release_dir)
    validate(document)
    path = folder / BOM_FILE
    path.write_text(json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def cyclonedx(manifest: Manifest, release_dir: Path) -> dict[str, Any]:
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6

    inputs = manifest.inputs
    bom = Bom(serial_number=uuid.uuid5(NAMESPACE, canonical_sha256(
        {"version": manifest.version, "inputs": inputs, "contributions": [c.samples_sha256 for c in
                                                                        manifest.contributions]})))
    bom.metadata.timestamp = datetime.strptime(manifest.released_at, "%Y-%m-%dT%H:%M:%SZ").astimezone()
    root = Component(name="taxonomy-registry-release", version=manifest.version, bom_ref="release",
                     type=ComponentType.MACHINE_LEARNING_MODEL if manifest.model else ComponentType.DATA,
                     licenses=_licenses(manifest.license), description="A release cut by taxonomy-registry "
                     f"{manifest.builder_version}: files and hashes in manifest.json and SHA256SUMS.")
    bom.metadata.component = root
    datasets = [_dataset(d, manifest, release_dir) for d in inputs["datasets"]]
    base = [_external(inputs["base_model"], "base-model")] if inputs.get("base_model") else []
    teachers = [_external(t, f"teacher:{t['model_ref']}") for t in inputs["teacher_models"]]
    models = [_model(a, manifest, release_dir) for a in (manifest.model or {}).get("artifacts", [])]
    for component in [*datasets, *base, *teachers, *models]:
        bom.components.add(component)
    for d in datasets:
        bom.register_dependency(d, teachers)
    for m in models:
        bom.register_dependency(m, [*base, *(d for d in datasets if str(d.bom_ref).startswith("data/train"))])
    bom.register_dependency(root, [*models, *datasets])
    document: dict[str, Any] = json.loads(JsonV1Dot6(bom).output_as_string(indent=None))
    _add_ml_fields(document, manifest)
    return document


def validate(document: dict[str, Any]) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(document))
    if error is not None:
        raise RegistryError(f"the CycloneDX BOM does not pass the 1.6 schema: {error}")


def _licenses(expression: str | None) -> list[Any]:
    from cyclonedx.model.license import LicenseExpression

    return [LicenseExpression(expression)] if expression and "UNKNOWN" not in expression else []


def _hash(sha256: str) -> Any:
    from cyclonedx.model import HashAlgorithm, HashType

    return HashType(alg=HashAlgorithm.SHA_256, content=sha256)


def _dataset(entry: dict[str, Any], manifest: Manifest, release_dir: Path) -> Any:
    from cyclonedx.model.component import Component, ComponentType

    return Component(name=f"{entry['name']}/{entry['split']}.{entry['format']}", bom_ref=entry["path"],
                     type=ComponentType.DATA, version=manifest.version, licenses=_licenses(manifest.license),
                     hashes=[_hash(file_sha256(release_dir / entry["path"]))])


def _external(model: dict[str, Any], ref: str) -> Any:
    from cyclonedx.model.component import Component, ComponentType

    terms = model.get("output_terms")
    unknown = "license" in model and not model.get("license")  # said so: an absent license reads as not checked
    notes = [*([f"output terms: {terms}"] if terms else []), *(["license: unknown (the model folder names none)"]
                                                              if unknown else [])]
    return Component(name=model["model_ref"], version=model.get("revision") or None, bom_ref=ref,
                     type=ComponentType.MACHINE_LEARNING_MODEL, licenses=_licenses(model.get("license")),
                     hashes=[_hash(model["weights_sha256"])] if model.get("weights_sha256") else [],
                     description="; ".join(notes) or None)


def _model(artifact: dict[str, Any], manifest: Manifest, release_dir: Path) -> Any:
    from cyclonedx.model import Property
    from cyclonedx.model.component import Component, ComponentType

    folder = release_dir / artifact["path"]
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    largest = max(files, key=lambda p: p.stat().st_size)
    return Component(
        name=f"taxonomy-registry-{artifact['kind']}", version=manifest.version, bom_ref=artifact["path"],
        type=ComponentType.MACHINE_LEARNING_MODEL, licenses=_licenses(manifest.license),
        hashes=[_hash(file_sha256(largest))], description=f"{artifact['kind']} ({artifact['format']}); "
        f"the hash is of {largest.relative_to(release_dir).as_posix()}",
        properties=[Property(name="taxreg:file", value=f"{p.relative_to(release_dir).as_posix()} sha256:"
                             f"{file_sha256(p)}") for p in files])


def _add_ml_fields(document: dict[str, Any], manifest: Manifest) -> None:
    """The CycloneDX 1.6 parts the library cannot write: modelCard on models, data on datasets."""
    train = [d["path"] for d in manifest.inputs["datasets"] if d["split"] == "train"]
    parity = manifest.metrics.get("parity") or {}
    for component in document.get("components", []):
        if component["type"] == "data":
            component["data"] = [{"type": "dataset", "name": component["name"],
                                  "contents": {"url": component["bom-ref"]},
                                  "classification": "public", "governance": {"owners": [
                                      {"organization": {"name": "taxonomy contributors"}}]}}]
        elif component["bom-ref"].startswith("model/"):
            component["modelCard"] = {
                "modelParameters": {"approach": {"type": "supervised"}, "task": "text-generation",
                                    "datasets": [{"ref": ref} for ref in train]},
                "quantitativeAnalysis": {"performanceMetrics": _metrics(parity)}}


def _metrics(parity: dict[str, Any]) -> list[dict[str, str]]:
    found = []
    for variant, section in sorted(parity.get("variants", {}).items()):
        if isinstance(section, dict):
            found += [{"type": f"{variant}.{k}", "value": str(v)} for k, v in sorted(section.items())
                      if isinstance(v, int | float | bool)]
    return found
