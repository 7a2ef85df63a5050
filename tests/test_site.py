"""The static site, built for real from a catalog of the embedded taxonomy plus a leaf full of payloads:
pages at their stable addresses, escaping, the search index, no external requests, generated reference
pages, atomic and incremental rebuilds, and `mkdocs build --strict` on the root mkdocs.yml.
(The real-browser checks are in test_site_browser.py.)"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder.cli import app, reference
from builder.site import urls
from builder.site.build import SiteOptions, build_site
from builder.site.readmodel import load
from builder.site.vendor import mermaid
from registry.errors import RegistryError
from registry.findings import RULES

REPO = Path(__file__).resolve().parents[1]
VENDOR = REPO / "build" / "vendor"  # mermaid and the SQL engine, fetched from npm once per machine
runner = CliRunner()

# No spaces in the folder name: the dataset's Croissant ids refuse them (reported; not this test's subject).
XSS_DIR = 'compositional_skills/writing/x"];click_A_call_alert(1)<b>%2e'
XSS_LEAF = """version: 3
task_description: "Answer <script>alert('task')</script> [click](javascript:alert(1)) **bold** ```mermaid"
created_by: "<svg onload=alert('x')>"
seed_examples:
  - question: "<script>alert(1)</script> payload one?"
    answer: "Echo: <img src=x onerror=alert(1)>"
  - question: "<img src=x onerror=alert(2)> payload two?"
    answer: "[link](javascript:alert(2)) and <a href=\\"javascript:alert(3)\\">x</a>"
  - question: "{{ 7*7 }} payload three?"
    answer: "flowchart LR\\n  A-->B[\\"<img src=x onerror=alert(4)>\\"]"
  - question: "'; DROP TABLE contribution; -- payload four?"
    answer: "</code></pre><script>alert(5)</script>"
  - question: "javascript:alert(6) payload five?"
    answer: "<!-- taxreg:home --> &lt;escaped&gt; &amp;"
