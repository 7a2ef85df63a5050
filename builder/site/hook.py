"""The mkdocs side of the site: event handlers that `site/hooks/taxreg.py` hands to mkdocs.

mkdocs builds the hand-written pages of site/docs (plus the Audit pages) with their generated blocks; after
it, the entity pages are rendered into the same output with material's layout (render.py), their search
entries appended to material's index, and the audit database and console written. `mkdocs build --strict`
on the root mkdocs.yml and `taxreg site` run the same code; settings come from `extra.taxreg` in mkdocs.yml,
which `taxreg site` overrides.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from mkdocs.commands.build import get_context
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.nav import Navigation
from mkdocs.structure.pages import Page

from builder.layout import DEFAULT, SiteLayout
from builder.site import disclosures, overview, readme, reference, release_files, urls, vendor
from builder.site.readmodel import SiteData, load
from builder.site.pages import entity_pages
from builder.site.render import CONTENT, TITLE, Renderer, RenderStats, Skeleton
from registry.errors import RegistryError

log = logging.getLogger("taxreg.site")  # not under "mkdocs": notes must not abort a --strict build
ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "site" / "templates"
CATALOG_ENV = "TAXREG_SITE_CATALOG"
MERMAID_URL = "assets/vendor/mermaid.min.js"
_MARKER = re.compile(r"<!-- taxreg:([a-z]+) -->")
# `<!-- taxreg:NAME -->` blocks of the hand-written pages; others register theirs (register_block)
MARKDOWN_BLOCKS: dict[str, Callable[[], str]] = {"rules": reference.rules_markdown}


def register_block(name: str, render: Callable[[], str]) -> None:
    """`<!-- taxreg:NAME -->` in a hand-written page becomes what `render()` returns (site/hooks/taxreg.py
    registers the command-line reference this way)."""
    MARKDOWN_BLOCKS[name] = render


@dataclass(slots=True)
class Settings:
    catalog: Path
    taxonomy: Path | None
    vendor: Path
    previous: Path | None  # the site being replaced: unchanged pages are linked from it
    audit: bool = True  # write the audit database and console (False: a quicker preview)

    @classmethod
    def from_config(cls, config: MkDocsConfig) -> Settings:
        raw = dict(config.extra.get("taxreg") or {})
        if os.environ.get(CATALOG_ENV):  # `mkdocs build` on another catalog without editing mkdocs.yml
            raw["catalog"] = os.environ[CATALOG_ENV]
        base = Path(config.config_file_path or ".").resolve().parent

        def where(key: str, default: str | None) -> Path | None:
            value = raw.get(key, default)
            return None if value in (None, "") else base / str(value)

        catalog, vendor_dir = where("catalog", str(DEFAULT.catalog)), where("vendor", str(DEFAULT.vendor))
        assert catalog is not None and vendor_dir is not None
        return cls(catalog, where("taxonomy", None), vendor_dir, where("previous", None), bool(raw.get("audit", True)))


@dataclass(slots=True)
class State:
    settings: Settings
    data: SiteData
    mermaid: Path | None
    releases: list[release_files.ReleaseFolder]  # release folders whose files the site publishes
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    nav: Navigation | None = None
    env: Any = None
    files: Files | None = None
    skeletons: dict[int, Skeleton] = field(default_factory=dict)
    render: RenderStats | None = None
    search_bytes: int = 0


_current: dict[str, State] = {}  # "build": the build in progress (mkdocs calls module functions)


def state() -> State:
    if "build" not in _current:
        raise PluginError("the taxreg hook ran out of order: on_config did not run")
    return _current["build"]


def last_state() -> State | None:
    """What the last build did (timings, notes, render counts), for `taxreg site` to report."""
    return _current.get("build")


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    settings = Settings.from_config(config)
    started = time.perf_counter()
    try:
        data = load(settings.catalog)
    except RegistryError as exc:
        raise PluginError(f"{exc} ({exc.hint})" if exc.hint else str(exc)) from exc  # taxreg site reports `exc`
    mermaid, why = vendor.mermaid(settings.vendor)
    releases, notes = release_files.locate(data.releases, settings.catalog)
    data.release_files = {r.release_id: r.files for r in releases}
    data.release_disclosures = disclosures.load(releases, data.release_details)
    st = _current["build"] = State(settings, data, mermaid, releases, notes,
                                   timings={"load": time.perf_counter() - started, "mkdocs": -time.perf_counter()})
    if mermaid is None:
        st.notes.append(f"lineage diagrams are shown as source: mermaid was not vendored ({why})")
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    from builder.site.audit import audit_pages

    st = state()
    for src, markdown in audit_pages(st.settings.catalog, directory_urls=config.use_directory_urls).items():
        files.append(File.generated(config, src, content=_preview_banner(st.settings) + markdown))
    if st.mermaid is not None:
        files.append(File.generated(config, MERMAID_URL, abs_src_path=str(st.mermaid)))
    return files


def on_nav(nav: Navigation, config: MkDocsConfig, files: Files) -> Navigation:
    state().nav = nav
    return nav


def on_env(env: Any, config: MkDocsConfig, files: Files) -> Any:
    st = state()
    st.env, st.files = env, files
    return env


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    return _MARKER.sub(lambda m: MARKDOWN_BLOCKS[m[1]]() if m[1] in MARKDOWN_BLOCKS else m[0], markdown)


def on_page_content(html: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    st, blocks = state(), overview.blocks()
    root = urls.root_prefix(page.url)

    def block(match: re.Match[str]) -> str:
        name = match[1]
        if name == "about":
            return readme.about(st.settings.taxonomy)
        if name not in blocks:
            raise PluginError(f"{page.file.src_uri}: unknown block <!-- taxreg:{name} -->")
        return blocks[name](st.data, root)

    return _MARKER.sub(block, html)


@event_priority(-100)  # after material's search plugin has written its index
def on_post_build(config: MkDocsConfig) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from builder.site.audit import engine_note, write_audit

    st = state()
    site = Path(config.site_dir)
    started = time.perf_counter()
    st.timings["mkdocs"] += started  # mkdocs' own pages, from on_config to here
    # The audit database is DuckDB's work (it releases the GIL): it runs beside the page rendering.
    with ThreadPoolExecutor(max_workers=1) as pool:
        previous = SiteLayout(st.settings.previous).audit if st.settings.previous is not None else None
        audit = pool.submit(_timed, write_audit, st.settings.catalog, SiteLayout(site).audit, st.settings.vendor,
                            previous) \
            if st.settings.audit else None
        renderer = Renderer(TEMPLATES, lambda depth: _skeleton(st, config, depth), st.mermaid is not None)
        st.render = renderer.write_all(entity_pages(st.data), site, st.settings.previous)
        release_files.link(st.releases, site, urls.release)
        st.timings["pages"] = time.perf_counter() - started
        if audit is not None:
            st.timings["audit"] = audit.result()
    started = time.perf_counter()
    st.search_bytes = _extend_search(SiteLayout(site).search_index, st.render.search)
    st.timings["search"] = time.perf_counter() - started
    if st.settings.audit:
        note = engine_note(SiteLayout(site).audit)
    else:
        kept = _keep_previous_audit(st.settings.previous, SiteLayout(site).audit)
        note = "not published (--no-audit preview)" + ("; the previous build's files were kept" if kept else "")
    if note:
        st.notes.append(f"the audit database and SQL console: {note}")
    for note in st.notes:
        log.warning(note)


def _preview_banner(settings: Settings) -> str:
    if settings.audit:
        return ""
    return ('!!! warning "Preview built without publishing the audit database"\n'
            "    The downloads and the SQL console below are those of the previous full build, when there was one: "
            "they may not match the pages. `taxreg site` without `--no-audit` publishes them again.\n\n")


def _keep_previous_audit(previous: Path | None, audit: Path) -> int:
    """--no-audit: link the previous site's audit files (database, Parquet, console engine) into the new site, so a
    preview never leaves the published downloads missing. mkdocs' own pages in audit/ are not replaced."""
    source = SiteLayout(previous).audit if previous is not None else None
    if source is None or not source.is_dir():
        return 0
    kept = 0
    for path in sorted(source.rglob("*")):
        target = audit / path.relative_to(source)
        if path.is_dir() or target.exists() or path.name == "index.html":
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except OSError:  # another file system
            shutil.copy2(path, target)
        kept += 1
    return kept


