"""`taxreg release cut VERSION`: gates, then build/releases/VERSION/ assembled in a temporary folder and renamed.

Order of work, so that a kill at any point leaves either no release or a whole one:
1. every policy gate runs; a blocking failure is recorded in `policy_check` and stops the cut;
2. files are copied and written into `releases/.tmp-VERSION-*/VERSION/` (stale ones are removed next time);
3. one catalog transaction records the checks, the release and its artifacts; the folder is renamed into
   place inside it, and the transaction commits right after. A folder that got renamed but not recorded
   (a kill in between) is adopted by the next cut of that version once it verifies.
The caller holds the build directory's lock (`builder.buildlock`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from builder.layout import DEFAULT, BuildLayout, ModelLayout, ReleaseLayout
from builder.release import bom, cards, signing, spdx3
from registry import __version__, folders, source_date
from registry.catalog import policy, publish, releases
from registry.catalog.connection import open_catalog, transaction
from registry.catalog.reproducible import Steady
from registry.errors import RegistryError
from registry.licenses import LicensePolicy, normalize
from registry.model_folder import DEMO_NAME, ModelFolder
from registry.release import versions
from registry.release.canonical import canonical_sha256
from registry.release.integrity import check_files
from registry.release.manifest import (
    MANIFEST,
    PUBLIC_KEY,
    SIGNATURE,
    SUMS,
    FileEntry,
    Manifest,
    PolicyResult,
    read_manifest,
)
from registry.release.sums import file_sha256, format_sums

DATA_FILES = ("train.parquet", "test.parquet", "train.jsonl", "test.jsonl")
DATA_DOCS = ("README.md", "croissant.json")
MODEL_KINDS = ("adapter", "onnx", "onnx_int8")  # what a release ships of the model, as the catalog names kinds
PAUSE_ENV = "TAXREG_TEST_PAUSE_AT"  # tests: "<checkpoint>:<marker file>" makes a cut stop there, to be killed


@dataclass(frozen=True, slots=True)
class CutOptions:
    version: str
    build_dir: Path = DEFAULT.root
    dataset: str = "default"
    license: str | None = None  # SPDX expression; None: the union of the source licenses (recorded as a warning)
    allow: tuple[str, ...] = ()
    sign_key: Path | None = None
    with_model: bool = True
    build_id: str | None = None
    policy: LicensePolicy = field(default_factory=LicensePolicy)
    config: dict[str, Any] = field(default_factory=dict)  # the build's own settings, recorded as inputs

    def __post_init__(self) -> None:
        versions.check_version(self.version)


@dataclass(frozen=True, slots=True)
class CutOutcome:
    folder: Path
    manifest: Manifest
    manifest_sha256: str
    recovered: bool = False  # a folder left by a killed cut, verified and recorded now


@dataclass(slots=True)
class _Shipment:
    """What the release will hold, gathered from the build directory and the catalog before writing."""
    datasets: dict[str, releases.DatasetFile]  # file name -> dataset row
    data_dir: Path
    model: dict[str, tuple[dict[str, Any], dict[str, str]]] | None
    parity: dict[str, Any] | None
    license: str
    license_declared: bool  # False: the union of the source licenses stands in for a declared one
    released_at: datetime
    time_source: str  # what released_at came from, for the manifest's note


def cut_release(options: CutOptions) -> CutOutcome:
    layout = BuildLayout(options.build_dir)
    root, target = layout.releases, layout.release(options.version)
    root.mkdir(parents=True, exist_ok=True)
    remove_stale(root)
    with open_catalog(layout.catalog) as con:
        if target.exists():
            return _adopt(con, target, options)
        if releases.release_exists(con, options.version):
            raise versions.taken(options.version, options.build_dir, f" (in the catalog, but {target} is gone)",
                                 hint="restore the folder from a copy, or cut a new version")
        versions.refuse_case_twin(root, options.version)
        folders.require_writable(target, "release folder")  # before the gates are recorded, not at the first write
        shipment = _gather(con, options)
        results = policy.run_checks(con, policy.PolicyInput(
            tuple(shipment.datasets[n].dataset_id for n in sorted(shipment.datasets)), shipment.license,
            options.policy, shipment.parity, frozenset(options.allow), shipment.license_declared))
        if policy.blocking(results):
            policy.record_checks(con, results, options.build_id, options.version, datetime.now(UTC))
            raise policy.refusal(options.version, results)
        with folders.building(target) as staging:
            manifest = _assemble(con, staging, options, shipment, results)
            _checkpoint("assembled")
            digest = file_sha256(staging / MANIFEST)
            releases.mark_pending(con, options.version, digest)  # what an interrupted cut may adopt: this, only
            _commit(con, staging, target, options, shipment, manifest, digest, results)
        return CutOutcome(target, manifest, digest)


def remove_stale(root: Path) -> list[Path]:
    """Temporary folders of cuts that were killed (the caller holds the lock, so none is in use): `.tmp-*` from
    earlier versions, and `folders.building`'s."""
    stale = sorted(root.glob(".tmp-*"))
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale + folders.remove_stale(root, re.compile(r"\..+-(?:new|old)-(\d+)-[0-9a-f]{12}", re.ASCII))


