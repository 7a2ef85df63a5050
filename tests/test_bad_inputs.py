"""The bad-input corpus (tests/bad_inputs/) run through the real validator.

Each case folder holds the file(s) of a small taxonomy fragment and an `expect.yaml`:

    description: what is wrong with the input
    place: compositional_skills/writing/poetry/haiku/qna.yaml  # where `file` goes in the temp taxonomy
    file: qna.yaml              # the file in the case folder (absent when `generate` makes it)
    generate: big_file          # optional: a generator in GENERATORS (files that cannot be committed)
    attribution: none           # optional: no attribution.txt, or the case file to use as attribution.txt
    also:                       # optional: more case files, placed relative to the taxonomy root
      - {file: other.yaml, place: compositional_skills/trivia/oceans_b/qna.yaml}
    expect:                     # findings that must appear; every given attribute must match
      - code: TR102             # or a list of acceptable codes
        path: ...               # default: `place`
        line: 4
        col: 1
        severity: warning
        yaml_path: .seed_examples[1]
        message_contains: "'created_by'"
    forbid: [TR304]             # optional: codes that must not appear
    no_errors: true             # optional: no error-severity finding at all
    verbatim_questions: [...]   # optional: questions the parsed record must hold byte for byte
    bug: "..."                  # a known validator bug: the case is xfail(strict) until it is fixed
    isolate: true               # run the validator in a subprocess (the input can kill the interpreter)

Every temp taxonomy also gets a valid attribution.txt beside each leaf and a document cache for the
knowledge cases' repository (`_documents/github.com/example/docs/<COMMIT>/doc.md`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from registry.catalog.indexer import index
from registry.catalog.query import run_query
from registry.findings import RULES, Finding, Severity
from registry.records import TOP_FOLDERS
from registry.validation import ValidationReport, validate

CORPUS = Path(__file__).parent / "bad_inputs"
MIN_CASES = 45
# The corpus generator owns the shared texts: the tests read them from there (one source of truth).
_CORPUS_SPEC = importlib.util.spec_from_file_location("make_corpus",
                                                      Path(__file__).parent / "bad_inputs" / "make_corpus.py")
assert _CORPUS_SPEC is not None and _CORPUS_SPEC.loader is not None
_corpus = importlib.util.module_from_spec(_CORPUS_SPEC)
_CORPUS_SPEC.loader.exec_module(_corpus)
COMMIT: str = _corpus.COMMIT
CONTEXTS: list[str] = _corpus.CONTEXTS
DOCUMENT = "# Lighthouses\n\n" + "\n\n".join(CONTEXTS) + "\n"
ATTRIBUTION = (
    "Title of work: Test\n"
    "Link to work: -\n"
    "Revision: N/A\n"
    "License of the work: CC-BY-4.0\n"
    "Creator names: Tester\n"
)
VALID_SKILL = (
    "version: 3\n"
    "task_description: Write a haiku about a topic.\n"
    "created_by: tester\n"
    "seed_examples:\n"
    + "".join(f"  - question: Write a haiku about {t}.\n    answer: {t.title()} again.\n"
              for t in ("rain", "snow", "wind", "sun", "fog"))
)
PWNED = "tr_pwned_marker"  # what the !!python payloads would create in the working directory
FIFO_POLL_S = 0.2


# ---------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    name: str
    folder: Path
    spec: dict[str, Any]

    @property
    def place(self) -> str:
        return str(self.spec["place"])

    @property
    def bug(self) -> str | None:
        return self.spec.get("bug")

    @property
    def isolate(self) -> bool:
        return bool(self.spec.get("isolate"))


def load_cases() -> list[Case]:
    cases = []
    for folder in sorted(p for p in CORPUS.iterdir() if p.is_dir()):
        spec = yaml.safe_load((folder / "expect.yaml").read_text(encoding="utf-8"))
        cases.append(Case(folder.name, folder, spec))
    return cases


CASES = load_cases()


def case_params(cases: list[Case]) -> list[Any]:
    return [pytest.param(c, id=c.name, marks=[pytest.mark.xfail(strict=True, reason=c.bug)] if c.bug else [])
            for c in cases]


# ---------------------------------------------------------------- generators


@dataclass
class Watchdog:
    """Unblocks a reader stuck on a FIFO; `stop()` says whether it had to (the validator was blocked)."""

    fifo: Path
    fired: bool = False
    _done: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Watchdog:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def _run(self) -> None:
        while not self._done.wait(FIFO_POLL_S):
            try:  # succeeds only while a reader has the FIFO open, i.e. is blocked on it
                fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                continue
            self.fired = True
            os.close(fd)  # the blocked reader gets end-of-file

    def stop(self) -> bool:
        self._done.set()
        return self.fired


Generator = Callable[[Path, Path, Path], Watchdog | None]  # (root, target, scratch outside the root)


def gen_big_file(root: Path, target: Path, scratch: Path) -> None:
    size = 5 * 1024 * 1024
    head = VALID_SKILL.encode()
    filler = b"# " + b"x" * 77 + b"\n"
    body = head + filler * ((size - len(head)) // len(filler) + 1)
    target.write_bytes(body[: size - 1] + b"\n")


def gen_deep_nesting_30k(root: Path, target: Path, scratch: Path) -> None:
    target.write_text("[" * 30_000 + "]" * 30_000 + "\n", encoding="utf-8")


def gen_symlink_etc(root: Path, target: Path, scratch: Path) -> None:
    target.symlink_to("/etc/hostname")


def gen_symlink_outside_file(root: Path, target: Path, scratch: Path) -> None:
    outside = scratch / "outside_leaf" / "qna.yaml"
    outside.parent.mkdir(parents=True, exist_ok=True)
    outside.write_text(VALID_SKILL, encoding="utf-8")
    target.symlink_to(outside)


def gen_symlink_outside_dir(root: Path, target: Path, scratch: Path) -> None:
    outside = scratch / "outside_dir"
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "qna.yaml").write_text(VALID_SKILL, encoding="utf-8")
    (outside / "attribution.txt").write_text(ATTRIBUTION, encoding="utf-8")
    shutil.rmtree(target.parent)
    target.parent.symlink_to(outside, target_is_directory=True)


def gen_symlink_attribution(root: Path, target: Path, scratch: Path) -> None:
    outside = scratch / "outside_attribution" / "attribution.txt"
    outside.parent.mkdir(parents=True, exist_ok=True)
    outside.write_text(ATTRIBUTION.replace("CC-BY-4.0", "CC-BY-NC-4.0"), encoding="utf-8")
    (target.parent / "attribution.txt").symlink_to(outside)


def gen_dangling_link(root: Path, target: Path, scratch: Path) -> None:
    target.symlink_to(target.parent / "no_such_file.yaml")


def gen_fifo(root: Path, target: Path, scratch: Path) -> Watchdog:
    os.mkfifo(target)
    return Watchdog(target)


GENERATORS: dict[str, Generator] = {
    "big_file": gen_big_file,
    "deep_nesting_30k": gen_deep_nesting_30k,
    "symlink_etc": gen_symlink_etc,
    "symlink_outside_file": gen_symlink_outside_file,
    "symlink_outside_dir": gen_symlink_outside_dir,
    "symlink_attribution": gen_symlink_attribution,
    "dangling_link": gen_dangling_link,
    "fifo": gen_fifo,
}


# ---------------------------------------------------------------- building a temp taxonomy


def prefixed(path: str, prefix: str | None) -> str:
    """`compositional_skills/a/qna.yaml` -> `compositional_skills/<prefix>/a/qna.yaml` (one taxonomy, many cases)."""
    parts = PurePosixPath(path).parts
    if prefix is None or parts[0] not in TOP_FOLDERS:
        return path
    return PurePosixPath(parts[0], prefix, *parts[1:]).as_posix()


def write_cache(root: Path) -> None:
    doc = root / "_documents" / "github.com" / "example" / "docs" / COMMIT / "doc.md"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(DOCUMENT, encoding="utf-8")


def place_case(case: Case, root: Path, scratch: Path, prefix: str | None = None) -> list[Watchdog]:
    spec = case.spec
    target = root / prefixed(case.place, prefix)
    target.parent.mkdir(parents=True, exist_ok=True)
    attribution = spec.get("attribution", "default")
    if "file" in spec:
        target.write_bytes((case.folder / spec["file"]).read_bytes())
    for extra in spec.get("also", []):
        dest = root / prefixed(extra["place"], prefix)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes((case.folder / extra["file"]).read_bytes())
        if attribution == "default" and PurePosixPath(extra["place"]).parts[0] in TOP_FOLDERS:
            (dest.parent / "attribution.txt").write_text(ATTRIBUTION, encoding="utf-8")
    if attribution == "default":
        (target.parent / "attribution.txt").write_text(ATTRIBUTION, encoding="utf-8")
    elif attribution != "none":
        (target.parent / "attribution.txt").write_bytes((case.folder / attribution).read_bytes())
    watchdogs = []
    if "generate" in spec:
        scratch_here = scratch / (prefix or case.name)
        scratch_here.mkdir(parents=True, exist_ok=True)
        watchdog = GENERATORS[spec["generate"]](root, target, scratch_here)
        if watchdog is not None:
            watchdogs.append(watchdog)
    return watchdogs


def build(cases: list[Case], base: Path, combined: bool) -> tuple[Path, list[Watchdog]]:
    root = base / "taxonomy"
    for top in ("compositional_skills", "knowledge"):
        (root / top).mkdir(parents=True, exist_ok=True)
    write_cache(root)
    watchdogs = []
    for case in cases:
        watchdogs += place_case(case, root, base / "outside", case.name if combined else None)
    return root, watchdogs


def run_validate(root: Path, watchdogs: list[Watchdog]) -> ValidationReport:
    try:
        for watchdog in watchdogs:
            watchdog.start()
        return validate(root)
    finally:
        fired = [str(w.fifo) for w in watchdogs if w.stop()]
        assert not fired, f"validate() blocked reading {fired} until the watchdog unblocked it"


_ISOLATED = """
import json, sys
from pathlib import Path
from registry.validation import validate
report = validate(Path(sys.argv[1]))
print(json.dumps([[f.code, f.severity.value, f.path, f.line, f.col, f.yaml_path, f.message]
                  for f in report.findings]))
