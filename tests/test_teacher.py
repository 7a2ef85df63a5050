"""The `teacher` generator over real HTTP on 127.0.0.1, with the real `openai` client and the fake teacher of
`tests/fake_teacher.py` (deterministic answers, injected faults, counts per request key)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from builder.cli import app
from builder.generators.base import GeneratorInput
from builder.generators.completions import MalformedResponse, response_content, storable_body
from builder.generators.run import GenerateOptions, generate
from builder.generators.sending import retry_after
from builder.generators.teacher import TEMPLATES_SHA256, Planner, TeacherConfig, TeacherError, parse_pairs
from registry.catalog.connection import open_catalog
from registry.catalog.generation import LeafInput, SeedRow
from registry.catalog.indexer import index
from registry.catalog.journal import OK, FinishedRequest, TeacherJournal
from registry.catalog.query import run_query
from registry.errors import CatalogError, RegistryError
from tests.conftest import EXAMPLE_TAXONOMY, REPO, TaxonomyMaker, skill_yaml
from tests.fake_teacher import MODEL, FakeTeacher


def teacher(fake: FakeTeacher, **overrides: Any) -> TeacherConfig:
    settings: dict[str, Any] = {"concurrency": 4, "timeout": 5.0, "backoff": 0.01, "max_attempts": 4} | overrides
    return TeacherConfig(fake.url, MODEL, "test-key", **settings)


def rows(catalog: Path, sql: str) -> list[tuple[Any, ...]]:
    return run_query(catalog, sql).rows


def one(catalog: Path, sql: str) -> Any:
    return rows(catalog, sql)[0][0]


@pytest.fixture(scope="module")
def example_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    catalog = tmp_path_factory.mktemp("teacher") / "indexed.duckdb"
    index(EXAMPLE_TAXONOMY, catalog)
    return catalog


def fresh_copy(example_index: Path, tmp_path: Path) -> Path:
    catalog = tmp_path / "catalog.duckdb"
    catalog.write_bytes(example_index.read_bytes())
    return catalog


def skills(make_taxonomy: TaxonomyMaker, tmp_path: Path, *names: str) -> tuple[Path, Path]:
    """A taxonomy of freeform skills (6 seeds each) and its catalog: `skill_requests` requests per leaf."""
    root = make_taxonomy({f"compositional_skills/t/{name}/qna.yaml": skill_yaml(n=6, prefix=name.title())
                          for name in names or ("one", "two", "three")})
    catalog = tmp_path / "c.duckdb"
    index(root, catalog)
    return root, catalog


def texts(catalog: Path, where: str) -> list[str]:
    """Every message's content of the samples `where` selects."""
    return [m["content"] for (messages,) in rows(catalog, f"SELECT messages FROM sample WHERE {where}")
            for m in json.loads(messages)]


# --- a normal run ---------------------------------------------------------------------------------------

