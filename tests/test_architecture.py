"""The architecture's promises, checked on the source: every module imports on its own (no import cycle hides
behind a lazy import), each build-folder name is spelled in builder/layout.py only, each swap is the one function
in registry/folders.py, BEGIN/COMMIT live in the one transaction helper, and ARCHITECTURE.md names only what
exists."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = ("registry", "builder")


def sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (REPO / package).rglob("*.py"))


def module_of(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


def code_lines(path: Path) -> list[tuple[int, str]]:
    """(number, line) of code: comments and docstrings left out (they may show paths as examples)."""
    text = path.read_text(encoding="utf-8")
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(text)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            docstrings.update(range(body[0].lineno, (body[0].end_lineno or body[0].lineno) + 1))
    return [(n, line) for n, line in enumerate(text.splitlines(), 1)
            if n not in docstrings and not line.lstrip().startswith("#")]


def test_every_module_imports_on_its_own() -> None:
    """A fresh interpreter per module: an import cycle shows up as a partially initialised module whichever
    module is imported first."""
    modules = [module_of(p) for p in sources() if p.name != "__main__.py"]

    def imports(module: str) -> tuple[str, str]:
        done = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=REPO, capture_output=True, text=True,
                              check=False, timeout=300)
        return module, "" if done.returncode == 0 else done.stderr.strip().splitlines()[-1]

    with ThreadPoolExecutor(2) as pool:
        failed = {m: why for m, why in pool.map(imports, modules) if why}
    assert failed == {}


BUILD_NAMES = ("catalog.duckdb", "datasets", "model", "adapter", "base", "onnx", "onnx-int8", "onnx-int4",
               "parity.json", "parity.failed.json", "releases", "site", "vendor", "checkpoints", ".taxreg",
               "stages.json", "build.lock", "default", "data", "audit", "bom")
JOINED = re.compile(r"""/\s*["'](?P<name>[^"']+)["']|["'](?P<start>build/[^"']*)["']|Path\(["']build["']\)""")


def test_build_folder_names_are_spelled_in_the_layout_only() -> None:
    found = []
    for path in sources():
        if path == REPO / "builder" / "layout.py":
            continue
        for number, line in code_lines(path):
            for match in JOINED.finditer(line):
                name = match["name"]
                if match["start"] or match[0].startswith("Path(") or name in BUILD_NAMES:
                    found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    # the repository's own source folders, not a build folder
    found = [f for f in found if not any(source in f for source in ("ROOT / ", "SOURCES / "))]
    assert found == []


def test_each_swap_and_each_transaction_has_one_home() -> None:
    renames = re.compile(r"\bos\.replace\(|\.rename\(|\.replace\(\s*\w*path|shutil\.move\(")
    commits = re.compile(r"""["'](?:BEGIN|COMMIT|ROLLBACK)\b""")
    swaps, transactions = [], []
    for path in sources():
        for number, line in code_lines(path):
            where = f"{path.relative_to(REPO)}:{number}"
            if renames.search(line):
                swaps.append(where)
            if commits.search(line):
                transactions.append(where)
    assert {w.split(":")[0] for w in swaps} == {"registry/folders.py"}, swaps
    assert {w.split(":")[0] for w in transactions} == {"registry/catalog/connection.py"}, transactions


def test_architecture_md_names_only_what_exists() -> None:
    text = (REPO / "ARCHITECTURE.md").read_text(encoding="utf-8")
    named = sorted(set(re.findall(r"`((?:registry|builder|site|tests)/[^`\s]*)`", text)))
    assert len(named) > 20
    missing = [name for name in named if not (REPO / name.split("::")[0]).exists()
               and "v00N" not in name]
    assert missing == []


@pytest.mark.parametrize("row", ["a validation rule", "a build stage", "a release gate", "a site page"])
def test_each_where_to_change_answer_is_one_or_two_files(row: str) -> None:
    text = (REPO / "ARCHITECTURE.md").read_text(encoding="utf-8")
    [line] = [line for line in text.splitlines() if line.startswith(f"| {row} |")]
    answers = line.split("|")[2].split(";")  # a site page has two kinds, each its own answer
    for answer in answers:
        files = set(re.findall(r"`((?:registry|builder|site)/[^`]*|mkdocs\.yml)`", answer))
        assert 1 <= len(files) <= 2, (row, answer)
