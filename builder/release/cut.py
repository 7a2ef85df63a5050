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
from builder.release import bom, cards, disclosures, signing, spdx3
from builder.release.disclosures import provenance
from builder.settings import Disclosure
from registry import __version__, folders, source_date
from registry.catalog import builds, policy, publish, releases
from registry.catalog.connection import open_catalog, transaction
from registry.catalog.datasets import blocked_samples, dataset_samples, eligible_samples
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
    listed,
    read_manifest,
)
from registry.release.sums import file_sha256, format_sums

DATA_FILES = ("train.parquet", "test.parquet", "train.jsonl", "test.jsonl")
DATA_DOCS = ("README.md", "croissant.json")
# what a release ships of the model, as the catalog names kinds: the fp32 graph always, the other variants its export
# built, and the adapter they were merged from
MODEL_KINDS = ("adapter", "onnx", "onnx_int8", "onnx_int4")
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
    disclosure: Disclosure = field(default_factory=Disclosure)  # [provider]: what the disclosures cannot derive
    eval_thresholds: dict[str, float] | None = None  # taxreg.toml [eval]: what the evaluation must have used

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
    evaluation: dict[str, Any] | None  # model/evaluation.json; None: not evaluated (or a data-only release)
    license: str
    license_declared: bool  # False: the union of the source licenses stands in for a declared one
    released_at: datetime
    time_source: str  # what released_at came from, for the manifest's note
    catalog_state: str  # builds.catalog_state before the gates: checked again inside the commit


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
        _require_current(con, shipment)
        results = policy.run_checks(con, policy.PolicyInput(
            tuple(shipment.datasets[n].dataset_id for n in sorted(shipment.datasets)), shipment.license,
            options.policy, shipment.parity, frozenset(options.allow), shipment.license_declared,
            tuple(disclosures.gaps(con, [d.dataset_id for d in shipment.datasets.values()], options.disclosure)),
            options.disclosure.required,
            shipment.evaluation, shipment.model["onnx"][0]["artifact_id"] if shipment.model else None,
            options.eval_thresholds))
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
    evaluation = _evaluation(layout.model.evaluation) if options.with_model else None
    license = _release_license(options.license, datasets)
    released_at, time_source = source_date.stamp(con)
    return _Shipment(datasets, data_dir, model, parity, evaluation, license, options.license is not None, released_at,
                     time_source, builds.catalog_state(con))


