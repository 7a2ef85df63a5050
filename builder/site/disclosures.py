"""Each release's Disclosures on the site: the EU training-content summary, AB 2013 and the attribution page, read
from the release folder the catalog records, and shown only where a file still has the sha256 the cut recorded (a
moved or edited release shows which files are missing). The attribution page is ATTRIBUTION.md itself, rendered."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from builder.layout import ReleaseLayout
from builder.site import urls

Row = dict[str, Any]


def load(releases: list[Row], artifacts: dict[str, list[Row]]) -> dict[str, Row]:
    """release id -> its disclosure files (as recorded, and whether present) and their texts as HTML."""
    return {r["release_id"]: _one(ReleaseLayout(Path(r["path"])), {a["relpath"]: a["sha256"] for a in
                                                                   artifacts.get(r["release_id"], [])})
            for r in releases if r.get("path")}


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
