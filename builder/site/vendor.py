"""Mermaid, vendored from npm at build time so that diagrams render without a CDN.

mkdocs-material fetches mermaid from unpkg unless a global `mermaid` is already defined; contribution pages
load this copy first. `npm pack` fetches the one pinned tarball (no dependency tree); its integrity is checked
against the pin before `dist/mermaid.min.js` is cached under the build folder.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from registry import folders
from registry.folders import remove_stale

MERMAID_VERSION = "11.12.2"  # material 9 drives the mermaid 11 API
MERMAID_INTEGRITY = "sha512-n34QPDPEKmaeCG4WDMGy0OT6PSyxKCfy2pJgShP+Qow2KLrvWjclwbc3yXfSIf4BanqWEhQEpngWwNp/XhZt6w=="
MEMBERS = ("package/dist/mermaid.min.js", "package/LICENSE")
PACK_WORK = re.compile(r"\.mermaid-(?:(\d+)-)?\w+", re.ASCII)  # `npm pack` work folders: .mermaid-<pid>-<random>


def mermaid(cache_dir: Path) -> tuple[Path | None, str]:
    """(path of mermaid.min.js, "") or (None, why it could not be vendored)."""
    ready = cache_dir / f"mermaid-{MERMAID_VERSION}"
    remove_stale(cache_dir, PACK_WORK)  # what a run killed during `npm pack` left
    if (ready / "mermaid.min.js").is_file():
        return ready / "mermaid.min.js", ""
    npm = shutil.which("npm")
    if npm is None:
        return None, "npm was not found on PATH"
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".mermaid-{os.getpid()}-", dir=cache_dir))
    try:
        try:
            done = subprocess.run([npm, "pack", f"mermaid@{MERMAID_VERSION}", "--silent"], cwd=work,
                                  capture_output=True, text=True, timeout=300, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"npm pack failed: {exc}"
        tarballs = list(work.glob("mermaid-*.tgz"))
        if done.returncode != 0 or not tarballs:
            return None, f"npm pack mermaid@{MERMAID_VERSION} failed: {(done.stderr or done.stdout).strip()[-300:]}"
        if _integrity(tarballs[0]) != MERMAID_INTEGRITY:
            return None, f"mermaid@{MERMAID_VERSION} from npm does not match the pinned integrity"
        dist = work / "dist"
        dist.mkdir()
        with tarfile.open(tarballs[0]) as archive:
            for member in MEMBERS:
                source = archive.extractfile(member)
                if source is None:
                    return None, f"{member} missing from the mermaid package"
                (dist / Path(member).name).write_bytes(source.read())
        folders.swap_into_place((dist, ready))  # another build may have vendored it meanwhile: same bytes
        return ready / "mermaid.min.js", ""
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _integrity(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()
