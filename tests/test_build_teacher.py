"""`taxreg build` with `[generate] generator = "teacher"` in taxreg.toml, against the fake teacher and judge on
127.0.0.1 (tests/fake_teacher.py): the build's samples carry teacher and judge lineage, judge drops keep their
reasons, the stage key follows the teacher and judge, a build killed mid-generation resumes without repeating a
request, and the API key (named by api_key_env) is sent but never written anywhere."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder import settings
from builder.cli import app
from builder.generators.configure import Overrides, resolve
from builder.pipeline import StageReport, run_build
from builder.stage import BuildOptions
from registry.catalog.query import run_query
from tests.conftest import EXAMPLE_TAXONOMY
from tests.fake_teacher import LOW_SCORE, MODEL, FakeTeacher

SECRET = "sk-sentinel-3f9c2a71e8"  # the API key: sent to the endpoint, found in no file the build writes
KEY_VARIABLE = "TAXREG_TEST_TEACHER_KEY"
JUDGE = "fake-judge-2"


def write_settings(folder: Path, fake: FakeTeacher, **judge: object) -> Path:
    lines = ["[generate]", 'generator = "teacher"', f'url = "{fake.url}"', f'model = "{MODEL}"',
             f'api_key_env = "{KEY_VARIABLE}"', "concurrency = 4", 'license = "Apache-2.0"',
             'terms = "outputs may be used to train models"', "", "[generate.judge]", f'model = "{JUDGE}"',
             *(f"{k} = {v!r}".replace("'", '"') for k, v in judge.items())]
    path = folder / "taxreg.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def build(folder: Path, taxonomy: Path, release: str | None = None, **overrides: object) -> dict[str, StageReport]:
    """A data-only build (index, generate, dataset) with taxreg.toml of `folder`, as `taxreg build` resolves it."""
    loaded = settings.load(folder / "taxreg.toml")
    generation = resolve(loaded.generate, Overrides(**overrides),  # type: ignore[arg-type]
                         environ={KEY_VARIABLE: SECRET})
    options = BuildOptions(taxonomy, folder / "build", release, model=False, site=False, generation=generation,
                           license="CC-BY-4.0")
    return {r.name: r for r in run_build(options, loaded.validation(), lambda reports: None)}


def rows(folder: Path, sql: str) -> list[tuple[object, ...]]:
    return run_query(folder / "build" / "catalog.duckdb", sql).rows


@pytest.fixture
def taxonomy(tmp_path: Path) -> Path:
    root = tmp_path / "taxonomy"
    shutil.copytree(EXAMPLE_TAXONOMY, root)
    return root


def test_a_teacher_build_carries_teacher_and_judge_lineage_and_skips_when_nothing_changed(
        fake: FakeTeacher, taxonomy: Path, tmp_path: Path) -> None:
    write_settings(tmp_path, fake, threshold=4)
    first = build(tmp_path, taxonomy)
    assert [r.status for r in first.values()] == ["ran", "ran", "ran"]
    generated = first["generate"].stats
    judged = fake.total_answered("judge")
    assert generated["dropped"]["judge_below_threshold"] == judged // 3 > 0
    assert "judge_below_threshold" in first["generate"].detail
    assert rows(tmp_path, "SELECT DISTINCT generator, teacher_model_ref, judge_model_ref, judge_rubric_sha256 "
                          "IS NOT NULL, judge_score FROM v_sample_provenance") == [("teacher", MODEL, JUDGE, True, 5)]
    assert rows(tmp_path, "SELECT count(*) FROM v_sample_provenance")[0][0] == generated["kept"]
    assert rows(tmp_path, "SELECT drop_reason, count(*) FROM run_sample WHERE NOT kept GROUP BY 1") == [
        ("judge_below_threshold", judged // 3)]
    assert rows(tmp_path, "SELECT DISTINCT score FROM sample_judgement WHERE verdict = 'below_threshold'") == [
        (LOW_SCORE,)]
    assert first["dataset"].stats["train_rows"] + first["dataset"].stats["test_rows"] == generated["kept"]
    assert set(fake.api_keys) == {SECRET}  # sent to teacher and judge...
    assert_secret_written_nowhere(tmp_path / "build")  # ...and written nowhere

    arrivals = len(fake.arrivals)
    again = build(tmp_path, taxonomy)
    assert [r.status for r in again.values()] == ["skipped", "skipped", "skipped"] and len(fake.arrivals) == arrivals

    write_settings(tmp_path, fake, threshold=LOW_SCORE)  # the judge changed: generation reruns, from the journal
    lenient = build(tmp_path, taxonomy)
    assert lenient["generate"].status == "ran" and len(fake.arrivals) == arrivals
    assert lenient["generate"].stats["dropped"] == {} and lenient["dataset"].status == "ran"

    teacher_keys = fake.keys_of("teacher")
    other = build(tmp_path, taxonomy, teacher={"model": "fake-teacher-2"})  # another teacher: asked anew
    assert other["generate"].status == "ran" and len(fake.keys_of("teacher")) == 2 * len(teacher_keys)


def assert_secret_written_nowhere(folder: Path, *outputs: str) -> None:
    """Not in the bytes of any file, nor in any value of the catalog (DuckDB compresses strings on disk)."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert any(p.name == "catalog.duckdb" for p in files)
    leaks = [str(p) for p in files if SECRET.encode() in p.read_bytes()]
    leaks += [f"output {i}" for i, text in enumerate(outputs) if SECRET in text]
    catalog = folder / "catalog.duckdb"
    columns = run_query(catalog, "SELECT table_name, column_name FROM duckdb_columns() WHERE schema_name = 'main' "
                                 "AND NOT internal AND table_name IN (SELECT table_name FROM duckdb_tables())").rows
    for table, column in columns:
        hits = run_query(catalog, f'SELECT count(*) FROM "{table}" WHERE contains(CAST("{column}" AS VARCHAR), '
                                  f"'{SECRET}')").rows[0][0]
        leaks += [f"{table}.{column}"] * bool(hits)
    assert leaks == []


