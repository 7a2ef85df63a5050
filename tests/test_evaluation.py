"""`taxreg eval` for real, on one tiny demo model trained on the embedded taxonomy (this module's one model build):

the model is trained, merged into a new base, then trained again on the same data (release 1.0.0) and on a copy in
which one contribution's answers are shuffled (release 2.0.0: it regresses on purpose). The view and the
eval.no_regression gate name it, --allow is recorded, `release diff` names it, the scores match a plain PyTorch
loop, the site shows what each contribution did (in chromium), a takedown takes its scores out of the public
copy, the judge is asked over real HTTP and resumes after going down, and bad inputs get one clear message.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from builder.cli import app
from builder.evaluation.evalset import EvalLeak, build_eval_set
from builder.evaluation.judge import JudgeConfig, JudgeUnavailable
from builder.evaluation.run import EvalOptions, EvalOutcome, NoBase, evaluate
from builder.evaluation_settings import EvalSettings, Thresholds
from builder.release.compare import diff_folders
from builder.release.cut import CutOptions, cut_release
from registry.catalog.connection import open_read_only
from registry.catalog.policy import GateFailed, PolicyInput, _eval_rows
from registry.licenses import LicensePolicy
from registry.release.manifest import read_manifest
from tests.evaluating import export, merge, samples_of, shuffled_dataset, train
from tests.releasing import rows
from tests.test_site_browser import Visit, browser, visit  # noqa: F401 (the browser fixtures, over this site)

pytest.importorskip("onnxruntime", reason="onnxruntime is a project dependency: pip install -e '.[dev]'")
pytestmark = pytest.mark.slow  # one whole build, then two trainings and exports

X = "knowledge/engineering/mechanical/bicycles/bicycle_gearing"  # the contribution made to regress
DONOR = "knowledge/arts/music/music_theory/musical_scales"  # whose answers it is trained on instead of its own
SETTINGS = EvalSettings(Thresholds(max_nll_increase=0.08), bootstrap=400)


@dataclass
class World:
    root: Path
    build: Path
    shuffled: Path  # the dataset release 2.0.0's model was trained on
    good: EvalOutcome  # release 1.0.0's evaluation
    bad: EvalOutcome  # release 2.0.0's
    refused: str  # the cut of 2.0.0 without --allow
    first: Path
    second: Path

    @property
    def catalog(self) -> Path:
        return self.build / "catalog.duckdb"

    @property
    def dataset(self) -> Path:
        return self.build / "datasets" / "default"

    @property
    def model(self) -> Path:
        return self.build / "model"


def _cut(world_build: Path, version: str, allow: tuple[str, ...] = ()) -> Path:
    """A cut as `taxreg release cut` makes it, with the test's [eval] thresholds."""
    return cut_release(CutOptions(version, world_build, allow=allow,
                                  eval_thresholds=SETTINGS.thresholds.as_dict())).folder


@pytest.fixture(scope="module")
def world(demo_build: tuple[Path, Path, str], tmp_path_factory: pytest.TempPathFactory) -> World:
    _, source, _ = demo_build
    root = tmp_path_factory.mktemp("evaluation")
    build = root / "build"
    build.mkdir()
    for name in ("catalog.duckdb", "datasets", "releases"):  # the shared build is read, never written
        (shutil.copytree if (source / name).is_dir() else shutil.copyfile)(source / name, build / name)
    catalog, dataset, model = build / "catalog.duckdb", build / "datasets" / "default", build / "model"
    merge(source / "model" / "base", source / "model" / "adapter", model / "base")  # a base that knows the data
    train(model / "base", dataset, model / "adapter", catalog, 10, lr=2e-3)
    export(model, catalog, dataset)
    good = evaluate(EvalOptions(model, dataset, catalog, SETTINGS))
    first = _cut(build, "1.1.0")
    # its answers swapped for a shuffled copy of another leaf's: the questions about gears now teach music theory
    shuffled = shuffled_dataset(dataset, root / "shuffled", samples_of(catalog, X), samples_of(catalog, DONOR),
                                copies=32)
    train(model / "base", shuffled, model / "adapter", catalog, 30, lr=1e-2)
    export(model, catalog, dataset)
    bad = evaluate(EvalOptions(model, shuffled, catalog, SETTINGS))
    with pytest.raises(GateFailed) as refused:
        _cut(build, "2.0.0")
    second = _cut(build, "2.0.0", allow=("eval.no_regression",))
    return World(root, build, shuffled, good, bad, str(refused.value), first, second)


