"""One page per entity (contribution, contributor, document, run, release): its address, title, template, the
data it shows and what search indexes about it.

A page's context is plain JSON built only from the catalog, so its hash says whether the page changed: an
unchanged page is not rendered again (see render.py). Links inside a context are relative to the site root
and prefixed with the page's `root` by the templates.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from builder.site import disclosures, impact, lineage, release_files, urls
from builder.site.readmodel import GENERATION_STAGES, Row, SiteData
from registry.release.manifest import MANIFEST, SIGNATURE, SUMS

# What a contribution's search entry holds of its text, in characters: ~6 MB at 10,000 contributions, so that
# the index stays within its 15 MB budget (the whole pages would be 75 MB: a 12 s first search).
SEARCH_WORDS_CHARS = 600
_WORD = re.compile(r"[^\W_]{2,}")


@dataclass(frozen=True, slots=True)
class PageSpec:
    folder: str  # relative to the site root, with a trailing slash
    title: str
    template: str
    context: dict[str, Any]
    search: str  # what the search index holds about the page besides its title
    jsonld: dict[str, Any] | None = None


def entity_pages(data: SiteData) -> Iterator[PageSpec]:
    """Every entity page, made one at a time as the renderer asks for them."""
    for c in data.contributions:
        yield _contribution(c, data)
    yield from _contributors(data)
    yield from _documents(data)
    yield from _runs(data)
    yield from _releases(data)


def _contribution(c: Row, data: SiteData) -> PageSpec:
    cid = c["contribution_id"]
    folder = urls.contribution(cid)
    contributor = data.contributors.get((c["created_by"] or "").lower())
    documents = [{**d, "href": urls.href(urls.document(d["doc_sha256"])),
                  "repo_link": urls.web_link(d["repo_url"]),
                  "chunks_used": data.chunk_edges.get(cid, {}).get(d["doc_sha256"], 0),
                  "takedown": data.takedowns.get(d["doc_sha256"])}
                 for d in data.sources.get(cid, [])]
    runs = [{**r, "href": urls.href(urls.run(r["run_id"]))} for r in data.samples_by_run.get(cid, [])]
    releases = data.release_of.get(cid, [])
    attributions = [{**a, "link_href": urls.web_link(a["link"])} for a in data.attributions.get(cid, [])]
    context = {
        **c,
        "contributor": _person(contributor, c["created_by"]),
        "takedown": data.takedowns.get(cid),
        "attributions": attributions,
        "licenses": sorted({a["license_spdx"] or "UNKNOWN" for a in attributions}) or ["UNKNOWN"],
        "seeds": data.seeds.get(cid, []),
        "documents": documents,
        "findings": data.findings.get(cid, []),
        "versions": data.versions.get(cid, []),
        "runs": runs,
        "examples": data.examples.get(cid, []),
        "datasets": data.datasets.get(cid, []),
        "releases": releases,
        "release_links": [{"id": r, "href": urls.href(urls.release(r))} for r in releases],
        "models": [{**x, "run_href": urls.href(urls.run(x["run_id"]))} for x in data.models_of.get(cid, [])],
        "seed_count": len(data.seeds.get(cid, [])),
        "sample_count": max((r["kept"] for r in runs), default=0),
        "repo_link": urls.web_link(c["document_repo"]),
        "impact": impact.contribution_context(data.impact, cid, releases),
    }
    for entry in context["impact"]["entries"]:
        entry["release_href"] = urls.href(urls.release(entry["release_id"])) if entry["release_id"] else None
    context["mermaid"] = lineage.diagram(context, urls.root_prefix(folder))
    context["all_samples_href"] = "audit/console/#" + urlencode({"sql": _samples_sql(cid)})
    search = " ".join(filter(None, [cid, c["kind"], c["domain"], c["created_by"], c["status"],
                                    context["contributor"]["name"], c["knowledge_domain"], *context["licenses"]]))
    titles = [data.documents[d["doc_sha256"]][0]["title"] for d in documents if d["doc_sha256"] in data.documents]
    search += " " + topic_words([c["document_outline"], c["task_description"], *titles,
                                 *(text for s in context["seeds"] for text in (s["question"], s["answer"]))],
                                search)
    jsonld = {
        "@context": "https://schema.org", "@type": "CreativeWork", "name": cid, "identifier": c["current_version_id"],
        "genre": c["kind"], "about": c["domain"], "creator": {"@type": "Person", "name": c["created_by"]},
        "license": context["licenses"], "isBasedOn": [d["repo_url"] + "@" + d["repo_commit"] for d in documents],
    }
    return PageSpec(folder, cid.rsplit("/", 1)[-1] + " (" + c["kind"].replace("_", " ") + ")", "contribution.html",
                    context, search, jsonld)


def topic_words(texts: list[str | None], known: str, limit: int = SEARCH_WORDS_CHARS) -> str:
    """The words of `texts` in order, each once and lower-cased, leaving out those already in `known`, up to
    `limit` characters: what the page is about (outline, document titles, questions and answers) for search."""
    seen = set(_WORD.findall(known.lower()))
    words: list[str] = []
    size = 0
    for text in texts:
        for word in _WORD.findall((text or "").lower()):
            if word in seen:
                continue
            if size + len(word) + 1 > limit:
                return " ".join(words)
            seen.add(word)
            words.append(word)
            size += len(word) + 1
    return " ".join(words)


def _samples_sql(contribution_id: str) -> str:
    """The SQL console query that lists every kept sample of a contribution (the page shows a few)."""
    quoted = contribution_id.replace("'", "''")
    return ("SELECT DISTINCT s.sample_id, s.messages\nFROM sample_lineage l JOIN sample s USING (sample_id)\n"
            f"WHERE l.contribution_id = '{quoted}' AND s.kept\nORDER BY s.sample_id")


def _person(row: Row | None, fallback: str | None) -> dict[str, Any]:
    if row is None:
        return {"name": fallback or "unknown", "href": None, "profile": None}
    return {"name": row["display_name"] or row["login"], "href": urls.href(urls.contributor(row["contributor_id"])),
            "profile": urls.web_link(row["public_profile"])}


def _contributors(data: SiteData) -> Iterator[PageSpec]:
    by_person: dict[str, list[Row]] = defaultdict(list)
    for c in data.contributions:
        by_person[(c["created_by"] or "").lower()].append(c)
    for cid, person in data.contributors.items():
        mine = [{"id": c["contribution_id"], "kind": c["kind"], "domain": c["domain"], "status": c["status"],
                 "href": urls.href(urls.contribution(c["contribution_id"])),
                 "samples": max((r["kept"] for r in data.samples_by_run.get(c["contribution_id"], [])), default=0),
                 "releases": data.release_of.get(c["contribution_id"], [])}
                for c in by_person.get(cid, [])]
        name = person["display_name"] or person["login"]
        context = {**person, "name": name, "profile": urls.web_link(person["public_profile"]), "contributions": mine,
                   "kinds": dict(Counter(m["kind"] for m in mine)),
                   "releases": [{"id": r, "href": urls.href(urls.release(r))}
                                for r in sorted({r for m in mine for r in m["releases"]})]}
        search = " ".join([name, person["login"], person["kind"], *sorted({m["domain"] for m in mine})])
        yield PageSpec(urls.contributor(cid), f"{name} (contributor)", "contributor.html", context, search)


def _documents(data: SiteData) -> Iterator[PageSpec]:
    for sha, places in data.documents.items():
        first = places[0]
        users = [{"id": u, "href": urls.href(urls.contribution(u))} for u in data.document_users.get(sha, [])]
        context = {"doc_sha256": sha, "places": [{**p, "repo_link": urls.web_link(p["repo_url"])} for p in places],
                   "title": first["title"], "media_type": first["media_type"], "byte_size": first["byte_size"],
                   "license": first["license_spdx"] or "UNKNOWN", "license_class": first["license_class"],
                   "attribution_required": first["attribution_required"], "share_alike": first["share_alike"],
                   "users": users, "chunks": data.chunks.get(sha, 0), "takedown": data.takedowns.get(sha)}
        title = f"{first['path'].rsplit('/', 1)[-1]} @ {sha[:12]}"
        search = " ".join(filter(None, [sha, first["repo_url"], first["repo_commit"], first["path"], first["title"],
                                        context["license"], *(u["id"] for u in users)]))
        yield PageSpec(urls.document(sha), title, "document.html", context, search)


def _runs(data: SiteData) -> Iterator[PageSpec]:
    for run in data.runs:
        details = data.run_details.get(run["run_id"], {})
        contributions = [{**c, "href": urls.href(urls.contribution(c["contribution_id"]))}
                         for c in details.get("contributions", [])]
        context = {**run, "params": _pretty(run["params"]), "stats": _pretty(run["stats"]),
                   "dropped": details.get("dropped", []), "contributions": contributions,
                   "generation": run["stage"] in GENERATION_STAGES, "models": details.get("models", []),
                   "inputs": details.get("inputs", [])}
        search = " ".join(filter(None, [run["run_id"], run["generator"], run["teacher_model_ref"], run["status"]]))
        title = f"Run {run['run_id'][:12]} ({run['stage']}, {run['generator']})"
        yield PageSpec(urls.run(run["run_id"]), title, "run.html", context, search)


def _releases(data: SiteData) -> Iterator[PageSpec]:
    for release in data.releases:
        rid = release["release_id"]
        details = data.release_details.get(rid, {})
        contributors = [{**c, "href": urls.href(urls.contributor(str(c["contributor"]).lower()))
                         if str(c["contributor"]).lower() in data.contributors else None}
                        for c in details.get("contributors", [])]
        published = set(data.release_files.get(rid, ()))
        artifacts = [{**a, "href": f"{release_files.FILES}/{urls.href(a['relpath'])}" if a["relpath"] in published
                      else None} for a in details.get("artifacts", [])]
        extras = [{"name": name, "href": f"{release_files.FILES}/{name}"} for name in (MANIFEST, SUMS, SIGNATURE)
                  if name in published]
        context = {**release, "artifacts": artifacts, "published": bool(published), "extras": extras,
                   "licenses": details.get("licenses", []),
                   "contributors": contributors, "checks": details.get("checks", []),
                   "takedowns": [{**t, "href": urls.href(urls.contribution(t["subject"]) if t["subject_kind"] ==
                                                         "contribution" else urls.document(t["subject"]))}
                                 for t in details.get("takedowns", [])],
                   "disclosures": _disclosures(data.release_disclosures.get(rid), published),
                   "attribution_href": urls.href(disclosures.attribution_folder(rid)),
                   "impact": _linked(impact.release_context(data.impact, rid))}
        jsonld = {"@context": "https://schema.org", "@type": "Dataset", "name": f"Taxonomy Registry release {rid}",
                  "version": rid, "datePublished": _iso(release["released_at"]),
                  "license": release["license_expression"],
                  "identifier": release["manifest_sha256"],
                  "creator": [c["contributor"] for c in details.get("contributors", [])],
                  "distribution": [{"@type": "DataDownload", "name": a["relpath"], "sha256": a["sha256"]}
                                   for a in details.get("artifacts", [])]}
        search = " ".join(filter(None, [rid, release["status"], release["license_expression"],
                                        release["taxonomy_commit"]]))
        yield PageSpec(urls.release(rid), f"Release {rid}", "release.html", context, search, jsonld)
        shown = data.release_disclosures.get(rid) or {}
        if shown.get("attribution_html"):
            yield PageSpec(disclosures.attribution_folder(rid), f"Attribution: release {rid}", "attribution.html",
                           {"release_id": rid, "release_href": urls.href(urls.release(rid)),
                            "html": shown["attribution_html"]}, f"{rid} attribution credits licenses")


def _disclosures(shown: Row | None, published: set[str]) -> Row | None:
    """The release's disclosures, each file linked to its download where the site publishes it."""
    if shown is None:
        return None
    return {**shown, "files": [{**f, "href": f"{release_files.FILES}/{urls.href(f['relpath'])}"
                                if f["relpath"] in published else None} for f in shown["files"]]}


def _linked(context: dict[str, Any]) -> dict[str, Any]:
    for row in [*context.get("ranked", []), *context.get("regressions", [])]:
        row["href"] = urls.href(urls.contribution(row["contribution_id"])) if row.get("contribution_id") else None
    return context


def _iso(shown: str | None) -> str | None:
    """"2026-12-07 11:32:29 UTC" (as pages show times) in ISO 8601 for machine-readable metadata."""
    return shown.replace(" UTC", "Z").replace(" ", "T", 1) if shown else None


def _pretty(raw: str | None) -> str:
    if not raw:
        return ""
    try:
        return json.dumps(json.loads(raw), indent=2, sort_keys=True, ensure_ascii=False)
    except ValueError:
        return raw
