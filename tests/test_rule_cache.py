"""The verdict cache is keyed by the rules' code: a rule added to the registry re-checks leaves that an existing
catalog holds verdicts for (`taxreg validate` and `taxreg index`, the index's unchanged shortcut included)."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

from registry.catalog.indexer import index
from registry.config import RULE_MODULES, rules_source_digest
from tests.conftest import EXAMPLE_TAXONOMY, REPO

REGISTRY = REPO / "registry"
PROBE = "TR407"
# The scratch copy's registry first on the path; it asserts that it is the code that runs.
CLI = (f"import registry.findings as f; assert {PROBE!r} in f.RULES, f.__file__; "
       "from builder.cli import main; main()")


def _module(name: str) -> Path:
    return REGISTRY / f"{name}.py"


def _registry_imports(name: str) -> set[str]:
    """Modules of this package (as paths below registry/, without .py) that a module imports, at any depth."""
    found = set()
    for node in ast.walk(ast.parse(_module(name).read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "registry":
            base = "/".join(node.module.split(".")[1:])
            for alias in node.names:
                sub = f"{base}/{alias.name}".lstrip("/")
                found.add(sub if _module(sub).is_file() else base or "__init__")
        elif isinstance(node, ast.Import):
            found |= {"/".join(a.name.split(".")[1:]) for a in node.names if a.name.startswith("registry.")}
    return {m for m in found if m != "__init__"}  # the package itself holds only __version__, keyed apart


def _closure(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_registry_imports(name))
    return seen


def _emitters() -> set[str]:
    """Modules whose code names a rule code (TRnnn): they emit findings."""
    out = set()
    for path in REGISTRY.rglob("*.py"):
        constants = [n.value for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                     if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        if any(len(c) == 5 and c.startswith("TR") and c[2:].isdigit() for c in constants):
            out.add(path.relative_to(REGISTRY).with_suffix("").as_posix())
    return out


def test_the_rules_key_covers_every_module_that_decides_a_verdict() -> None:
    needed = _closure("validation") | _emitters()
    missing = sorted(needed - set(RULE_MODULES))
    assert not missing, f"add to registry.config.RULE_MODULES (their code decides verdicts): {missing}"
    assert [m for m in RULE_MODULES if not _module(m).is_file()] == []
    assert {"leaf", "findings", "schema", "attribution", "licenses", "yamlfile", "documents", "discovery",
            "validation"} <= needed  # the scan sees what a reader sees


def test_the_source_is_read_once_per_process() -> None:
    first = rules_source_digest()
    hits = rules_source_digest.cache_info().hits
    assert rules_source_digest() == first and rules_source_digest.cache_info().hits == hits + 1
    assert len(first) == 64


def _scratch_registry(tmp_path: Path) -> Path:
    """A copy of registry/ with rule PROBE: a warning on every leaf that passes the schema."""
    code = tmp_path / "code"
    shutil.copytree(REGISTRY, code / "registry", ignore=shutil.ignore_patterns("__pycache__"))
    _patch(code / "registry" / "findings.py", "    # Knowledge documents\n",
           f'    Rule("{PROBE}", "probe", W, "A probe rule.", "Nothing to fix."),\n')
    _patch(code / "registry" / "leaf.py", "    out = []\n    if seeds.total > limits.leaf:\n",
           f'    out = [finding("{PROBE}", path, "probe")]\n    if seeds.total > limits.leaf:\n', replace=True)
    return code


def _patch(path: Path, anchor: str, text: str, replace: bool = False) -> None:
    source = path.read_text(encoding="utf-8")
    assert source.count(anchor) == 1, f"{path.name} changed: the probe rule needs a new anchor"
    path.write_text(source.replace(anchor, text if replace else text + anchor), encoding="utf-8")


def _taxreg(code: Path, cwd: Path, *args: str) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(code), str(REPO)])}
    done = subprocess.run([sys.executable, "-c", CLI, *args, "--format", "json"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(json.loads(done.stdout))


def _probes(payload: dict[str, object]) -> set[str]:
    findings = payload["findings"]
    assert isinstance(findings, list)
    return {f["path"] for f in findings if f["code"] == PROBE}


def test_a_new_rule_reports_on_a_catalog_built_with_the_old_rules(tmp_path: Path) -> None:
    taxonomy, catalog = tmp_path / "taxonomy", tmp_path / "catalog.duckdb"
    shutil.copytree(EXAMPLE_TAXONOMY, taxonomy)
    before = index(taxonomy, catalog)  # this process: the rules without the probe
    con = duckdb.connect(str(catalog), read_only=True)
    try:
        leaves = {str(taxonomy / p) for (p,) in con.execute("SELECT source_path FROM leaf_cache").fetchall()}
    finally:
        con.close()
    assert before.leaves_total == len(leaves) >= 10 and before.warnings < len(leaves)
    code = _scratch_registry(tmp_path)

    validated = _taxreg(code, tmp_path, "validate", str(taxonomy), "--catalog", str(catalog))
    assert _probes(validated) == leaves  # re-checked despite the cached verdicts
    indexed = _taxreg(code, tmp_path, "index", str(taxonomy), "--catalog", str(catalog))
    summary = indexed["summary"]
    assert isinstance(summary, dict) and summary["status"] == "indexed" and summary["parsed"] == len(leaves)
    assert _probes(indexed) == leaves
    con = duckdb.connect(str(catalog), read_only=True)
    try:
        stored = con.execute("SELECT count(*) FROM finding WHERE code = ?", [PROBE]).fetchall()
        keys = con.execute("SELECT count(DISTINCT config_sha256) FROM index_run").fetchall()
    finally:
        con.close()
    assert stored == [(len(leaves),)] and keys == [(2,)]

    again = index(taxonomy, catalog)  # the old rules again: their own verdicts, not the probe's
    assert again.status == "indexed" and PROBE not in {f.code for f in again.findings}