def copy_of(world: World, tmp_path: Path) -> World:
    """The world's build folder copied, for tests that add evaluation runs of their own."""
    shutil.copytree(world.build, tmp_path / "build", ignore=shutil.ignore_patterns("checkpoints", "releases"))
    return replace(world, build=tmp_path / "build")


def test_the_contribution_trained_on_shuffled_answers_is_named_by_the_view_and_the_gate(world: World) -> None:
    assert not world.good.regressions, world.good.regressions
    regressed = {(r["contribution_id"], r["metric"]) for r in world.bad.regressions}
    assert {cid for cid, _ in regressed} == {X, None}  # it, and the guard set: the fine-tune hurt general ability
    assert (X, "nll") in regressed and (None, "nll") in regressed
    worst = max((e for e in world.bad.results["effects"] if e["metric"] == "nll" and e["contribution_id"]),
                key=lambda e: e["delta"])
    assert worst["contribution_id"] == X and worst["delta"] > SETTINGS.thresholds.max_nll_increase
    assert "eval.no_regression" in world.refused and X in world.refused and "guard" in world.refused
    manifest, _ = read_manifest(world.second)
    gate = [(p.subject, p.passed, p.overridden) for p in manifest.policy if p.rule == "eval.no_regression"]
    assert gate == [("guard", False, True), (X, False, True)] and manifest.allowed == ("eval.no_regression",)
    first, _ = read_manifest(world.first)
    assert [(p.subject, p.passed) for p in first.policy if p.rule == "eval.no_regression"] == [("*", True)]
    # the refused attempt is in policy_check too, and the release row lists the override
    attempts = rows(world.build, "SELECT attempt, subject, overridden FROM policy_check WHERE release_id = '2.0.0' "
                                 "AND rule = 'eval.no_regression' ORDER BY 1, 2")
    assert attempts == [(1, "guard", False), (1, X, False), (2, "guard", True), (2, X, True)]
    assert json.loads(str(rows(world.build, "SELECT allowed FROM release WHERE release_id = '2.0.0'")[0][0])) == [
        "eval.no_regression"]


def test_release_diff_names_the_contribution_whose_effect_changed_beyond_its_intervals(world: World) -> None:
    diff = diff_folders(world.first, world.second)
    named = {(e.subject, e.metric): e for e in diff.effects}
    assert (X, "nll") in named and named[(X, "nll")].direction == "worse"
    change = named[(X, "nll")]
    assert change.new_interval[0] > change.old_interval[1]  # NLL went up: the intervals do not overlap
    shown = CliRunner().invoke(app, ["release", "diff", str(world.first), str(world.second)])
    assert shown.exit_code == 0 and f"effect worse  {X} nll" in shown.output
    assert "effect(s) changed beyond their intervals" in shown.output


def test_the_card_reports_accuracy_against_chance_and_the_manifest_digests_the_results(world: World) -> None:
    import yaml

    card = (world.first / "model" / "README.md").read_text()
    assert "## Evaluation" in card and "against **" in card and "by chance" in card
    header = yaml.safe_load(card.split("---\n")[1])
    results = header["model-index"][0]["results"]
    assert results[0]["dataset"]["type"] == "parity"
    configs = {r["dataset"]["config"] for r in results[1:]}
    assert "guard" in configs and "knowledge/engineering" in configs
    knowledge = next(r for r in results if r["dataset"].get("config") == "knowledge/engineering")
    accuracy = next(m for m in knowledge["metrics"] if m["type"] == "accuracy")
    assert "chance 0.25" in accuracy["name"] and 0 <= accuracy["value"] <= 1
    manifest, _ = read_manifest(world.first)
    digest = hashlib.sha256((world.first / "evaluation.json").read_bytes()).hexdigest()
    assert manifest.metrics["evaluation"]["results_sha256"] == digest == manifest.file("evaluation.json").sha256
    assert rows(world.build, "SELECT count(*) FROM eval_run WHERE results_sha256 = '" + digest + "'")[0][0] == 1


