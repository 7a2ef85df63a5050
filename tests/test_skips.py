"""Every skip names its reason (issue 16.17): with the shared InstructLab data hidden, the tests that need it skip
saying where they looked, never with pytest's bare "got empty parameter set"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def test_without_the_shared_data_every_skip_says_where_it_looked(tmp_path: Path) -> None:
    hidden = tmp_path / "no-shared-data"
    env = {**os.environ, "TAXREG_SHARED_DATA": str(hidden)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "--basetemp",
                           str(tmp_path / "inner"), "tests/test_real_data.py", "tests/test_import_sdg.py"],
                          check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    skips = [line for line in done.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skips) >= 6, done.stdout  # 4 shared_data tests, 2 parametrized sets, the SDG imports
    assert all(f"real InstructLab data not found at {hidden}" in line
               or f"real InstructLab SDG output not found at {hidden}" in line for line in skips), skips
    assert "empty parameter set" not in done.stdout
