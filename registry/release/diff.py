"""What changed between two releases: contributions (their samples and the text of their seed examples), counts,
license mix, declared inputs (license, --allow overrides, taxonomy commit, base and teacher models), policy
results, metrics (a change for the worse beyond a threshold is marked), files.

`ReleaseDiff.to_json()` is the machine form (`taxreg release diff --format json`), a stable structure:
{"kind": "taxonomy-registry/release-diff", "schema_version": 1, "old", "new", "reproducible_match",
 "summary": {"contributions": {"added", "changed", "removed"}, "files": {"added", "changed", "removed"},
             "metrics_worse": [names]},
 "contributions": [{"contribution_id", "change", "old_version", "new_version", "samples_added", "samples_removed",
                    "text_diff"}],
 "samples" | "license_mix" | "declared" | "policy": [{"name", "old", "new"}],
 "metrics": [{"name", "old", "new", "worse"}],
 "files": [{"path", "change", "old_sha256", "new_sha256"}], "file_groups": [{"group", "added", "changed", "removed"}]}
Fields are only ever added (a new schema_version says when one changes meaning); absent values are null.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from registry.release.manifest import Manifest, reproducible_view

SampleMap = Mapping[str, frozenset[str]]  # contribution_id -> sample ids shipped in the release
# (contribution_id, version_id) -> its seed examples in order: (context, question, answer)
SeedMap = Mapping[tuple[str, str], Sequence[tuple[str | None, str, str]]]
DIFF_KIND = "taxonomy-registry/release-diff"
DIFF_SCHEMA_VERSION = 1
MAX_DROP = 0.005  # agreement shares: a fall of more than half a percentage point is marked
MAX_RISE = 1.5  # differences and losses: more than half again their old value is marked


@dataclass(frozen=True, slots=True)
class ContributionChange:
    contribution_id: str
    change: str  # added | removed | changed
    old_version: str | None
    new_version: str | None
    samples_added: tuple[str, ...] = ()
    samples_removed: tuple[str, ...] = ()
    text_diff: tuple[str, ...] = ()  # unified diff of the seed examples' text (changed contributions)


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
    worse: bool = False  # metrics: moved the wrong way beyond the threshold (MAX_DROP, MAX_RISE)


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

    def to_json(self) -> dict[str, Any]:
        """The documented machine form (see the module docstring)."""
        def values(changes: list[ValueChange]) -> list[dict[str, Any]]:
            return [{"name": v.name, "old": v.old, "new": v.new} for v in changes]

        return {
            "kind": DIFF_KIND, "schema_version": DIFF_SCHEMA_VERSION, "old": self.old, "new": self.new,
            "reproducible_match": self.reproducible_match,
            "summary": {"contributions": {c: sum(x.change == c for x in self.contributions)
                                          for c in ("added", "changed", "removed")},
                        "files": {c: sum(_file_change(v) == c for v in self.files)
                                  for c in ("added", "changed", "removed")},
                        "metrics_worse": [v.name for v in self.metrics if v.worse]},
            "contributions": [{"contribution_id": c.contribution_id, "change": c.change,
                               "old_version": c.old_version, "new_version": c.new_version,
                               "samples_added": list(c.samples_added), "samples_removed": list(c.samples_removed),
                               "text_diff": "\n".join(c.text_diff)} for c in self.contributions],
            "samples": values(self.samples), "license_mix": values(self.license_mix),
            "declared": values(self.declared), "policy": values(self.policy),
            "metrics": [{"name": v.name, "old": v.old, "new": v.new, "worse": v.worse} for v in self.metrics],
            "files": [{"path": v.name, "change": _file_change(v), "old_sha256": v.old, "new_sha256": v.new}
                      for v in self.files],
            "file_groups": [{"group": g, **counts} for g, counts in file_groups(self.files).items()]}


def file_groups(files: list[ValueChange]) -> dict[str, dict[str, int]]:
    """Differing files by folder (model files by their artifact's folder): group -> added/changed/removed."""
    groups: dict[str, dict[str, int]] = {}
    for v in files:
        parts = v.name.split("/")
        group = "/".join(parts[:2 if parts[0] == "model" and len(parts) > 2 else 1]) + ("/" if len(parts) > 1 else "")
        counts = groups.setdefault(group, {"added": 0, "changed": 0, "removed": 0})
        counts[_file_change(v)] += 1
    return dict(sorted(groups.items()))


def _file_change(v: ValueChange) -> str:
    return "added" if v.old is None else "removed" if v.new is None else "changed"


def diff_releases(old: Manifest, new: Manifest, old_samples: SampleMap | None = None,
                  new_samples: SampleMap | None = None, seeds: SeedMap | None = None,
                  old_evaluation: Mapping[str, Any] | None = None,
                  new_evaluation: Mapping[str, Any] | None = None) -> ReleaseDiff:
    """`seeds` holds the seed examples of both releases' contribution versions (from their audit copies); the
    evaluations are the releases' evaluation.json."""
    return ReleaseDiff(
        old.version, new.version,
        contributions=_contributions(old, new, old_samples or {}, new_samples or {}, seeds or {}),
        samples=_changes(old.samples, new.samples),
        license_mix=_changes(_mix(old), _mix(new)),
        declared=_changes(_declared(old), _declared(new)),
        policy=_changes(_policy(old), _policy(new)),
        metrics=[_judged(v) for v in _changes(_flatten(old.metrics), _flatten(new.metrics))],
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


def _contributions(old: Manifest, new: Manifest, old_samples: SampleMap, new_samples: SampleMap,
                   seeds: SeedMap) -> list[ContributionChange]:
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
            tuple(sorted(now - was)), tuple(sorted(was - now)),
            _text_diff(cid, a.version_id, b.version_id, seeds) if a and b else ()))
    return changes


