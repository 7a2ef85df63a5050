"""What the README tells a new user holds (issues 16.8, 16.9): the first command and CI install the CPU wheel of
torch the same way, bare `taxreg` comes after saying how to activate the environment, the key-generation line makes
a key `--sign` takes, and the site and `serve` examples do not share a port."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from builder.release import signing
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
TORCH = re.compile(r"torch==[0-9.]+\+cpu --extra-index-url https://download\.pytorch\.org/whl/cpu")


def test_the_first_command_and_ci_install_the_cpu_wheel_alike() -> None:
    first = README.split("```bash\n", 1)[1].splitlines()[0]
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    readme_spec, ci_spec = TORCH.search(first), TORCH.search(ci.replace('"', ""))
    assert readme_spec is not None and ci_spec is not None, (first, ci)
    assert readme_spec.group() == ci_spec.group()


def test_bare_taxreg_comes_after_the_activation_line() -> None:
    activate = README.index(". .venv/bin/activate")
    first_bare = re.search(r"^taxreg ", README, re.MULTILINE)
    assert first_bare is not None and activate < first_bare.start()


def test_site_and_serve_examples_use_different_ports() -> None:
    site = set(re.findall(r"http\.server -d build/site -b 127\.0\.0\.1 (\d+)", README))
    serve = set(re.findall(r"taxreg serve \S+ --port (\d+)", README))
    assert site and serve and not site & serve, (site, serve)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_the_key_generation_lines_make_a_key_sign_accepts(tmp_path: Path) -> None:
    lines = [line.split("#")[0].strip() for line in README.splitlines() if line.startswith("openssl ")]
    assert len(lines) == 2, lines
    for line in lines:
        subprocess.run(line, shell=True, check=True, cwd=tmp_path, capture_output=True)
    private, public = tmp_path / "release-key.pem", tmp_path / "release-key.pub"
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")  # PKCS8
    assert signing.public_key_pem(private) == public.read_bytes()