"""
XSS_ATTRIBUTION = """Title of work: <script>alert('title')</script>
Link to work: javascript:alert('link')
Revision: N/A
License of the work: CC-BY-4.0
Creator names: <img src=x onerror=alert('creator')>
"""
RAW_PAYLOADS = ["<script>alert", "<img src=x", "<svg onload", 'href="javascript:', "<a href=\"javascript", "<b>%2e"]


def _invoke(*args: str) -> None:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output


def make_catalog(root: Path) -> tuple[Path, Path]:
    """The embedded taxonomy plus the payload leaf, indexed, generated and made into a dataset."""
    taxonomy = root / "taxonomy"
    shutil.copytree(REPO / "taxonomy", taxonomy)
    with (taxonomy / "README.md").open("a", encoding="utf-8") as readme:  # a tracking pixel in contributed text
        readme.write("\n![pixel](http://evil.example/px.png) ![](//evil.example/px2.png) [out](https://evil.example/)\n")
    leaf = taxonomy / XSS_DIR
    leaf.mkdir(parents=True)
    (leaf / "qna.yaml").write_text(XSS_LEAF, encoding="utf-8")
    (leaf / "attribution.txt").write_text(XSS_ATTRIBUTION, encoding="utf-8")
    catalog = root / "catalog.duckdb"
    _invoke("index", str(taxonomy), "--catalog", str(catalog))
    _invoke("generate", str(taxonomy), "--catalog", str(catalog))
    _invoke("dataset", "build", "--catalog", str(catalog), "--out", str(root / "datasets"))
    return taxonomy, catalog


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("site")
    taxonomy, catalog = make_catalog(root)
    build_site(SiteOptions(catalog, root / "site", taxonomy, VENDOR))
    return taxonomy, catalog, root / "site"


def page(site: Path, folder: str) -> str:
    return (site / folder / "index.html").read_text(encoding="utf-8")


def test_every_entity_has_a_page_at_its_stable_address(built: tuple[Path, Path, Path]) -> None:
    _, catalog, site = built
    data = load(catalog)
    assert len(data.contributions) == 18
    vendored, why = mermaid(VENDOR)  # npm at build time; without it diagrams are shown as their source
    for c in data.contributions:
        html = page(site, urls.contribution(c["contribution_id"]))
        assert "Seed examples" in html and "flowchart LR" in html
        assert ('<pre class="mermaid">' in html) == (vendored is not None), why
    for cid in data.contributors:
        assert (site / urls.contributor(cid) / "index.html").is_file()
    for sha in data.documents:
        assert sha in page(site, f"documents/{sha}/")
    for run in data.runs:
        assert (site / "runs" / run["run_id"] / "index.html").is_file()
    scales = page(site, "contributions/knowledge/arts/music/music_theory/musical_scales/")
    assert "application/ld+json" in scales and '"@type": "CreativeWork"' in scales
    if vendored is not None:
        assert '<script src="../../../../../../assets/vendor/mermaid.min.js">' in scales  # local, not a CDN
        assert (site / "assets" / "vendor" / "mermaid.min.js").stat().st_size > 1_000_000
    for overview in ("taxonomy", "contributors", "documents", "runs", "releases", "licenses", "serving"):
        assert (site / overview / "index.html").is_file()
    assert (site / "audit" / "index.html").is_file() and (site / "audit" / "audit.duckdb").is_file()
    home = page(site, "")
    assert "Contributions by kind" in home and "<svg" in home


def test_the_theme_override_footer_links_the_evidence_from_every_page(built: tuple[Path, Path, Path]) -> None:
    _, _, site = built
    footer = re.compile(r'<div class="md-copyright taxreg-footer">(.*?)</div>\s*</div>', re.S)
    contributors = [f"contributors/{p.parent.name}/" for p in sorted((site / "contributors").glob("*/index.html"))]
    for folder in ("", "licenses/", "contributions/knowledge/arts/music/music_theory/musical_scales/",
                   *contributors[:2]):
        found = footer.search(page(site, folder))
        assert found, f"no footer from site/overrides on /{folder}"
        links = re.findall(r'href="([^"]+)"', found.group(1))
        assert len(links) == 3
        for link in links:  # relative links that land on the license, audit and release pages
            assert (site / folder / link / "index.html").resolve().is_file(), (folder, link)


def test_contributed_text_is_escaped_everywhere(built: tuple[Path, Path, Path]) -> None:
    _, _, site = built
    folder = urls.contribution(XSS_DIR)
    assert "%253Cb%253E%25252e" in urls.href(folder)  # encoded once on disk, again in links
    html = page(site, folder)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "{{ 7*7 }}" in html  # not evaluated by a template engine
    assert "&lt;svg onload=alert(&#39;x&#39;)&gt;" in html
    assert "javascript:alert(&#39;link&#39;)" in html  # shown as text ...
    assert 'href="javascript:' not in html  # ... never a link
    for generated in [html, page(site, "taxonomy/"), page(site, "contributors/"),
                      *(p.read_text(encoding="utf-8") for p in (site / "contributors").glob("*/index.html"))]:
        for raw in RAW_PAYLOADS:
            assert raw not in generated, raw
    diagram = re.search(r'<pre(?: class="mermaid")?><code>(flowchart LR.*?)</code></pre>', html, re.S)
    assert diagram is not None
    assert '"];click' not in diagram[1] and "&lt;" not in diagram[1]  # labels keep a safe alphabet
    for doc in json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))["docs"]:
        for raw in RAW_PAYLOADS:
            assert raw not in doc["title"] + doc["text"]


def test_search_index_holds_metadata_of_every_entity(built: tuple[Path, Path, Path]) -> None:
    _, catalog, site = built
    index = json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))
    docs = {d["location"]: d for d in index["docs"]}
    data = load(catalog)
    for c in data.contributions:
        entry = docs[urls.href(urls.contribution(c["contribution_id"]))]
        assert c["contribution_id"] in entry["text"] or c["contribution_id"].startswith(XSS_DIR[:20])
    for person in data.contributors.values():
        assert urls.href(urls.contributor(person["contributor_id"])) in docs
    text = " ".join(d["title"] + " " + d["text"] for d in index["docs"])
    for name in ("kestrel-notes", "rmaleki", "lbeaumont"):
        assert name in text
    assert "taxonomy/" not in docs  # the big lists are not indexed (search exclude)


class _Refs(HTMLParser):
    """Every address the browser would fetch by itself: scripts, styles, images, frames, icons."""

    def __init__(self) -> None:
        super().__init__()
        self.fetched: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "audio", "video", "embed") and values.get("src"):
            self.fetched.append(str(values["src"]))
        if tag == "link" and values.get("href"):
            self.fetched.append(str(values["href"]))
        if tag == "object" and values.get("data"):
            self.fetched.append(str(values["data"]))


def test_no_request_leaves_the_site(built: tuple[Path, Path, Path]) -> None:
    _, _, site = built
    external = re.compile(r"^(https?:)?//", re.I)
    pages = list(site.rglob("*.html"))
    assert len(pages) > 40
    for html_file in pages:
        parser = _Refs()
        parser.feed(html_file.read_text(encoding="utf-8"))
        assert not [u for u in parser.fetched if external.match(u)], html_file
    for css in site.rglob("*.css"):
        text = css.read_text(encoding="utf-8")
        assert not re.search(r"(url\(\s*['\"]?|@import\s+['\"]?)(https?:)?//", text, re.I), css
    assert "fonts.googleapis" not in page(site, "")
    home = page(site, "")
    assert "[image: pixel]" in home and '<a href="https://evil.example/" rel="nofollow noopener">out</a>' in home


def test_reference_pages_list_every_command_option_and_rule(built: tuple[Path, Path, Path]) -> None:
    _, _, site = built
    cli = page(site, "reference/cli/")
    found = reference.commands()
    assert {"taxreg site", "taxreg index", "taxreg dataset build"} <= {name for name, _ in found}
    for name, command in found:
        assert f"<code>{name}</code>" in cli, name
        for option in reference.options(command):
            assert f"<code>{option}</code>" in cli, (name, option)
    rules = page(site, "reference/rules/")
    for code in RULES:
        assert f'id="{code.lower()}"' in rules and f"<code>{code}</code>" in rules, code


def test_rebuild_after_one_leaf_changes(built: tuple[Path, Path, Path], tmp_path: Path) -> None:
    taxonomy0, catalog0, site0 = built
    taxonomy, catalog, site = tmp_path / "taxonomy", tmp_path / "catalog.duckdb", tmp_path / "site"
    shutil.copytree(taxonomy0, taxonomy, symlinks=True)
    shutil.copyfile(catalog0, catalog)
    shutil.copytree(site0, site)
    leaf = taxonomy / "knowledge/arts/music/music_theory/musical_scales/qna.yaml"
    text = leaf.read_text(encoding="utf-8")
    old_author = re.search(r"^created_by: (\S+)", text, re.M)
    assert old_author is not None
    leaf.write_text(text.replace(f"created_by: {old_author[1]}", "created_by: newcomer-42"), encoding="utf-8")
    _invoke("index", str(taxonomy), "--catalog", str(catalog))
    untouched = site / "contributions/knowledge/history/technology/printing_press/index.html"
    before = untouched.stat().st_ino

    outcome = build_site(SiteOptions(catalog, site, taxonomy, VENDOR))
    assert outcome.pages_reused > 20 and outcome.pages_rendered < 8, outcome
    assert untouched.stat().st_ino == before  # linked from the previous site, not rendered again
    html = page(site, "contributions/knowledge/arts/music/music_theory/musical_scales/")
    assert 'href="../../../../../../contributors/newcomer-42/"' in html
    assert "knowledge/arts/music/music_theory/musical_scales" in page(site, "contributors/newcomer-42/")
    if (site / "contributors" / old_author[1].lower()).is_dir():
        assert "musical_scales" not in page(site, f"contributors/{old_author[1].lower()}/")
    index = json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))
    assert len(index["docs"]) == len(json.loads(
        (site0 / "search" / "search_index.json").read_text(encoding="utf-8"))["docs"]) + 1  # a new contributor
    assert any("newcomer-42" in d["text"] for d in index["docs"])
    assert not list(tmp_path.glob(".site-new-*")), "no staging folder left behind"


def test_a_no_audit_preview_keeps_the_published_downloads(built: tuple[Path, Path, Path], tmp_path: Path) -> None:
    taxonomy, catalog, site0 = built
    site = shutil.copytree(site0, tmp_path / "site")
    published = {p.relative_to(site).as_posix(): p.read_bytes() for p in (site / "audit").rglob("*")
                 if p.is_file() and p.name != "index.html"}
    assert "audit/audit.duckdb" in published and any(k.endswith(".parquet") for k in published)
    build_site(SiteOptions(catalog, site, taxonomy, VENDOR, audit=False))
    kept = {p.relative_to(site).as_posix(): p.read_bytes() for p in (site / "audit").rglob("*")
            if p.is_file() and p.name != "index.html"}
    assert kept == published  # every download and the console engine are still there, unchanged
    assert "Preview built without publishing the audit database" in page(site, "audit/")


def test_a_failed_build_keeps_the_previous_site(built: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, _, site0 = built
    site = tmp_path / "site"
    shutil.copytree(site0, site)
    broken = tmp_path / "broken.duckdb"
    broken.write_bytes(b"not a database")
    with pytest.raises(RegistryError):
        build_site(SiteOptions(broken, site, None, VENDOR))
    assert (site / "index.html").read_text(encoding="utf-8") == (site0 / "index.html").read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.duckdb", "site"]
    result = runner.invoke(app, ["site", "--catalog", str(tmp_path / "missing.duckdb"), "--out", str(site)])
    assert result.exit_code == 2 and "no catalog" in result.output


def test_mkdocs_build_strict_on_the_root_config(built: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, catalog, _ = built
    env = {**os.environ, "TAXREG_SITE_CATALOG": str(catalog), "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"),
                           "-d", str(tmp_path / "out")], cwd=REPO, env=env, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "out" / "contributions/knowledge/arts/music/music_theory/musical_scales/index.html").is_file()
    assert not (REPO / "site" / "index.html").exists()  # never built into the sources folder


def test_release_pages_when_the_catalog_has_releases(built: tuple[Path, Path, Path], tmp_path: Path) -> None:
    import duckdb

    _, catalog0, _ = built
    catalog = tmp_path / "catalog.duckdb"
    shutil.copyfile(catalog0, catalog)
    con = duckdb.connect(str(catalog))
    try:
        con.execute("INSERT INTO release VALUES ('1.0.0-rc.1', NULL, 'published', now(), 'build/releases/1.0.0-rc.1', "
                    "'Apache-2.0 AND CC-BY-4.0 AND CC0-1.0', NULL, ?, NULL)", ["ab" * 32])
        con.execute("INSERT INTO release_artifact SELECT '1.0.0-rc.1', 'dataset', dataset_id, "
                    "'data/' || split || '.parquet', sha256 FROM dataset WHERE format = 'parquet'")
    finally:
        con.close()
    site = tmp_path / "site"
    build_site(SiteOptions(catalog, site, None, VENDOR))
    html = page(site, "releases/1.0.0-rc.1/")
    assert '"@type": "Dataset"' in html and "data/train.parquet" in html
    assert "CC-BY-4.0" in html and 'href="../../contributors/kestrel-notes/"' in html
    assert 'href="../../../../../../releases/1.0.0-rc.1/"' in page(
        site, "contributions/knowledge/arts/music/music_theory/musical_scales/")
    assert "1.0.0-rc.1" in page(site, "") and "1.0.0-rc.1" in page(site, "licenses/")
    assert "release 1.0.0-rc.1" in page(site, "contributions/knowledge/arts/music/music_theory/musical_scales/")
    assert "files were not found beside the catalog" in html and 'href="files/' not in html  # no folder: no links


def test_pages_nested_in_each_others_folders_are_written(tmp_path: Path) -> None:
    from builder.site.pages import PageSpec
    from builder.site.render import CONTENT, TITLE, Renderer, Skeleton

    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "p.html").write_text("<p>{{ text }}</p>", encoding="utf-8")
    skeleton = Skeleton.parse(f"<title>{TITLE}</title><main>{CONTENT}</main>")
    renderer = Renderer(tmp_path / "t", lambda depth: skeleton, mermaid=False)
    specs = [PageSpec(folder, f"<{folder}>", "p.html", {"text": f"<{folder}>"}, "")
             for folder in ("contributions/a/b/", "contributions/a/", "contributions/c/")]
    stats = renderer.write_all(specs, tmp_path / "site", None)
    assert stats.rendered == 3
    assert (tmp_path / "site/contributions/a/index.html").read_text(encoding="utf-8") == \
        "<title>&lt;contributions/a/&gt;</title><main><p>&lt;contributions/a/&gt;</p></main>"
    again = renderer.write_all(specs, tmp_path / "site2", tmp_path / "site")
    assert (again.rendered, again.reused) == (0, 3)


def record_model_runs(catalog: Path, folder: Path) -> dict[str, str]:
    """A train run (an adapter from the default datasets) and an export run (fp32 and int8 ONNX from the adapter),
    recorded as `taxreg train` and `taxreg export` record theirs; the model files are a few bytes each (the
    catalog rows are what the site reads). Returns kind -> artifact id."""
    from datetime import UTC, datetime

    import duckdb

    from registry.catalog.generation import RunInfo
    from registry.catalog.models import ModelArtifact, ModelRun, RunInput, hash_directory, record_model_run

    def artifact(kind: str, derived_from: str | None, fmt: str) -> ModelArtifact:
        (folder / kind).mkdir(parents=True)
        (folder / kind / "weights.bin").write_bytes(kind.encode() * 64)
        return ModelArtifact(kind, folder / kind, hash_directory(folder / kind), "base@0", derived_from, fmt)

    con = duckdb.connect(str(catalog))
    try:
        datasets = con.execute("SELECT dataset_id, split FROM dataset WHERE format = 'jsonl'").fetchall()
        inputs = [RunInput("dataset", d, "train" if split == "train" else "eval") for d, split in datasets]
        adapter = artifact("adapter", None, "peft-lora")
        record_model_run(con, ModelRun("a" * 32, RunInfo("peft-lora", {}, 0, None, stage="train"),
                                       datetime.now(UTC), "succeeded", {}, inputs, [adapter]))
        onnx = [artifact(kind, adapter.artifact.artifact_id, "onnx") for kind in ("onnx", "onnx_int8")]
        record_model_run(con, ModelRun("b" * 32, RunInfo("torch.onnx.dynamo", {}, 0, None, stage="export"),
                                       datetime.now(UTC), "succeeded", {}, [
                                           RunInput("model_artifact", adapter.artifact.artifact_id, "adapter"),
                                           *(RunInput("dataset", i.input_id, i.role + " (through the adapter)")
                                             for i in inputs)], onnx))
    finally:
        con.close()
    return {a.kind: a.artifact.artifact_id for a in [adapter, *onnx]}


def test_lineage_draws_the_model_chain_dataset_adapter_onnx(built: tuple[Path, Path, Path], tmp_path: Path) -> None:
    from builder.site.pages import entity_pages

    _, catalog0, _ = built
    catalog = tmp_path / "catalog.duckdb"
    shutil.copyfile(catalog0, catalog)
    ids = record_model_runs(catalog, tmp_path / "models")
    cid = "knowledge/history/technology/printing_press"
    spec = next(p for p in entity_pages(load(catalog)) if p.context.get("contribution_id") == cid)
    source = spec.context["mermaid"]
    nodes = dict(re.findall(r'^  (\w+)\["([^"]*)"\]', source, re.M))
    edges = set(re.findall(r"^  (\w+) --> (\w+)$", source, re.M))
    node = {text.split("\n")[0]: key for key, text in nodes.items()}
    adapter, fp32, int8 = node["adapter model"], node["onnx model"], node["onnx_int8 model"]
    assert ids["adapter"][:12] in nodes[adapter] and ids["onnx"][:12] in nodes[fp32]
    assert (node["dataset default"], adapter) in edges
    assert {(a, b) for a, b in edges if b in (fp32, int8)} == {(adapter, fp32), (adapter, int8)}  # not from datasets
    assert (node["contributor"], "leaf") in edges and (node["license"], "leaf") in edges
    links = dict(re.findall(r'^  click (\w+) href "([^"]+)"$', source, re.M))
    root = urls.root_prefix(urls.contribution(cid))
    assert links[node["contributor"]] == root + "contributors/lbeaumont/"
    assert links[adapter] == root + "runs/" + "a" * 32 + "/" and links[fp32] == root + "runs/" + "b" * 32 + "/"
    assert links[node["license"]] == root + "licenses/#contributions"


def test_times_show_in_one_form_utc_to_the_second(built: tuple[Path, Path, Path]) -> None:
    _, _, site = built
    shown = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(?::\d\d)?(?:\.\d+)?(?:[+-]\d\d(?::?\d\d)?| UTC|Z)?")
    found: list[tuple[str, str]] = []  # (time as shown, page)
    for html_file in sorted(site.rglob("*.html")):
        text = re.sub(r"<pre.*?</pre>", "", html_file.read_text(encoding="utf-8"), flags=re.S)  # SQL, JSON
        found += [(when, str(html_file.relative_to(site))) for when in shown.findall(text)]
    assert any(where.startswith("runs/") for _, where in found)  # run times at least
    odd = {when: where for when, where in found
           if not re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", when)}
    assert odd == {}  # no microseconds, no "+00": pages say UTC, JSON-LD says ISO 8601 with Z


def test_the_runs_page_lists_generation_runs_apart_from_model_runs(built: tuple[Path, Path, Path],
                                                                   tmp_path: Path) -> None:
    from builder.site import overview

    _, catalog0, _ = built
    catalog = tmp_path / "catalog.duckdb"
    shutil.copyfile(catalog0, catalog)
    record_model_runs(catalog, tmp_path / "models")
    html = overview.runs(load(catalog), "")
    generation, models = html.split('<h2 id="models">')
    assert "runs/" + "a" * 32 not in generation and "runs/" + "b" * 32 not in generation  # 0 samples: not listed
    assert re.search(r">seed</td><td>succeeded</td>.*?</td><td>\d+</td><td>\d+</td>", generation)
    assert "<td>train</td><td>peft-lora</td>" in models and "<td>adapter</td>" in models
    assert "<td>export</td><td>torch.onnx.dynamo</td>" in models and "<td>onnx, onnx_int8</td>" in models


def test_the_home_page_counts_the_samples_the_datasets_hold(built: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """An answer edited and generated again: the catalog keeps the old sample (kept, in the older run), the
    datasets hold the new one. The home page says how many samples the datasets hold, and that it is that."""
    from builder.site import overview

    taxonomy0, catalog0, _ = built
    taxonomy, catalog = tmp_path / "taxonomy", tmp_path / "catalog.duckdb"
    shutil.copytree(taxonomy0, taxonomy, symlinks=True)
    shutil.copyfile(catalog0, catalog)
    leaf = taxonomy / "compositional_skills/linguistics/antonyms/qna.yaml"
    text = leaf.read_text(encoding="utf-8")
    assert "      3. Miserly\n" in text
    leaf.write_text(text.replace("      3. Miserly\n", "      3. Miserly (or mean)\n", 1), encoding="utf-8")
    _invoke("index", str(taxonomy), "--catalog", str(catalog))
    _invoke("generate", str(taxonomy), "--catalog", str(catalog))
    _invoke("dataset", "build", "--catalog", str(catalog), "--out", str(tmp_path / "datasets"))
    held = {json.loads(line)["id"] for split in ("train", "test")
            for line in (tmp_path / "datasets/default" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()}
    data = load(catalog)
    assert data.counts["samples"] > len(held)  # every run's kept samples: not what the datasets hold
    assert f"<strong>{len(held):,}</strong> samples in the datasets</div>" in overview.home(data, "")


def test_release_folders_are_published_only_as_recorded(built: tuple[Path, Path, Path], tmp_path: Path) -> None:
    from builder.release.cut import CutOptions, cut_release
    from builder.site import release_files

    _, catalog0, _ = built
    build = tmp_path / "build"
    shutil.copytree(catalog0.parent, build, ignore=shutil.ignore_patterns("site", "taxonomy"))
    folder = cut_release(CutOptions("0.2.0", build, with_model=False)).folder
    catalog = build / "catalog.duckdb"
    found, notes = release_files.locate(load(catalog).releases, catalog)
    assert notes == [] and [(r.release_id, r.folder) for r in found] == [("0.2.0", folder.resolve())]
    assert {"manifest.json", "SHA256SUMS", "data/train.jsonl"} <= set(found[0].files)
    site = tmp_path / "site"
    assert release_files.link(found, site, urls.release) == len(found[0].files)
    linked = site / "releases/0.2.0/files/data/train.jsonl"
    assert linked.read_bytes() == (folder / "data/train.jsonl").read_bytes()
    with (folder / "data/train.jsonl").open("ab") as changed:  # no longer what the manifest lists
        changed.write(b"\n")
    found, notes = release_files.locate(load(catalog).releases, catalog)
    assert found == [] and "data/train.jsonl differs from its manifest" in notes[0]
    (folder / "manifest.json").write_text("{}", encoding="utf-8")  # not the manifest the catalog recorded
    found, notes = release_files.locate(load(catalog).releases, catalog)
    assert found == [] and "no folder whose manifest.json is the one recorded" in notes[0]
