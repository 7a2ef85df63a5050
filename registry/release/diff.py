"""What changed between two releases: contributions and their samples, counts, license mix, declared inputs
(license, --allow overrides, taxonomy commit, base and teacher models), policy results, metrics, files."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from registry.release.manifest import Manifest, reproducible_view

SampleMap = Mapping[str, frozenset[str]]  # contribution_id -> sample ids shipped in the release


@dataclass(frozen=True, slots=True)
class ContributionChange:
    contribution_id: str
    change: str  # added | removed | changed
    old_version: str | None
    new_version: str | None
    samples_added: tuple[str, ...] = ()
    samples_removed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EffectChange:
    """A contribution (or the guard set) whose effect on the model changed beyond both releases' intervals."""

    subject: str  # contribution id, or "guard"
    metric: str
    old_delta: float
    old_interval: tuple[float, float]
    new_delta: float
    new_interval: tuple[float, float]
    direction: str  # better | worse (for the model: nll going down is better)


@dataclass(frozen=True, slots=True)
class ValueChange:
    name: str
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class ReleaseDiff:
    old: str
    new: str
    contributions: list[ContributionChange] = field(default_factory=list)
    samples: list[ValueChange] = field(default_factory=list)
    license_mix: list[ValueChange] = field(default_factory=list)
    declared: list[ValueChange] = field(default_factory=list)  # license, allowed, taxonomy commit, models
    policy: list[ValueChange] = field(default_factory=list)  # "rule subject": outcome (None: not checked)
    metrics: list[ValueChange] = field(default_factory=list)
    files: list[ValueChange] = field(default_factory=list)  # path: old sha256 -> new sha256 (None: absent)
    reproducible_match: bool = False  # same inputs and outputs apart from the non-reproducible files
    effects: list[EffectChange] = field(default_factory=list)  # evaluation: effects that changed beyond noise

    @property
    def empty(self) -> bool:
        return not (self.contributions or self.samples or self.license_mix or self.declared or self.policy
                    or self.metrics or self.files or self.effects)


def diff_releases(old: Manifest, new: Manifest, old_samples: SampleMap | None = None,
                  new_samples: SampleMap | None = None, old_evaluation: Mapping[str, Any] | None = None,
                  new_evaluation: Mapping[str, Any] | None = None) -> ReleaseDiff:
    return ReleaseDiff(
        old.version, new.version,
        contributions=_contributions(old, new, old_samples or {}, new_samples or {}),
        samples=_changes(old.samples, new.samples),
        license_mix=_changes(_mix(old), _mix(new)),
        declared=_changes(_declared(old), _declared(new)),
        policy=_changes(_policy(old), _policy(new)),
        metrics=_changes(_flatten(old.metrics), _flatten(new.metrics)),
        files=_changes({f.path: f.sha256 for f in old.files}, {f.path: f.sha256 for f in new.files}),
        reproducible_match=_comparable(old) == _comparable(new),
        effects=effect_changes(old_evaluation or {}, new_evaluation or {}))


def effect_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[EffectChange]:
    """Effects (evaluation.json) whose intervals do not overlap between the two releases: a change of the size of
    the noise is not named. Effects without an interval (one item) are never named."""
    before, after = _effects(old), _effects(new)
    found = []
    for key in sorted(before.keys() & after.keys()):
        a, b = before[key], after[key]
        if a["interval"] is None or b["interval"] is None:
            continue
        (a_low, a_high), (b_low, b_high) = a["interval"], b["interval"]
        if b_low > a_high or b_high < a_low:
            up = b["delta"] > a["delta"]
            direction = "better" if up == bool(a.get("higher_is_better", key[1] != "nll")) else "worse"
            found.append(EffectChange(key[0], key[1], a["delta"], (a_low, a_high), b["delta"], (b_low, b_high),
                                      direction))
    return found


def _effects(evaluation: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    better = {name: bool(m.get("higher_is_better")) for name, m in (evaluation.get("metrics") or {}).items()}
    return {(e.get("contribution_id") or "guard", e["metric"]): {**e, "higher_is_better": better.get(e["metric"])}
            for e in evaluation.get("effects") or []}


def _contributions(old: Manifest, new: Manifest, old_samples: SampleMap,
                   new_samples: SampleMap) -> list[ContributionChange]:
    before = {c.contribution_id: c for c in old.contributions}
    after = {c.contribution_id: c for c in new.contributions}
    changes = []
    for cid in sorted(before.keys() | after.keys()):
        a, b = before.get(cid), after.get(cid)
        if a and b and (a.version_id, a.samples_sha256) == (b.version_id, b.samples_sha256):
            continue
        was, now = old_samples.get(cid, frozenset()), new_samples.get(cid, frozenset())
        changes.append(ContributionChange(
            cid, "added" if a is None else "removed" if b is None else "changed",
            a.version_id if a else None, b.version_id if b else None,
            tuple(sorted(now - was)), tuple(sorted(was - now))))
    return changes


def _mix(manifest: Manifest) -> dict[str, Any]:
    return {f"{m['license']} ({m['license_class']})": m["samples"] for m in manifest.license_mix}


def _declared(manifest: Manifest) -> dict[str, Any]:
    """What the release manager chose or the build was given, each compared as a whole."""
    inputs = manifest.inputs
    return {"license": manifest.license, "allowed": list(manifest.allowed),
            "taxonomy_commit": inputs.get("taxonomy_commit"), "base_model": inputs.get("base_model"),
            "teacher_models": inputs.get("teacher_models") or [],
            "model.base_model": (manifest.model or {}).get("base_model")}


def _policy(manifest: Manifest) -> dict[str, Any]:
    """Each gate check's outcome and severity (not its evidence: counts of what was checked change every time)."""
    return {f"{p.rule} {p.subject}": ("passed" if p.passed else "overridden" if p.overridden else "failed")
            + f" ({p.severity})" for p in manifest.policy}


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(value, dict):
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, inner in value.items():
        flat.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[ValueChange]:
    return [ValueChange(k, old.get(k), new.get(k)) for k in sorted(old.keys() | new.keys())
            if old.get(k) != new.get(k)]


def _comparable(manifest: Manifest) -> dict[str, Any]:
    view = reproducible_view(manifest)
    view.pop("version")
    view["files"] = [f for f in view["files"] if f["path"] != "release.pub.pem"]
    view.pop("signature")
    return view
