"""bom/spdx.json: the release as SPDX 3.0.1 JSON-LD (AI and Dataset profiles), written with `spdx-python-model`.

Models are `ai_AIPackage`s `trainedOn`/`testedOn` the dataset files (`dataset_DatasetPackage`), descended
from the base model; teachers `generates` the datasets they wrote samples for. The library refuses missing
required properties and wrong types when it serializes; the full SHACL check (`spdx3-validate`) needs the
network, so it is not run here. Ids are URNs of the release version: the same release gives the same bytes.
"""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from typing import Any

from registry import __version__
from registry.release.manifest import Manifest
from registry.release.sums import file_sha256

SPDX_FILE = "spdx.json"


def write_spdx(folder: Path, manifest: Manifest, release_dir: Path) -> Path:
    from spdx_python_model import v3_0_1 as spdx

    objects = _Document(spdx, manifest, release_dir).build()
    buffer = io.BytesIO()
    spdx.JSONLDSerializer().write(objects, buffer, indent=1)
    path = folder / SPDX_FILE
    path.write_bytes(buffer.getvalue() + b"\n")
    return path


class _Document:
    def __init__(self, spdx: Any, manifest: Manifest, release_dir: Path) -> None:
        self.spdx, self.manifest, self.release_dir = spdx, manifest, release_dir
        self.when = datetime.strptime(manifest.released_at, "%Y-%m-%dT%H:%M:%SZ").astimezone()
        self.objects = spdx.SHACLObjectSet()
        self.info = spdx.CreationInfo()
        self.info.specVersion = "3.0.1"
        self.info.created = self.when
        self.org = self._add(spdx.Organization(), "agent/contributors", "Taxonomy Registry contributors")
        self.tool = self._add(spdx.Tool(), "tool/taxonomy-registry", f"taxonomy-registry {__version__}")
        self.info.createdBy = [self.org]
        self.info.createdUsing = [self.tool]
        self.relations = 0

    def build(self) -> Any:
        s, m = self.spdx, self.manifest
        datasets = {d["path"]: self._dataset(d) for d in m.inputs["datasets"]}
        models = [self._model(a) for a in (m.model or {}).get("artifacts", [])]
        base = self._external(m.inputs["base_model"], "base-model") if m.inputs.get("base_model") else None
        teachers = [self._external(t, f"teacher/{t['model_ref']}") for t in m.inputs["teacher_models"]]
        license = self._add(s.simplelicensing_LicenseExpression(), "license", None)
        license.simplelicensing_licenseExpression = m.license
        packages = [*datasets.values(), *models]
        self._relate(packages, s.RelationshipType.hasDeclaredLicense, [license])
        for teacher in teachers:
            self._relate([teacher], s.RelationshipType.generates, list(datasets.values()))
        for model in models:
            self._relate([model], s.RelationshipType.trainedOn, [d for p, d in datasets.items() if "/train." in p])
            self._relate([model], s.RelationshipType.testedOn, [d for p, d in datasets.items() if "/test." in p])
            if base is not None:
                self._relate([model], s.RelationshipType.descendantOf, [base])
        document = self._add(s.SpdxDocument(), "document", f"taxonomy-registry release {m.version}")
        document.profileConformance = [s.ProfileIdentifierType.core, s.ProfileIdentifierType.software,
                                       s.ProfileIdentifierType.ai, s.ProfileIdentifierType.dataset]
        document.rootElement = packages
        document.element = sorted((o for o in self.objects.objects if o is not document and hasattr(o, "spdxId")),
                                  key=lambda o: str(o._id))  # a set: sorted so equal releases give equal bytes
        return self.objects

    def _add(self, obj: Any, name: str, title: str | None) -> Any:
        obj._id = f"urn:taxonomy-registry:release:{self.manifest.version}:{name}"
        obj.creationInfo = self.info
        if title is not None:
            obj.name = title
        self.objects.add(obj)
        return obj

    def _package(self, obj: Any, name: str, title: str, path: str | None) -> Any:
        package = self._add(obj, name, title)
        package.software_packageVersion = self.manifest.version
        package.suppliedBy = self.org
        package.releaseTime = self.when
        if path is not None:
            digest = self.spdx.Hash()
            digest.algorithm = self.spdx.HashAlgorithm.sha256
            digest.hashValue = file_sha256(self.release_dir / path)
            package.verifiedUsing = [digest]
            package.comment = f"file {path} of the release"
        return package

    def _dataset(self, entry: dict[str, Any]) -> Any:
        s = self.spdx
        package = self._package(s.dataset_DatasetPackage(), entry["path"],
                                f"{entry['name']}/{entry['split']}.{entry['format']}", entry["path"])
        package.software_primaryPurpose = s.software_SoftwarePurpose.data
        package.dataset_datasetType = [s.dataset_DatasetType.text]
        package.originatedBy = [self.org]
        package.builtTime = self.when
        package.dataset_datasetSize = (self.release_dir / entry["path"]).stat().st_size
        package.dataset_intendedUse = "Fine-tuning and evaluating language models on the taxonomy's knowledge " \
                                      "and skills."
        return package

    def _model(self, artifact: dict[str, Any]) -> Any:
        s = self.spdx
        folder = self.release_dir / artifact["path"]
        largest = max((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
        package = self._package(s.ai_AIPackage(), artifact["path"], f"taxonomy-registry-{artifact['kind']}",
                                largest.relative_to(self.release_dir).as_posix())
        package.software_primaryPurpose = s.software_SoftwarePurpose.model
        package.ai_typeOfModel = ["transformer language model", f"{artifact['kind']} ({artifact['format']})"]
        package.ai_informationAboutTraining = "LoRA fine-tune on the release's data/train files; see manifest.json."
        package.ai_domain = ["text generation"]
        package.ai_metric = [self._entry(k, v) for k, v in _figures(self.manifest).items()]
        return package

    def _external(self, model: dict[str, Any], name: str) -> Any:
        """A base or teacher model: its name, revision (a local folder's artifact id), weights' sha256, license."""
        s = self.spdx
        package = self._add(s.ai_AIPackage(), name, model["model_ref"])
        if model.get("revision"):
            package.software_packageVersion = str(model["revision"])
        if model.get("weights_sha256"):
            digest = s.Hash()
            digest.algorithm, digest.hashValue = s.HashAlgorithm.sha256, str(model["weights_sha256"])
            package.verifiedUsing = [digest]
        notes = [f"output terms: {model['output_terms']}"] if model.get("output_terms") else []
        if model.get("license"):
            license = self._add(s.simplelicensing_LicenseExpression(), f"{name}/license", None)
            license.simplelicensing_licenseExpression = str(model["license"])
            self._relate([package], s.RelationshipType.hasDeclaredLicense, [license])
        elif "license" in model:
            notes.append("license: unknown (the model folder names none)")
        if notes:
            package.comment = "; ".join(notes)
        return package

    def _entry(self, key: str, value: Any) -> Any:
        entry = self.spdx.DictionaryEntry()
        entry.key, entry.value = key, str(value)
        return entry

    def _relate(self, sources: list[Any], kind: Any, targets: list[Any]) -> None:
        if not targets:
            return
        for source in sources:
            self.relations += 1
            relation = self._add(self.spdx.Relationship(), f"relationship/{self.relations}", None)
            relation.from_, relation.relationshipType, relation.to = source, kind, targets


def _figures(manifest: Manifest) -> dict[str, Any]:
    variants = (manifest.metrics.get("parity") or {}).get("variants", {})
    return {f"{variant}.{k}": v for variant, section in sorted(variants.items()) if isinstance(section, dict)
            for k, v in sorted(section.items()) if isinstance(v, int | float | bool)}
