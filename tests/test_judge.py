"""The judge over real HTTP on 127.0.0.1: every teacher sample the filters kept is scored before it is kept, with
the scores, judge model and rubric as lineage; judge requests journaled and resumable like the teacher's, and a
judge that is down, refuses or answers garbage bounded by the teacher's rules."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from builder.generators.judge import CRITERIA, Judge, JudgeConfig, Subject, read_verdict, rubrics
from builder.generators.run import GenerateOptions, generate
from builder.generators.teacher import TeacherError
from registry.catalog.indexer import index
from tests.conftest import EXAMPLE_TAXONOMY, REPO, TaxonomyMaker
from tests.fake_teacher import LOW_SCORE, MODEL, FakeTeacher
from tests.test_teacher import one, rows, skills, teacher

JUDGE = "fake-judge-1"


def judge(fake: FakeTeacher, **overrides: Any) -> JudgeConfig:
    settings: dict[str, Any] = {"concurrency": 4, "timeout": 5.0, "backoff": 0.01, "max_attempts": 4} | overrides
    return JudgeConfig(fake.url, JUDGE, "judge-key", **settings)


def judged(fake: FakeTeacher, **overrides: Any) -> GenerateOptions:
    return GenerateOptions("teacher", teacher=teacher(fake, skill_requests=4), judge=judge(fake, **overrides))


def test_every_kept_teacher_sample_is_judged_and_the_scores_are_lineage(fake: FakeTeacher, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.duckdb"
    index(EXAMPLE_TAXONOMY, catalog)
    outcome = generate(EXAMPLE_TAXONOMY, catalog, GenerateOptions("teacher", teacher=teacher(fake),
                                                                  judge=judge(fake)))

    asked, scored = outcome.stats["teacher"], outcome.stats["judge"]
    produced = 3 * asked["requests_planned"]
    assert outcome.stats["produced"] == produced and scored["requests_planned"] == produced  # each sample once
    assert scored["samples_below_threshold"] == produced // 3 == outcome.stats["dropped"]["judge_below_threshold"]
    assert outcome.stats["kept"] == scored["samples_passed"] == produced - produced // 3
    assert fake.total_answered("judge") == len(fake.keys_of("judge")) == produced  # one request per sample
    assert rows(catalog, "SELECT role, count(*) FROM teacher_request GROUP BY 1 ORDER BY 1") == [
        ("judge", produced), ("teacher", asked["requests_planned"])]
    assert {k for (k,) in rows(catalog, "SELECT request_sha256 FROM teacher_request WHERE role = 'judge'")} \
        == fake.keys_of("judge")

    # who judged each kept sample, and how: in its provenance row
    provenance = rows(catalog, """SELECT kind, judge_model_ref, judge_rubric, judge_rubric_sha256, judge_scores,
                                         judge_score, judge_threshold FROM v_sample_provenance""")
    assert len(provenance) == outcome.stats["kept"]
    rubric_sha = rubrics("v1").sha256
    for kind, model, rubric, sha, scores, score, threshold in provenance:
        criteria = CRITERIA["knowledge" if kind == "knowledge" else "skill"]
        assert (model, sha, score, threshold) == (JUDGE, rubric_sha, 5, 4)
        assert rubric == ("knowledge_v1" if kind == "knowledge" else "skill_v1")
        assert json.loads(scores) == dict.fromkeys(criteria, 5)
    assert {r[0] for r in provenance} >= {"knowledge", "compositional_skill"}

    # a drop keeps its reason and score
    dropped = rows(catalog, """SELECT s.drop_reason, j.score, j.verdict, j.reason, s.messages FROM sample s
                               JOIN sample_judgement j USING (sample_id) WHERE NOT s.kept""")
    assert len(dropped) == produced // 3
    assert all(r[:4] == ("judge_below_threshold", LOW_SCORE, "below_threshold", f"It earns {LOW_SCORE}.")
               for r in dropped)
    assert all("number 2," in json.loads(r[4])[-1]["content"] for r in dropped)
    assert rows(catalog, "SELECT judge_model_ref, rubric_sha256, json_extract_string(params, '$.judge_model') "
                "FROM run") == [(JUDGE, rubric_sha, JUDGE)]
    assert one(catalog, f"SELECT count(*) FROM external_model WHERE model_ref = '{JUDGE}'") == 1
    assert one(catalog, "SELECT count(*) FROM v_orphan_samples") == 0

    # the knowledge rubric shows the judge the chunk the teacher wrote from (the context of the user turn)
    prompt, messages = rows(catalog, """SELECT t.request->'messages'->1->>'content', s.messages FROM teacher_request t
        JOIN sample_judgement j USING (request_sha256) JOIN sample s USING (sample_id)
        WHERE j.rubric = 'knowledge_v1' LIMIT 1""")[0]
    chunk = json.loads(messages)[1]["content"].rsplit("\n\n", 1)[0]
    assert f"[Excerpt]\n{chunk.strip()}\n[End]" in prompt and "faithfulness: a whole number" in prompt

    again = generate(EXAMPLE_TAXONOMY, catalog, GenerateOptions("teacher", teacher=teacher(fake), judge=judge(fake)))
    assert again.stats["judge"]["requests_reused"] == produced and fake.total_answered() == len(fake.answered)
    assert max(fake.answered.values()) == 1 and again.stats["kept"] == outcome.stats["kept"]


def test_a_stricter_threshold_asks_nothing_new(fake: FakeTeacher, make_taxonomy: TaxonomyMaker,
                                              tmp_path: Path) -> None:
    root, catalog = skills(make_taxonomy, tmp_path, "one")
    first = generate(root, catalog, judged(fake))
    assert (first.stats["kept"], first.stats["dropped"]) == (8, {"judge_below_threshold": 4})
    sent = len(fake.arrivals)
    lenient = generate(root, catalog, judged(fake, threshold=LOW_SCORE))
    assert len(fake.arrivals) == sent and lenient.stats["kept"] == 12 and lenient.stats["dropped"] == {}
    assert rows(catalog, "SELECT DISTINCT threshold, verdict FROM sample_judgement j JOIN run USING (run_id) "
                f"WHERE run_id = '{lenient.run_id}'") == [(LOW_SCORE, "passed")]
    assert eligible(catalog) == 12  # the newest decision stands, for the dataset too
    strict = generate(root, catalog, judged(fake, threshold=5))
    assert strict.stats["kept"] == 8 and eligible(catalog) == 8 and len(fake.arrivals) == sent
    assert rows(catalog, "SELECT drop_reason, count(*) FROM sample WHERE NOT kept GROUP BY 1") == [
        ("judge_below_threshold", 4)]


def eligible(catalog: Path) -> int:
    """The samples a dataset build takes."""
    from registry.catalog.connection import open_catalog
    from registry.catalog.datasets import eligible_samples

    with open_catalog(catalog) as con:
        return len(eligible_samples(con))


def test_a_judge_answer_without_scores_drops_its_sample_with_the_judges_words(
        fake: FakeTeacher, make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root, catalog = skills(make_taxonomy, tmp_path)  # 12 teacher requests, 36 samples to judge
    fake.judge_faults.extend(["garbage", "500", "slow"])  # a refusal in words; an error and a slow answer, retried
    fake.slow_seconds = 1.8
    outcome = generate(root, catalog, judged(fake, timeout=1.0))
    dropped = outcome.stats["dropped"]
    assert dropped["judge_unparseable"] == 1 and dropped["judge_below_threshold"] in (11, 12)  # whichever it hit
    assert outcome.stats["kept"] + dropped["judge_unparseable"] + dropped["judge_below_threshold"] == 36
    assert outcome.stats["judge"]["answers_unparseable"] == 1 and outcome.stats["judge"]["http_attempts"] == 38
    assert rows(catalog, "SELECT s.drop_reason, j.verdict, j.score, j.scores, j.reason FROM sample s "
                "JOIN sample_judgement j USING (sample_id) WHERE j.verdict = 'unparseable'") == [
        ("judge_unparseable", "unparseable", None, None, "I would rather not answer that.")]


def test_a_judge_that_answers_garbage_fails_the_run(fake: FakeTeacher, make_taxonomy: TaxonomyMaker,
                                                    tmp_path: Path) -> None:
    root, catalog = skills(make_taxonomy, tmp_path, "one")
    fake.judge_faults.extend(["garbage"] * 12)
    with pytest.raises(TeacherError, match=r"the judge at .* answered 12 of 12 requests without every score .*"
                                           r"first answer: 'I would rather not answer that.'") as caught:
        generate(root, catalog, judged(fake))
    assert "[generate.judge] model" in caught.value.hint
    assert rows(catalog, "SELECT status FROM run") == [("failed",)] and one(catalog, "SELECT count(*) FROM sample") == 0
    assert one(catalog, "SELECT count(*) FROM teacher_request WHERE status = 'ok'") == 16  # all saved


def test_a_judge_that_refuses_fails_the_run_and_keeps_the_teachers_answers(
        fake: FakeTeacher, make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root, catalog = skills(make_taxonomy, tmp_path, "one")
    fake.judge_refuse = "401"
    with pytest.raises(TeacherError, match=r"the judge at .* failed 12 of 12 requests .*none succeeded; first "
                                           r"error: HTTP 401"):
        generate(root, catalog, judged(fake))
    assert rows(catalog, "SELECT role, status, count(*) FROM teacher_request GROUP BY ALL ORDER BY ALL") == [
        ("judge", "failed", 12), ("teacher", "ok", 4)]
    fake.judge_refuse = None
    teacher_sent = fake.total_answered("teacher")
    outcome = generate(root, catalog, judged(fake))
    assert fake.total_answered("teacher") == teacher_sent and outcome.stats["judge"]["requests_ok"] == 12
    assert outcome.stats["kept"] == 8


def test_a_judge_that_dies_midway_resumes_without_repeating_a_request(
        fake: FakeTeacher, make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root, catalog = skills(make_taxonomy, tmp_path)
    fake.serve_limit = 12 + 20  # every teacher request, then 20 judge requests
    with pytest.raises(TeacherError, match=r"the judge at .* stopped answering: .*\(20 ok"):
        generate(root, catalog, judged(fake, max_attempts=2))
    fake.heal()
    outcome = generate(root, catalog, judged(fake))
    assert outcome.stats["judge"]["requests_reused"] == 20 and outcome.stats["teacher"]["requests_reused"] == 12
    assert fake.total_answered() == len(fake.answered) == 12 + 36  # each request answered once, over both runs
    assert outcome.stats["kept"] == 24


def test_the_judge_can_be_another_endpoint_and_model(fake: FakeTeacher, make_taxonomy: TaxonomyMaker,
                                                     tmp_path: Path) -> None:
    other = FakeTeacher()
    other.thread.start()
    try:
        root, catalog = skills(make_taxonomy, tmp_path, "one")
        options = GenerateOptions("teacher", teacher=teacher(fake, skill_requests=4),
                                  judge=JudgeConfig(other.url, JUDGE, "other-key", backoff=0.01))
        outcome = generate(root, catalog, options)
    finally:
        other.server.shutdown()
        other.server.server_close()
    assert fake.keys_of("judge") == set() and len(other.keys_of("judge")) == 12 and other.keys_of("teacher") == set()
    assert set(other.api_keys) == {"other-key"} and set(fake.api_keys) == {"test-key"}
    assert outcome.stats["kept"] == 8
    assert rows(catalog, "SELECT DISTINCT judge_model_ref, teacher_model_ref FROM v_sample_provenance") == [
        (JUDGE, MODEL)]


def test_scores_are_read_leniently_and_refused_when_one_is_missing() -> None:
    assert read_verdict("[Scores]\n**Faithfulness**: 4/5\nrelevance = 5\n[Reason]\nClose.\n[End]",
                        CRITERIA["knowledge"]) == ({"faithfulness": 4, "relevance": 5}, "Close.")
    assert read_verdict("following: 3", CRITERIA["skill"]) == ({"following": 3}, None)
    for text in ("faithfulness: 5", "faithfulness: 9\nrelevance: 5", "Faithfulness: five\nrelevance: 5", ""):
        assert read_verdict(text, CRITERIA["knowledge"]).scores is None
    assert read_verdict("no\x1b[2J", CRITERIA["skill"]).reason == "no\\x1b[2J"


def test_judge_requests_are_deterministic_and_name_what_they_judge() -> None:
    judge_ = Judge(JudgeConfig("http://127.0.0.1:1/v1", JUDGE))
    subject = Subject("skill", "Why?", "Because.", "A context.", "Explain things.")
    first, again = judge_.request(subject, 0), judge_.request(subject, 0)
    assert first == again and judge_.request(subject, 1).request_sha256 != first.request_sha256
    assert first.body["temperature"] == 0.0 and first.body["model"] == JUDGE
    prompt = first.body["messages"][1]["content"]
    assert all(part in prompt for part in ("Task: Explain things.", "[Context]\nA context.", "[Question]\nWhy?",
                                           "[Answer]\nBecause.", "following: a whole number from 1 to 5"))


@pytest.mark.parametrize(("overrides", "message"), [
    ({"threshold": 6}, "--judge-threshold must be a whole number from 1 to 5"),
    ({"rubric": "v9"}, "rubric 'v9' is not a rubric version (known: v1)"),
    ({"url": ""}, "--judge-url is required"),
    ({"model": "judge\x1b"}, "--judge-model holds a control character"),
])
def test_a_judge_that_cannot_be_used_is_refused_before_any_work(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(TeacherError, match=message.replace("(", r"\(").replace(")", r"\)")):
        JudgeConfig(**({"url": "http://127.0.0.1:1/v1", "model": JUDGE} | overrides))


def test_contribution_and_run_pages_show_kept_and_dropped_samples_by_reason(
        fake: FakeTeacher, make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    from builder.site.pages import entity_pages
    from builder.site.readmodel import load
    from builder.site.render import Renderer

    root, catalog = skills(make_taxonomy, tmp_path, "one")
    generate(root, catalog, GenerateOptions("teacher", teacher=teacher(fake, skill_requests=4)))  # unjudged
    judged_run = generate(root, catalog, judged(fake))
    renderer = Renderer(REPO / "site" / "templates", lambda depth: None, mermaid=False)
    pages = {spec.template + ":" + spec.folder: renderer.env.get_template(spec.template).render(
        **spec.context, root="../", mermaid_enabled=False) for spec in entity_pages(load(catalog))}

    [contribution] = [html for name, html in pages.items() if name.startswith("contribution.html:")]
    cells = re.findall(r"<tr><td><a [^>]*>(\w+)</a></td><td>(\d+)</td><td>(\d+)</td><td>([^<]*)</td></tr>",
                       contribution)
    # kept: as the newest run decided (the judge's); dropped: by each run's own decisions
    assert sorted(c[1:] for c in cells) == [("12", "8", "judge_below_threshold 4"), ("12", "8", "none")]
    [run] = [html for name, html in pages.items() if name.startswith("run.html:") and judged_run.run_id in name]
    assert "Dropped samples, by reason" in run and "<td>judge_below_threshold</td><td>4</td>" in run
    assert f"<tr><th>Judge</th><td>{JUDGE}, rubric" in run