def _text_diff(cid: str, old: str, new: str, seeds: SeedMap) -> tuple[str, ...]:
    """A unified diff of the seed examples of two versions, as a reviewer reads them (nothing when the text is the
    same: a new version may only change a comment or the attribution)."""
    if old == new or (cid, old) not in seeds or (cid, new) not in seeds:
        return ()
    lines = difflib.unified_diff(seed_text(seeds[(cid, old)]), seed_text(seeds[(cid, new)]),
                                 f"{cid} @ {old[:12]}", f"{cid} @ {new[:12]}", n=3, lineterm="")
    return tuple(lines)


def seed_text(examples: Sequence[tuple[str | None, str, str]]) -> list[str]:
    """Seed examples as lines: 'example N', then the context, Q and A, continuation lines indented."""
    lines: list[str] = []
    for n, (context, question, answer) in enumerate(examples, 1):
        lines.append(f"example {n}")
        for label, text in (("context", context), ("Q", question), ("A", answer)):
            if text is not None:
                first, *rest = text.rstrip("\n").split("\n") or [""]
                lines += [f"  {label}: {first}", *(f"     {line}" for line in rest)]
    return lines


def _judged(change: ValueChange) -> ValueChange:
    """A metric marked worse when it moved the wrong way beyond its threshold (by what its name says it is)."""
    name, old, new = change.name, change.old, change.new
    leaf = name.rsplit(".", 1)[-1]
    if ".thresholds." in name or old is None or new is None:
        return change
    higher = leaf.endswith(("agreement", "greedy_identical_prompts", "passed", "greedy_identical"))
    lower = leaf.endswith(("abs_diff", "loss"))
    if isinstance(old, bool) or isinstance(new, bool):
        worse = higher and bool(old) and not new
    elif isinstance(old, int | float) and isinstance(new, int | float):
        worse = (higher and old - new > (MAX_DROP if leaf.endswith("agreement") else 0)) or \
            (lower and new > old * MAX_RISE)
    else:
        worse = False
    return ValueChange(name, old, new, worse)


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
