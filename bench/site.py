"""Site benchmark: `taxreg site` on a 10,000-contribution catalog, side by side with a plain mkdocs-material build.

Usage (from the repository root, with the project's virtual environment):

    .venv/bin/python bench/site.py                       # 10,000 leaves, 2 interleaved repeats
    .venv/bin/python bench/site.py --leaves 2000 --repeat 3 --out /tmp/bench-site
    .venv/bin/python bench/site.py --no-plain            # skip the (slow) plain mkdocs baseline
    git archive HEAD | tar -x -C /tmp/old && .venv/bin/python bench/site.py --no-plain --compare /tmp/old

What it does:

1. Writes the synthetic taxonomy of bench/ingest.py (same generator: 70% skills, 30% knowledge with generated
   documents, ~1,000 contributors), indexes it with the real indexer (`taxreg index`) and runs the seed
   generator (`taxreg generate`), so pages have samples and lineage. Not measured.
2. Measures, each in its own process with the BLAS thread variables pinned to 1, interleaved over the repeats:
   - full: `taxreg site --full` (every page rendered);
   - rebuild: one leaf edited, re-indexed (not measured), then `taxreg site` (unchanged pages reused);
   - nothing changed: `taxreg site` again;
   - pages only: one more leaf edit, then `taxreg site --no-audit` (without the audit database, which is
     published whole on every build: the figure for the pages, search and cross-links alone);
   - plain (once per repeat unless --no-plain): the same contribution pages written as Markdown (kind, domain,
     contributor, license, documents, seed examples) out of the nav, built by `mkdocs build` with
     mkdocs-material and its search plugin: what a straightforward site would do.
   - with --compare CHECKOUT: the same steps, interleaved in a rotating order, with another checkout of this
     repository (its packages first on PYTHONPATH) building its own site folder on the same catalog.
3. Prints medians (min/max) of wall and CPU time, peak RSS (`os.wait4`), the search index size, and the ratios.
   Also checks that the rebuilt site's search index still has an entry for every contribution.

Benchmarks are not pass/fail: the script prints figures and exits 0 unless a run failed outright.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import THREAD_ENV, Sample, edit_one_leaf, run_child
from ingest import generate as write_taxonomy

REPO = Path(__file__).resolve().parent.parent
REFERENCE = " [reference]"
TAXREG = [sys.executable, "-m", "builder.cli"] if not (REPO / ".venv/bin/taxreg").exists() \
    else [str(REPO / ".venv/bin/taxreg")]

_PLAIN_CONFIG = """site_name: Plain baseline
docs_dir: docs
site_dir: {site}
theme:
  name: material
  font: false
plugins:
  - search
markdown_extensions:
  - tables
nav:
  - Home: index.md
