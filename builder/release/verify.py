"""`taxreg release verify DIR`, the whole verdict: the file checks of `registry.release.integrity` (every file against
SHA256SUMS and the manifest) plus the signature, checked with the signing library, when present or pinned."""

from __future__ import annotations

from pathlib import Path

from registry.release.integrity import Difference, check_files
from registry.release.manifest import SIGNATURE, Manifest


def verify_folder(folder: Path, public_key: Path | None = None) -> tuple[Manifest | None, list[Difference], str]:
    """(manifest, differences, what the signature check said: 'unsigned', 'valid ...' or the failure)."""
    from builder.release import signing

    manifest, differences = check_files(folder)
    if not (folder / SIGNATURE).is_file():
        if public_key is not None:  # a pinned key asks for a signature: stripping one must not pass
            return manifest, [*differences, Difference(SIGNATURE, "missing", f"--key {public_key} given, but the "
                                                                             "release is unsigned")], "missing"
        return manifest, differences, "unsigned"
    problem = signing.verify(folder, public_key)
    if problem is not None:
        return manifest, [*differences, Difference(SIGNATURE, "signature", problem)], "invalid"
    pinned = f"the key {public_key}" if public_key else "the key shipped in the release (pass --key to pin it)"
    return manifest, differences, f"valid for {pinned}"