def _timed(work: Any, *args: Any) -> float:
    started = time.perf_counter()
    work(*args)
    return time.perf_counter() - started


def _skeleton(st: State, config: MkDocsConfig, depth: int) -> Skeleton:
    """Material's page around markers, for a page `depth` folders below the root (not in the nav)."""
    if depth not in st.skeletons:
        src = "/".join(["taxreg-skeleton"] * depth) + "/index.md" if depth else "taxreg-skeleton.md"
        page = Page(TITLE, File.generated(config, src, content=""), config)
        # No table of contents: its empty sidebar would take a third of the width the tables need.
        page.content, page.markdown, page.meta = CONTENT, "", {"hide": ["toc"]}
        assert st.nav is not None and st.files is not None
        context = get_context(st.nav, st.files, config, page)
        st.skeletons[depth] = Skeleton.parse(st.env.get_template("main.html").render(context))
    return st.skeletons[depth]


def _extend_search(index: Path, entries: list[tuple[str, str, str]]) -> int:
    """Entity pages into material's search index: title and metadata only, escaped (results show as HTML)."""
    if not index.is_file():
        return 0
    loaded = json.loads(index.read_text(encoding="utf-8"))
    loaded["docs"].extend({"location": urls.href(folder), "title": escape(title), "text": escape(text)}
                          for folder, title, text in entries)
    text = json.dumps(loaded, ensure_ascii=False, separators=(",", ":"))
    index.write_text(text, encoding="utf-8")
    return len(text.encode())