def test_a_run_over_the_example_taxonomy_gives_samples_with_lineage(fake: FakeTeacher, example_index: Path,
                                                                    tmp_path: Path) -> None:
    catalog = fresh_copy(example_index, tmp_path)
    options = GenerateOptions("teacher", teacher=teacher(fake, license="Apache-2.0", terms="outputs unrestricted"))
    outcome = generate(EXAMPLE_TAXONOMY, catalog, options)

    planned = outcome.stats["teacher"]["requests_planned"]
    assert planned == len(fake.received) == fake.total_answered() > 40  # each request sent and answered once
    assert outcome.stats["kept"] == outcome.stats["produced"] == 3 * planned
    assert {r[0] for r in rows(catalog, "SELECT request_sha256 FROM teacher_request WHERE status = 'ok'")} \
        == set(fake.received)
    assert one(catalog, "SELECT count(*) FROM v_orphan_samples") == 0
    assert rows(catalog, "SELECT count(*) FROM sample s WHERE s.kept AND NOT EXISTS (SELECT 1 FROM sample_lineage l "
                "WHERE l.sample_id = s.sample_id AND l.role = 'in_context_example')") == [(0,)]
    knowledge = rows(catalog, """
        SELECT count(DISTINCT s.sample_id), count(l.doc_sha256), count(l.version_id), count(c.chunk_sha256)
        FROM sample s JOIN sample_lineage l ON l.sample_id = s.sample_id AND l.role = 'source_chunk'
        LEFT JOIN source_chunk c ON c.chunk_sha256 = l.parent_id AND c.doc_sha256 = l.doc_sha256
        WHERE s.kind = 'knowledge'""")[0]
    assert knowledge[0] == one(catalog, "SELECT count(*) FROM sample WHERE kind = 'knowledge'") > 0
    assert knowledge[1] == knowledge[2] == knowledge[3] >= knowledge[0]
    grounded = one(catalog, "SELECT count(DISTINCT sample_id) FROM sample_lineage WHERE role = 'source_context'")
    assert grounded == 3 * one(catalog, "SELECT count(*) FROM seed_example s JOIN contribution c "
                               "USING (contribution_id) WHERE c.kind <> 'knowledge' AND s.context IS NOT NULL")
    assert rows(catalog, "SELECT model_ref, license_spdx, output_terms FROM external_model") == [
        (MODEL, "Apache-2.0", "outputs unrestricted")]
    run = rows(catalog, "SELECT generator, status, teacher_model_ref, prompt_template_sha256, params FROM run")
    assert run[0][:4] == ("teacher", "succeeded", MODEL, TEMPLATES_SHA256)
    assert json.loads(run[0][4])["template_version"] == "v1" and "api_key" not in run[0][4]
    assert rows(catalog, "SELECT DISTINCT teacher_model_ref FROM v_sample_provenance") == [(MODEL,)]

    again = generate(EXAMPLE_TAXONOMY, catalog, options)  # everything is in the journal: nothing is sent
    assert again.stats["teacher"]["requests_reused"] == planned and fake.total_answered() == planned
    assert one(catalog, "SELECT count(*) FROM sample") == outcome.stats["kept"]


def test_requests_are_deterministic_and_seeded_by_the_run_seed() -> None:
    seeds = [SeedRow(f"s{i}", i, None, f"Question {i}?", f"Answer {i}.") for i in range(6)]
    leaf = LeafInput("compositional_skills/x", "v1", "compositional_skill", "A task.", seeds)
    config = TeacherConfig("http://127.0.0.1:1/v1", MODEL, skill_requests=3)

    def plan(seed: int) -> list[str]:
        return [p.request_sha256 for p in Planner(config, GeneratorInput([leaf], {}, seed), {}).requests()]

    assert plan(7) == plan(7) and len(set(plan(7))) == 3
    assert not set(plan(7)) & set(plan(8))
    body = Planner(config, GeneratorInput([leaf], {}, 7), {}).requests()[0].body
    assert set(body) == {"model", "messages", "temperature", "max_tokens", "seed"} and 0 <= body["seed"] < 2**31


# --- parsing --------------------------------------------------------------------------------------------

def test_answers_parse_with_whitespace_and_case_tolerated() -> None:
    text = "Sure!\n[question]  What is it?  \n[ANSWER]\n\nA thing.\n\n[End]\n[Question]\nWhy?\n[Answer]\nBecause.[End]"
    assert parse_pairs(text) == ([("What is it?", "A thing."), ("Why?", "Because.")], None)


def test_answers_that_do_not_parse_are_reported() -> None:
    assert parse_pairs("No blocks here.") == ([], "No blocks here.")
    broken = parse_pairs("[Question]\nA?\n[Answer]\nB.\n[End]\n[Question]\nHalf a block?\n[Answer]\n")
    assert broken.pairs == [("A?", "B.")] and broken.unparseable == "[Question]\nHalf a block?\n[Answer]"
    nested = parse_pairs("[Question] one [Question] two [Answer] x [End]")
    assert nested.pairs == [] and nested.unparseable is not None


