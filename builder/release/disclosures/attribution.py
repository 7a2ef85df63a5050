"""ATTRIBUTION.md: every work whose text, or text derived from it, ships in the release, credited as its
attribution.txt writes it (title, creator, link, revision, license), grouped by license with the license text's
URL. CC-BY, CC-BY-SA and Apache-2.0 oblige a redistributor to give exactly this credit. The site shows the same
page (`render` is shared)."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from registry.catalog.disclosure import Attribution

_CC = re.compile(r"CC-(BY(?:-NC)?(?:-SA|-ND)?)-(\d\.\d)", re.IGNORECASE)
LICENSE_TEXTS = {"CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/legalcode",
                 "Apache-2.0": "https://www.apache.org/licenses/LICENSE-2.0",
                 "MIT": "https://opensource.org/license/mit"}


def license_url(spdx: str) -> str:
    """Where the license's full text is: Creative Commons' legal code, the license steward's page, else SPDX's."""
    if spdx in LICENSE_TEXTS:
        return LICENSE_TEXTS[spdx]
    cc = _CC.fullmatch(spdx)
    if cc:
        return f"https://creativecommons.org/licenses/{cc.group(1).lower()}/{cc.group(2)}/legalcode"
    return f"https://spdx.org/licenses/{spdx}.html"


def write(path: Path, version: str, attributions: list[Attribution]) -> None:
    path.write_text(render(version, attributions), encoding="utf-8")


def render(version: str, attributions: list[Attribution]) -> str:
    by_license: dict[str, list[Attribution]] = defaultdict(list)
    for a in attributions:
        by_license[a.license_spdx or "UNKNOWN"].append(a)
    lines = [f"# Attribution: release {version}", "",
             "This release ships text from, or derived from, the works below. Each is credited as its contributor "
             "wrote it in the taxonomy's attribution.txt, grouped by license.", ""]
    for spdx in sorted(by_license):
        url = license_url(spdx) if spdx != "UNKNOWN" else None
        lines += [f"## {spdx}", "", f"License text: <{url}>" if url else "License not known.", ""]
        for a in sorted(by_license[spdx], key=lambda a: (a.title or "", a.contribution_id)):
            lines.append(f"- {_credit(a)}")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _credit(a: Attribution) -> str:
    parts = [f"**{_text(a.title) or 'Untitled'}**", f"by {_text(a.creators) or 'unknown creator'}"]
    parts += [f"<{a.link}>" if a.link and a.link.startswith(("https://", "http://")) else _text(a.link) or "no link",
              f"revision {_text(a.revision) or 'N/A'}", f"license: {_text(a.license_raw) or 'not stated'}",
              f"taxonomy contribution `{a.contribution_id}`"]
    return ", ".join(parts)


def _text(value: str | None) -> str:
    """Contributed text, kept from starting markdown of its own (a line break or markup in a title)."""
    return " ".join((value or "").split()).replace("*", r"\*").replace("_", r"\_").replace("<", "&lt;")