"""


def plain_project(catalog: Path, root: Path) -> Path:
    """The contribution pages as Markdown for a plain mkdocs-material build (not measured)."""
    sys.path.insert(0, str(REPO))
    from builder.site.readmodel import load

    data = load(catalog)
    docs = root / "docs"
    (docs / "contributions").mkdir(parents=True, exist_ok=True)
    (docs / "index.md").write_text("# Plain baseline\n", encoding="utf-8")
    for c in data.contributions:
        cid = c["contribution_id"]
        licenses = ", ".join(sorted({a["license_spdx"] or "UNKNOWN" for a in data.attributions.get(cid, [])}))
        lines = [f"# {cid}\n", "| field | value |", "|---|---|", f"| kind | {c['kind']} |",
                 f"| domain | {c['domain']} |", f"| contributor | {c['created_by']} |", f"| license | {licenses} |",
                 ""]
        for d in data.sources.get(cid, []):
            lines.append(f"- document `{d['path']}` {d['repo_url']}@{d['repo_commit']} `{d['doc_sha256']}`")
        lines.append("\n## Seed examples\n")
        for s in data.seeds.get(cid, []):
            lines.append(f"### {s['ordinal']}. Question\n\n{s['question']}\n\n**Answer**\n\n{s['answer']}\n")
            if s["context"]:
                lines.append(f"**Context**\n\n{s['context']}\n")
        path = docs / "contributions" / f"{cid}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines), encoding="utf-8")
    (root / "mkdocs.yml").write_text(_PLAIN_CONFIG.format(site=root / "site"), encoding="utf-8")
    return root / "mkdocs.yml"


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def _index_bytes(site: Path) -> int:
    index = site / "search" / "search_index.json"
    return index.stat().st_size if index.is_file() else 0


def _ratio(ours: list[Sample], reference: list[Sample], what: str) -> str:
    mine, theirs = (statistics.median(getattr(s, what) for s in samples) for samples in (ours, reference))
    return f"{mine / theirs:.2f}x"


def _table(results: dict[str, list[Sample]], sizes: dict[str, int], tags: list[str], compare: Path | None) -> None:
    labels = {"full": "taxreg site --full", "rebuild": "taxreg site, one leaf changed",
              "unchanged": "taxreg site, nothing changed", "pages only": "one leaf changed, --no-audit",
              "plain": "plain mkdocs-material (pages out of nav)"}
    for name, label in labels.items():
        for tag in tags if name != "plain" else [""]:
            samples = results.get(name + tag, [])
            if not samples:
                continue
            size = sizes.get(name + tag, sizes.get("full" + tag, 0)) / 1e6
            print(f"{label + tag:<42} {_median([s.wall for s in samples]):<26} "
                  f"{_median([s.cpu for s in samples]):<22} {max(s.maxrss_mb for s in samples):<12.0f} {size:.1f}")
    if compare is not None:
        print(f"\nthis checkout / {compare} (medians): " + ", ".join(
            f"{name} wall {_ratio(results[name], results[name + REFERENCE], 'wall')} "
            f"CPU {_ratio(results[name], results[name + REFERENCE], 'cpu')}"
            for name in ("full", "rebuild", "unchanged", "pages only")))
    if results.get("plain"):
        plain_cpu = statistics.median(s.cpu for s in results["plain"])
        full_cpu = statistics.median(s.cpu for s in results["full"])
        print(f"\nplain / taxreg full: CPU {plain_cpu / full_cpu:.1f}x, search index "
              f"{sizes['plain'] / max(1, sizes['full']):.1f}x")


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915 (one measurement script, read top to bottom)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leaves", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--no-plain", action="store_true", help="skip the plain mkdocs baseline")
    parser.add_argument("--compare", type=Path, default=None,
                        help="another checkout of this repository, measured interleaved with this one")
    args = parser.parse_args(argv)
    work = args.out or Path(tempfile.mkdtemp(prefix="bench-site-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **THREAD_ENV, "NO_MKDOCS_2_WARNING": "1"}
    log = work / "bench.log"
    taxonomy, catalog, site = work / "taxonomy", work / "catalog.duckdb", work / "site"

    if not catalog.is_file():
        print(f"writing {args.leaves} leaves, indexing and generating into {work} (not measured)...", flush=True)
        stats = write_taxonomy(taxonomy, args.leaves, args.seed)
        (work / "edit_leaf.txt").write_text(stats.edit_leaf, encoding="utf-8")
        for cmd in (["index", str(taxonomy), "--catalog", str(catalog)],
                    ["generate", str(taxonomy), "--catalog", str(catalog)]):
            done = run_child([*TAXREG, *cmd], REPO, env, log)
            print(f"  taxreg {cmd[0]}: {done.wall:.1f} s", flush=True)
            if done.rc != 0:
                print(done.output[-2000:])
                return 1
    edit_leaf = (work / "edit_leaf.txt").read_text(encoding="utf-8")
    plain_config = plain_project(catalog, work / "plain") if not args.no_plain else None

    # Variants: this checkout, and with --compare another one, each run as `python -m builder.cli` from its own
    # folder with its packages first on the path (a console script would import the installed checkout), with
    # its own site folder (the previous site is the cache), interleaved in an order that rotates between repeats.
    variants = [("", REPO, site)]
    if args.compare is not None:
        reference = args.compare.resolve()
        vendor = reference / "build" / "vendor"  # `taxreg site` vendors the console engine into ./build/vendor
        if not vendor.exists() and (REPO / "build" / "vendor").is_dir():
            vendor.parent.mkdir(parents=True, exist_ok=True)
            vendor.symlink_to(REPO / "build" / "vendor")
        variants.append((REFERENCE, reference, work / "site-reference"))
    results: dict[str, list[Sample]] = {}
    sizes: dict[str, int] = {}

    def site_step(step: str, *extra: str, rotate: int) -> None:
        for tag, checkout, folder in variants[rotate % len(variants):] + variants[:rotate % len(variants)]:
            cmd = [sys.executable, "-m", "builder.cli", "site", "--catalog", str(catalog), "--out", str(folder),
                   "--taxonomy", str(taxonomy), *extra]
            path = os.pathsep.join(filter(None, [str(checkout), env.get("PYTHONPATH")]))
            results.setdefault(step + tag, []).append(run_child(cmd, checkout, {**env, "PYTHONPATH": path}, log))
            sizes[step + tag] = _index_bytes(folder)

    token = time.time_ns() // 1000 % 10**9  # every edit gives new bytes, also across runs on the same tree
    for repeat in range(args.repeat):
        site_step("full", "--full", rotate=repeat)
        edit_one_leaf(taxonomy, edit_leaf, token + 2 * repeat)
        reindex = run_child([*TAXREG, "index", str(taxonomy), "--catalog", str(catalog)], REPO, env, log)
        assert reindex.rc == 0, reindex.output[-2000:]
        site_step("rebuild", rotate=repeat)
        site_step("unchanged", rotate=repeat + 1)
        edit_one_leaf(taxonomy, edit_leaf, token + 2 * repeat + 1)
        reindex = run_child([*TAXREG, "index", str(taxonomy), "--catalog", str(catalog)], REPO, env, log)
        assert reindex.rc == 0, reindex.output[-2000:]
        site_step("pages only", "--no-audit", rotate=repeat)
        if plain_config is not None:
            shutil.rmtree(work / "plain" / "site", ignore_errors=True)
            results.setdefault("plain", []).append(run_child(
                [sys.executable, "-m", "mkdocs", "build", "-q", "-f", str(plain_config)], REPO, env, log))
            sizes["plain"] = _index_bytes(work / "plain" / "site")
        print(f"repeat {repeat + 1}/{args.repeat} done", flush=True)

    for name in ("rebuild", "pages only"):
        for tag, _, _ in variants:
            assert all("): 1 pages rendered" in s.output for s in results[name + tag]), \
                f"{name + tag}: the edited leaf was not rendered again; see {log}"
    failed = [name for name, samples in results.items() for s in samples if s.rc != 0]
    if failed:
        print(f"failed runs: {failed}; see {log}")
        return 1
    index = json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))
    located = {d["location"] for d in index["docs"]}
    contributions = sum(1 for loc in located if loc.startswith("contributions/"))
    print(f"\n{args.leaves} contributions; {contributions} contribution entries in the rebuilt site's search index; "
          f"machine: {os.cpu_count()} cores (shared, noisy: compare ratios within this run)\n")
    print(f"{'build':<42} {'wall s, median (min-max)':<26} {'CPU s':<22} {'peak RSS MB':<12} {'search index MB'}")
    _table(results, sizes, [tag for tag, _, _ in variants], args.compare)
    print("targets: full <= 30 s, one leaf changed <= 10 s, search index <= 15 MB, peak memory < 1 GB")
    for name in ("full", "rebuild", "pages only"):
        print(f"`taxreg site` ({name}): {results[name][-1].output.strip().splitlines()[-1][:400]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
