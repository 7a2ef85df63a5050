"""Stable addresses of the site's entities, and the file each one is written to.

A contribution lives at `contributions/<taxonomy path>/`, a document at `documents/<sha256>/`, a release at
`releases/<version>/`, a contributor at `contributors/<id>/`, a run at `runs/<run id>/`. Names that are not
plain (a folder called `<b>` or `..`) are percent-encoded once for the file name, and that name is
percent-encoded again in links, so a server maps the link back to the file.
"""

from __future__ import annotations

import re
from urllib.parse import quote

_PLAIN = re.compile(r"[A-Za-z0-9._~-]+")


def segment(name: str) -> str:
    """A path segment safe as a file name (no `/`, never `.` or `..`)."""
    if name in (".", ".."):
        return name.replace(".", "%2E")
    return name if _PLAIN.fullmatch(name) else quote(name, safe="")


def path(section: str, name: str, nested: bool = False) -> str:
    """The page's folder relative to the site root, with a trailing slash: `contributions/knowledge/x/`."""
    parts = name.split("/") if nested else [name]
    return "/".join([section, *(segment(p) for p in parts if p)]) + "/"


def href(folder: str) -> str:
    """The link to a folder written by `path` (relative to the site root)."""
    return quote(folder, safe="/")


def contribution(contribution_id: str) -> str:
    return path("contributions", contribution_id, nested=True)


def contributor(contributor_id: str) -> str:
    return path("contributors", contributor_id)


def document(doc_sha256: str) -> str:
    return path("documents", doc_sha256)


def run(run_id: str) -> str:
    return path("runs", run_id)


def release(release_id: str) -> str:
    return path("releases", release_id)


def depth(folder: str) -> int:
    return folder.count("/")


def root_prefix(folder: str) -> str:
    """From a page in `folder` back to the site root: `../../` for `a/b/`."""
    return "../" * depth(folder)


def web_link(url: str | None) -> str | None:
    """Only http(s) addresses become links; anything else (javascript:, data:) is shown as text."""
    if url and re.match(r"https?://[^\s<>\"']+$", url, flags=re.IGNORECASE):
        return url
    return None
