"""The overview blocks of the hand-written pages in site/docs (Home, Taxonomy, Contributors, Documents, Runs,
Releases, Licenses): HTML put where a page says `<!-- taxreg:NAME -->`. Every value is escaped here."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from html import escape
from typing import Any

from builder.site import charts, impact, urls
from builder.site.readmodel import GENERATION_STAGES, SiteData

LATEST_RELEASES = 5
TOP_DOMAINS = 15
TILES = [  # count, its label, what it counts
    ("contributions", "contributions", "leaves of the taxonomy, retired ones left out"),
    ("contributors", "contributors", "people and organizations named by created_by"),
    ("documents", "documents", "knowledge documents, by sha256"),
    ("seeds", "seed examples", "seed examples of the current versions"),
    ("dataset_samples", "samples in the datasets", "distinct samples in the newest build of each dataset file"),
    ("generation_runs", "generation runs", "runs that generated samples (model runs are listed on the Runs page)"),
    ("releases", "releases", "cut releases"),
]


def blocks() -> dict[str, Callable[[SiteData, str], str]]:
    """Marker name -> function(data, root prefix of the page) -> HTML."""
    return {"home": home, "taxonomy": taxonomy, "contributors": contributors, "documents": documents,
            "runs": runs, "releases": releases, "licenses": licenses}


def _a(root: str, folder: str, text: str) -> str:
    return f'<a href="{root}{urls.href(folder)}">{escape(text)}</a>'


def _table(headers: list[str], body: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    rows = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>\n" for row in body)
    return f"<table>\n<tr>{head}</tr>\n{rows}</table>\n"


def home(data: SiteData, root: str) -> str:
    counts = data.counts
    tiles = "".join(f'<div class="taxreg-count" title="{escape(about)}"><strong>{counts[k]:,}</strong> {escape(label)}'
                    "</div>" for k, label, about in TILES)
    kinds = Counter(c["kind"].replace("_", " ") for c in data.contributions)
    domains = Counter(c["domain"] for c in data.contributions)
    total, growth = 0, []
    for commit in data.commits:
        total += commit["new_contributions"]
        growth.append((str(commit["committed_at"]), total))
    samples = [max((r["kept"] for r in data.samples_by_run.get(c["contribution_id"], [])), default=0)
               for c in data.contributions]
    latest = data.releases[:LATEST_RELEASES]
    release_rows = [[_a(root, urls.release(r["release_id"]), r["release_id"]), escape(r["status"]),
                     escape(str(r["released_at"])), escape(r["license_expression"] or "UNKNOWN")] for r in latest]
    return (f'<div class="taxreg-counts">{tiles}</div>\n'
            "<h2 id=\"latest-releases\">Latest releases</h2>\n"
            + (_table(["release", "status", "released", "license"], release_rows) if latest
               else "<p>No release has been cut yet (<code>taxreg release</code>).</p>\n")
            + "<h2 id=\"impact\">What the model learned</h2>\n"
            + "<p>Each contribution's questions held out of training, answered by the base model and by the released "
              "fine-tune (both as the ONNX graphs that ship); per contribution on its page, ranked on each release's "
              "page.</p>\n"
            + impact.home_chart(data.impact)
            + "<h2 id=\"charts\">Contributions</h2>\n"
            + charts.bars("Contributions by kind", kinds.most_common())
            + charts.bars(f"Contributions by domain (top {TOP_DOMAINS})", domains.most_common(TOP_DOMAINS))
            + charts.growth("Contributions over taxonomy commits", growth)
            + charts.histogram("Contributions by number of kept samples", samples))


def taxonomy(data: SiteData, root: str) -> str:
    """The tree as nested <details>, each branch with its leaf count, each leaf a link."""
    tree: dict[str, Any] = {}
    for c in data.contributions:
        node = tree
        for part in c["contribution_id"].split("/")[:-1]:
            node = node.setdefault(part + "/", {})
        node[c["contribution_id"]] = c
    out: list[str] = []

    def count(node: dict[str, Any]) -> int:
        return sum(count(v) if k.endswith("/") else 1 for k, v in node.items())

    def walk(node: dict[str, Any], level: int) -> None:
        for key in sorted(node):
            value = node[key]
            if key.endswith("/"):
                opened = " open" if level == 0 else ""
                out.append(f'<details class="taxreg-branch"{opened}><summary>{escape(key[:-1])} '
                           f"<small>({count(value)})</small></summary>\n")
                walk(value, level + 1)
                out.append("</details>\n")
            else:
                name = key.rsplit("/", 1)[-1]
                status = "" if value["status"] == "active" else f" <small>({escape(value['status'])})</small>"
                out.append(f'<div class="taxreg-leaf">{_a(root, urls.contribution(key), name)} '
                           f"<small>{escape(value['created_by'] or '')}</small>{status}</div>\n")

    walk(tree, 0)
    return f"<p>{count(tree):,} contributions.</p>\n" + "".join(out)


def contributors(data: SiteData, root: str) -> str:
    per = Counter((c["created_by"] or "").lower() for c in data.contributions)
    body = [[_a(root, urls.contributor(cid), p["display_name"] or p["login"]), escape(p["kind"]), str(per[cid])]
            for cid, p in sorted(data.contributors.items(), key=lambda kv: (-per[kv[0]], kv[0]))]
    return _table(["contributor", "kind", "contributions"], body)


def documents(data: SiteData, root: str) -> str:
    body = [[_a(root, urls.document(sha), sha[:16]), escape(places[0]["repo_url"]), escape(places[0]["path"]),
             escape(places[0]["license_spdx"] or "UNKNOWN"), str(len(data.document_users.get(sha, [])))]
            for sha, places in data.documents.items()]
    return _table(["sha256", "repository", "path", "license", "used by"], body)


def runs(data: SiteData, root: str) -> str:
    """Generation runs (they make samples), then model runs (base model, training, export: they make models)."""
    generation = [r for r in data.runs if r["stage"] in GENERATION_STAGES]
    body = [[_a(root, urls.run(r["run_id"]), r["run_id"][:12]), escape(r["generator"]), escape(r["status"]),
             escape(str(r["started_at"])), str(r["samples"]), str(r["kept"])] for r in generation]
    out = ["<h2 id=\"generation\">Generation runs</h2>\n",
           _table(["run", "generator", "status", "started", "samples", "kept"], body) if body
           else "<p>No generation run yet (<code>taxreg generate</code>).</p>\n"]
    models = [[_a(root, urls.run(r["run_id"]), r["run_id"][:12]), escape(r["stage"]), escape(r["generator"]),
               escape(r["status"]), escape(str(r["started_at"])),
               escape(", ".join(m["kind"] for m in data.run_details.get(r["run_id"], {}).get("models", [])) or "none")]
              for r in data.runs if r["stage"] not in GENERATION_STAGES]
    out += ["<h2 id=\"models\">Model runs</h2>\n", "<p>Base model, training and export runs: they make models, "
            "not samples.</p>\n", _table(["run", "stage", "by", "status", "started", "models made"], models) if models
            else "<p>No model run yet (<code>taxreg train</code>, <code>taxreg export</code>).</p>\n"]
    return "".join(out)


def releases(data: SiteData, root: str) -> str:
    body = [[_a(root, urls.release(r["release_id"]), r["release_id"]), escape(r["status"]),
             escape(str(r["released_at"])), escape(r["license_expression"] or "UNKNOWN"),
             f"<code>{escape(r['manifest_sha256'][:16])}</code>"]
            for r in data.releases]
    return _table(["release", "status", "released", "license", "manifest sha256"], body) if body \
        else "<p>No release has been cut yet (<code>taxreg release</code>).</p>\n"


def licenses(data: SiteData, root: str) -> str:
    parts = ["<h2 id=\"per-release\">Per release</h2>\n"]
    if not data.releases:
        parts.append("<p>No release yet.</p>\n")
    for r in data.releases:
        rows = data.release_details.get(r["release_id"], {}).get("licenses", [])
        parts.append(f"<h3>{_a(root, urls.release(r['release_id']), 'Release ' + r['release_id'])}</h3>\n")
        parts.append(_table(["license", "class", "samples", "documents", "contributions"],
                            [[escape(x["license"]), escape(x["license_class"]), str(x["samples"]),
                              str(x["documents"]), str(x["contributions"])] for x in rows]))
    parts.append("<h2 id=\"samples\">Kept samples per source license</h2>\n")
    parts.append(_table(["license", "samples"], [[escape(x["license"]), str(x["samples"])]
                                                 for x in data.license_summary]))
    parts.append("<h2 id=\"documents\">Source documents per license</h2>\n")
    parts.append(_table(["license", "class", "documents"], [[escape(x["license"]), escape(x["license_class"]),
                                                             str(x["documents"])] for x in data.document_licenses]))
    contribution_licenses = Counter(lic for c in data.contributions
                                    for lic in (sorted({a["license_spdx"] or "UNKNOWN"
                                                        for a in data.attributions.get(c["contribution_id"], [])})
                                                or ["UNKNOWN"]))
    parts.append("<h2 id=\"contributions\">Contributions per attribution license</h2>\n")
    parts.append(_table(["license", "contributions"], [[escape(k), str(v)]
                                                       for k, v in contribution_licenses.most_common()]))
    return "".join(parts)
