"""The version of the code that ran: a sha256 over the builder's own sources (registry/ and builder/), which an
editable install's metadata cannot give. The release provenance and the OpenLineage job facets carry it."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path


@cache
def source_digest() -> str:
    import builder
    import registry

    digest = hashlib.sha256()
    for package in (registry, builder):
        root = Path(str(package.__file__)).parent
        for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".py", ".sql", ".j2")):
            digest.update(f"{package.__name__}/{path.relative_to(root).as_posix()}\n".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
