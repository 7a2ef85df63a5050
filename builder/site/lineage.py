"""The lineage diagram of one contribution, as Mermaid source, left to right in six columns:

    contributor, licenses, documents -> the contribution -> its samples (from its seed examples and the
    documents' chunks) -> datasets -> releases, and the adapter trained on them -> the ONNX models exported
    from it

Every column fans out from one node or into one node, so the usual shape draws without a crossing; labels
are two short lines (a diagram as wide as the page keeps its text at the page's size), and a node is a link
to its page where the site has one. Labels hold contributed text (paths, names), so they keep only a safe
alphabet: a label can never close its quotes, start a directive, or carry markup. Links are site paths,
percent-encoded. The page HTML-escapes the whole source as well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from builder.site import urls

_UNSAFE = re.compile(r"[^A-Za-z0-9 _./@:+-]")
_LINK = re.compile(r"[A-Za-z0-9%/._~#-]+")  # what urls.href and anchors give; anything else is not linked
MAX_NODES = 6  # per column: a diagram is a summary, the page's tables have the rest
# Closer columns and tighter boxes than mermaid's defaults (50 and 15 px): six columns are then ~1,000 px wide,
# drawn at 90% of the page's text size at 1280 px (with the defaults: 1,330 px, 70%).
SPACING = '%%{init: {"flowchart": {"rankSpacing": 20, "nodeSpacing": 24, "padding": 8}}}%%'


def label(text: str, limit: int = 30) -> str:
    clean = _UNSAFE.sub("_", text)
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


@dataclass(slots=True)
class _Graph:
    root: str  # from the page back to the site root
    lines: list[str] = field(default_factory=lambda: ["flowchart LR", SPACING])
    links: list[str] = field(default_factory=list)

    def node(self, key: str, *text: str, href: str | None = None) -> str:
        self.lines.append(f'  {key}["{chr(10).join(label(t) for t in text if t)}"]')
        if href and _LINK.fullmatch(href):
            target = href if href.startswith("#") else self.root + href
            self.links.append(f'  click {key} href "{target}"')
        return key

    def edge(self, source: str, target: str) -> None:
        self.lines.append(f"  {source} --> {target}")

    def source(self) -> str:
        return "\n".join(self.lines + self.links) + "\n"


def diagram(page: dict[str, Any], root: str) -> str:
    """Mermaid `flowchart LR` from a contribution page's context (contributor, documents, counts, datasets...)."""
    g = _Graph(root)
    leaf = g.node("leaf", "contribution", page["contribution_id"].rsplit("/", 1)[-1])
    person = page["contributor"]
    g.edge(g.node("contributor", "contributor", person["name"], href=person["href"]), leaf)
    for i, name in enumerate(page["licenses"][:MAX_NODES]):
        g.edge(g.node(f"license{i}", "license", name, href="licenses/#contributions"), leaf)
    for i, doc in enumerate(page["documents"][:MAX_NODES]):
        g.edge(g.node(f"doc{i}", "document " + doc["doc_sha256"][:8], doc["path"].rsplit("/", 1)[-1],
                      f"{doc['chunks_used']} chunks used", href=doc["href"]), leaf)
    if len(page["documents"]) > MAX_NODES:
        g.edge(_more(g, "documents", len(page["documents"])), leaf)
    samples = g.node("samples", f"{page['sample_count']} samples from", f"{page['seed_count']} seed examples",
                     href="#samples")
    g.edge(leaf, samples)
    splits: dict[str, set[str]] = {}
    for d in page["datasets"]:
        splits.setdefault(d["name"], set()).add(d["split"])
    names = sorted(splits)
    datasets = {name: g.node(f"ds{i}", f"dataset {name}", " / ".join(sorted(splits[name])), href="#samples")
                for i, name in enumerate(names[:MAX_NODES])}
    for node in datasets.values():
        g.edge(samples, node)
    if len(names) > MAX_NODES:
        g.edge(samples, _more(g, "datasets", len(names)))
    for i, release in enumerate(page["release_links"][:MAX_NODES]):
        node = g.node(f"rel{i}", f"release {release['id']}", href=release["href"])
        for source in datasets.values():
            g.edge(source, node)
    _models(g, page["models"], datasets)
    return g.source()


def _models(g: _Graph, models: list[dict[str, Any]], datasets: dict[str, str]) -> None:
    """An adapter from the datasets its training read; a model derived from another (an ONNX export of the
    adapter) from that model only."""
    shown = {m["artifact_id"]: f"model{i}" for i, m in enumerate(models[:MAX_NODES])}
    for m in models[:MAX_NODES]:
        node = g.node(shown[m["artifact_id"]], f"{m['kind']} model", m["artifact_id"][:12],
                      href=urls.href(urls.run(m["run_id"])) if m.get("run_id") else None)
        if m.get("derived_from") in shown:
            g.edge(shown[m["derived_from"]], node)
            continue
        for name in sorted({d.split("/")[0] for d in m.get("datasets") or []}):  # "default/train" -> "default"
            if name in datasets:
                g.edge(datasets[name], node)


def _more(g: _Graph, what: str, count: int) -> str:
    """The node that says a column is cut short: `+4 more documents` (the page's tables list them all)."""
    return g.node(f"more{what}", f"+{count - MAX_NODES} more {what}", "listed below")
