"""Release gates as SQL over the catalog: each check returns rows of evidence, stored in `policy_check`.

A failed check at severity `error` blocks the release unless its rule is named with `--allow RULE`; the
override is kept in the row (`overridden`), the manifest and `release.allowed`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from registry.catalog.columns import insert
from registry.errors import RegistryError, ValidationFailed
from registry.licenses import LicensePolicy, classify, normalize
from registry.release.manifest import PolicyResult

RULES = {
    "validation.errors": "The last validation of the taxonomy found no errors.",
    "lineage.orphans": "Every kept sample has lineage (v_orphan_samples is empty).",
    "license.known": "Every source the release's samples derive from has a known SPDX license.",
    "license.allowed": "Every source license is allowed by the license policy (taxreg.toml allowed_licenses).",
    "license.compatible": "Every source license is compatible with the release license (non-commercial and "
                          "share-alike terms).",
    "teacher.terms": "The output terms of every teacher model that generated shipped samples are known and "
                     "compatible with the release license.",
    "parity.fp32": "The fp32 ONNX export matches PyTorch (parity.json).",
    "takedown.excluded": "No shipped sample derives from a taken-down document or contribution.",
    "disclosure.complete": "The EU training-content summary has every provider fact ([provider] in taxreg.toml); "
                           "a warning, a failure with [release] require_complete_disclosure = true.",
    "taxonomy.dirty": "The catalog was indexed from a committed tree: checking out the taxonomy commit the release "
                      "names gives back its inputs (a cut from uncommitted changes needs --allow taxonomy.dirty).",
    "eval.no_regression": "No contribution, and not the guard set, got worse beyond its interval and the threshold of "
                          "taxreg.toml [eval] (evaluation.json, v_eval_regressions); a model that was not evaluated "
                          "is a warning.",
    "license.declared": "The release license was declared (--license or [release] license); otherwise the union of "
                        "the source licenses stands in, which license.compatible cannot fail against (a warning).",
}
DECLARED = "license.declared"
DISCLOSURE = "disclosure.complete"
RESTRICTIVE_TERMS = re.compile(r"non[- ]?commercial|research[- ]only|no[- ]derivatives|may not be used to train",
                               re.IGNORECASE)
SHOWN = 8  # offending subjects named in the refusal message; every one is in policy_check


class GateFailed(ValidationFailed):
    """A release gate failed (exit code 1, like refused findings)."""


@dataclass(frozen=True, slots=True)
class PolicyInput:
    dataset_ids: tuple[str, ...]  # the dataset files the release ships
    release_license: str  # SPDX expression the release is declared under
    policy: LicensePolicy
    parity: dict[str, Any] | None  # parity.json; None for a data-only release
    allow: frozenset[str] = frozenset()
    license_declared: bool = True  # False: release_license is the union of the sources, standing in
    disclosure_gaps: tuple[str, ...] = ()  # the EU summary's items "to be completed by the provider"
    disclosure_required: bool = False  # [release] require_complete_disclosure: a gap fails the cut
    evaluation: dict[str, Any] | None = None  # evaluation.json of the shipped model; None: not evaluated
    model_artifact: str | None = None  # the shipped fp32 ONNX model (what the evaluation must be of)
    eval_thresholds: dict[str, float] | None = None  # taxreg.toml [eval] now; None: not checked

    def __post_init__(self) -> None:
        unknown = sorted(self.allow - RULES.keys())
        if unknown:
            raise RegistryError(f"--allow {', '.join(unknown)}: no such release gate",
                                hint=f"gates: {', '.join(RULES)}")


def run_checks(con: Any, given: PolicyInput) -> list[PolicyResult]:
    """Every gate, one row per rule and offending subject (or one passing row with what was checked)."""
    rows: list[PolicyResult] = []
    sources = _sources(con, given.dataset_ids)
    for rule, found, checked in (
        ("validation.errors", _validation_errors(con), "leaves"),
        ("lineage.orphans", _orphans(con), "samples"),
        ("license.known", [(s, d) for s, d in sources if d["license"] is None], "sources"),
        ("license.allowed", [(s, {**d, "allowed": sorted(given.policy.allowed)}) for s, d in sources
                             if d["license"] and not given.policy.allows(d["license"])], "sources"),
        ("license.compatible", [(s, {**d, "release_license": given.release_license, "reason": why})
                                for s, d in sources if d["license"]
                                and (why := incompatibility(d["license"], given.release_license))], "sources"),
        ("takedown.excluded", _taken_down(con, given.dataset_ids), "takedowns"),
        ("taxonomy.dirty", _dirty(con), "commit"),
    ):
        rows += _rows(rule, found, given.allow, {"checked": _count(con, checked, sources)})
    rows += _teacher_rows(con, given)
    rows += _parity_rows(given)
    rows += _eval_rows(given)
    rows.append(_declared_row(given))
    rows += _disclosure_rows(given)
    return sorted(rows, key=lambda r: (r.rule, r.subject))


def _declared_row(given: PolicyInput) -> PolicyResult:
    """Always one row saying which release license the gates checked against, and whether anyone declared it."""
    if given.license_declared:
        return PolicyResult(DECLARED, "*", "info", True, False, {"release_license": given.release_license})
    return PolicyResult(DECLARED, "*", "warning", False, False, {
        "release_license": given.release_license, "reason": undeclared_note(given.release_license)})


def _disclosure_rows(given: PolicyInput) -> list[PolicyResult]:
    """Required: one failing row per gap. Otherwise one row that does not block and carries the gaps, said as a
    warning by the cut (`disclosure_warning`)."""
    reason = "to be completed by the provider: set [provider] in taxreg.toml"
    if given.disclosure_required:
        return _rows(DISCLOSURE, [(gap, {"reason": reason}) for gap in given.disclosure_gaps], given.allow,
                     {"checked": "eu-training-content-summary"})
    if not given.disclosure_gaps:
        return [PolicyResult(DISCLOSURE, "*", "info", True, False, {"checked": "eu-training-content-summary"})]
    return [PolicyResult(DISCLOSURE, "*", "warning", True, False, {"to_complete": list(given.disclosure_gaps),
                                                                   "reason": reason})]


def disclosure_warning(results: Iterable[PolicyResult]) -> str | None:
    """What the EU summary still asks of the provider, when the cut did not require it."""
    row = next((p for p in results if p.rule == DISCLOSURE and p.severity == "warning"), None)
    if row is None:
        return None
    return (f"the EU training-content summary marks {', '.join(row.details['to_complete'])} \"to be completed by the "
            "provider\": set them in [provider] of taxreg.toml ([release] require_complete_disclosure = true makes "
            "this an error)")


def undeclared_note(union: str) -> str:
    return (f"release license not declared; using the union {union} (license.compatible cannot fail against "
            "it): declare one with --license or [release] license in taxreg.toml")


def undeclared_warning(results: Iterable[PolicyResult]) -> str | None:
    """The note of the license.declared warning row, when the release license was not declared."""
    row = next((p for p in results if p.rule == DECLARED and not p.passed), None)
    return None if row is None else str(row.details.get("reason", DECLARED))


def incompatibility(source: str, release: str) -> str | None:
    """Why material under `source` cannot ship under `release`, or None when it can."""
    src, rel = classify(source), classify(release)
    if src is None or rel is None:
        return None
    if not src.commercial and rel.commercial:
        return f"{source} forbids commercial use; the release license {release} allows it"
    release_terms = set(_terms(release))
    missing = [t for t in _terms(source)
               if (term := classify(t)) is not None and term.share_alike and t not in release_terms]
    if missing:
        return f"{', '.join(missing)} is share-alike: the release license must include it"
    return None


def blocking(results: Iterable[PolicyResult]) -> list[PolicyResult]:
    return [r for r in results if r.blocks]


def refusal(version: str, results: list[PolicyResult]) -> GateFailed:
    """The error that stops a cut: each failed gate with the subjects it names."""
    failed = blocking(results)
    lines = [f"release {version} blocked by {len(failed)} failed check(s):"]
    for rule in sorted({r.rule for r in failed}):
        subjects = [r for r in failed if r.rule == rule]
        named = ", ".join(_describe(r) for r in subjects[:SHOWN])
        more = f" and {len(subjects) - SHOWN} more" if len(subjects) > SHOWN else ""
        lines.append(f"  {rule} ({RULES[rule]}): {named}{more}")
    return GateFailed("\n".join(lines), hint=(
        "fix the sources, or override a gate with --allow RULE (recorded in the manifest); every check: "
        f"taxreg query \"SELECT * FROM policy_check WHERE release_id = '{version}'\""))


def record_checks(con: Any, results: list[PolicyResult], build_id: str | None, release_id: str,
                  checked_at: datetime) -> None:
    """One attempt's checks: the attempt number tells a refused try from the cut that made the release."""
    n = len(results)
    [(attempt,)] = con.execute("SELECT coalesce(max(attempt), 0) + 1 FROM policy_check WHERE release_id = ?",
                               [release_id]).fetchall()
    insert(con, "policy_check", {
        "build_id": [build_id] * n, "release_id": [release_id] * n, "attempt": [int(attempt)] * n,
        "rule": [r.rule for r in results],
        "subject": [r.subject for r in results], "severity": [r.severity for r in results],
        "passed": [r.passed for r in results], "overridden": [r.overridden for r in results],
        "details": [json.dumps(r.details, sort_keys=True) for r in results], "checked_at": [checked_at] * n},
        keyed=False)