def test_onnxruntime_scores_match_a_plain_pytorch_loop(world: World) -> None:
    import torch

    from builder.evaluation.reference import torch_scores
    from builder.evaluation.scoring import Scorer, Tokenizer
    from builder.model.export import load_merged

    with open_read_only(world.catalog) as con:
        chosen = build_eval_set(con, world.shuffled, SETTINGS.seed)
    tokens = Tokenizer(world.model / "onnx")
    picked = [i for i in chosen.items if i.choices][:6] + [i for i in chosen.items if not i.choices][:4]
    encoded = [tokens.encode(i.messages, list(i.choices) or [i.reference], i.correct or 0, 16) for i in picked]
    ort = Scorer(world.model / "onnx").score(encoded, 16, tokens.eos, tokens.pad)
    torch.set_num_threads(1)
    model = load_merged(world.model / "base", world.model / "adapter")[0]
    reference = torch_scores(model, encoded, 16, tokens.eos)
    diffs = [abs(a - b) for x, y in zip(ort, reference, strict=True) for a, b in zip(x.logprobs, y.logprobs,
                                                                                      strict=True)]
    assert max(diffs) < 1e-4 and len(diffs) > len(picked)  # every choice of every item
    assert [x.answer for x in ort] == [y.answer for y in reference]


def test_the_catalog_holds_the_run_its_items_scores_and_effects_and_the_auditor_query(world: World) -> None:
    run = world.bad.run_id
    [(items, metrics, dataset_id, set_sha)] = rows(world.build, f"""
        SELECT items, metrics, dataset_id, eval_set_sha256 FROM eval_run WHERE run_id = '{run}'""")
    assert items == world.bad.results["items"] and {"nll", "mc_acc", "f1", "rouge_l"} <= set(metrics)  # type: ignore
    # the shuffled copy keeps the test split, so both runs drew from the test file the catalog recorded
    assert dataset_id == rows(world.build, f"SELECT dataset_id FROM eval_run WHERE run_id = '{world.good.run_id}'"
                              )[0][0] == rows(world.build, "SELECT dataset_id FROM dataset WHERE split = 'test' AND "
                                                           "format = 'jsonl' ORDER BY created_at DESC LIMIT 1")[0][0]
    with open_read_only(world.catalog) as con:
        assert build_eval_set(con, world.shuffled, SETTINGS.seed).sha256 == set_sha
    sources = dict(rows(world.build, f"SELECT source, count(*) FROM eval_item WHERE run_id = '{run}' GROUP BY 1"))
    assert set(sources) == {"test", "closed_book", "guard"} and sources["guard"] == 24
    [(stage, status)] = rows(world.build, f"SELECT stage, status FROM run WHERE run_id = '{run}'")
    assert (stage, status) == ("evaluate", "succeeded")
    sample = rows(world.build, f"SELECT sample_id FROM eval_item WHERE run_id = '{run}' AND contribution_id = '{X}' "
                               "AND source = 'test' ORDER BY 1 LIMIT 1")[0][0]
    # the README's query: from a sample to "did the model learn it"
    found = rows(world.build, "SELECT contribution_id, contributor, source, metric, base_value, tuned_value, delta "
                              f"FROM v_eval_provenance WHERE sample_id = '{sample}' AND run_id = '{run}'")
    assert {r[0] for r in found} == {X} and {r[3] for r in found} >= {"nll", "mc_acc"} and found[0][1]
    impact = rows(world.build, f"SELECT DISTINCT release_id, verdict FROM v_contribution_impact WHERE run_id = '{run}' "
                               f"AND contribution_id = '{X}' AND metric = 'nll'")
    assert impact == [("2.0.0", "worse")]


def test_every_item_is_held_out_and_a_leak_names_the_ids(world: World, tmp_path: Path) -> None:
    with open_read_only(world.catalog) as con:
        chosen = build_eval_set(con, world.dataset, 0)
        again = build_eval_set(con, world.dataset, 0)
    train_ids = {json.loads(line)["id"] for line in (world.dataset / "train.jsonl").read_text().splitlines()}
    assert chosen.sha256 == again.sha256 and not {i.item_id for i in chosen.items} & train_ids
    assert chosen.empty() == [] and chosen.left_out["seed: in the train split"] > 0
    for item in chosen.items:
        if item.choices:
            assert item.choices[item.correct or 0] == item.reference and len(set(item.choices)) == len(item.choices)
    leaky = tmp_path / "leaky"
    shutil.copytree(world.dataset, leaky)
    test_line = (leaky / "test.jsonl").read_text().splitlines()[0]
    with (leaky / "train.jsonl").open("a") as f:
        f.write(test_line + "\n")
    with open_read_only(world.catalog) as con, pytest.raises(EvalLeak) as leak:
        build_eval_set(con, leaky, 0)
    assert json.loads(test_line)["id"] in str(leak.value) and "train split" in str(leak.value)


