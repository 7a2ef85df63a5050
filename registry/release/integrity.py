"""A release folder's integrity: every file against SHA256SUMS and the manifest, every difference named.

Each listed file has three witnesses: its own sha256, its SHA256SUMS line and its manifest entry. Two that agree
outvote the third, so what is named is what changed: an edited SHA256SUMS line is `SHA256SUMS:LINE`, not the
file it lists. The signature is checked by builder/release/verify.py (the whole verdict), with the signing
library; here it is only required to be present when the manifest says the release was signed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from registry.errors import RegistryError
from registry.release import provenance
from registry.release.manifest import MANIFEST, PUBLIC_KEY, SIGNATURE, SUMS, UNLISTED, Manifest, read_manifest
from registry.release.provenance import PROVENANCE
from registry.release.sums import Sums, file_sha256, format_sums, read_sums


@dataclass(frozen=True, slots=True)
class Difference:
    path: str
    problem: str  # missing | extra | changed | unreadable | manifest | signature | provenance
    detail: str


def check_files(folder: Path) -> tuple[Manifest | None, list[Difference]]:
    """(the manifest, when it can be read; every difference, sorted by path)."""
    if not folder.is_dir():
        raise RegistryError(f"no release folder at {folder}", hint="pass the folder holding SHA256SUMS")
    differences: list[Difference] = []
    sums = _read_sums(folder, differences)
    on_disk = _files(folder, differences)
    manifest = _check_manifest(folder, sums, differences)
    declared = {f.path: f.sha256 for f in manifest.files} if manifest is not None else None
    for path in sorted((on_disk - set(UNLISTED)) | set(sums.digests) | set(declared or ())):
        listed = path in sums.digests or path in (declared or {})
        actual = file_sha256(folder / path) if path in on_disk and listed else None
        differences += _compare(path, path in on_disk, actual, sums, declared)
    if manifest is not None:
        _check_signature_presence(folder, manifest, on_disk, differences)
        _check_provenance(folder, manifest, sums.digests, differences)
    return manifest, sorted(differences, key=lambda d: (d.path, d.problem))


def _compare(path: str, present: bool, actual: str | None, sums: Sums,
             declared: dict[str, str] | None) -> list[Difference]:
    """What one path's witnesses say. manifest.json cannot list itself, and an unreadable manifest lists nothing:
    then SHA256SUMS alone is compared with the file."""
    summed, line = sums.digests.get(path), f"{SUMS}:{sums.lines.get(path)}"
    entry = declared.get(path) if declared is not None and path != MANIFEST else summed
    if summed is None and entry is None:
        return [Difference(path, "extra", f"not listed in {SUMS}")] if present else []
    if summed is None:
        return ([Difference(path, "extra", f"not listed in {SUMS}"),
                 Difference(path, "manifest", f"in the manifest but not in {SUMS}")] if present else
                [Difference(path, "missing", f"in the manifest, but neither in the folder nor in {SUMS}")])
    if entry is None:
        if not present:
            return [Difference(line, "extra", f"lists {path}, which is neither in the folder nor in the manifest")]
        return [Difference(path, "manifest", f"in {SUMS} but not in the manifest"),
                *_compare(path, present, actual, sums, None)]
    if not present:
        disagree = [Difference(path, "manifest", f"the manifest says sha256 {entry}, {line} says {summed}")]
        return [Difference(path, "missing", f"listed in {SUMS} but not in the folder"),
                *(disagree if entry != summed else [])]
    return _outvoted(path, line, actual or "", summed, entry)


def _outvoted(path: str, line: str, actual: str, summed: str, entry: str) -> list[Difference]:
    if actual == summed == entry:
        return []
    if actual == entry:
        return [Difference(line, "changed", f"says sha256 {summed} for {path}, but the file and the manifest have "
                                            f"{actual}: {SUMS} was edited after the cut")]
    if actual == summed:
        return [Difference(path, "manifest", f"the manifest says sha256 {entry}, the file and {SUMS} have {actual}")]
    if summed == entry:
        return [Difference(path, "changed", f"sha256 {actual}, {SUMS} says {summed}")]
    return [Difference(path, "changed", f"sha256 {actual}; {line} says {summed}, the manifest {entry}")]


def _read_sums(folder: Path, differences: list[Difference]) -> Sums:
    path = folder / SUMS
    if not path.is_file():
        differences.append(Difference(SUMS, "missing", "a release lists every file in SHA256SUMS"))
        return Sums()
    try:
        text = path.read_bytes().decode("utf-8")  # not read_text: it would turn \r\n into \n unseen
    except (OSError, UnicodeDecodeError) as exc:
        differences.append(Difference(SUMS, "unreadable", str(exc)))
        return Sums()
    sums = read_sums(text)
    differences += [Difference(f"{SUMS}:{number}", "unreadable", problem) for number, problem in sums.bad]
    if not sums.bad and text != format_sums(sums.digests.items()):  # the cut writes one form: any other is an edit
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


def _check_manifest(folder: Path, sums: Sums, differences: list[Difference]) -> Manifest | None:
    try:
        manifest, raw = read_manifest(folder)
    except RegistryError as exc:
        differences.append(Difference(MANIFEST, "unreadable", str(exc)))
        return None
    if raw != manifest.to_bytes():
        differences.append(Difference(MANIFEST, "manifest", "not in canonical JSON form: edited after the cut"))
    if sums.digests and MANIFEST not in sums.digests:
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
    declared = {f.path: f.sha256 for f in manifest.files}
    listed = {path: _agreed(folder, path, sums.get(path), sha) for path, sha in declared.items()}
    differences += [Difference(path, "provenance", detail)
                    for path, detail in provenance.subject_problems(found.statement, listed)]
    if manifest.signature and found.envelope is None:
        differences.append(Difference(PROVENANCE, "signature", "the release is signed but its provenance is a bare "
                                                               "statement: the envelope was stripped"))


def _agreed(folder: Path, path: str, summed: str | None, declared: str | None) -> str | None:
    """The hash two of the three witnesses agree on (the file itself is hashed only when SHA256SUMS and the manifest
    disagree); None when no two agree, which is a difference already. The provenance is then the fourth witness: it
    is named only when it alone disagrees, e.g. with a file whose SHA256SUMS line and manifest entry were rewritten."""
    if summed == declared or summed is None or declared is None:
        return summed or declared
    actual = file_sha256(folder / path) if (folder / path).is_file() else None
    return actual if actual in (summed, declared) else None


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
