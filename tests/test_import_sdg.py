"""`taxreg import-sdg`: InstructLab SDG output recorded as a run, with the lineage InstructLab lost recovered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from builder.cli import app
from builder.imports.sdg import ImportOptions, ImportOutcome, import_sdg
from registry.catalog.indexer import index
from registry.catalog.query import run_query
from registry.config import ValidationConfig
from registry.licenses import DEFAULT_ALLOWED, LicensePolicy
from registry.samples import Sample
from registry.sdg_import import SdgFormatError, word_key
from tests.conftest import SHARED_DATA, TaxonomyMaker, skill_yaml

SDG = SHARED_DATA / "ilab-sdg-output-samples"
TAXONOMY = SHARED_DATA / "instructlab-taxonomy"
SYNONYMS = "compositional_skills/linguistics/synonyms"
CHICKADEE = "knowledge/science/animals/birds/black_capped_chickadee"
SYSTEM = "You are a test assistant."


def rows(catalog: Path, sql: str) -> list[tuple[Any, ...]]:
    return run_query(catalog, sql).rows


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def sample_files(run: Path) -> list[Path]:
    """The files whose records become samples: node datasets, mixed training sets, legacy messages."""
    return sorted(p for p in run.rglob("*.jsonl") if (p.parent.name.startswith("node_datasets_")
                                                      and not p.name.startswith("mmlubench_"))
                  or "_train_msgs_" in p.name or p.name.startswith("messages_"))


def metadata(record: dict[str, Any]) -> dict[str, Any]:
    raw = record.get("metadata")
    return json.loads(raw) if isinstance(raw, str) else dict(raw or {})


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, ImportOutcome]]:
    if not (SDG.is_dir() and TAXONOMY.is_dir()):
        pytest.skip(f"real InstructLab SDG output not found at {SDG} (CI provides ../shared beside the repo)")
    catalog = tmp_path_factory.mktemp("sdg") / "catalog.duckdb"
    # The synonyms leaf's license (CC-BY-NC-SA-4.0) fails the default policy, and an invalid leaf has no
    # seeds in the catalog: allow it here so its seeds can be matched (the default is tested below).
    policy = LicensePolicy(frozenset({*DEFAULT_ALLOWED, "CC-BY-NC-SA-4.0"}))
    index(TAXONOMY, catalog, ValidationConfig(policy=policy), allow_errors=True)
    outcomes = {run: import_sdg(SDG / run, TAXONOMY, catalog, ImportOptions()) for run in ("skills_run",
                                                                                          "knowledge_run")}
    return catalog, outcomes


def lineage(catalog: Path, sample_id: str, kind: str) -> list[tuple[Any, ...]]:
    return rows(catalog, f"SELECT parent_id, contribution_id, method, role, doc_sha256 FROM sample_lineage "
                         f"WHERE sample_id = '{sample_id}' AND parent_kind = '{kind}'")


def test_skill_records_link_to_the_leaf_and_to_the_seed_they_name(real: tuple[Path, dict[str, ImportOutcome]]) -> None:
    catalog, _ = real
    seeds = {sid: q for sid, q in rows(catalog, f"SELECT seed_id, question FROM seed_example "
                                                f"WHERE contribution_id = '{SYNONYMS}'")}
    checked = 0
    for path in sample_files(SDG / "skills_run"):
        for record in jsonl(path):
            sample_id = Sample.make(record["messages"], "", []).sample_id
            leaves = lineage(catalog, sample_id, "contribution")
            assert leaves and {leaf[1] for leaf in leaves} == {SYNONYMS}, path
            fields = {**metadata(record), **record}
            if "seed_question" in fields:
                linked = lineage(catalog, sample_id, "seed")
                assert [(seeds[p], m) for p, _, m, _, _ in linked] == [
                    (fields["seed_question"].strip(), "seed_text_match")]
                checked += 1
    assert checked == 6  # node_datasets_* and skills_train_msgs_* carry seed_question; messages_* does not
    methods = rows(catalog, "SELECT DISTINCT method FROM sample_lineage WHERE role = 'seed_example' ORDER BY 1")
    assert methods == [("message_text_match",), ("seed_text_match",)]  # messages_* take their twin's seed


def test_knowledge_records_link_to_the_leaf_its_seeds_and_the_chunks_of_chickadee_md(
        real: tuple[Path, dict[str, ImportOutcome]]) -> None:
    catalog, outcomes = real
    (doc_sha, repo, commit, doc_path), = rows(catalog, "SELECT doc_sha256, repo_url, repo_commit, path "
                                                       "FROM source_document WHERE path = 'chickadee.md'")
    host_path = str(repo).removeprefix("https://")
    text = (TAXONOMY / "_documents" / host_path / str(commit) / str(doc_path)).read_text(encoding="utf-8")
    chunks = {c: (int(s), int(e)) for c, s, e in rows(catalog, f"SELECT chunk_sha256, char_start, char_end "
                                                             f"FROM source_chunk WHERE doc_sha256 = '{doc_sha}'")}
    with_document = 0
    for path in sample_files(SDG / "knowledge_run"):
        for record in jsonl(path):
            sample_id = Sample.make(record["messages"], "", []).sample_id
            assert {leaf[1] for leaf in lineage(catalog, sample_id, "contribution")} == {CHICKADEE}, path
            seeds = lineage(catalog, sample_id, "seed")
            assert len(seeds) == 3 and {s[1] for s in seeds} == {CHICKADEE}  # the 3 in-context seed Q/A
            linked = lineage(catalog, sample_id, "chunk")
            assert linked and {c[4] for c in linked} == {doc_sha} and {c[0] for c in linked} <= set(chunks)
            document = metadata(record).get("sdg_document")
            if document:  # the chunks linked hold the text docling wrote for the chunk
                with_document += 1
                assert {c[2] for c in linked} == {"document_text_match"}
                spans = sorted(chunks[c[0]] for c in linked)
                assert word_key(document) in word_key(text[spans[0][0]:spans[-1][1]])
    assert with_document == 12
    stats = outcomes["knowledge_run"].stats
    assert stats["leaf_by"] == {"file_name": 6, "record_id": 6, "message_text_match": 3}
    assert stats["seeds_by"] == {"generated_output_match": 12, "message_text_match": 3}


def test_no_record_is_lost_and_no_kept_sample_is_an_orphan(real: tuple[Path, dict[str, ImportOutcome]]) -> None:
    catalog, outcomes = real
    for run, outcome in outcomes.items():
        stats = outcome.stats
        read = sum(len(jsonl(p)) for p in sample_files(SDG / run))
        assert stats["records_read"] == read == stats["samples"] + stats["merged_duplicates"]
        assert stats["unplaced_samples"] == 0 and outcome.unplaced == []
        recorded = rows(catalog, f"SELECT count(*), count(*) FILTER (kept) FROM run_sample "
                                 f"WHERE run_id = '{outcome.run_id}'")
        assert recorded == [(stats["samples"], stats["kept"])]
        files = rows(catalog, f"SELECT params->>'$.source', json_array_length(params->'$.files'), stage, generator "
                              f"FROM run WHERE run_id = '{outcome.run_id}'")
        assert files[0][0].endswith(run) and files[0][1] >= 4 and files[0][2:] == ("import", "import")
    assert rows(catalog, "SELECT count(*) FROM v_orphan_samples") == [(0,)]
    provenance = rows(catalog, "SELECT count(*), count(contribution_id), count(seed_id) FROM v_sample_provenance")
    kept = rows(catalog, "SELECT count(*) FROM sample WHERE kept")[0][0]
    assert provenance[0][0] == provenance[0][1] == provenance[0][2] == kept >= 15  # the rest: near duplicates
    assert rows(catalog, "SELECT count(*) FROM sample") == [(24,)]


def test_the_same_records_imported_again_are_the_same_samples(real: tuple[Path, dict[str, ImportOutcome]]) -> None:
    catalog, outcomes = real
    before = rows(catalog, "SELECT count(*) FROM sample")
    again = import_sdg(SDG / "skills_run", TAXONOMY, catalog, ImportOptions())
    first, second = (set(rows(catalog, f"SELECT sample_id FROM run_sample WHERE run_id = '{o.run_id}'"))
                     for o in (outcomes["skills_run"], again))
    assert first == second and rows(catalog, "SELECT count(*) FROM sample") == before


def test_an_invalid_leaf_still_places_its_records_and_says_why_it_has_no_seeds(tmp_path: Path) -> None:
    if not (SDG.is_dir() and TAXONOMY.is_dir()):
        pytest.skip(f"real InstructLab SDG output not found at {SDG}")
    catalog = tmp_path / "catalog.duckdb"
    index(TAXONOMY, catalog, allow_errors=True)  # default policy: the synonyms leaf is invalid
    outcome = import_sdg(SDG / "skills_run", TAXONOMY, catalog, ImportOptions())
    assert outcome.stats["leaf_by"] == {"leaf_node_path": 6, "message_text_match": 3}
    assert outcome.stats["unplaced_samples"] == 0 and outcome.stats["seeds_by"] == {"none": 9}
    assert outcome.warnings == [f"9 record(s) placed on {SYNONYMS}, which is invalid in the catalog (its samples "
                                "are not eligible for datasets): no version indexed, so no seed or chunk lineage"]


def test_a_mixed_file_alone_finds_its_leaf_by_its_document(real: tuple[Path, dict[str, ImportOutcome]]) -> None:
    catalog, _ = real
    mixed = next((SDG / "knowledge_run").rglob("knowledge_train_msgs_*.jsonl"))
    outcome = import_sdg(mixed, TAXONOMY, catalog, ImportOptions())
    assert outcome.stats["leaf_by"] == {"document_text_match": 3}
    assert outcome.stats["chunks_by"] == {"document_text_match": 3}


# ---------------------------------------------------------------------------------------------- bad input


@pytest.fixture
def small(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> Path:
    """A catalog with a plain leaf and two whose InstructLab names collide (a_b/c and a/b_c)."""
    root = make_taxonomy({"compositional_skills/x/y/qna.yaml": skill_yaml(prefix="Why"),
                          "compositional_skills/a_b/c/qna.yaml": skill_yaml(prefix="First"),
                          "compositional_skills/a/b_c/qna.yaml": skill_yaml(prefix="Second")})
    catalog = tmp_path / "small.duckdb"
    index(root, catalog)
    return catalog


def record(answer: str, **fields: Any) -> str:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"Question for {answer}?"},
                {"role": "assistant", "content": answer}]
    return json.dumps({"messages": messages, **fields})


def write(folder: Path, name: str, *lines: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return folder


def test_leaf_and_seed_from_a_small_run(small: Path, tmp_path: Path) -> None:
    seed = {"seed_question": "Why number 2?", "seed_response": "Answer   number 2.\n"}
    run = write(tmp_path / "run", "node_datasets_t/compositional_skills_x_y.jsonl",
                record("One.", **seed), record("One."), record("Two.", leaf_node_path="compositional_skills->x->y"))
    outcome = import_sdg(run, tmp_path, small, ImportOptions())
    assert outcome.stats["leaf_by"] == {"file_name": 2, "leaf_node_path": 1}
    assert outcome.stats["seeds_by"] == {"none": 2, "seed_text_match": 1}  # per record; "One." is one sample
    assert outcome.stats["merged_duplicates"] == 1 and outcome.stats["samples"] == 2


@pytest.mark.parametrize(("lines", "message"), [
    ([record("A."), '{"messages": [', record("B.")], r"node_datasets_t/compositional_skills_x_y\.jsonl:2: malformed"),
    ([record("A."), json.dumps({"id": "x", "metadata": "{}"})], r"\.jsonl:2: the record has no `messages` \(its keys"),
    ([json.dumps([json.loads(record("A."))], indent=1)], r"\.jsonl:1: a JSON array, not JSONL"),
    ([json.dumps([json.loads(record("A."))])], r"\.jsonl:1: a JSON array, expected a JSON object"),
    ([record("A.", metadata="{not json")], r"\.jsonl:1: `metadata` is a string but not JSON"),
    ([json.dumps({"messages": [{"role": "user"}]})], r"\.jsonl:1: message 1 must be an object"),
])
def test_bad_files_are_clear_errors_naming_file_and_line(small: Path, tmp_path: Path, lines: list[str],
                                                         message: str) -> None:
    run = write(tmp_path / "run", "node_datasets_t/compositional_skills_x_y.jsonl", *lines)
    with pytest.raises(SdgFormatError, match=message):
        import_sdg(run, tmp_path, small, ImportOptions())
    assert rows(small, "SELECT count(*) FROM run WHERE generator = 'import'") == [(0,)]


def test_records_that_cannot_be_placed_are_kept_and_reported(small: Path, tmp_path: Path) -> None:
    run = write(tmp_path / "run", "skills_train_msgs_t.jsonl",
                record("A.", metadata=json.dumps({"leaf_node_path": "compositional_skills_nowhere"})),
                record("B.", leaf_node_path="compositional_skills_a_b_c"),
                record("C.", leaf_node_path="compositional_skills_x_y"))
    outcome = import_sdg(run, tmp_path, small, ImportOptions())
    assert outcome.unplaced == [
        ("skills_train_msgs_t.jsonl:1", "leaf 'compositional_skills_nowhere' matches no contribution in the catalog"),
        ("skills_train_msgs_t.jsonl:2", "leaf 'compositional_skills_a_b_c' is ambiguous: it matches "
                                        "compositional_skills/a/b_c, compositional_skills/a_b/c")]
    stats = outcome.stats
    assert (stats["records_read"], stats["samples"], stats["kept"], stats["unplaced_samples"]) == (3, 3, 1, 2)
    assert stats["dropped"] == {"unplaced": 2} and len(stats["unplaced_records"]) == 2
    assert rows(small, "SELECT kept, drop_reason, count(*) FROM sample GROUP BY ALL ORDER BY 1") == [
        (False, "unplaced", 2), (True, None, 1)]
    assert rows(small, "SELECT count(*) FROM v_orphan_samples") == [(0,)]


def test_the_command_reports_unplaced_records_and_errors_without_tracebacks(small: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    run = write(tmp_path / "run", "messages_t.jsonl", record("A."))
    result = runner.invoke(app, ["import-sdg", str(run), str(tmp_path), "--catalog", str(small)])
    assert result.exit_code == 0 and "unplaced messages_t.jsonl:1:" in result.output
    assert "0 kept, 1 unplaced" in result.output
    assert runner.invoke(app, ["import-sdg", str(run), str(tmp_path), "--catalog", str(small),
                               "--strict"]).exit_code == 1
    write(run, "messages_t.jsonl", "{oops")
    result = runner.invoke(app, ["import-sdg", str(run), str(tmp_path), "--catalog", str(small)])
    assert result.exit_code == 2 and "messages_t.jsonl:1: malformed JSON" in result.output
    assert "Traceback" not in result.output
