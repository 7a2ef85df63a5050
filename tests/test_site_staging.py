"""The site's staging folders: those a killed or failed run left beside the site are removed by the next
build (only theirs, only when their process is gone), and a swap the filesystem refuses removes the new
site, keeps the previous one and says what to do."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.site.build import SiteOptions, build_site
from registry.errors import RegistryError
from tests.conftest import EXAMPLE_TAXONOMY
from tests.releasing import build_data

VENDOR = Path(__file__).resolve().parents[1] / "build" / "vendor"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_data(tmp_path_factory.mktemp("staging")) / "catalog.duckdb"


def dead_pid() -> int:
    """The id of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


def site_options(catalog: Path, out: Path) -> SiteOptions:
    return SiteOptions(catalog, out, EXAMPLE_TAXONOMY, VENDOR, audit=False)


def staging_folders(build: Path) -> list[str]:
    return sorted(p.name for p in build.iterdir() if p.name.startswith((".site-new-", ".site-old-")))


@pytest.fixture
def mounted_site(tmp_path: Path) -> Iterator[Path]:
    """A previous site that cannot be moved aside: a mount point (as root), as an immutable folder would be."""
    site = tmp_path / "build" / "site"
    site.mkdir(parents=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(site)], check=False,
                             capture_output=True)
    if mounted.returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        (site / "index.html").write_text("previous\n", encoding="utf-8")
        yield site
    finally:
        subprocess.run(["umount", str(site)], check=False)


def test_stale_staging_folders_are_removed_and_live_ones_kept(catalog: Path, tmp_path: Path) -> None:
    build = tmp_path / "build"
    dead, live = dead_pid(), os.getpid()
    stale = [f".site-new-{dead}-x", ".site-new-abc", f".site-old-{dead}-1700000000000000000"]
    kept_folders = [f".site-new-{live}-x", ".site-newer", ".site-new-", ".other-new-abc", f".site-new-{dead}-x.d"]
    for name in stale + kept_folders:
        (build / name / "assets").mkdir(parents=True)
    (build / f".site-new-{dead}-file").write_text("not a folder\n", encoding="utf-8")
    build_site(site_options(catalog, build / "site"))
    assert (build / "site" / "index.html").is_file()
    assert not any((build / name).exists() for name in stale)
    assert all((build / name / "assets").is_dir() for name in kept_folders)
    assert (build / f".site-new-{dead}-file").is_file()
    assert staging_folders(build) == sorted([f".site-new-{live}-x", ".site-new-", f".site-new-{dead}-x.d",
                                             f".site-new-{dead}-file"])


def test_a_refused_swap_removes_the_new_site_and_says_why(catalog: Path, mounted_site: Path) -> None:
    with pytest.raises(RegistryError, match="could not be put in place") as refused:
        build_site(site_options(catalog, mounted_site))
    assert str(mounted_site) in str(refused.value)
    assert "previous site is unchanged" in refused.value.hint and "build again" in refused.value.hint
    assert staging_folders(mounted_site.parent) == []
    assert (mounted_site / "index.html").read_text(encoding="utf-8") == "previous\n"


def test_work_folders_a_killed_vendoring_left_are_removed(tmp_path: Path) -> None:
    """`taxreg site` killed during `npm ci` or `npm pack` leaves node_modules (up to 59 MB) in build/vendor: the
    next run removes them, whoever's process is gone, and keeps those of a run still going."""
    from builder.site.audit import vendored_engine
    from builder.site.vendor import mermaid

    cache = tmp_path / "vendor"
    if VENDOR.is_dir():  # what earlier builds vendored, linked: no npm run needed here
        shutil.copytree(VENDOR, cache, copy_function=os.link,
                        ignore=shutil.ignore_patterns(".npm-*", ".mermaid-*"))
    dead, live = dead_pid(), os.getpid()
    stale = [f".npm-{dead}-k1lled_", ".npm-abc123", f".mermaid-{dead}-x"]
    kept = [f".npm-{live}-running", f".mermaid-{live}-running", f".npm-{dead}-x.d", "npm-cache"]
    for name in stale + kept:
        (cache / name / "node_modules" / "@duckdb").mkdir(parents=True)
        (cache / name / "node_modules" / "@duckdb" / "duckdb-eh.wasm").write_bytes(b"\0" * 1024)
    vendored_engine(cache)
    mermaid(cache)
    assert [name for name in stale if (cache / name).exists()] == []
    assert [name for name in kept if not (cache / name / "node_modules").is_dir()] == []