def _gather(con: Any, options: CutOptions) -> _Shipment:
    layout = BuildLayout(options.build_dir)
    data_dir = layout.dataset(options.dataset)
    datasets = _datasets(con, data_dir)
    model = _model(con, layout.model) if options.with_model else None
    parity = _parity(layout.model.parity) if options.with_model else None
    license = _release_license(options.license, datasets)
    released_at, time_source = source_date.stamp(con)
    return _Shipment(datasets, data_dir, model, parity, license, options.license is not None, released_at,
                     time_source)


def _datasets(con: Any, folder: Path) -> dict[str, releases.DatasetFile]:
    missing = [name for name in (*DATA_FILES, *DATA_DOCS) if not (folder / name).is_file()]
    if missing:
        raise RegistryError(f"{folder} lacks {', '.join(missing)}", hint="run `taxreg dataset build` first")
    hashes = {name: file_sha256(folder / name) for name in DATA_FILES}
    rows = releases.dataset_files(con, list(hashes.values()))
    unknown = [name for name, sha in hashes.items() if sha not in rows]
    if unknown:
        raise RegistryError(f"{', '.join(str(folder / n) for n in unknown)}: not the file(s) the catalog recorded",
                            hint="run `taxreg dataset build` again so files and catalog agree")
    return {name: rows[sha] for name, sha in hashes.items()}


def _model(con: Any, folder: ModelLayout) -> dict[str, tuple[dict[str, Any], dict[str, str]]]:
    """The exported model (fp32 + int8) and, when the export merged it, the LoRA adapter; checked against disk."""
    found = releases.model_artifacts(con, MODEL_KINDS)
    lacking = [kind for kind in ("onnx", "onnx_int8") if kind not in found]
    if lacking:
        raise RegistryError(f"no {' or '.join(lacking)} model artifact in the catalog",
                            hint="run `taxreg export` first, or cut a data-only release with --no-model")
    parent = found["onnx"][0]["derived_from"]
    if found["onnx_int8"][0]["derived_from"] != parent:
        raise RegistryError("the fp32 and int8 ONNX models in the catalog come from different exports",
                            hint="run `taxreg export` again")
    if "adapter" in found and found["adapter"][0]["artifact_id"] != parent:
        del found["adapter"]  # an older training run's adapter: not what the ONNX model was merged from
    for kind, (_, files) in found.items():
        directory = folder.artifact(kind)
        for relpath, sha in files.items():
            path = directory / relpath
            if not path.is_file() or file_sha256(path) != sha:
                raise RegistryError(f"{path} is missing or differs from the {kind} artifact the catalog recorded",
                                    hint="run `taxreg export` again (or `taxreg train` for the adapter)")
    return found


