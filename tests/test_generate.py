"""`taxreg generate` with the seed generator: samples, lineage to seeds and chunks, filters, audit views."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from builder.generators.run import GenerateOptions, generate
from registry.catalog.indexer import index
from registry.catalog.query import run_query
from registry.chunking import ChunkingConfig
from registry.errors import RegistryError
from registry.samples import FilterConfig, Sample, apply_filters
from tests.conftest import EXAMPLE_TAXONOMY, TaxonomyMaker, document_files, git, knowledge_yaml, skill_yaml


def rows(catalog: Path, sql: str) -> list[tuple[object, ...]]:
    return run_query(catalog, sql).rows


@pytest.fixture(scope="module")
def example_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    catalog = tmp_path_factory.mktemp("gen") / "catalog.duckdb"
    index(EXAMPLE_TAXONOMY, catalog)
    generate(EXAMPLE_TAXONOMY, catalog, GenerateOptions(chunking=ChunkingConfig(max_size=120)))
    return catalog


def test_every_seed_becomes_a_sample_with_lineage(example_catalog: Path) -> None:
    seeds = rows(example_catalog, "SELECT count(*) FROM seed_example")[0][0]
    kept = rows(example_catalog, "SELECT count(*) FROM sample WHERE kept")[0][0]
    assert kept == seeds > 150
    assert rows(example_catalog, "SELECT count(*) FROM v_orphan_samples") == [(0,)]
    provenance = rows(example_catalog, "SELECT count(*), count(contribution_id), count(contributor), "
                      "count(seed_id), count(run_id) FROM v_sample_provenance")
    assert provenance == [(kept, kept, kept, kept, kept)]


def test_knowledge_samples_point_at_the_chunks_that_hold_their_context(example_catalog: Path) -> None:
    found = rows(example_catalog, """
        SELECT s.messages, c.char_start, c.char_end, d.repo_url, d.repo_commit, d.path
        FROM sample s JOIN sample_lineage l ON l.sample_id = s.sample_id AND l.parent_kind = 'chunk'
        JOIN source_chunk c ON c.chunk_sha256 = l.parent_id AND c.doc_sha256 = l.doc_sha256
        JOIN source_document d ON d.doc_sha256 = l.doc_sha256 WHERE s.kind = 'knowledge'""")
    assert len(found) >= 100
    cache = EXAMPLE_TAXONOMY / "_documents" / "github.com" / "taxonomy-registry" / "knowledge-docs"
    spans: dict[str, list[tuple[int, int]]] = {}
    for messages, start, end, _repo, commit, path in found:
        context = json.loads(str(messages))[1]["content"].rsplit("\n\n", 1)[0]
        spans.setdefault(context, []).append((int(str(start)), int(str(end))))
        text = (cache / str(commit) / str(path)).read_text()
        where = re.search(r"\s+".join(map(re.escape, context.split())), text)
        assert where is not None
    assert rows(example_catalog, "SELECT count(*) FROM v_sample_provenance WHERE kind = 'knowledge' "
                "AND (document_license IS NULL OR chunk_sha256 IS NULL)") == [(0,)]


def test_runs_are_recorded_and_sample_ids_are_stable(example_catalog: Path, tmp_path: Path) -> None:
    run = rows(example_catalog, "SELECT generator, status, prompt_template_sha256, stats FROM run")
    assert len(run) == 1 and run[0][:2] == ("seed", "succeeded") and len(str(run[0][2])) == 64
    catalog = tmp_path / "again.duckdb"
    index(EXAMPLE_TAXONOMY, catalog)
    generate(EXAMPLE_TAXONOMY, catalog, GenerateOptions(chunking=ChunkingConfig(max_size=120)))
    first = {r[0] for r in rows(example_catalog, "SELECT sample_id FROM sample")}
    assert {r[0] for r in rows(catalog, "SELECT sample_id FROM sample")} == first


def test_license_summary_and_takedown_impact(example_catalog: Path) -> None:
    summary = dict(rows(example_catalog, "SELECT license, samples FROM v_license_summary"))
    assert "UNKNOWN" not in summary and sum(int(str(v)) for v in summary.values()) >= 150
    doc = rows(example_catalog, "SELECT doc_sha256 FROM source_document ORDER BY path LIMIT 1")[0][0]
    impact = rows(example_catalog, f"SELECT what, count(*) FROM takedown_impact('{doc}') GROUP BY 1 ORDER BY 1")
    assert impact[0][0] == "run" and impact[1][0] == "sample" and int(str(impact[1][1])) >= 15


def test_duplicates_merge_and_near_duplicates_drop_with_reasons(make_taxonomy: TaxonomyMaker,
                                                                tmp_path: Path) -> None:
    twin = skill_yaml(prefix="Shared")
    near = skill_yaml(prefix="SHARED").replace("Answer number", "answer number")
    root = make_taxonomy({"compositional_skills/a/one/qna.yaml": twin, "compositional_skills/a/two/qna.yaml": twin,
                          "compositional_skills/a/three/qna.yaml": near.replace("A test skill", "Another")})
    catalog = tmp_path / "c.duckdb"
    index(root, catalog, allow_errors=True)
    outcome = generate(root, catalog, GenerateOptions())
    assert outcome.stats["produced"] == 15 and outcome.stats["kept"] == 5
    assert outcome.stats["dropped"] == {"exact_duplicate": 5, "near_duplicate": 5}
    assert rows(catalog, "SELECT drop_reason, count(*) FROM sample WHERE NOT kept GROUP BY 1") == [
        ("near_duplicate", 5)]
    assert rows(catalog, "SELECT max(c) FROM (SELECT count(DISTINCT contribution_id) c FROM sample_lineage "
                "GROUP BY sample_id)") == [(2,)]


def test_since_generates_only_changed_leaves(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root = make_taxonomy({"compositional_skills/a/one/qna.yaml": skill_yaml(prefix="One"),
                          "compositional_skills/a/two/qna.yaml": skill_yaml(prefix="Two")})
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "base")
    (root / "compositional_skills/a/two/qna.yaml").write_text(skill_yaml(n=6, prefix="Two"))
    catalog = tmp_path / "c.duckdb"
    index(root, catalog)
    outcome = generate(root, catalog, GenerateOptions(since="HEAD"))
    assert (outcome.leaves, outcome.stats["produced"]) == (1, 6)


def test_a_document_changed_after_indexing_is_refused(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root = make_taxonomy({"knowledge/t/doc/qna.yaml": knowledge_yaml(), **document_files()})
    catalog = tmp_path / "c.duckdb"
    index(root, catalog)
    next((root / "_documents").rglob("doc.md")).write_text("# changed\n")
    with pytest.raises(RegistryError, match="changed since it was indexed"):
        generate(root, catalog, GenerateOptions())
    assert rows(catalog, "SELECT status FROM run") == [("failed",)]
    assert rows(catalog, "SELECT count(*) FROM sample") == [(0,)]


def test_an_empty_catalog_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="no active contributions") as caught:
        generate(EXAMPLE_TAXONOMY, tmp_path / "empty.duckdb", GenerateOptions())
    assert "taxreg index" in caught.value.hint


def test_text_that_cannot_be_trusted_is_dropped_with_its_reason() -> None:
    def sample(answer: str) -> Sample:
        return Sample.make([{"role": "user", "content": "Why?"}, {"role": "assistant", "content": answer}],
                           "compositional_skill", [])

    verdicts, stats = apply_filters([sample(a) for a in ("Fine.\tTabs\r\nand lines.", "Lone \ud800.", "Bad \ufffd.",
                                                             "NUL \x00.", "Bell \x07.", "C1 \x85.", "DEL \x7f.")],
                                    FilterConfig())
    assert stats.kept == 1 and stats.dropped == {"invalid_unicode": 2, "control_characters": 4}
    lone = next(v.sample for v in verdicts if "Lone" in v.sample.text())
    assert lone.text("assistant") == "Lone \ufffd." and lone.messages_json().encode()  # storable: U+FFFD stands in