def _require_current(con: Any, shipment: _Shipment) -> None:
    """The dataset must be what `taxreg dataset build` would write from the catalog now: else the manifest (its
    samples) and the audit copy (the catalog) would describe two different taxonomies. Samples a takedown keeps
    out are left to the takedown.excluded gate."""
    from builder.datasets import copies_of

    params = next(iter(shipment.datasets.values())).params
    mix = params.get("mix") or {}
    now = {s.sample_id for s in eligible_samples(con, params.get("run_id")) if copies_of(s, mix) > 0}
    shipped = dataset_samples(con, sorted({d.dataset_id for d in shipment.datasets.values()}))
    gone, new = shipped - now - blocked_samples(con), now - shipped
    if gone or new:
        raise RegistryError(
            f"{shipment.data_dir} is not the dataset of the catalog as it is now: {len(new)} kept sample(s) are not "
            f"in it and {len(gone)} of its samples no longer come from a current leaf (the catalog was indexed or "
            "generated again after the dataset was built)",
            hint="run `taxreg dataset build` again (or `taxreg build`), then cut")


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
    """The exported model (fp32 and the variants its export built) and, when the export merged it, the LoRA
    adapter; checked against disk."""
    found = releases.model_artifacts(con, MODEL_KINDS)
    if "onnx" not in found:
        raise RegistryError("no onnx model artifact in the catalog",
                            hint="run `taxreg export` first, or cut a data-only release with --no-model")
    parent = found["onnx"][0]["derived_from"]
    for kind in ("onnx_int8", "onnx_int4"):
        if kind in found and not folder.artifact(kind).is_dir():
            del found[kind]  # a variant an earlier export built: the last one did not (and removed its folder)
        elif kind in found and found[kind][0]["derived_from"] != parent:
            raise RegistryError(f"the fp32 and {kind} ONNX models in the catalog come from different exports",
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


def _evaluation(path: Path) -> dict[str, Any] | None:
    """The model folder's evaluation.json; None when the model was never evaluated."""
    if not path.is_file():
        return None
    loaded = _parity(path)
    if loaded.get("kind") != "taxonomy-registry/evaluation":
        raise RegistryError(f"{path} is not an evaluation written by `taxreg eval`", hint="run `taxreg eval` again")
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
    draft = provenance.stamp(_manifest(con, options, shipment, results, unsteady), disclosures.command(
        options.version, options.dataset, options.license, options.allow, options.with_model, bool(options.sign_key)))
    if shipment.model is not None:
        cards.write_model_card(release.model_card, draft)
    bom.write_bom(release.bom, draft, staging)
    spdx3.write_spdx(release.bom, draft, staging)
    if options.sign_key is not None:
        (staging / PUBLIC_KEY).write_bytes(signing.public_key_pem(options.sign_key))
    disclosures.write(con, staging, draft, disclosures.Inputs(options.build_dir, options.disclosure, options.sign_key))
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
    if shipment.evaluation is not None:
        shutil.copyfile(model.evaluation, shipped.evaluation)


def _manifest(con: Any, options: CutOptions, shipment: _Shipment, results: list[PolicyResult],
              unsteady: list[str]) -> Manifest:
    base = _base_model(con, shipment)
    ids = sorted(d.dataset_id for d in shipment.datasets.values())
    config = {"dataset": next(iter(shipment.datasets.values())).params, "release_license": shipment.license,
              "allowed_licenses": sorted(options.policy.allowed), "build": options.config}
    return Manifest(
        version=options.version, released_at=shipment.released_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        builder_version=__version__, license=shipment.license,
        inputs={**_taxonomy(con), "config": config, "config_sha256": canonical_sha256(config),
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
        metrics={"parity": _parity_metrics(shipment.parity),
                 **({"evaluation": _evaluation_metrics(shipment.evaluation, BuildLayout(options.build_dir).model)}
                    if shipment.evaluation is not None else {})} if shipment.parity is not None else {},
        policy=tuple(results), allowed=tuple(sorted(options.allow)), files=(),
        determinism=_determinism(con, shipment, unsteady),
        signature={"method": signing.METHOD, "path": SIGNATURE, "public_key": PUBLIC_KEY,
                   "public_key_sha256": signing.public_key_sha256(options.sign_key)} if options.sign_key else None)


def _parity_metrics(parity: dict[str, Any]) -> dict[str, Any]:
    """The verdict and figures of parity.json, without its check time and local paths (not reproducible)."""
    return {"passed": parity.get("passed"), "variants": parity.get("variants", {})}


def _evaluation_metrics(evaluation: dict[str, Any], model: ModelLayout) -> dict[str, Any]:
    """The digest of evaluation.json (shipped beside the model), its set, and the figures the model card shows."""
    guard = [row for row in evaluation.get("summary", []) if row.get("kind") == "guard"]
    return {"results_sha256": file_sha256(model.evaluation), "path": "evaluation.json",
            "eval_set_sha256": evaluation.get("eval_set_sha256"), "items": evaluation.get("items"),
            "models": evaluation.get("models"), "metrics": evaluation.get("metrics"),
            "summary": [row for row in evaluation.get("summary", []) if row.get("kind") != "guard"],
            "guard": guard, "empty": len(evaluation.get("empty") or []),
            "regressions": len(evaluation.get("regressions") or [])}


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


def _taxonomy(con: Any) -> dict[str, Any]:
    """The commit the catalog was indexed from, and when the tree held changes nobody committed (allowed with
    --allow taxonomy.dirty), which paths and the digest of the tree as it was."""
    tree = policy.last_tree(con)
    dirty = {"taxonomy_dirty": list(tree.dirty), "taxonomy_tree_sha256": tree.tree_sha256} if tree.dirty else {}
    return {"taxonomy_commit": tree.commit, **dirty}


def dirty_note(manifest: Manifest) -> str | None:
    """What a release cut from uncommitted changes is, in one sentence; None for one cut from a committed tree."""
    dirty = manifest.inputs.get("taxonomy_dirty") or []
    if not dirty:
        return None
    commit = str(manifest.inputs.get("taxonomy_commit"))
    shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
    return (f"cut from uncommitted changes to {len(dirty)} path(s) ({shown}): commit {commit[:12]} does not "
            f"hold them; the tree as it was has sha256 {manifest.inputs.get('taxonomy_tree_sha256')}, and the release "
            f"date {manifest.released_at} is that commit's (or SOURCE_DATE_EPOCH), not the edits'. Commit them "
            "and cut a new version to make it reproducible")


def _determinism(con: Any, shipment: _Shipment, unsteady: list[str]) -> dict[str, Any]:
    tree = policy.last_tree(con)
    dirty = [f"The taxonomy had {len(tree.dirty)} uncommitted change(s) (inputs.taxonomy_dirty, cut with --allow "
             f"taxonomy.dirty): commit {str(tree.commit)[:12]} does not reproduce it, and the release time is that "
             "commit's (or SOURCE_DATE_EPOCH), not the time of the edits."] if tree.dirty else []
    return {
        "source_date_epoch": source_date.from_environment(),
        "not_reproducible": unsteady,  # empty unless DuckDB wrote a header of a layout publish does not know
        "notes": [
            f"Timestamps come from {shipment.time_source}; files are written sorted.", *dirty,
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
    return listed(staging)


def _entry(staging: Path, relpath: str, reproducible: bool) -> FileEntry:
    path = staging / relpath
    return FileEntry(relpath, file_sha256(path), path.stat().st_size, reproducible)


def _commit(con: Any, staging: Path, target: Path, options: CutOptions, shipment: _Shipment, manifest: Manifest,
            digest: str, results: list[PolicyResult]) -> None:
    with transaction(con):
        if builds.catalog_state(con) != shipment.catalog_state:
            raise RegistryError(f"the catalog changed while release {options.version} was being cut (leaves, "
                                "datasets, takedowns or an index run): what the gates checked is not what it holds",
                                hint="nothing was released; run the cut again")
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
