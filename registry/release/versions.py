"""What a release version may be, and the one message for a version that is already taken (versions are never
overwritten)."""

from __future__ import annotations

import re
from pathlib import Path

from registry.errors import RegistryError

VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")


def check_version(version: str, what: str = "release version") -> None:
    if not VERSION.fullmatch(version):  # match() would let a final newline through
        raise RegistryError(f"{what} {version!r} must be 1-64 letters, digits, '.', '_', '+' or '-', starting "
                            "with a letter or digit", hint="e.g. 1.0.0 or 2026.11.22")


def refuse_case_twin(releases: Path, version: str) -> None:
    """0.1.0-RC1 beside 0.1.0-rc1 would be one folder on macOS and Windows, and one page on the site."""
    twins = sorted(p.name for p in releases.iterdir() if p.name.lower() == version.lower() and p.name != version)
    if twins:
        raise RegistryError(f"release {version} differs from the existing release {twins[0]} only in case",
                            hint="pick another version: case-insensitive file systems would mix them up")


def taken(version: str, where: Path, why: str = "", hint: str = "cut a new version") -> RegistryError:
    """The error for a version that exists: `why` says what makes this case different, `hint` what to do."""
    return RegistryError(f"release {version} already exists in {where}{why}; a version is never overwritten",
                         hint=hint)
