"""Progress of long stages (issue 16.5): what a stage reports reaches the build's listener while it runs, and the
stage board puts it in a log (off a terminal) at its start and then every `log_every` seconds, with an ETA."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from builder import console, settings
from builder.cli import app
from builder.pipeline import StageReport, run_build
from builder.progress import Step, duration
from builder.stage import BuildContext, BuildOptions, BuildStage, StageResult
from builder.stages import STAGES
from tests.conftest import EXAMPLE_TAXONOMY, TaxonomyMaker
from tests.fake_teacher import MODEL, FakeTeacher
from tests.test_teacher import skills


class Counting(BuildStage):
    """A long stage as a contributor would write one: it reports each of its three steps."""

    name = "counting"
    needs = ("dataset",)

    def run(self, ctx: BuildContext) -> StageResult:
        for i in range(1, 4):
            ctx.progress(Step(i, 3, f"loss {4 - i:.3f}", unit="step"))
        return StageResult("3 steps")


def test_a_stage_s_progress_reaches_the_listener_while_it_runs(tmp_path: Path) -> None:
    taxonomy = Path(shutil.copytree(EXAMPLE_TAXONOMY, tmp_path / "taxonomy"))
    seen: list[tuple[str, str]] = []

    def listener(reports: list[StageReport]) -> None:
        for r in reports:
            if r.name == "counting" and r.status == "running" and r.progress is not None:
                seen.append((r.status, r.progress.describe(0.0)))

    run_build(BuildOptions(taxonomy, tmp_path / "build", site=False, model=False), settings.load().validation(),
              listener, (*STAGES, Counting()))
    assert seen == [("running", "step 1/3, loss 3.000"), ("running", "step 2/3, loss 2.000"),
                    ("running", "step 3/3, loss 1.000")]


def report(name: str, status: str, started: float, step: Step | None = None) -> Any:
    return StageReport(name, status, started=started, progress=step)


def test_the_board_logs_a_running_stage_with_its_step_loss_and_eta(capsys: pytest.CaptureFixture[str],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(console.time, "monotonic", lambda: clock[0])
    board = console.StageBoard(log_every=30)
    assert board.live is None  # pytest's stderr is not a terminal
    board.update([report("train", "running", 1000.0)])  # it started: a line at once
    clock[0] = 1010.0
    board.update([report("train", "running", 1000.0, Step(5, 60, "loss 2.310", unit="step"))])  # too soon: none
    clock[0] = 1040.0
    board.update([report("train", "running", 1000.0, Step(20, 60, "loss 1.870", unit="step"))])
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and "train" in lines[0] and "running" in lines[0] and "0.0s" in lines[0]
    assert "40.0s  step 20/60, loss 1.870, ETA 1m20s" in lines[1]


def test_a_command_s_step_display_logs_counts_now_and_then(capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    monkeypatch.setattr(console.time, "monotonic", lambda: clock[0])
    with console.StepDisplay("teacher", log_every=10) as display:
        for done in range(1, 11):
            clock[0] = done * 3.0
            display.update(Step(done, 10, unit="request"))
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "teacher: request 1/10, ETA 27s (3s elapsed)"
    assert lines[-1] == "teacher: request 10/10 (30s elapsed)" and len(lines) == 4  # at 3 s, 15 s, 27 s, the end


def test_durations_read_as_a_person_says_them() -> None:
    assert [duration(s) for s in (4.2, 190, 3900)] == ["4s", "3m10s", "1h05m"]


def test_generate_with_a_teacher_says_how_many_requests_are_done(
        fake: FakeTeacher, make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root, catalog = skills(make_taxonomy, tmp_path, "one", "two", "three", "four")
    result = CliRunner().invoke(app, ["generate", str(root), "--catalog", str(catalog), "--generator", "teacher",
                                      "--teacher-url", fake.url, "--teacher-model", MODEL])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("teacher: request ")]
    assert lines[0].startswith("teacher: request 1/4") and lines[-1].startswith("teacher: request 4/4 (")
