"""Checking a release folder against its SHA256SUMS and manifest: every difference, by file.

The cryptographic signature check lives with the signing library in the builder; here the signature is
only required to be present when the manifest says the release was signed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from registry.errors import RegistryError
from registry.release import provenance
from registry.release.manifest import MANIFEST, PUBLIC_KEY, SIGNATURE, SUMS, UNLISTED, Manifest, read_manifest
from registry.release.provenance import PROVENANCE
from registry.release.sums import file_sha256, format_sums, read_sums


@dataclass(frozen=True, slots=True)
class Difference:
    path: str
    problem: str  # missing | extra | changed | unreadable | manifest | signature | provenance
    detail: str


def verify_release(folder: Path) -> tuple[Manifest | None, list[Difference]]:
    if not folder.is_dir():
        raise RegistryError(f"no release folder at {folder}", hint="pass the folder holding SHA256SUMS")
    differences: list[Difference] = []
    sums = _read_sums(folder, differences)
    on_disk = _files(folder, differences)
    for path in sorted(set(on_disk) - set(sums) - set(UNLISTED)):
        differences.append(Difference(path, "extra", f"not listed in {SUMS}"))
    for path, expected in sorted(sums.items()):
        if path not in on_disk:
            differences.append(Difference(path, "missing", f"listed in {SUMS} but not in the folder"))
        elif (actual := file_sha256(folder / path)) != expected:
            differences.append(Difference(path, "changed", f"sha256 {actual}, {SUMS} says {expected}"))
    manifest = _check_manifest(folder, sums, differences)
    if manifest is not None:
        _check_signature_presence(folder, manifest, on_disk, differences)
        _check_provenance(folder, manifest, sums, differences)
    return manifest, sorted(differences, key=lambda d: (d.path, d.problem))


def _read_sums(folder: Path, differences: list[Difference]) -> dict[str, str]:
    path = folder / SUMS
    if not path.is_file():
        differences.append(Difference(SUMS, "missing", "a release lists every file in SHA256SUMS"))
        return {}
    try:
        text = path.read_bytes().decode("utf-8")  # not read_text: it would turn \r\n into \n unseen
    except (OSError, UnicodeDecodeError) as exc:
        differences.append(Difference(SUMS, "unreadable", str(exc)))
        return {}
    sums, bad = read_sums(text)
    differences += [Difference(f"{SUMS}:{number}", "unreadable", problem) for number, problem in bad]
    if not bad and text != format_sums(sums.items()):  # the cut writes one form: any other is an edit
        differences.append(Difference(SUMS, "changed", "not in the form the cut writes (sorted `<sha256>  <path>` "
                                                       "lines, lower-case hex, \\n endings): edited after the cut"))
    return sums


def listed_count(manifest: Manifest) -> int:
    """How many files SHA256SUMS lists: the manifest's files and manifest.json (not SHA256SUMS, release.sig)."""
    return len(manifest.files) + 1


def count_phrase(manifest: Manifest) -> str:
    """The one way every command counts a release's files."""
    unlisted = SUMS + (f", {SIGNATURE}" if manifest.signature else "")
    return f"{listed_count(manifest)} files listed in {SUMS} (+ {unlisted})"


def _files(folder: Path, differences: list[Difference]) -> set[str]:
    """The plain files; anything else (a link, a pipe, a device, an empty folder) is reported as extra."""
    found = set()
    for path in folder.rglob("*"):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            differences.append(Difference(rel, "extra", "a symbolic link: releases hold plain files only"))
        elif path.is_file():
            found.add(rel)
        elif path.is_dir():
            if not any(path.iterdir()):
                differences.append(Difference(rel, "extra", "an empty folder: releases hold plain files only"))
        else:
            differences.append(Difference(rel, "extra", "not a plain file (a pipe, socket or device)"))
    return found


def _check_manifest(folder: Path, sums: dict[str, str], differences: list[Difference]) -> Manifest | None:
    try:
        manifest, raw = read_manifest(folder)
    except RegistryError as exc:
        differences.append(Difference(MANIFEST, "unreadable", str(exc)))
        return None
    if raw != manifest.to_bytes():
        differences.append(Difference(MANIFEST, "manifest", "not in canonical JSON form: edited after the cut"))
    listed = {f.path: f for f in manifest.files}
    for path, entry in sorted(listed.items()):
        if path not in sums:
            differences.append(Difference(path, "manifest", f"in the manifest but not in {SUMS}"))
        elif sums[path] != entry.sha256:
            differences.append(Difference(path, "manifest", f"the manifest says sha256 {entry.sha256}, "
                                                            f"{SUMS} says {sums[path]}"))
    for path in sorted(set(sums) - set(listed) - {MANIFEST}):
        differences.append(Difference(path, "manifest", f"in {SUMS} but not in the manifest"))
    if sums and MANIFEST not in sums:
        differences.append(Difference(MANIFEST, "manifest", f"not listed in {SUMS}"))
    return manifest


def _check_provenance(folder: Path, manifest: Manifest, sums: dict[str, str], differences: list[Difference]) -> None:
    """The provenance's subjects are the listed files with their hashes; a signed release's is an envelope."""
    if manifest.file(PROVENANCE) is None or not (folder / PROVENANCE).is_file():
        return  # a release cut before provenance was written, or a missing file (reported above)
    try:
        found = provenance.read(folder / PROVENANCE)
    except (OSError, ValueError) as exc:
        differences.append(Difference(PROVENANCE, "unreadable", str(exc)))
        return
    listed = {**{f.path: f.sha256 for f in manifest.files}, **sums}
    differences += [Difference(path, "provenance", detail)
                    for path, detail in provenance.subject_problems(found.statement, listed)]
    if manifest.signature and found.envelope is None:
        differences.append(Difference(PROVENANCE, "signature", "the release is signed but its provenance is a bare "
                                                               "statement: the envelope was stripped"))


def _check_signature_presence(folder: Path, manifest: Manifest, on_disk: set[str],
                              differences: list[Difference]) -> None:
    if manifest.signature and SIGNATURE not in on_disk:
        differences.append(Difference(SIGNATURE, "missing", "the manifest says this release is signed"))
    elif manifest.signature and PUBLIC_KEY in on_disk:
        named, shipped = manifest.signature.get("public_key_sha256"), file_sha256(folder / PUBLIC_KEY)
        if named != shipped:  # a signature re-made with another key, and that key shipped in place of the first
            differences.append(Difference(PUBLIC_KEY, "signature", f"sha256 {shipped}, but the manifest names the "
                                                                   f"signing key {named}"))
    elif not manifest.signature and SIGNATURE in on_disk:
        differences.append(Difference(SIGNATURE, "extra", "a signature, but the manifest says the release is "
                                                          "unsigned"))
