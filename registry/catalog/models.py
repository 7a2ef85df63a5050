"""Model directories as catalog rows: hashing an artifact, and recording a training or export run with what it read
and wrote (run, run_input, model_artifact, artifact_file, external_model), in one transaction.

An artifact's id is the sha256 of its sorted `relpath<TAB>sha256<LF>` list (catalog v003): the same files give the
same id wherever they lie. Hidden entries (`.cache/`, temp files) are not part of a model and are skipped.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from registry.catalog.columns import insert
from registry.catalog.connection import transaction
from registry.catalog.generation import RunInfo, _insert_run
from registry.licenses import normalize
from registry.model_folder import DEMO_NAME, ModelFolder

_BLOCK = 1 << 20


@dataclass(frozen=True, slots=True)
class ArtifactFile:
    relpath: str  # POSIX, relative to the artifact's folder
    sha256: str
    byte_size: int


@dataclass(frozen=True, slots=True)
class Artifact:
    artifact_id: str
    files: tuple[ArtifactFile, ...]

    @property
    def byte_size(self) -> int:
        return sum(f.byte_size for f in self.files)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def hash_directory(folder: Path) -> Artifact:
    """Every regular file under `folder` (hidden ones skipped), sorted, hashed; and the artifact id over them."""
    files = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        files.append(ArtifactFile(rel.as_posix(), file_sha256(path), path.stat().st_size))
    return Artifact(artifact_id(files), tuple(files))


def artifact_id(files: Iterable[ArtifactFile]) -> str:
    listing = "".join(f"{f.relpath}\t{f.sha256}\n" for f in sorted(files, key=lambda f: f.relpath))
    return hashlib.sha256(listing.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ExternalModel:
    """A base model as `external_model` holds it: a name, the revision (artifact id) and its license."""

    model_ref: str
    revision: str
    license_spdx: str | None
    weights_sha256: str
    output_terms: str | None = None
    demo: bool = False


def describe_base_model(folder: Path, artifact: Artifact) -> ExternalModel:
    """Name and license of a local model folder: the demo model by its mark, a hub snapshot by its path,
    anything else by its folder name; the license from the card's front matter when it has one."""
    model = ModelFolder.lenient(folder)
    revision = artifact.artifact_id
    tensors = [f for f in artifact.files if f.relpath.endswith(".safetensors")]
    weights = tensors[0].sha256 if len(tensors) == 1 else artifact_id(tensors)  # sharded: over the shard list
    if model.is_demo:
        return ExternalModel(f"{DEMO_NAME}@{revision[:16]}", revision, "Apache-2.0", weights, demo=True)
    resolved = folder.resolve()
    snapshot = re.fullmatch(r"models--([^/]+)--([^/]+)/snapshots/([0-9a-f]{7,64})", "/".join(resolved.parts[-3:]))
    if snapshot:
        name, revision = f"{snapshot[1]}/{snapshot[2]}", snapshot[3]
    else:
        name = str(model.config.get("_name_or_path") or "") or resolved.name
        name = f"{name}@{revision[:16]}"
    return ExternalModel(name, revision, folder_license(folder), weights)


LICENSE_FILES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "license", "license.txt", "COPYING")
# The opening words of license texts a model folder's LICENSE file holds, when its first line is not an SPDX id
LICENSE_TEXTS = (("apache license", "version 2.0", "Apache-2.0"), ("mit license", "", "MIT"),
                 ("bsd 3-clause license", "", "BSD-3-Clause"))


def folder_license(folder: Path) -> str | None:
    """A local model folder's license (SPDX), from the first of: its README's front matter (`license:`, the Hugging
    Face card's key; `license: other` with `license_name: NAME` gives LicenseRef-NAME), a LICENSE file (its first
    line an SPDX id, or the opening of the Apache-2.0, MIT or BSD-3-Clause text), config.json's `license`. None when
    none of them says."""
    return (_card_license(folder / "README.md") or _license_file(folder)
            or _spdx(ModelFolder.lenient(folder).config.get("license")))


def _card_license(card: Path) -> str | None:
    try:
        text = card.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    front = re.match(r"---\r?\n(.*?)\r?\n---", text, re.DOTALL)
    if not front:
        return None
    found = re.search(r"^license:\s*['\"]?([^'\"\n]+?)['\"]?\s*$", front[1], re.MULTILINE)
    named = re.search(r"^license_name:\s*['\"]?([A-Za-z0-9.-]+)['\"]?\s*$", front[1], re.MULTILINE)
    if found and found[1].strip().lower() == "other":
        return f"LicenseRef-{named[1]}" if named else None
    return _spdx(found[1]) if found else None