def test_retry_after_in_seconds_milliseconds_or_a_date() -> None:
    assert retry_after({"retry-after": "2"}) == 2.0
    assert retry_after({"retry-after-ms": "250"}) == 0.25
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after({"retry-after": "soon"}) is None and retry_after({}) is None


# --- faults ---------------------------------------------------------------------------------------------

def test_faults_are_retried_or_recorded(fake: FakeTeacher, make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root, catalog = skills(make_taxonomy, tmp_path)
    retried = ["429", "429", "500", "slow", "malformed", "truncated"]
    fake.faults.extend([*retried, "garbage", "400"])
    fake.slow_seconds = 1.8
    outcome = generate(root, catalog, GenerateOptions("teacher", teacher=teacher(
        fake, timeout=1.0, max_attempts=5, skill_requests=4)))

    asked = outcome.stats["teacher"]
    assert (asked["requests_planned"], asked["requests_ok"], asked["requests_failed"]) == (12, 11, 1)
    assert asked["http_attempts"] == len(fake.arrivals) == 12 + len(retried) == \
        one(catalog, "SELECT sum(attempts) FROM teacher_request")
    status, attempts, error, key = rows(catalog, "SELECT status, attempts, error, request_sha256 FROM teacher_request "
                                        "WHERE status <> 'ok'")[0]
    assert (status, attempts, fake.received[key]) == ("failed", 1, 1) and error.startswith("HTTP 400")
    for i, (at, key, fault) in enumerate(fake.arrivals):  # Retry-After honoured (the backoff alone is 10 ms)
        if fault == "429":
            later = next(t for t, k, _ in fake.arrivals[i + 1:] if k == key)
            assert later - at >= 0.95
    assert rows(catalog, "SELECT drop_reason, count(*) FROM sample WHERE NOT kept GROUP BY 1") == [("unparseable", 1)]
    assert "I would rather not" in one(catalog, "SELECT messages FROM sample WHERE drop_reason = 'unparseable'")
    assert outcome.stats["dropped"] == {"unparseable": 1} and asked["answers_unparseable"] == 1
    assert one(catalog, "SELECT count(*) FROM v_orphan_samples") == 0
    assert json.loads(one(catalog, "SELECT stats FROM run"))["teacher"]["requests_failed"] == 1

    before = len(fake.arrivals)
    again = generate(root, catalog, GenerateOptions("teacher", teacher=teacher(fake, skill_requests=4)))
    assert len(fake.arrivals) - before == 1 and again.stats["teacher"]["requests_ok"] == 1  # only the failed one
    assert one(catalog, "SELECT count(*) FROM teacher_request WHERE status = 'ok'") == 12


def test_a_server_that_dies_midway_fails_the_run_and_the_rerun_sends_only_the_rest(
        fake: FakeTeacher, example_index: Path, tmp_path: Path) -> None:
    catalog = fresh_copy(example_index, tmp_path)
    fake.serve_limit = 20
    options = GenerateOptions("teacher", teacher=teacher(fake, max_attempts=3))
    with pytest.raises(RegistryError, match=r"stopped answering: .*\(20 ok") as caught:
        generate(EXAMPLE_TAXONOMY, catalog, options)
    assert "run the same command again" in caught.value.hint
    status, stats = rows(catalog, "SELECT status, stats FROM run")[0]
    assert status == "failed" and json.loads(stats)["teacher"]["requests_ok"] == 20
    assert one(catalog, "SELECT count(*) FROM teacher_request WHERE status = 'ok'") == 20
    assert one(catalog, "SELECT count(*) FROM sample") == 0

    fake.heal()
    outcome = generate(EXAMPLE_TAXONOMY, catalog, options)
    planned = outcome.stats["teacher"]["requests_planned"]
    assert outcome.stats["teacher"]["requests_reused"] == 20
    assert fake.total_answered() == len(fake.answered) == planned  # across both runs: each request answered once
    assert one(catalog, "SELECT count(*) FROM v_orphan_samples") == 0


def test_kill_9_midway_then_a_rerun_repeats_no_request(fake: FakeTeacher, example_index: Path,
                                                        tmp_path: Path) -> None:
    catalog = fresh_copy(example_index, tmp_path)
    fake.serve_limit, fake.hold = 15, True  # answer 15, then hold every request: the kill lands mid-run
    command = [str(Path(sys.executable).parent / "taxreg"), "generate", str(EXAMPLE_TAXONOMY), "--catalog",
               str(catalog), "--generator", "teacher", "--teacher-url", fake.url, "--teacher-model", MODEL,
               "--teacher-concurrency", "4"]
    child = subprocess.Popen(command, cwd=REPO, env=os.environ | {"TAXREG_TEACHER_API_KEY": "k"},
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while fake.total_answered() < 15 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # answers on the wire reach the child and its journal
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    assert child.returncode == -signal.SIGKILL, child.stdout.read() if child.stdout else ""
    assert fake.total_answered() == 15

    fake.heal()
    outcome = generate(EXAMPLE_TAXONOMY, catalog, GenerateOptions("teacher", teacher=teacher(fake)))
    assert outcome.stats["teacher"]["requests_reused"] == 15
    assert max(fake.answered.values()) == 1  # 0 repeated requests
    assert fake.total_answered() == outcome.stats["teacher"]["requests_planned"]
    assert rows(catalog, "SELECT status FROM run") == [("succeeded",)]  # the killed run left no row behind
    assert one(catalog, f"SELECT count(*) FROM teacher_request WHERE run_id <> '{outcome.run_id}'") == 15
    assert one(catalog, "SELECT count(*) FROM v_orphan_samples") == 0


# --- hostile answers and endpoints (issue 17) ------------------------------------------------------------

def test_a_lone_surrogate_is_dropped_the_rest_kept_and_the_rerun_reuses_the_journal(
        fake: FakeTeacher, make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root, catalog = skills(make_taxonomy, tmp_path)
    fake.faults.extend(["", "surrogate"])  # in the same group commit as its neighbours
    options = GenerateOptions("teacher", teacher=teacher(fake, skill_requests=4))
    outcome = generate(root, catalog, options)

    assert outcome.stats["teacher"]["requests_ok"] == 12 == one(catalog, "SELECT count(*) FROM teacher_request "
                                                                "WHERE status = 'ok'")
    assert outcome.stats["dropped"] == {"invalid_unicode": 1} and outcome.stats["kept"] == 35
    assert one(catalog, "SELECT count(*) FROM teacher_request WHERE contains(response::VARCHAR, '\ufffd')") == 1
    assert any("\ufffd in words" in text for text in texts(catalog, "drop_reason = 'invalid_unicode'"))
    assert not any("\ufffd" in text for text in texts(catalog, "kept"))

    sent = len(fake.arrivals)
    again = generate(root, catalog, options)
    assert len(fake.arrivals) == sent and again.stats["teacher"]["requests_reused"] == 12
    assert again.stats["dropped"] == {"invalid_unicode": 1} and again.stats["kept"] == 35
    assert rows(catalog, "SELECT status FROM run ORDER BY started_at") == [("succeeded",), ("succeeded",)]


def test_bodies_are_journaled_whatever_their_escapes() -> None:
    import duckdb

    content = "a\ud800b \ud83d\ude00 \\ud800 \udc00"  # lone high, a pair, an escaped backslash, lone low
    stored = storable_body(json.dumps({"choices": [{"message": {"content": content}}]}))
    assert response_content(stored) == "a\ufffdb \U0001f600 \\ud800 \ufffd"
    assert duckdb.connect().execute("SELECT ?::JSON::VARCHAR", [stored]).fetchone() is not None
    plain = json.dumps({"choices": [{"message": {"content": "caf\u00e9"}}]})
    assert storable_body(plain) == plain  # as received
    with pytest.raises(MalformedResponse):
        storable_body('{"choices": [{"message": {"content": "x"}}], "x": ' + "[" * 100_000 + "]" * 100_000 + "}")


def test_a_row_the_catalog_refuses_does_not_take_its_group_with_it(example_index: Path, tmp_path: Path) -> None:
    con = open_catalog(fresh_copy(example_index, tmp_path))
    try:
        journal = TeacherJournal(con)
        bodies = ['{"a": 1}', '{"a": "\\ud800"}', '{"a": 2}']  # the second: JSON DuckDB's type refuses
        group = [FinishedRequest(f"{i:064x}", "run", MODEL, "{}", body, OK, 1, None) for i, body in enumerate(bodies)]
        with pytest.raises(CatalogError, match=f"refused teacher request {1:064x}"):
            journal.record(group)
        assert set(journal.lookup_many(r.request_sha256 for r in group)) == {f"{0:064x}", f"{2:064x}"}
    finally:
        con.close()


def test_control_characters_drop_their_samples(fake: FakeTeacher, make_taxonomy: TaxonomyMaker,
                                              tmp_path: Path) -> None:
    root, catalog = skills(make_taxonomy, tmp_path, "one")
    fake.faults.append("control")
    outcome = generate(root, catalog, GenerateOptions("teacher", teacher=teacher(fake, skill_requests=2)))
    assert outcome.stats["dropped"] == {"control_characters": 2} and outcome.stats["kept"] == 4
    dropped = "\n".join(texts(catalog, "drop_reason = 'control_characters'"))
    assert "\x00" in dropped and "\x1b[2J" in dropped  # kept in the catalog as received, for the audit
    assert not any(c < " " and c not in "\t\n\r" for text in texts(catalog, "kept") for c in text)


def test_a_dripping_response_is_cut_at_the_deadline(fake: FakeTeacher, make_taxonomy: TaxonomyMaker,
                                                    tmp_path: Path) -> None:
    root, catalog = skills(make_taxonomy, tmp_path, "one")
    fake.faults.append("drip")  # a byte each 0.2 s: the per-read timeout (1 s) never trips
    started = time.monotonic()
    outcome = generate(root, catalog, GenerateOptions("teacher", teacher=teacher(fake, timeout=1.0)))
    took = time.monotonic() - started
    assert took < fake.drip_for / 2, took
    assert (outcome.stats["teacher"]["http_attempts"], outcome.stats["teacher"]["requests_ok"]) == (2, 1)
    assert len(fake.arrivals) == 2 and outcome.stats["kept"] == 3


def test_oversized_and_compressed_responses_are_refused(fake: FakeTeacher, make_taxonomy: TaxonomyMaker,
                                                        tmp_path: Path) -> None:
    root, catalog = skills(make_taxonomy, tmp_path)
    fake.faults.extend(["oversized", "oversized_declared", "gzip"])
    limit = 64 << 10
    outcome = generate(root, catalog, GenerateOptions("teacher", teacher=teacher(
        fake, skill_requests=4, max_response_bytes=limit, max_failed=0.5)))

    asked = outcome.stats["teacher"]
    assert (asked["requests_ok"], asked["requests_failed"], asked["responses_oversized"]) == (10, 2, 2)
    assert asked["http_attempts"] == len(fake.arrivals) == 13  # oversized: not asked again; gzip: retried
    errors = [e for (e,) in rows(catalog, "SELECT error FROM teacher_request WHERE status = 'failed'")]
    assert len(errors) == 2 and all(f"over {limit} bytes" in e and "--teacher-max-response-bytes" in e
                                    for e in errors)
    assert any("Content-Length" in e for e in errors)  # refused before a byte of the body was read
    assert set(fake.encodings) == {"identity"}
    assert outcome.stats["kept"] == 30


def test_a_hostile_retry_after_waits_no_longer_than_max_wait(fake: FakeTeacher, make_taxonomy: TaxonomyMaker,
                                                             tmp_path: Path) -> None:
    assert TeacherConfig("http://127.0.0.1:1/v1", MODEL).max_wait == 30.0  # the documented default
    root, catalog = skills(make_taxonomy, tmp_path, "one")
    fake.retry_after = "120"
    fake.faults.append("429")
    outcome = generate(root, catalog, GenerateOptions("teacher", teacher=teacher(fake, max_wait=0.5)))
    (first, _, _), (second, _, _) = fake.arrivals
    assert 0.45 <= second - first < 3.0 and outcome.stats["teacher"]["requests_ok"] == 1


def test_a_run_where_every_request_is_refused_fails(fake: FakeTeacher, make_taxonomy: TaxonomyMaker,
                                                    tmp_path: Path) -> None:
    root, catalog = skills(make_taxonomy, tmp_path)
    fake.refuse = "401"
    result = CliRunner().invoke(app, ["generate", str(root), "--catalog", str(catalog), "--generator", "teacher",
                                      "--teacher-url", fake.url, "--teacher-model", MODEL])
    said = " ".join(result.output.split())
    assert result.exit_code == 2, said
    assert "failed 3 of 3 requests (0 ok in this run, 0 reused from earlier runs): none succeeded" in said
    assert "first error: HTTP 401: " in said and "\\x1b[2J\\x00" in said and "\x1b" not in result.output
    status, stats = rows(catalog, "SELECT status, stats FROM run")[0]
    assert status == "failed" and json.loads(stats)["teacher"]["requests_failed"] == 3
    assert rows(catalog, "SELECT status, count(*) FROM teacher_request GROUP BY 1") == [("failed", 3)]


def test_more_than_a_tenth_failed_fails_the_run_and_the_rerun_sends_only_those(
        fake: FakeTeacher, make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root, catalog = skills(make_taxonomy, tmp_path)
    fake.faults.extend(["400", "400"])  # 2 of 12: more than 10%
    options = GenerateOptions("teacher", teacher=teacher(fake, skill_requests=4))
    with pytest.raises(TeacherError, match=r"failed 2 of 12 requests \(10 ok in this run, 0 reused.*more than 10% "
                       r"failed \(--teacher-max-failed 0\.1\); first error: HTTP 400") as caught:
        generate(root, catalog, options)
    assert "run the same command again" in caught.value.hint
    assert rows(catalog, "SELECT status FROM run") == [("failed",)] and one(catalog, "SELECT count(*) FROM sample") == 0
    assert one(catalog, "SELECT count(*) FROM teacher_request WHERE status = 'ok'") == 10

    sent = len(fake.arrivals)
    again = generate(root, catalog, options)
    assert len(fake.arrivals) - sent == 2 and again.stats["teacher"]["requests_reused"] == 10
    assert again.stats["kept"] == 36


def test_teacher_text_that_cannot_be_sent_or_stored_is_refused() -> None:
    for bad in ({"model": "teacher\udcff"}, {"terms": "ok\x1b[2J"}, {"url": "http://127.0.0.1:1/v1\x00"}):
        with pytest.raises(TeacherError, match="holds a control character or bytes that are not UTF-8"):
            TeacherConfig(**({"url": "http://127.0.0.1:1/v1", "model": MODEL} | bad))
    with pytest.raises(TeacherError, match="--teacher-max-failed must be between 0 and 1"):
        TeacherConfig("http://127.0.0.1:1/v1", MODEL, max_failed=2)


def test_the_cli_needs_a_url_and_a_model(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["generate", str(EXAMPLE_TAXONOMY), "--catalog", str(tmp_path / "c.duckdb"),
                                      "--generator", "teacher"])
    assert result.exit_code == 2 and "--teacher-url is required" in result.output
