"""`taxreg build` as a user runs it (its own process), and the one default build of the embedded taxonomy that the
build and evaluation tests share (conftest's session fixture `demo_build`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import EXAMPLE_TAXONOMY, REPO

EPOCH = "1767225600"  # 2026-01-01: every timestamp a build writes


def taxreg(*args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH, "OMP_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-m", "builder.cli", *args], check=False, cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def build_args(taxonomy: Path, build: Path, *extra: str, steps: str | None = "4") -> list[str]:
    """`taxreg build` arguments; steps=None trains as the README's default build does (its parity gate included)."""
    return ["build", str(taxonomy), "--build-dir", str(build), *(["--train-steps", steps] if steps else []), *extra]


def default_build(work: Path) -> tuple[Path, Path, str]:
    """The README's `taxreg build --release 1.0.0` on a copy of the embedded taxonomy: (taxonomy, build, output)."""
    taxonomy = work / "taxonomy"
    shutil.copytree(EXAMPLE_TAXONOMY, taxonomy)
    done = taxreg(*build_args(taxonomy, work / "a", "--release", "1.0.0", "--log-every", "5", steps=None))
    return taxonomy, work / "a", done.stdout + done.stderr