"""


def run_isolated(root: Path) -> list[Finding]:
    proc = subprocess.run([sys.executable, "-c", _ISOLATED, str(root)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, (f"the validator process died (exit status {proc.returncode}); "
                                  f"stderr: {proc.stderr[-2000:]}")
    return [Finding(c, Severity(s), p, line, col, y, m) for c, s, p, line, col, y, m in json.loads(proc.stdout)]


# ---------------------------------------------------------------- assertions


def describe(findings: list[Finding]) -> str:
    return "\n".join(f"  {f.code} {f.severity.value} {f.path}:{f.line}:{f.col} {f.yaml_path!r} {f.message}"
                     for f in findings) or "  (no findings)"


def matches(f: Finding, want: dict[str, Any], path: str) -> bool:
    codes = want["code"] if isinstance(want["code"], list) else [want["code"]]
    return (f.code in codes and f.path == path
            and all(getattr(f, key) == want[key] for key in ("line", "col", "yaml_path") if key in want)
            and ("severity" not in want or f.severity.value == want["severity"])
            and want.get("message_contains", "") in f.message)


def check_well_formed(findings: list[Finding], root: Path) -> None:
    for f in findings:
        where = f"{f.code} at {f.path}:{f.line}:{f.col}"
        assert f.code in RULES, where
        assert f.severity is RULES[f.code].severity, where
        assert f.line >= 1 and f.col >= 1, where
        assert f.message.strip(), where
        path = PurePosixPath(f.path)
        assert f.path and not path.is_absolute() and ".." not in path.parts and "\\" not in f.path, where
        assert os.path.lexists(root / f.path), f"{where}: the path does not exist in the taxonomy"


def check_case(case: Case, report_findings: list[Finding], root: Path, prefix: str | None = None) -> None:
    spec = case.spec
    check_well_formed(report_findings, root)
    here = [f for f in report_findings if prefix is None or f"/{prefix}/" in f"/{f.path}"]
    for want in spec["expect"]:
        path = prefixed(want.get("path", case.place), prefix)
        assert any(matches(f, want, path) for f in here), (
            f"{case.name}: expected {want} at {path}; got:\n{describe(here)}")
    for code in spec.get("forbid", []):
        assert not [f for f in here if f.code == code], f"{case.name}: {code} must not appear:\n{describe(here)}"
    if spec.get("no_errors"):
        errors = [f for f in here if f.is_error]
        assert not errors, f"{case.name}: expected no errors, got:\n{describe(errors)}"


# ---------------------------------------------------------------- tests


def test_corpus_has_enough_cases() -> None:
    assert len(CASES) >= MIN_CASES
    for case in CASES:
        spec = case.spec
        assert spec.get("description"), case.name
        assert "file" in spec or "generate" in spec, case.name
        assert spec.get("generate", "big_file") in GENERATORS, case.name
        assert spec["expect"] or spec.get("no_errors"), f"{case.name} asserts nothing"
        for want in spec["expect"]:
            codes = want["code"] if isinstance(want["code"], list) else [want["code"]]
            assert all(code in RULES for code in codes), case.name


@pytest.mark.parametrize("case", case_params(CASES))
def test_bad_input(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # a !!python payload that ran would leave PWNED here
    root, watchdogs = build([case], tmp_path, combined=False)
    if case.isolate:
        findings = run_isolated(root)
        report = None
    else:
        report = run_validate(root, watchdogs)
        findings = report.findings
    assert not (cwd / PWNED).exists(), "a YAML tag executed code"
    check_case(case, findings, root)
    questions = case.spec.get("verbatim_questions")
    if questions:
        assert report is not None
        states = [s for s in report.leaves if s.leaf.source_path == case.place]
        assert len(states) == 1 and states[0].version is not None, describe(findings)
        stored = [seed.question for seed in states[0].version.seeds]
        assert stored == questions
        catalog = tmp_path / "catalog.duckdb"
        index(root, catalog, allow_errors=True)  # stored in the catalog byte for byte too
        in_catalog = run_query(catalog, "SELECT question FROM seed_example ORDER BY ordinal").rows
        assert [q for (q,) in in_catalog] == questions


def solo_findings(case: Case, base: Path) -> set[tuple[str, str, int, int]]:
    root, watchdogs = build([case], base, combined=False)
    return {(f.code, prefixed(f.path, case.name), f.line, f.col) for f in run_validate(root, watchdogs).findings}


def check_combined(cases: list[Case], tmp_path: Path) -> None:
    root, watchdogs = build(cases, tmp_path / "all", combined=True)
    report = run_validate(root, watchdogs)  # one call, must not raise
    for case in cases:
        check_case(case, report.findings, root, prefix=case.name)
    got = {(f.code, f.path, f.line, f.col) for f in report.findings}
    for case in cases:  # none lost: every finding of a case alone is also found in the whole corpus
        lost = solo_findings(case, tmp_path / "solo" / case.name) - got
        assert not lost, f"{case.name}: findings lost when validated with the rest of the corpus: {lost}"


def test_whole_corpus_in_one_taxonomy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every case without a known bug, in ONE taxonomy, validated in one call: all findings collected."""
    monkeypatch.chdir(tmp_path)
    check_combined([c for c in CASES if not c.bug and not c.isolate], tmp_path)


def test_whole_corpus_including_former_bugs_in_one_taxonomy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same with every case that can run in-process, including those that once crashed the validator."""
    monkeypatch.chdir(tmp_path)
    root, watchdogs = build([c for c in CASES if not c.isolate], tmp_path, combined=True)
    report = run_validate(root, watchdogs)
    for case in CASES:
        if not case.isolate:
            check_case(case, report.findings, root, prefix=case.name)
