"""`taxreg release verify DIR`, the whole verdict: the file checks of `registry.release.integrity` (every file against
SHA256SUMS and the manifest) plus the signature, checked with the signing library, when present or pinned."""

from __future__ import annotations

from pathlib import Path

from registry.release import provenance
from registry.release.integrity import Difference, check_files
from registry.release.manifest import PUBLIC_KEY, SIGNATURE, Manifest
from registry.release.provenance import PROVENANCE


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
    problem = _envelope_problem(folder, manifest, public_key)
    if problem is not None:
        return manifest, [*differences, Difference(PROVENANCE, "signature", problem)], "invalid"
    pinned = f"the key {public_key}" if public_key else "the key shipped in the release (pass --key to pin it)"
    return manifest, differences, f"valid for {pinned}"


def _envelope_problem(folder: Path, manifest: Manifest | None, public_key: Path | None) -> str | None:
    """The provenance envelope must verify with the release key: the pinned one, else the shipped one when it is the
    key the manifest names (another shipped key is a difference already). A statement re-signed with another key
    does not verify; a bare statement or an unreadable file is a difference of `check_files`."""
    from builder.release.disclosures.provenance import verify_envelope
    from registry.release.sums import file_sha256

    if public_key is None:
        public_key = folder / PUBLIC_KEY
        named = (manifest.signature or {}).get("public_key_sha256") if manifest else None
        if not public_key.is_file() or file_sha256(public_key) != named:
            return None
    try:
        found = provenance.read(folder / PROVENANCE)
    except (OSError, ValueError):
        return None
    return None if found.envelope is None else verify_envelope(found, public_key)
