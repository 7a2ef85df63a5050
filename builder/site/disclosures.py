"""Each release's Disclosures on the site: the EU training-content summary, AB 2013 and the attribution page, read
from the release folder the site publishes (`release_files.locate`), each shown only where the file still has the
sha256 the cut recorded. The attribution page is ATTRIBUTION.md itself, rendered."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from builder.layout import ReleaseLayout
from builder.site import urls
from builder.site.release_files import ReleaseFolder

Row = dict[str, Any]


def load(folders: list[ReleaseFolder], details: dict[str, dict[str, list[Row]]]) -> dict[str, Row]:
    """release id -> its disclosure files (as recorded, and whether present) and their texts as HTML, for each
    release folder the site found (`release_files.locate`: the manifest the catalog recorded)."""
    return {f.release_id: _one(ReleaseLayout(f.folder), {a["relpath"]: a["sha256"] for a in
                                                         details.get(f.release_id, {}).get("artifacts", [])})
            for f in folders}


def attribution_folder(release_id: str) -> str:
    return urls.release(release_id) + "attribution/"


def _one(release: ReleaseLayout, recorded: dict[str, str]) -> Row:
    paths = {"eu": release.eu_summary, "eu_json": release.eu_summary_json, "ab2013": release.ab2013,
             "attribution": release.attribution, "provenance": release.provenance}
    texts = {name: _verified(path, recorded.get(release.relpath(path))) for name, path in paths.items()}
    summary = json.loads(texts["eu_json"]) if texts["eu_json"] else {}
    return {
        "files": [{"relpath": release.relpath(p), "sha256": recorded.get(release.relpath(p)),
                   "present": texts[name] is not None} for name, p in paths.items()
                  if release.relpath(p) in recorded],
        "eu_html": _html(texts["eu"]), "ab2013_html": _html(texts["ab2013"]),
        "attribution_html": _html(texts["attribution"]),
        "complete": summary.get("complete"), "to_complete": summary.get("to_complete", []),
    }


def _verified(path: Path, sha256: str | None) -> str | None:
    """The file's text when it is the file the cut recorded; None when it is gone or differs."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return data.decode("utf-8") if sha256 and hashlib.sha256(data).hexdigest() == sha256 else None


def _html(markdown: str | None) -> str | None:
    """CommonMark without raw HTML (contributed titles stay text) and with markdown-it's link checks."""
    if markdown is None:
        return None
    from markdown_it import MarkdownIt

    return str(MarkdownIt("commonmark", {"html": False}).render(markdown))
