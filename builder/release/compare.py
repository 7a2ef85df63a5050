"""`taxreg release diff A B`: two manifests compared, with each changed leaf's samples read from the releases'
own audit Parquet (sample_lineage x dataset_member), so a diff needs nothing but the two folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from builder.layout import BuildLayout, ReleaseLayout
from registry.errors import RegistryError
from registry.release.diff import ReleaseDiff, SampleMap, diff_releases
from registry.release.manifest import MANIFEST, Manifest, read_manifest


def locate(build_dir: Path, release: str) -> Path:
    """A release folder given as a path, or as a version under BUILD/releases/."""
    path = Path(release)
    if (path / MANIFEST).is_file():
        return path
    layout = BuildLayout(build_dir)
    if (layout.release(release) / MANIFEST).is_file():
        return layout.release(release)
    raise RegistryError(f"no release {release!r}: neither a release folder nor a version in {layout.releases}",
                        hint="list them with `taxreg release list`")


def diff_folders(old: Path, new: Path) -> ReleaseDiff:
    a, _ = read_manifest(old)
    b, _ = read_manifest(new)
    return diff_releases(a, b, samples_by_contribution(old, a), samples_by_contribution(new, b),
                         evaluation_of(old), evaluation_of(new))


def evaluation_of(folder: Path) -> dict[str, Any]:
    """The release's evaluation.json ({} when it shipped none: a data-only release, or cut before evaluation)."""
    path = ReleaseLayout(folder).evaluation
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise RegistryError(f"cannot read {path}: {exc}", hint="check the release with `taxreg release verify`") \
            from None
    return loaded if isinstance(loaded, dict) else {}


def samples_by_contribution(folder: Path, manifest: Manifest) -> SampleMap:
    """contribution_id -> the sample ids the release ships, from its audit Parquet (empty when absent)."""
    audit = ReleaseLayout(folder).audit
    lineage, members = audit / "sample_lineage.parquet", audit / "dataset_member.parquet"
    if not (lineage.is_file() and members.is_file()):
        return {}
    ids = [d["dataset_id"] for d in manifest.inputs["datasets"]]
    with duckdb.connect() as con:
        rows = con.execute("""
            SELECT l.contribution_id, list(DISTINCT l.sample_id ORDER BY l.sample_id)
            FROM read_parquet(?) l
            WHERE l.contribution_id IS NOT NULL AND l.sample_id IN (
                SELECT sample_id FROM read_parquet(?) WHERE dataset_id IN (SELECT unnest(?::VARCHAR[])))
            GROUP BY 1""", [str(lineage), str(members), ids]).fetchall()
    return {cid: frozenset(samples) for cid, samples in rows}
