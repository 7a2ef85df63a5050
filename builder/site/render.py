"""Entity pages written straight into the built site: content from a Jinja template (autoescaped), framed by
material's own page layout rendered once per folder depth (a "skeleton").

mkdocs renders and search-indexes every page through Python-Markdown and its search plugin (~7 ms a page,
a 75 MB index at 10,000 contributions); these pages need neither. A page whose inputs (context, template,
skeleton) hash the same as in the previous site is hard-linked from it instead of rendered again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import marshal
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import jinja2

from builder.site import urls
from builder.site.pages import PageSpec

MANIFEST = ".taxreg-pages.json"  # folder -> key of every page written here, for the next build
TITLE, CONTENT = "TAXREGxTITLEx5d1c", "TAXREGxCONTENTx5d1c"


@dataclass(frozen=True, slots=True)
class Skeleton:
    """A material page with markers where the title and the content go, for pages at one depth."""

    parts: tuple[str, ...]  # literal, marker, literal, marker, ...
    digest: str

    @classmethod
    def parse(cls, html: str) -> Skeleton:
        parts: list[str] = []
        rest = html
        while True:
            at = [(rest.find(m), m) for m in (TITLE, CONTENT) if m in rest]
            if not at:
                parts.append(rest)
                break
            index, marker = min(at)
            parts.extend([rest[:index], marker])
            rest = rest[index + len(marker):]
        return cls(tuple(parts), hashlib.sha256(html.encode()).hexdigest())

    def fill(self, title: str, content: str) -> str:
        values = {TITLE: escape(title), CONTENT: content}
        return "".join(values.get(part, part) if i % 2 else part for i, part in enumerate(self.parts))


@dataclass(slots=True)
class RenderStats:
    rendered: int = 0
    reused: int = 0
    written: dict[str, str] = field(default_factory=dict)  # folder -> key
    search: list[tuple[str, str, str]] = field(default_factory=list)  # (folder, title, text) of every page


class Renderer:
    def __init__(self, templates: Path, skeleton_for: Any, mermaid: bool) -> None:
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates), autoescape=True,
                                      undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                                      finalize=lambda value: "" if value is None else value)  # NULL shows empty
        # The templates and the code that fills them: a change to either renders every page again.
        sources = [*sorted(templates.glob("*.html")), *sorted(Path(__file__).parent.glob("*.py"))]
        self.templates_digest = hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in sources)).hexdigest()
        self.skeleton_for = skeleton_for  # depth -> Skeleton (rendered on first use)
        self.mermaid = mermaid

    def key(self, spec: PageSpec) -> str:
        skeleton: Skeleton = self.skeleton_for(urls.depth(spec.folder))
        digest = hashlib.blake2b(f"{self.templates_digest}{skeleton.digest}{self.mermaid}".encode(), digest_size=20)
        digest.update(_canonical([spec.title, spec.template, spec.context, spec.jsonld]))
        return digest.hexdigest()

    def render(self, spec: PageSpec) -> str:
        root = urls.root_prefix(spec.folder)
        content = self.env.get_template(spec.template).render(**spec.context, root=root,
                                                                mermaid_enabled=self.mermaid)
        if spec.jsonld is not None:
            content += f'\n<script type="application/ld+json">{_script_json(spec.jsonld)}</script>\n'
        if self.mermaid and spec.template == "contribution.html":
            content += f'<script src="{root}assets/vendor/mermaid.min.js"></script>\n'
        skeleton: Skeleton = self.skeleton_for(urls.depth(spec.folder))
        return skeleton.fill(spec.title, content)

    def write_all(self, specs: Iterable[PageSpec], site: Path, previous: Path | None) -> RenderStats:
        """Pages one at a time (a generator keeps one context in memory, not 10,000)."""
        old = _manifest(previous) if previous else {}
        stats = RenderStats()
        made: set[str] = set()  # folders known to exist: one mkdir per new folder (plain strings: 14,000 pages)
        for spec in specs:
            stats.search.append((spec.folder, spec.title, spec.search))
            key = self.key(spec)
            folder = os.path.join(site, spec.folder)
            _make_folder(folder, made)
            target = os.path.join(folder, "index.html")
            if previous is not None and old.get(spec.folder) == key and _reuse(
                    os.path.join(previous, spec.folder, "index.html"), target):
                stats.reused += 1
            else:
                with open(target, "w", encoding="utf-8") as out:
                    out.write(self.render(spec))
                stats.rendered += 1
            stats.written[spec.folder] = key
        (site / MANIFEST).write_text(json.dumps(stats.written, sort_keys=True), encoding="utf-8")
        return stats


def _canonical(value: Any) -> bytes:
    """Bytes that are equal when the page's inputs are: marshal version 2 (no back-references, so equal
    values give equal bytes whatever their identity) is ~5x faster than JSON; JSON for other types."""
    try:
        return marshal.dumps(value, 2)
    except ValueError:
        return json.dumps(value, sort_keys=True, default=str).encode()


def _manifest(site: Path) -> dict[str, str]:
    try:
        loaded = json.loads((site / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _make_folder(folder: str, made: set[str]) -> None:
    folder = folder.rstrip("/")
    if folder in made:
        return
    parent = os.path.dirname(folder)
    if parent not in made and not os.path.isdir(parent):
        _make_folder(parent, made)
    made.add(parent)
    with contextlib.suppress(FileExistsError):  # a page whose folder holds another page's folder
        os.mkdir(folder)
    made.add(folder)


def _reuse(source: str, target: str) -> bool:
    """A hard link to the previous build's page (a copy across file systems); False when it is gone."""
    try:
        os.link(source, target)
    except FileNotFoundError:
        return False
    except OSError:
        try:
            shutil.copyfile(source, target)
        except OSError:
            return False
    return True


def _script_json(value: Any) -> str:
    """JSON safe inside <script>: no `<`, `>` or `&` can end the element or open a comment."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
