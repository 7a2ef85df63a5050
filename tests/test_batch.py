"""Generation through OpenAI Batch API files: `--batch-out` writes the requests a live run would send (custom_id =
the journal's key), another process answers them with the fake teacher's logic (`python -m tests.fake_teacher`),
and `--batch-in` reads the results back: the same samples, sample ids, lineage and judgements as a live run, in two
rounds when the judge scores them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from builder.cli import app
from builder.generators.batch import BatchFiles
from builder.generators.judge import JudgeConfig
from builder.generators.run import GenerateOptions, generate
from builder.generators.teacher import TeacherConfig, TeacherError
from registry.catalog.indexer import index
from registry.errors import RegistryError
from tests.conftest import EXAMPLE_TAXONOMY, REPO, TaxonomyMaker
from tests.fake_teacher import MODEL, FakeTeacher
from tests.test_teacher import rows, skills, teacher

JUDGE = "fake-judge-1"
LINEAGE = "SELECT sample_id, parent_kind, parent_id, role, contribution_id, version_id, doc_sha256, method " \
          "FROM sample_lineage ORDER BY ALL"
VERDICTS = "SELECT sample_id, kept, drop_reason FROM run_sample ORDER BY ALL"
JUDGEMENTS = "SELECT sample_id, request_sha256, judge_model_ref, rubric, rubric_sha256, scores::VARCHAR, score, " \
             "verdict, reason FROM sample_judgement ORDER BY ALL"
JOURNAL = "SELECT request_sha256, role, model_ref, request::VARCHAR, status FROM teacher_request ORDER BY ALL"


def answer(requests: Path, results: Path, fail: int = 0) -> None:
    """Another process answers the batch file, as a batch service would."""
    subprocess.run([sys.executable, "-m", "tests.fake_teacher", str(requests), str(results), str(fail)], cwd=REPO,
                   check=True, timeout=120)


def offline(batch: BatchFiles, judge: bool = True, **teacher: Any) -> GenerateOptions:
    """Batch options: no URL, nothing sent over HTTP."""
    return GenerateOptions("teacher", teacher=TeacherConfig("", MODEL, batch=True, **teacher),
                           judge=JudgeConfig("", JUDGE, batch=True) if judge else None, batch=batch)


def batch_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_batch_round_trip_gives_the_samples_and_lineage_of_a_live_run(fake: FakeTeacher, tmp_path: Path) -> None:
    live, batched = tmp_path / "live.duckdb", tmp_path / "batched.duckdb"
    index(EXAMPLE_TAXONOMY, live)
    batched.write_bytes(live.read_bytes())
    live_run = generate(EXAMPLE_TAXONOMY, live, GenerateOptions("teacher", teacher=teacher(fake),
                                                                judge=JudgeConfig(fake.url, JUDGE, "k")))

    first = generate(EXAMPLE_TAXONOMY, batched, offline(BatchFiles(out=tmp_path / "teacher.jsonl")))
    assert first.pending is not None and first.run_id == ""
    assert (first.pending.role, first.pending.requests) == ("teacher", live_run.stats["teacher"]["requests_planned"])
    lines = batch_lines(tmp_path / "teacher.jsonl")
    assert all(set(line) == {"custom_id", "method", "url", "body"} for line in lines)
    assert {line["custom_id"] for line in lines} == fake.keys_of("teacher")  # the live run's request keys
    assert rows(batched, "SELECT count(*) FROM run") == [(0,)] and rows(batched, "SELECT count(*) FROM sample") == [
        (0,)]
    answer(tmp_path / "teacher.jsonl", tmp_path / "teacher-results.jsonl")

    second = generate(EXAMPLE_TAXONOMY, batched, offline(BatchFiles((tmp_path / "teacher-results.jsonl",),
                                                                    tmp_path / "judge.jsonl")))
    assert second.pending is not None and second.pending.role == "judge"
    assert {line["custom_id"] for line in batch_lines(tmp_path / "judge.jsonl")} == fake.keys_of("judge")
    answer(tmp_path / "judge.jsonl", tmp_path / "judge-results.jsonl")

    done = generate(EXAMPLE_TAXONOMY, batched, offline(BatchFiles((tmp_path / "judge-results.jsonl",))))
    assert done.pending is None and done.run_id
    assert done.stats["judge"]["batch_results"] == live_run.stats["judge"]["requests_planned"]
    assert done.stats["teacher"]["requests_reused"] == live_run.stats["teacher"]["requests_planned"]
    for sql in (VERDICTS, LINEAGE, JUDGEMENTS):
        assert rows(batched, sql) == rows(live, sql), sql
    assert [r[:4] for r in rows(batched, JOURNAL)] == [r[:4] for r in rows(live, JOURNAL)]
    assert rows(batched, "SELECT count(*) FROM v_sample_provenance WHERE judge_model_ref IS NOT NULL")[0][0] \
        == done.stats["kept"] == live_run.stats["kept"] > 0
    assert rows(batched, "SELECT status FROM run") == [("succeeded",)]


def test_failed_results_are_written_again_and_the_rest_is_kept(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root, catalog = skills(make_taxonomy, tmp_path)
    options = {"skill_requests": 4}
    generate(root, catalog, offline(BatchFiles(out=tmp_path / "r1.jsonl"), judge=False, **options))
    answer(tmp_path / "r1.jsonl", tmp_path / "a1.jsonl", fail=2)  # two results are HTTP 500s

    again = generate(root, catalog, offline(BatchFiles((tmp_path / "a1.jsonl",), tmp_path / "r2.jsonl"), judge=False,
                                            **options))
    assert again.pending is not None and again.pending.requests == 2 and again.pending.answered == 10
    assert rows(catalog, "SELECT status, count(*) FROM teacher_request GROUP BY 1 ORDER BY 1") == [
        ("failed", 2), ("ok", 10)]
    assert rows(catalog, "SELECT DISTINCT error FROM teacher_request WHERE status = 'failed'")[0][0].startswith(
        "HTTP 500: ")
    answer(tmp_path / "r2.jsonl", tmp_path / "a2.jsonl")
    done = generate(root, catalog, offline(BatchFiles((tmp_path / "a2.jsonl",)), judge=False, **options))
    assert done.stats["kept"] == 36 and done.stats["teacher"]["requests_reused"] == 10


def test_without_batch_out_missing_results_count_as_failed(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root, catalog = skills(make_taxonomy, tmp_path)
    generate(root, catalog, offline(BatchFiles(out=tmp_path / "r.jsonl"), judge=False))
    answer(tmp_path / "r.jsonl", tmp_path / "a.jsonl")
    partial = tmp_path / "partial.jsonl"
    partial.write_text("".join(tmp_path.joinpath("a.jsonl").read_text(encoding="utf-8").splitlines(True)[:1]),
                       encoding="utf-8")
    with pytest.raises(TeacherError, match=r"the teacher \(batch files\) failed 2 of 3 requests .* first error: no "
                                           r"result in the --batch-in files for 2 requests") as caught:
        generate(root, catalog, offline(BatchFiles((partial,)), judge=False))
    assert "--batch-out" in caught.value.hint
    assert rows(catalog, "SELECT status FROM run") == [("failed",)]


@pytest.mark.parametrize(("text", "message"), [
    ('{"custom_id": "x"}\nnot json\n', r"a\.jsonl:2: not JSON"),
    ('["a list"]\n', r"a\.jsonl:1: not a Batch API result \(no custom_id\)"),
])
def test_a_results_file_that_is_not_one_is_refused_with_its_line(make_taxonomy: TaxonomyMaker, tmp_path: Path,
                                                                text: str, message: str) -> None:
    root, catalog = skills(make_taxonomy, tmp_path, "one")
    (tmp_path / "a.jsonl").write_text(text, encoding="utf-8")
    with pytest.raises(RegistryError, match=message):
        generate(root, catalog, offline(BatchFiles((tmp_path / "a.jsonl",)), judge=False))
    with pytest.raises(RegistryError, match="no such file"):
        generate(root, catalog, offline(BatchFiles((tmp_path / "missing.jsonl",)), judge=False))


def test_the_cli_writes_a_batch_without_a_url(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root, catalog = skills(make_taxonomy, tmp_path, "one")
    out = tmp_path / "requests.jsonl"
    result = CliRunner().invoke(app, ["generate", str(root), "--catalog", str(catalog), "--generator", "teacher",
                                      "--teacher-model", MODEL, "--batch-out", str(out)])
    said = " ".join(result.output.split())
    assert result.exit_code == 0, said
    assert f"wrote 1 teacher requests to {out}" in said and "--batch-in RESULTS" in said
    assert [line["body"]["model"] for line in batch_lines(out)] == [MODEL]
    answer(out, tmp_path / "answers.jsonl")
    judge_out = tmp_path / "judge.jsonl"
    result = CliRunner().invoke(app, ["generate", str(root), "--catalog", str(catalog), "--generator", "teacher",
                                      "--teacher-model", MODEL, "--batch-in", str(tmp_path / "answers.jsonl"),
                                      "--batch-out", str(judge_out)])
    assert result.exit_code == 0 and "wrote 3 judge requests" in " ".join(result.output.split())
    assert {line["body"]["model"] for line in batch_lines(judge_out)} == {MODEL}  # the judge defaults to the teacher
