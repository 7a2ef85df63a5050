"""`taxreg release diff A B`: two manifests compared, with each changed leaf's samples and seed examples read from
the releases' own audit Parquet (sample_lineage x dataset_member, seed_example), so a diff needs nothing but the
two folders; and the report a reader gets (`report_lines`)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import duckdb

from builder.layout import BuildLayout, ReleaseLayout
from registry.errors import RegistryError
from registry.release.diff import ReleaseDiff, SampleMap, SeedMap, ValueChange, diff_releases, file_groups
from registry.release.manifest import MANIFEST, Manifest, read_manifest

SHOWN_SAMPLES = 10  # sample ids listed per contribution and side (all of them in --format json)


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
    seeds = {**seed_examples(old, a), **seed_examples(new, b)}
    return diff_releases(a, b, samples_by_contribution(old, a), samples_by_contribution(new, b), seeds,
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


def seed_examples(folder: Path, manifest: Manifest) -> SeedMap:
    """(contribution_id, version_id) -> its seed examples in order, for the versions the release ships (from its
    audit copy; empty when absent)."""
    table = ReleaseLayout(folder).audit / "seed_example.parquet"
    if not table.is_file():
        return {}
    shipped = [[c.contribution_id, c.version_id] for c in manifest.contributions]
    with duckdb.connect() as con:
        rows = con.execute("""
            SELECT contribution_id, version_id, list((context, question, answer) ORDER BY ordinal)
            FROM read_parquet(?) WHERE [contribution_id, version_id] IN (SELECT unnest(?::VARCHAR[][]))
            GROUP BY 1, 2""", [str(table), shipped]).fetchall()
    return {(cid, vid): [tuple(e.values()) if isinstance(e, dict) else tuple(e) for e in examples]
            for cid, vid, examples in rows}


def report_lines(result: ReleaseDiff, files: bool = False) -> list[str]:
    """The diff as a reader wants it: each contribution with its changed text, then counts, inputs, gates and
    metrics in words (a metric worse beyond its threshold marked '!'), files summarised by folder (each with
    `files`)."""
    lines = [f"release {result.old} -> {result.new}"]
    for c in result.contributions:
        version = f"{_short(c.old_version)} -> {_short(c.new_version)}" if c.change == "changed" else \
            _short(c.new_version if c.change == "added" else c.old_version)
        lines.append(f"{c.change:<8} {c.contribution_id}  {version}  samples +{len(c.samples_added)} "
                     f"-{len(c.samples_removed)}")
        lines += [f"    {line}" for line in c.text_diff]
        for sign, ids in (("+", c.samples_added), ("-", c.samples_removed)):
            lines += [f"           {sign} {sample}" for sample in ids[:SHOWN_SAMPLES]]
            if len(ids) > SHOWN_SAMPLES:
                lines.append(f"           {sign} ... and {len(ids) - SHOWN_SAMPLES} more (--format json lists all)")
    for title, changes in (("samples", result.samples), ("license mix", result.license_mix),
                           ("declared", result.declared)):
        lines += [f"{title}: {name}: {old} -> {new}" for name, old, new in _expanded(changes)]
    lines += [f"gate {v.name}: {_policy(v.old)} -> {_policy(v.new)}" for v in result.policy]
    for v in result.metrics:
        mark = "! " if v.worse else ""
        lines.append(f"{mark}metrics: {v.name}: {_value(v.old, v.name)} -> {_value(v.new, v.name)}"
                     + (" (worse)" if v.worse else ""))
    lines += [f"effect {e.direction:<6} {e.subject} {e.metric}: {e.old_delta:+.4g} "
              f"[{e.old_interval[0]:+.4g}, {e.old_interval[1]:+.4g}] -> {e.new_delta:+.4g} "
              f"[{e.new_interval[0]:+.4g}, {e.new_interval[1]:+.4g}]" for e in result.effects]
    if result.files:
        groups = "; ".join(f"{group} " + ", ".join(f"{n} {what}" for what, n in counts.items() if n)
                           for group, counts in file_groups(result.files).items())
        lines.append(f"files: {len(result.files)} differ: {groups}")
        if files:
            lines += [f"  {v.name}: {_short(v.old)} -> {_short(v.new)}" for v in result.files]
    return lines


def _expanded(changes: list[ValueChange]) -> list[tuple[str, str, str]]:
    """Each change as (name, old, new) in words; objects compared field by field, so no dict is printed whole."""
    found = []
    for v in changes:
        if isinstance(v.old, dict) and isinstance(v.new, dict):
            for key in sorted(v.old.keys() | v.new.keys()):
                if v.old.get(key) != v.new.get(key):
                    found.append((f"{v.name}.{key}", _value(v.old.get(key)), _value(v.new.get(key))))
        else:
            found.append((v.name, _value(v.old, v.name), _value(v.new, v.name)))
    return found


def _value(value: Any, name: str = "") -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1%}" if name.endswith(("agreement", "share")) else f"{value:.3g}"
    if isinstance(value, list):
        return ", ".join(_value(x) for x in value) or "none"
    if isinstance(value, dict):
        named = value.get("model_ref") or value.get("name")
        return str(named) if named else json.dumps(value, sort_keys=True, default=str)
    return _short(value)


def _policy(outcome: Any) -> str:
    return "not checked" if outcome is None else str(outcome)


def _short(value: Any) -> str:
    text = "none" if value is None else str(value)
    return text[:12] if re.fullmatch(r"[0-9a-f]{64}", text) else text


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