def _license_file(folder: Path) -> str | None:
    for name in LICENSE_FILES:
        try:
            text = (folder / name).read_text(encoding="utf-8")[:4096]
        except (OSError, UnicodeDecodeError):
            continue
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        first = lines[0] if lines else ""
        spdx = _spdx(first.removeprefix("SPDX-License-Identifier:")) if len(first) < 80 else None
        if spdx:
            return spdx
        opening = " ".join(lines[:4]).lower()
        for start, also, spdx_id in LICENSE_TEXTS:
            if opening.startswith(start) and also in opening:
                return spdx_id
    return None


def _spdx(value: Any) -> str | None:
    return normalize(value) if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class RunInput:
    input_kind: str  # dataset | model_artifact | external_model | contribution | document (init: the tokenizer's text)
    input_id: str
    role: str  # train | eval | base | adapter | tokenizer ...


@dataclass(frozen=True, slots=True)
class ModelArtifact:
    kind: str  # base | adapter | merged | onnx | onnx_int8 | onnx_int4 | tokenizer
    path: Path
    artifact: Artifact
    base_model: str  # the external model_ref it all derives from
    derived_from: str | None
    format: str  # safetensors | peft-lora | onnx
    metrics: dict[str, Any] | None = None


@dataclass(slots=True)
class ModelRun:
    """What `record_model_run` writes. `info.stage` is init (the demo base model), train or export."""

    run_id: str
    info: RunInfo
    started: datetime
    status: str  # succeeded | failed
    stats: dict[str, Any]
    inputs: list[RunInput] = field(default_factory=list)
    artifacts: list[ModelArtifact] = field(default_factory=list)
    external: list[ExternalModel] = field(default_factory=list)


def record_model_run(con: Any, run: ModelRun, before_commit: Callable[[], None] | None = None) -> None:
    """The run and its rows in one transaction. `before_commit` runs inside it (e.g. renaming outputs into place),
    so the catalog never names files that are not there. Artifact rows are append-only (first writer wins)."""
    with transaction(con):
        _insert_run(con, run.run_id, run.info, run.started, run.status, run.stats)
        _insert_external(con, run.external)
        insert(con, "run_input", {"run_id": [run.run_id] * len(run.inputs),
                                  "input_kind": [i.input_kind for i in run.inputs],
                                  "input_id": [i.input_id for i in run.inputs], "role": [i.role for i in run.inputs]})
        _insert_artifacts(con, run.run_id, run.artifacts)
        if before_commit is not None:
            before_commit()


def _insert_external(con: Any, models: list[ExternalModel]) -> None:
    insert(con, "external_model", {
        "model_ref": [m.model_ref for m in models], "revision": [m.revision for m in models],
        "license_spdx": [m.license_spdx for m in models], "output_terms": [m.output_terms for m in models],
        "weights_sha256": [m.weights_sha256 for m in models]})


def _insert_artifacts(con: Any, run_id: str, artifacts: list[ModelArtifact]) -> None:
    now = datetime.now(UTC)
    insert(con, "model_artifact", {
        "artifact_id": [a.artifact.artifact_id for a in artifacts], "run_id": [run_id] * len(artifacts),
        "kind": [a.kind for a in artifacts], "base_model": [a.base_model for a in artifacts],
        "derived_from": [a.derived_from for a in artifacts], "format": [a.format for a in artifacts],
        "path": [str(a.path) for a in artifacts], "sha256": [a.artifact.artifact_id for a in artifacts],
        "byte_size": [a.artifact.byte_size for a in artifacts],
        "metrics": [None if a.metrics is None else json.dumps(a.metrics, sort_keys=True) for a in artifacts],
        "created_at": [now] * len(artifacts)})
    files = [(a.artifact.artifact_id, f) for a in artifacts for f in a.artifact.files]
    insert(con, "artifact_file", {"artifact_id": [i for i, _ in files], "relpath": [f.relpath for _, f in files],
                                  "sha256": [f.sha256 for _, f in files], "byte_size": [f.byte_size for _, f in files]})


def recorded_datasets(con: Any, sha256s: Iterable[str]) -> set[str]:
    """Which of these dataset file hashes the catalog knows (dataset_id = sha256 of the file)."""
    wanted = sorted(set(sha256s))
    if not wanted:
        return set()
    rows = con.execute("SELECT dataset_id FROM dataset WHERE dataset_id IN (SELECT unnest(?))", [wanted]).fetchall()
    return {r[0] for r in rows}