def _parity(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RegistryError(f"cannot read {path}: {exc}", hint="run `taxreg export` first") from None
    if not isinstance(loaded, dict):
        raise RegistryError(f"{path} is not a JSON object")
    return loaded


def declared_license(declared: str) -> str:
    """The SPDX expression of a --license value, or a clear error."""
    spdx = normalize(declared)
    if spdx is None:
        raise RegistryError(f"--license {declared!r} is not an SPDX license expression",
                            hint="e.g. CC-BY-4.0 or 'CC-BY-4.0 AND Apache-2.0'")
    return spdx


def _release_license(declared: str | None, datasets: dict[str, releases.DatasetFile]) -> str:
    if declared is not None:
        return declared_license(declared)
    rolled = {d.license_expression or "UNKNOWN" for d in datasets.values()}
    return " AND ".join(sorted(rolled))


def _assemble(con: Any, staging: Path, options: CutOptions, shipment: _Shipment,
              results: list[PolicyResult]) -> Manifest:
    release = ReleaseLayout(staging)
    release.data.mkdir(parents=True)
    for name in (*DATA_FILES, *DATA_DOCS):
        shutil.copyfile(shipment.data_dir / name, release.data / name)
    if shipment.model is not None:
        _copy_model(BuildLayout(options.build_dir).model, staging, shipment)
    # The public copy the site publishes, reproducible from the same inputs (registry.catalog.reproducible)
    audit = publish.write_release_audit(con, release.audit,
                                        Steady(shipment.released_at, options.build_dir.resolve()))
    unsteady = sorted(release.relpath(release.audit / f.relpath) for f in audit if not f.reproducible)
    draft = _manifest(con, options, shipment, results, unsteady)
    if shipment.model is not None:
        cards.write_model_card(release.model_card, draft)
    bom.write_bom(release.bom, draft, staging)
    spdx3.write_spdx(release.bom, draft, staging)
    if options.sign_key is not None:
        (staging / PUBLIC_KEY).write_bytes(signing.public_key_pem(options.sign_key))
    manifest = draft.with_files([_entry(staging, p, p not in set(unsteady)) for p in _listed(staging)])
    (staging / MANIFEST).write_bytes(manifest.to_bytes())
    sums = [(p, file_sha256(staging / p)) for p in [*_listed(staging), MANIFEST]]
    (staging / SUMS).write_text(format_sums(sums), encoding="utf-8")
    if options.sign_key is not None:
        signing.sign(staging, options.sign_key)
    return manifest


def _copy_model(model: ModelLayout, staging: Path, shipment: _Shipment) -> None:
    assert shipment.model is not None
    shipped = ReleaseLayout(staging)
    for kind, (_, files) in sorted(shipment.model.items()):
        for relpath in sorted(files):
            target = shipped.model.artifact(kind) / relpath
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(model.artifact(kind) / relpath, target)
    shutil.copyfile(model.parity, shipped.parity)


def _manifest(con: Any, options: CutOptions, shipment: _Shipment, results: list[PolicyResult],
              unsteady: list[str]) -> Manifest:
    base = _base_model(con, shipment)
    ids = sorted(d.dataset_id for d in shipment.datasets.values())
    config = {"dataset": next(iter(shipment.datasets.values())).params, "release_license": shipment.license,
              "allowed_licenses": sorted(options.policy.allowed), "build": options.config}
    return Manifest(
        version=options.version, released_at=shipment.released_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        builder_version=__version__, license=shipment.license,
        inputs={"taxonomy_commit": _taxonomy_commit(con), "config": config, "config_sha256": canonical_sha256(config),
                "seeds": {"generation": releases.generation_seeds(con, ids),
                          "training": _training_seed(BuildLayout(options.build_dir).model)},
                "base_model": base, "teacher_models": releases.teachers(con, ids),
                "datasets": [{"dataset_id": d.dataset_id, "name": d.name, "split": d.split, "format": d.format,
                              "rows": d.rows, "path": _shipped(ReleaseLayout(Path()).data / name)}
                             for name, d in sorted(shipment.datasets.items())]},
        model=_model_entry(shipment, base),
        contributions=tuple(releases.shipped_contributions(con, ids)),
        samples=releases.shipped_samples(con, ids),
        license_mix=tuple(releases.license_mix(con, ids)),
        metrics={"parity": _parity_metrics(shipment.parity)} if shipment.parity is not None else {},
        policy=tuple(results), allowed=tuple(sorted(options.allow)), files=(),
        determinism=_determinism(shipment, unsteady),
        signature={"method": signing.METHOD, "path": SIGNATURE, "public_key": PUBLIC_KEY,
                   "public_key_sha256": signing.public_key_sha256(options.sign_key)} if options.sign_key else None)


def _parity_metrics(parity: dict[str, Any]) -> dict[str, Any]:
    """The verdict and figures of parity.json, without its check time and local paths (not reproducible)."""
    return {"passed": parity.get("passed"), "variants": parity.get("variants", {})}


def _model_entry(shipment: _Shipment, base: dict[str, Any] | None) -> dict[str, Any] | None:
    if shipment.model is None:
        return None
    infos = [info for info, _ in shipment.model.values()]
    relation = "finetune" if "adapter" in shipment.model else "quantized"  # no adapter: the base, converted
    return {"base_model": (base or {}).get("model_ref"), "base_model_relation": relation,
            "artifacts": [{"kind": i["kind"], "artifact_id": i["artifact_id"], "format": i["format"],
                           "path": _shipped(ReleaseLayout(Path()).model.artifact(i["kind"])),
                           "derived_from": i["derived_from"],
                           "files": len(shipment.model[i["kind"]][1])} for i in sorted(infos, key=lambda i: i["kind"])]}


def _base_model(con: Any, shipment: _Shipment) -> dict[str, Any] | None:
    """The base model by a name, never by a local path (paths differ between machines)."""
    if shipment.model is None:
        return None
    ref = next(iter(shipment.model.values()))[0]["base_model"]
    known = releases.external_model(con, ref)
    if known is not None:
        return known
    folder = Path(ref)
    if not folder.is_dir():
        return {"model_ref": ref}
    demo = ModelFolder.lenient(folder).is_demo
    weights = folder / "model.safetensors"
    return {"model_ref": DEMO_NAME if demo else folder.name, "demo": demo, "revision": None, "license": None,
            "output_terms": None, "weights_sha256": file_sha256(weights) if weights.is_file() else None}


def _json_file(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _training_seed(model: ModelLayout) -> Any:
    config = _json_file(model.adapter / "training_config.json")
    params = config.get("params")
    return params.get("seed") if isinstance(params, dict) else config.get("seed")


def _taxonomy_commit(con: Any) -> str | None:
    rows = con.execute("SELECT taxonomy_commit FROM index_run ORDER BY finished_at DESC LIMIT 1").fetchall()
    return rows[0][0] if rows else None


def _determinism(shipment: _Shipment, unsteady: list[str]) -> dict[str, Any]:
    return {
        "source_date_epoch": source_date.from_environment(),
        "not_reproducible": unsteady,  # empty unless DuckDB wrote a header of a layout publish does not know
        "notes": [
            f"Timestamps come from {shipment.time_source}; files are written sorted.",
            "Every file is byte-reproducible from the same inputs on the same platform (a file listed with "
            "reproducible: false is not); compare two builds with `taxreg release diff` (reproducible: yes).",
            "audit/ is a snapshot of the catalog with its wall-clock times clamped to the release time, random run "
            "ids replaced, durations nulled and build-folder paths made relative: its catalog_meta says how.",
            *(["Model weights come from CPU training with deterministic algorithms and fixed seeds; on other "
               "platforms nondeterministic kernels may change them."] if shipment.model is not None else
              ["Data-only release (--no-model): no model files."]),
        ]}


def _shipped(relative: Path) -> str:
    """A release path as the manifest names it ('/'-separated, relative to the release folder)."""
    return relative.as_posix()


def _listed(staging: Path) -> list[str]:
    """Every file SHA256SUMS lists, except the manifest itself (sorted, '/'-separated)."""
    skip = {MANIFEST, SUMS, SIGNATURE}
    return sorted((p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file()
                   and p.relative_to(staging).as_posix() not in skip), key=str.encode)


def _entry(staging: Path, relpath: str, reproducible: bool) -> FileEntry:
    path = staging / relpath
    return FileEntry(relpath, file_sha256(path), path.stat().st_size, reproducible)


def _commit(con: Any, staging: Path, target: Path, options: CutOptions, shipment: _Shipment, manifest: Manifest,
            digest: str, results: list[PolicyResult]) -> None:
    with transaction(con):
        policy.record_checks(con, results, options.build_id, options.version, datetime.now(UTC))
        releases.record_release(con, manifest, str(target), digest, options.build_id, _artifacts(manifest),
                                shipment.released_at)
        releases.clear_pending(con, options.version)
        folders.swap_into_place((staging, target))
        _checkpoint("renamed")


def _artifacts(manifest: Manifest) -> list[releases.ReleaseArtifact]:
    """Each listed file as a dataset file, a file of a model artifact, or a plain file."""
    datasets = {d["path"]: d["dataset_id"] for d in manifest.inputs["datasets"]}
    models = [(a["path"] + "/", a["artifact_id"]) for a in (manifest.model or {}).get("artifacts", [])]
    found = []
    for f in manifest.files:
        model = next((artifact for prefix, artifact in models if f.path.startswith(prefix)), None)
        kind, ref = ("dataset", datasets[f.path]) if f.path in datasets else \
            ("model_artifact", model) if model else ("file", f.sha256)
        found.append(releases.ReleaseArtifact(kind, ref, f.path, f.sha256))
    return found


def _adopt(con: Any, target: Path, options: CutOptions) -> CutOutcome:
    """The folder exists: refuse (versions are never overwritten) unless a killed cut left it unrecorded."""
    if releases.release_exists(con, options.version):
        raise versions.taken(options.version, options.build_dir)
    manifest, differences = check_files(target)
    if manifest is None or differences or manifest.version != options.version:
        raise RegistryError(f"{target} exists but is not a complete release of {options.version}",
                            hint="move it away (it is not in the catalog) and cut again")
    digest = file_sha256(target / MANIFEST)
    if releases.pending(con, options.version) != digest:  # hand-made, or another catalog's: never adopted
        raise RegistryError(f"{target} exists but no interrupted cut of {options.version} in this catalog wrote it; "
                            "it is not adopted as a release", hint="move it away (it is not in the catalog) and cut "
                                                                   "again")
    released = datetime.strptime(manifest.released_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    with transaction(con):
        releases.clear_pending(con, options.version)
        policy.record_checks(con, list(manifest.policy), options.build_id, options.version, datetime.now(UTC))
        releases.record_release(con, manifest, str(target), digest, options.build_id, _artifacts(manifest), released)
    return CutOutcome(target, read_manifest(target)[0], digest, recovered=True)


def _checkpoint(name: str) -> None:
    """Test hook: with TAXREG_TEST_PAUSE_AT=name:marker, touch the marker and stop here until killed."""
    point, _, marker = os.environ.get(PAUSE_ENV, "").partition(":")
    if point == name and marker:
        Path(marker).touch()
        time.sleep(600)