def test_a_build_killed_mid_generation_resumes_without_repeating_a_request(
        fake: FakeTeacher, taxonomy: Path, tmp_path: Path) -> None:
    write_settings(tmp_path, fake)
    fake.serve_limit, fake.limit_role, fake.hold = 20, "judge", True  # every teacher request, 20 judge ones, then slow
    child = subprocess.Popen([str(Path(sys.executable).parent / "taxreg"), "build", str(taxonomy), "--build-dir",
                              str(tmp_path / "build")], cwd=tmp_path, env=os.environ | {KEY_VARIABLE: SECRET},
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while fake.total_answered("judge") < 20 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # answers on the wire reach the child and its journal
    child.send_signal(signal.SIGKILL)
    output = child.communicate(timeout=10)[0].decode(errors="replace")
    assert child.returncode == -signal.SIGKILL, output
    teacher_answered = fake.total_answered("teacher")
    assert fake.total_answered("judge") == 20 and teacher_answered == len(fake.keys_of("teacher")) > 0

    fake.heal()
    resumed = build(tmp_path, taxonomy, release="0.1.0")  # a data-only release: manifest, BOMs, audit copy
    assert resumed["generate"].status == "ran" and resumed["release"].status == "ran"
    assert (tmp_path / "build" / "releases" / "0.1.0" / "manifest.json").is_file()
    assert max(fake.answered.values()) == 1  # no request answered twice, teacher's or judge's
    assert fake.total_answered("teacher") == teacher_answered
    assert fake.total_answered("judge") == len(fake.keys_of("judge")) == resumed["generate"].stats["produced"]
    assert rows(tmp_path, "SELECT status FROM build ORDER BY started_at") == [("killed",), ("succeeded",)]
    assert rows(tmp_path, "SELECT status FROM run WHERE stage = 'generate'") == [("succeeded",)]
    assert rows(tmp_path, "SELECT count(*) FROM v_sample_provenance WHERE judge_model_ref IS NULL") == [(0,)]
    assert_secret_written_nowhere(tmp_path / "build", output)


def test_configuration_problems_are_one_message_before_any_work(fake: FakeTeacher, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    write_settings(tmp_path, fake)
    command = ["build", str(EXAMPLE_TAXONOMY), "--build-dir", str(tmp_path / "build")]
    unset = CliRunner().invoke(app, command)
    said = " ".join(unset.output.split())
    assert unset.exit_code == 2 and f"the environment variable {KEY_VARIABLE} is not set" in said
    assert f"export {KEY_VARIABLE}=" in said and not (tmp_path / "build").exists()

    (tmp_path / "taxreg.toml").write_text('[generate]\ngenerator = "teacher"\n', encoding="utf-8")
    missing = CliRunner().invoke(app, command)
    said = " ".join(missing.output.split())
    assert missing.exit_code == 2 and "--teacher-url is required; --teacher-model is required" in said
    assert "[generate] url and model in taxreg.toml" in said and not (tmp_path / "build").exists()

    (tmp_path / "taxreg.toml").write_text(f'[generate]\napi_key_env = "{SECRET}"\n', encoding="utf-8")
    pasted = CliRunner().invoke(app, command)  # the key itself, pasted where its variable's name goes
    assert pasted.exit_code == 2 and "is not the name of an environment variable" in pasted.output
    assert SECRET not in pasted.output

    (tmp_path / "taxreg.toml").write_text(f'[eval]\njudge_url = "{fake.url}"\njudge_model = "{MODEL}"\n'
                                          f'judge_api_key_env = "{KEY_VARIABLE}"\n', encoding="utf-8")
    judge_unset = CliRunner().invoke(app, command)  # the evaluation's judge, checked before any stage too
    said = " ".join(judge_unset.output.split())
    assert judge_unset.exit_code == 2 and f"[eval] judge_api_key_env = '{KEY_VARIABLE}'" in said
    assert f"the environment variable {KEY_VARIABLE} is not set" in said
    assert [p.name for p in (tmp_path / "build").iterdir()] == [".taxreg"]  # the build lock's folder, nothing else

    monkeypatch.setenv(KEY_VARIABLE, SECRET)
    write_settings(tmp_path, fake)
    fake.refuse = "401"
    refused = CliRunner().invoke(app, command)  # the endpoint says no: the message names it, not the key
    said = " ".join(refused.output.split())
    assert refused.exit_code == 2 and "failed" in said and "HTTP 401" in said and SECRET not in refused.output
    assert_secret_written_nowhere(tmp_path / "build")


def test_the_settings_reach_the_teacher_and_the_judge(fake: FakeTeacher, tmp_path: Path) -> None:
    path = write_settings(tmp_path, fake, threshold=3, rubric="v1", url="http://127.0.0.1:9/v1", concurrency=2)
    chosen = resolve(settings.load(path).generate, environ={KEY_VARIABLE: SECRET})
    assert chosen.teacher is not None and chosen.judge is not None
    assert (chosen.teacher.url, chosen.teacher.model, chosen.teacher.api_key, chosen.teacher.concurrency,
            chosen.teacher.license) == (fake.url, MODEL, SECRET, 4, "Apache-2.0")
    assert (chosen.judge.url, chosen.judge.model, chosen.judge.api_key, chosen.judge.threshold,
            chosen.judge.concurrency) == ("http://127.0.0.1:9/v1", JUDGE, SECRET, 3, 2)
    overridden = resolve(settings.load(path).generate, Overrides("teacher", {"model": "m2"}, {"threshold": 5}),
                         environ={KEY_VARIABLE: SECRET})
    assert overridden.teacher is not None and overridden.judge is not None
    assert (overridden.teacher.model, overridden.judge.model, overridden.judge.threshold) == ("m2", JUDGE, 5)
    assert resolve(settings.load(path).generate, Overrides(no_judge=True), environ={KEY_VARIABLE: SECRET}).judge \
        is None
    assert resolve(settings.load(path).generate, Overrides("seed")).teacher is None  # no key needed for seed
    assert SECRET not in repr(chosen) and SECRET not in str(chosen.key())
    (tmp_path / "taxreg.toml").write_text("[generate.judge]\nthreshold = 9\n", encoding="utf-8")
    with pytest.raises(settings.SettingsError, match=r"\[generate.judge\] threshold = 9 is not a whole number"):
        settings.load(tmp_path / "taxreg.toml")


def test_the_default_build_still_runs_the_seed_generator_offline(tmp_path: Path) -> None:
    chosen = resolve(settings.load(tmp_path / "absent.toml").generate, environ={})
    assert (chosen.generator, chosen.teacher, chosen.judge) == ("seed", None, None)
    reports = run_build(BuildOptions(EXAMPLE_TAXONOMY, tmp_path / "build", model=False, site=False,
                                     generation=chosen), settings.load(tmp_path / "absent.toml").validation(),
                        lambda reports: None)
    assert [r.status for r in reports] == ["ran", "ran", "ran"]
    assert rows(tmp_path, "SELECT DISTINCT generator, teacher_model_ref, judge_model_ref FROM run") == [
        ("seed", None, None)]