def test_bad_model_folders_get_one_message_each(world: World, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    shutil.copytree(world.model / "onnx", bare / "onnx")
    args = ["--dataset", str(world.dataset), "--catalog", str(world.catalog)]
    refused = CliRunner().invoke(app, ["eval", "--model", str(bare), *args])
    assert refused.exit_code == 2 and "no base model to compare" in refused.output and "--base-onnx" in \
        refused.output and "Traceback" not in refused.output
    missing = CliRunner().invoke(app, ["eval", "--model", str(bare), "--base-onnx", str(tmp_path), *args])
    assert missing.exit_code == 2 and "holds no model.onnx" in missing.output
    itself = tmp_path / "itself"
    shutil.copytree(world.model / "onnx", itself / "onnx")
    shutil.copytree(world.model / "base", itself / "base")
    (itself / "parity.json").write_text(json.dumps({"adapter": None}))
    with pytest.raises(NoBase, match="exported without an adapter"):
        evaluate(EvalOptions(itself, world.dataset, world.catalog, SETTINGS))
    nothing = CliRunner().invoke(app, ["eval", "--model", str(tmp_path / "none"), *args])
    assert nothing.exit_code == 2 and "no fine-tuned ONNX graph" in nothing.output


def test_an_exported_base_given_with_base_onnx_is_compared(world: World, tmp_path: Path) -> None:
    mine = copy_of(world, tmp_path)
    bare = tmp_path / "bare"
    shutil.copytree(mine.model / "onnx", bare / "onnx")
    outcome = evaluate(EvalOptions(bare, mine.shuffled, mine.catalog, SETTINGS, base_onnx=mine.model / "onnx-base"))
    assert outcome.base_method == "given" and (bare / "evaluation.json").is_file()
    assert {(r["contribution_id"], r["metric"]) for r in outcome.regressions} == {
        (r["contribution_id"], r["metric"]) for r in world.bad.regressions}


def test_an_empty_evaluation_set_says_so_and_is_never_a_zero(world: World, tmp_path: Path) -> None:
    from builder.datasets import DatasetOptions, build_dataset
    from builder.site.build import SiteOptions, build_site

    mine = copy_of(world, tmp_path)
    split = build_dataset(mine.catalog, tmp_path / "datasets", DatasetOptions(name="hashonly", min_test=0)).folder
    outcome = evaluate(EvalOptions(mine.model, split, mine.catalog, SETTINGS))
    empty = outcome.results["empty"]
    assert empty and all(e["contribution_id"] not in empty for e in outcome.results["effects"])
    assert rows(mine.build, f"SELECT count(*) FROM eval_effect WHERE run_id = '{outcome.run_id}' "
                            f"AND contribution_id IN (SELECT unnest({empty!r}::VARCHAR[]))")[0][0] == 0
    build_site(SiteOptions(mine.catalog, tmp_path / "site"))
    page = (tmp_path / "site" / "contributions" / empty[0] / "index.html").read_text()
    section = page[page.index('id="impact"'):page.index('id="releases"')]
    latest = section[section.index("Release 2.0.0"):]  # its model's newest evaluation is the one just made
    assert "nothing was measured" in latest and "not a zero" in latest and "0.0000" not in latest


def test_a_takedown_removes_the_scores_from_the_public_copy(world: World, tmp_path: Path) -> None:
    from builder.release.takedown import takedown
    from registry.catalog.publish import publish

    mine = copy_of(world, tmp_path)
    publish(mine.catalog, tmp_path / "before")
    takedown(mine.catalog, X, "the contributor withdrew it", "maintainer", dry_run=False)
    publish(mine.catalog, tmp_path / "after")

    def counts(folder: Path) -> dict[str, int]:
        con = duckdb.connect(str(folder / "audit.duckdb"), read_only=True)
        try:
            return {t: con.execute(f"SELECT count(*) FROM {t} WHERE contribution_id = '{X}'").fetchall()[0][0]
                    for t in ("eval_item", "eval_score", "eval_effect")} | {
                "others": con.execute(f"SELECT count(*) FROM eval_score WHERE contribution_id <> '{X}'"
                                      ).fetchall()[0][0],
                "meta": con.execute("SELECT count(*) FROM catalog_meta WHERE key LIKE 'public_copy.withheld.%'"
                                    ).fetchall()[0][0]}
        finally:
            con.close()

    before, after = counts(tmp_path / "before"), counts(tmp_path / "after")
    assert before["eval_item"] > 0 and before["eval_score"] > 0 and before["eval_effect"] > 0
    assert after == {"eval_item": 0, "eval_score": 0, "eval_effect": 0, "others": before["others"], "meta": 3}
    assert rows(mine.build, f"SELECT count(*) FROM eval_score WHERE contribution_id = '{X}'")[0][0] > 0  # kept
    from builder.site import impact, readmodel

    shown = impact.contribution_context(readmodel.load(mine.catalog).impact, X, ["1.0.0", "1.1.0", "2.0.0"])
    assert shown["withheld"] and not shown["entries"]


# --- the judge, over real HTTP ---------------------------------------------------------------------------

class FakeJudge:
    """An OpenAI-compatible /v1/chat/completions that grades by rubric, or answers 503 after `up_to` requests."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: Counter[str] = Counter()
        self.up_to: int | None = None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _JudgeHandler)
        self.server.daemon_threads = True
        self.server.fake = self  # type: ignore[attr-defined]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def answered(self) -> int:
        return sum(self.received.values())


class _JudgeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        fake: FakeJudge = self.server.fake  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        body = json.loads(raw)
        prompt = body["messages"][-1]["content"]
        with fake.lock:
            down = fake.up_to is not None and fake.answered() >= fake.up_to
            if not down:
                fake.received[hashlib.sha256(raw).hexdigest()] += 1  # the journal's key: the body's sha256
        if down:
            self._send(503, b'{"error": {"message": "overloaded"}}')
            return
        verdict = "Score: [[4]]" if "[Reference answer]" in prompt and "domain knowledge" in prompt else \
            "Rating: [[7]]"
        content = f"The answer is short. {verdict}"
        self._send(200, json.dumps({"id": "x", "object": "chat.completion", "model": body["model"], "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}).encode())

    def _send(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def judge_server() -> Iterator[FakeJudge]:
    fake = FakeJudge()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def test_the_judge_grades_every_answer_and_a_judge_that_goes_down_resumes(world: World, tmp_path: Path,
                                                                          judge_server: FakeJudge) -> None:
    mine = copy_of(world, tmp_path)
    config = JudgeConfig(judge_server.url, "fake-judge", max_attempts=2)
    options = EvalOptions(mine.model, mine.shuffled, mine.catalog, SETTINGS, judge=config)
    judge_server.up_to = 10
    with pytest.raises(JudgeUnavailable, match="answered 10 of") as down:
        evaluate(options)
    assert "not sent" in str(down.value) and "run `taxreg eval` again" in str(down.value.hint)
    assert rows(mine.build, "SELECT count(*) FROM teacher_request WHERE model_ref = 'fake-judge' AND status = 'ok'"
                )[0][0] == 10
    assert rows(mine.build, "SELECT status FROM run WHERE stage = 'evaluate' ORDER BY started_at DESC LIMIT 1"
                )[0][0] == "failed"
    judge_server.up_to = None
    outcome = evaluate(options)
    journaled = rows(mine.build, "SELECT count(*) FROM teacher_request WHERE model_ref = 'fake-judge' AND "
                                 "status = 'ok'")[0][0]
    assert judge_server.answered() == journaled > 10  # every request once: the 10 answered before were not resent
    assert all(n == 1 for n in judge_server.received.values())
    [(model, template)] = rows(mine.build, "SELECT judge_model_ref, judge_template_sha256 FROM eval_run "
                                           f"WHERE run_id = '{outcome.run_id}'")
    assert model == "fake-judge" and template
    scores = dict(rows(mine.build, "SELECT coalesce(c.kind = 'knowledge', false), avg(s.tuned_value) "
                                   "FROM eval_score s JOIN eval_item i USING (run_id, item_id) LEFT JOIN contribution "
                                   f"c ON c.contribution_id = i.contribution_id WHERE s.run_id = '{outcome.run_id}' "
                                   "AND s.metric = 'judge' GROUP BY 1"))
    assert scores == {True: pytest.approx(0.75), False: pytest.approx(6 / 9)}  # 4 of 1-5, 7 of 1-10, scaled


def test_the_gate_says_when_the_evaluation_is_missing_or_stale() -> None:
    base = dict(dataset_ids=(), release_license="MIT", policy=LicensePolicy(), parity={"passed": True})
    missing = _eval_rows(PolicyInput(**base))  # type: ignore[arg-type]
    assert [(r.severity, r.passed, r.blocks) for r in missing] == [("warning", False, False)]
    evaluation = {"models": {"tuned": "a" * 64}, "thresholds": Thresholds().as_dict(), "regressions": [],
                  "effects": []}
    stale = _eval_rows(PolicyInput(**base, evaluation=evaluation, model_artifact="b" * 64))  # type: ignore[arg-type]
    assert stale[0].blocks and "another model" in stale[0].details["reason"]
    other = _eval_rows(PolicyInput(**base, evaluation=evaluation, model_artifact="a" * 64,  # type: ignore[arg-type]
                                   eval_thresholds={**Thresholds().as_dict(), "max_f1_drop": 0.5}))
    assert other[0].blocks and "other [eval] thresholds" in other[0].details["reason"]
    data_only = _eval_rows(PolicyInput(**{**base, "parity": None}))  # type: ignore[arg-type]
    assert [(r.severity, r.passed) for r in data_only] == [("info", True)]


def test_the_eval_section_of_taxreg_toml_is_checked(tmp_path: Path) -> None:
    from builder import settings

    path = tmp_path / "taxreg.toml"
    path.write_text("[eval]\nmax_nll_increase = 0.2\nbootstrap = 500\n")
    loaded = settings.load(path).evaluation
    assert loaded.thresholds.max_nll_increase == 0.2 and loaded.bootstrap == 500
    for bad, said in (("max_f1_drop = 2", "a share between 0 and 1"), ("boostrap = 3", "unknown setting"),
                      ("bootstrap = 10", "at least 100"), ('judge_url = "http://x"', "go together"),
                      ('judge_api_key_env = "sk-pasted key"', "judge_api_key_env is not the name of an environment")):
        path.write_text(f"[eval]\n{bad}\n")
        with pytest.raises(settings.SettingsError, match=said):
            settings.load(path)


# --- the site, in chromium --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def site(world: World) -> Path:
    from builder.site.build import SiteOptions, build_site

    out = world.root / "site"
    build_site(SiteOptions(world.catalog, out))
    return out


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[str]:
    import functools
    import http.server

    from tests.test_site_browser import _Quiet

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_the_site_shows_what_each_contribution_did(world: World, visit: Visit) -> None:  # noqa: F811
    page = visit.page
    page.goto(f"{visit.base}/contributions/{X}/")
    section = page.locator("h2#impact")
    assert section.is_visible() and section.inner_text() == "What this contribution did"
    headings = page.locator("h3[id^=impact-]").all_inner_texts()
    assert headings == ["Release 1.0.0", "Release 1.1.0", "Release 2.0.0"]  # every release with it, oldest first
    tables = page.locator("table.taxreg-impact")
    assert tables.count() == 3
    nll = tables.nth(2).locator("tr", has_text="per-token NLL").inner_text()
    assert "worse" in nll and "[" in nll and "perplexity" in nll  # before/after with the interval, and the verdict
    chart = page.locator("svg.taxreg-chart[aria-label^='Change of per-token NLL']")
    assert chart.count() == 1 and chart.locator("circle").count() == 3 and chart.locator("line").count() >= 4
    answers = page.locator("table.taxreg-answers").nth(0).locator("tr")
    assert answers.count() == 4  # a header and three questions, each answered by both models
    assert page.locator("table.taxreg-answers").nth(0).locator("th").all_inner_texts() == [
        "Question", "Reference", "Base model", "Fine-tuned model"]
    visit.screenshot("evaluation-contribution")
    page.goto(f"{visit.base}/releases/2.0.0/")
    warning = page.locator(".admonition.warning", has_text="Regressions")
    assert warning.is_visible() and X in warning.inner_text() and "the guard set" in warning.inner_text()
    ranked = page.locator("table.taxreg-ranked tr")
    assert ranked.count() == 1 + 17  # a header, and every contribution ranked
    last = ranked.nth(ranked.count() - 1).inner_text()
    assert X in last  # it lost the most: ranked last by its NLL change
    assert page.locator("h3#guard").is_visible()
    page.goto(f"{visit.base}/releases/1.1.0/")
    assert page.locator("text=No contribution, and not the guard set, got worse").is_visible()
    page.goto(f"{visit.base}/")
    summary = page.locator("svg.taxreg-chart[aria-label*='model did to their per-token NLL']")
    assert summary.count() == 1 and summary.locator("rect").count() >= 1
    visit.assert_clean()