def _describe(result: PolicyResult) -> str:
    facts = [str(result.details[k]) for k in ("license", "reason", "message") if result.details.get(k)]
    if "samples" in result.details:
        facts.append(f"{result.details['samples']} samples")
    return f"{result.subject}" + (f" ({'; '.join(facts)})" if facts else "")


def _rows(rule: str, found: list[tuple[str, dict[str, Any]]], allow: frozenset[str],
          evidence: dict[str, Any], severity: str = "error") -> list[PolicyResult]:
    if not found:
        return [PolicyResult(rule, "*", severity, True, False, evidence)]
    return [PolicyResult(rule, subject, severity, False, rule in allow, details) for subject, details in found]


def _terms(expression: str) -> list[str]:
    return [t for t in re.findall(r"[A-Za-z0-9.+\-]+", expression) if t.upper() not in ("AND", "OR", "WITH")]


def _release_samples_sql() -> str:
    return "SELECT DISTINCT sample_id FROM dataset_member WHERE dataset_id IN (SELECT unnest(?::VARCHAR[]))"


def _validation_errors(con: Any) -> list[tuple[str, dict[str, Any]]]:
    rows = con.execute("""
        SELECT coalesce(contribution_id, path), count(*), min(path || ':' || line || ' ' || code || ' ' || message)
        FROM finding WHERE severity = 'error' GROUP BY 1 ORDER BY 1""").fetchall()
    return [(subject, {"errors": n, "message": first}) for subject, n, first in rows]


