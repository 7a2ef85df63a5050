"""Shared fixtures: small taxonomies declared as {path: contents}, and the real data beside the repo."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fake_teacher import FakeTeacher

REPO = Path(__file__).resolve().parents[1]
# Real InstructLab data beside the repo (CI provides ../shared); TAXREG_SHARED_DATA points elsewhere (tests of the
# skips hide it this way).
SHARED_DATA = Path(os.environ.get("TAXREG_SHARED_DATA") or REPO.parent / "shared" / "data")
SHARED_MISSING = f"real InstructLab data not found at {SHARED_DATA} (CI provides ../shared beside the repo)"
EXAMPLE_TAXONOMY = REPO / "taxonomy"

ATTRIBUTION = """Title of work: Test work
Link to work: -
Revision: N/A
License of the work: CC-BY-4.0
Creator names: Test Author
"""


def skill_yaml(n: int = 5, created_by: str = "tester", prefix: str = "Question") -> str:
    seeds = "".join(f"  - question: {prefix} number {i}?\n    answer: Answer number {i}.\n" for i in range(n))
    return f"version: 3\ntask_description: A test skill.\ncreated_by: {created_by}\nseed_examples:\n{seeds}"


DOC_COMMIT = "0123456789abcdef0123456789abcdef01234567"
DOC_TEXT = "# Test document\n\n" + "".join(f"Paragraph {i} says fact {i} about the topic.\n\n" for i in range(5))


def knowledge_yaml(created_by: str = "tester", prefix: str = "What does paragraph") -> str:
    seeds = ""
    for i in range(5):
        qas = "".join(f"      - question: {prefix} {i} say, part {j}?\n        answer: It says fact {i}.\n"
                      for j in range(3))
        seeds += f"  - context: Paragraph {i} says fact {i} about the topic.\n    questions_and_answers:\n{qas}"
    return (f"version: 3\ndomain: testing\ncreated_by: {created_by}\ndocument_outline: A test document.\n"
            f"seed_examples:\n{seeds}document:\n  repo: https://github.com/example/docs\n"
            f"  commit: {DOC_COMMIT}\n  patterns:\n    - doc.md\n")


def document_files() -> dict[str, str | bytes]:
    return {f"_documents/github.com/example/docs/{DOC_COMMIT}/doc.md": DOC_TEXT}


TaxonomyMaker = Callable[[dict[str, str | bytes]], Path]


@pytest.fixture
def make_taxonomy(tmp_path: Path) -> TaxonomyMaker:
    """Writes {relative path: text or bytes} under a fresh root; every leaf gets an attribution.txt."""
    counter = iter(range(1000))

    def make(files: dict[str, str | bytes]) -> Path:
        root = tmp_path / f"taxonomy{next(counter)}"
        for rel, content in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
            attribution = path.parent / "attribution.txt"
            if path.name == "qna.yaml" and not attribution.exists() and f"{Path(rel).parent}/attribution.txt" \
                    not in files:
                attribution.write_text(ATTRIBUTION, encoding="utf-8")
        return root

    return make


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """One `taxreg build --release 1.0.0` of the embedded taxonomy with the demo model (the README's default), for
    the whole session: tests/test_build.py checks it, tests/test_evaluation.py trains on from its model (reading,
    never writing into it). -> (taxonomy, build folder, the build's output)."""
    from tests.building import default_build

    return default_build(tmp_path_factory.mktemp("builds"))


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(SHARED_MISSING)
    return SHARED_DATA


def shared_cases(found: list[Path]) -> list[Any]:
    """Parameters from files of the shared data: one skipped case naming why when there are none (pytest's own
    skip would only say 'got empty parameter set')."""
    if found:
        return list(found)
    reason = SHARED_MISSING if not SHARED_DATA.is_dir() else f"no fixture files under {SHARED_DATA}"
    return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="missing")]


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Mounts small RAM disks (as root), e.g. `tmpfs("4m")`, to fill up; unmounted at the end."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        disk = tmp_path / f"disk{len(mounted)}"
        disk.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)], check=False,
                          capture_output=True).returncode:
            pytest.skip("cannot mount a tmpfs here")
        mounted.append(disk)
        return disk

    yield mount
    for disk in mounted:
        subprocess.run(["umount", str(disk)], check=False)


def fill(disk: Path, keep: int) -> None:
    """Fill `disk` until `keep` bytes are free."""
    free = os.statvfs(disk)
    (disk / "fill").write_bytes(b"x" * max(0, free.f_bavail * free.f_frsize - keep))


def git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "t@example.com"}
    done = subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True, env=env)
    return done.stdout


@pytest.fixture
def fake() -> Iterator[FakeTeacher]:
    """The fake teacher and judge (tests/fake_teacher.py) serving on 127.0.0.1 for the test."""
    server = FakeTeacher()
    server.thread.start()
    yield server
    server.released.set()
    server.server.shutdown()
    server.server.server_close()
