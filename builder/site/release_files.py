"""The files of each release, downloadable from its page: `releases/<version>/files/<path>`.

A release folder (`taxreg release cut`) is found where the catalog says it was cut, or beside the catalog
(`<catalog folder>/releases/<version>`), and published only if it is the release the catalog recorded: its
manifest.json hashes to the recorded sha256 and every file the manifest lists is there with its size. Its files
are hard-linked into the site (no second copy on disk; copied where the site is on another file system), so a
downloaded folder passes `taxreg release verify`.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from builder.layout import BuildLayout
from registry.errors import RegistryError
from registry.release.manifest import MANIFEST, SIGNATURE, SUMS, read_manifest
from registry.release.sums import file_sha256

FILES = "files"  # under the release's page folder


@dataclass(frozen=True, slots=True)
class ReleaseFolder:
    release_id: str
    folder: Path
    files: tuple[str, ...]  # relative paths, '/'-separated: the manifest's files, the manifest, sums, signature


def locate(releases: list[dict[str, Any]], catalog: Path) -> tuple[list[ReleaseFolder], list[str]]:
    """The release folders to publish, and a note for each release whose files are not published."""
    found, notes = [], []
    for release in releases:
        candidates = _candidates(release, catalog)
        folder = next((c for c in candidates if _is_recorded(c, release["manifest_sha256"])), None)
        if folder is None:
            notes.append(f"release {release['release_id']}: its files are not published on its page (no folder "
                         f"whose manifest.json is the one recorded, looked in {', '.join(map(str, candidates))})")
            continue
        files, missing = _files(folder)
        if missing:
            notes.append(f"release {release['release_id']}: its files are not published on its page ({folder}: "
                         f"{missing} differs from its manifest; `taxreg release verify {folder}` says more)")
            continue
        found.append(ReleaseFolder(release["release_id"], folder, files))
    return found, notes


def link(releases: list[ReleaseFolder], site: Path, page_folder: Any) -> int:
    """Every file of every release into `site/<its page folder>/files/`; the number of files."""
    count = 0
    for release in releases:
        target = site / page_folder(release.release_id) / FILES
        for relpath in release.files:
            _link_or_copy(release.folder / relpath, target / relpath)
            count += 1
    return count


def _candidates(release: dict[str, Any], catalog: Path) -> list[Path]:
    recorded = Path(release["path"]) if release["path"] else None
    places = [] if recorded is None else [recorded] if recorded.is_absolute() else [Path.cwd() / recorded]
    places.append(BuildLayout(catalog.resolve().parent).release(release["release_id"]))  # the catalog's build folder
    return list(dict.fromkeys(p.resolve() for p in places))


def _is_recorded(folder: Path, manifest_sha256: str) -> bool:
    manifest = folder / MANIFEST
    try:
        return manifest.is_file() and file_sha256(manifest) == manifest_sha256
    except OSError:  # unreadable: not a folder the site can publish
        return False


def _files(folder: Path) -> tuple[tuple[str, ...], str | None]:
    """The files to publish, or the first one that is not as the manifest says (missing, or another size)."""
    try:
        manifest, _ = read_manifest(folder)
    except RegistryError:
        return (), MANIFEST
    for entry in manifest.files:
        if PurePosixPath(entry.path).is_absolute() or ".." in PurePosixPath(entry.path).parts:
            return (), entry.path
        path = folder / entry.path
        if not path.is_file() or path.is_symlink() or path.stat().st_size != entry.size:
            return (), entry.path
    extra = [name for name in (MANIFEST, SUMS, SIGNATURE) if (folder / name).is_file()]
    return tuple(sorted({*(f.path for f in manifest.files), *extra})), None


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:  # another file system
            shutil.copyfile(source, target)
    except OSError as exc:
        raise RegistryError(f"the release file {source} could not be published at {target}: "
                            f"{exc.strerror or exc}", hint="the previous site is unchanged; free space or make "
                            f"{source} readable and build again") from None