def _orphans(con: Any) -> list[tuple[str, dict[str, Any]]]:
    rows = con.execute("SELECT sample_id, kind, first_run_id FROM v_orphan_samples ORDER BY 1").fetchall()
    return [(sid, {"kind": kind, "run_id": run}) for sid, kind, run in rows]


def _sources(con: Any, dataset_ids: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
    """Each source the shipped samples derive from: a document (chunk edges) or a leaf's attribution (seeds)."""
    rows = con.execute(f"""
        SELECT CASE WHEN source_kind = 'chunk' THEN doc_sha256 ELSE contribution_id END AS subject,
               any_value(source_kind), license_spdx, count(DISTINCT sample_id),
               list(DISTINCT contribution_id ORDER BY contribution_id)
        FROM v_sample_license WHERE sample_id IN ({_release_samples_sql()})
        GROUP BY subject, license_spdx ORDER BY subject, license_spdx""", [list(dataset_ids)]).fetchall()
    return [(subject, {"kind": "document" if kind == "chunk" else "contribution", "license": lic, "samples": n,
                       "contributions": list(cids or [])}) for subject, kind, lic, n, cids in rows]


def _taken_down(con: Any, dataset_ids: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
    rows = con.execute(f"""
        SELECT t.subject, t.subject_kind, t.reason, count(DISTINCT l.sample_id)
        FROM takedown t JOIN sample_lineage l ON l.doc_sha256 = t.subject OR l.contribution_id = t.subject
        WHERE l.sample_id IN ({_release_samples_sql()})
        GROUP BY ALL ORDER BY 1""", [list(dataset_ids)]).fetchall()
    return [(s, {"kind": kind, "reason": f"taken down: {reason}; rebuild the dataset", "samples": n})
            for s, kind, reason, n in rows]


@dataclass(frozen=True, slots=True)
class IndexedTree:
    """What the catalog's last index run read of the taxonomy (all None outside git)."""

    commit: str | None
    dirty: tuple[str, ...]
    tree_sha256: str | None


def last_tree(con: Any) -> IndexedTree:
    rows = con.execute("SELECT taxonomy_commit, dirty_paths, tree_sha256 FROM index_run "
                       "ORDER BY finished_at DESC LIMIT 1").fetchall()
    if not rows:
        return IndexedTree(None, (), None)
    commit, dirty, tree = rows[0]
    return IndexedTree(commit, tuple(dirty or ()), tree)


def _dirty(con: Any) -> list[tuple[str, dict[str, Any]]]:
    tree = last_tree(con)
    return [(path, {"reason": f"not in commit {str(tree.commit)[:12]}"}) for path in tree.dirty]


def _teacher_rows(con: Any, given: PolicyInput) -> list[PolicyResult]:
    rows = con.execute(f"""
        SELECT r.teacher_model_ref, any_value(m.license_spdx), any_value(m.output_terms), count(DISTINCT rs.sample_id)
        FROM run_sample rs JOIN run r USING (run_id) LEFT JOIN external_model m ON m.model_ref = r.teacher_model_ref
        WHERE rs.kept AND r.teacher_model_ref IS NOT NULL AND rs.sample_id IN ({_release_samples_sql()})
        GROUP BY 1 ORDER BY 1""", [list(given.dataset_ids)]).fetchall()
    results = []
    for ref, lic, terms, n in rows:
        evidence = {"license": lic, "output_terms": terms, "samples": n, "release_license": given.release_license}
        severity, why = _judge_terms(terms, given.release_license)
        results.append(PolicyResult("teacher.terms", ref, severity, why is None,
                                    why is not None and "teacher.terms" in given.allow,
                                    {**evidence, **({"reason": why} if why else {})}))
    return results or [PolicyResult("teacher.terms", "*", "error", True, False, {"teachers": 0})]


def _judge_terms(terms: str | None, release: str) -> tuple[str, str | None]:
    if not terms:
        return "error", "the teacher's output terms are unknown: record them with --teacher-terms"
    spdx = normalize(terms)
    if spdx is not None:
        return "error", incompatibility(spdx, release)
    if RESTRICTIVE_TERMS.search(terms) and (rel := classify(release)) is not None and rel.commercial:
        return "error", f"the output terms restrict use ({terms!r}); the release license {release} does not"
    return "warning", f"terms {terms!r} are not an SPDX license: review them by hand"


def _parity_rows(given: PolicyInput) -> list[PolicyResult]:
    if given.parity is None:
        return [PolicyResult("parity.fp32", "*", "info", True, False, {"skipped": "data-only release (--no-model)"})]
    fp32 = given.parity.get("variants", {}).get("fp32")
    passed = bool(given.parity.get("passed")) and isinstance(fp32, dict) and bool(fp32.get("passed"))
    evidence = {k: v for k, v in (fp32 or {}).items() if isinstance(v, int | float | bool | str)}
    return [PolicyResult("parity.fp32", "model/onnx", "error", passed, not passed and "parity.fp32" in given.allow,
                         {**evidence, **({} if passed else {"reason": "fp32 parity did not pass (parity.json)"})})]


def _eval_rows(given: PolicyInput) -> list[PolicyResult]:
    """One failing row per contribution (or the guard set) that regressed; a stale or missing evaluation says so."""
    rule, ev = "eval.no_regression", given.evaluation
    if given.parity is None:
        return [PolicyResult(rule, "*", "info", True, False, {"skipped": "data-only release (--no-model)"})]
    if ev is None:
        return [PolicyResult(rule, "*", "warning", False, False, {
            "reason": "the shipped model was not evaluated: run `taxreg eval` (the build's evaluate stage does)"})]
    stale = _stale(ev, given)
    if stale:
        return [PolicyResult(rule, "evaluation.json", "error", False, rule in given.allow, {"reason": stale})]
    worse: dict[str, list[dict[str, Any]]] = {}
    for row in ev.get("regressions") or []:
        worse.setdefault(row.get("contribution_id") or "guard", []).append(row)
    found = [(subject, {"reason": "; ".join(_regression(r) for r in rows), "metrics": [r["metric"] for r in rows],
                        "regressions": rows}) for subject, rows in sorted(worse.items())]
    return _rows(rule, found, given.allow, {"effects": len(ev.get("effects") or []), "items": ev.get("items"),
                                            "thresholds": ev.get("thresholds")})


def _stale(ev: dict[str, Any], given: PolicyInput) -> str | None:
    tuned = (ev.get("models") or {}).get("tuned")
    if given.model_artifact is not None and tuned != given.model_artifact:
        return (f"evaluation.json is of another model (onnx artifact {str(tuned)[:16]}, the release ships "
                f"{given.model_artifact[:16]}): run `taxreg eval` again")
    if given.eval_thresholds is not None and ev.get("thresholds") != given.eval_thresholds:
        return "the evaluation was run with other [eval] thresholds than taxreg.toml's now: run `taxreg eval` again"
    return None


def _regression(row: dict[str, Any]) -> str:
    low, high = row.get("delta_low"), row.get("delta_high")
    return (f"{row['metric']} {row['base_mean']:.4g} -> {row['tuned_mean']:.4g} (change {row['delta']:+.3g}, "
            f"interval [{low:+.3g}, {high:+.3g}], allowed {row['threshold']:g})")


def _count(con: Any, what: str, sources: list[Any]) -> int | str | None:
    if what == "sources":
        return len(sources)
    if what == "commit":
        return last_tree(con).commit
    table = {"leaves": "contribution WHERE status = 'active'", "samples": "sample WHERE kept",
             "takedowns": "takedown"}[what]
    return int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
