"""The one place that talks to the terminal: findings, tables, errors and exit codes."""

from __future__ import annotations

import csv
import json
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any, Self

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from builder.progress import Step, duration
from registry.disks import DiskFull, full_disk
from registry.errors import RegistryError, ValidationFailed
from registry.findings import RULES, Finding, Severity

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2

# emoji=False: rich would turn `qna.yaml:100:6` into `qna.yaml💯6`
out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


class FindingFormat(StrEnum):
    TEXT = "text"
    GITHUB = "github"
    JSON = "json"


class TableFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


@contextmanager
def user_errors(debug: bool, fmt: FindingFormat = FindingFormat.TEXT, root: Path = Path(".")) -> Iterator[None]:
    """Domain errors become a message and exit code 2 (1 for refused findings), a full disk "no space left on
    <folder>" whatever raised it; tracebacks only with --debug."""
    try:
        yield
    except Exception as exc:
        full = full_disk(exc)
        if full is not None and "no space left on" not in str(exc):
            if debug:
                traceback.print_exc()
            _no_space(full)
            raise typer.Exit(EXIT_USAGE) from None
        if not isinstance(exc, RegistryError):  # not anticipated: one line; the traceback is for --debug
            if debug:
                raise
            err.print(f"[bold red]error:[/] {escape(type(exc).__name__)}: {escape(str(exc))}")
            err.print("[bold]hint:[/] run again with `taxreg --debug ...` for the traceback, and report it if it "
                      "looks like a bug")
            raise typer.Exit(EXIT_USAGE) from None
        if debug:
            traceback.print_exc()
        if isinstance(exc, ValidationFailed) and exc.findings:
            print_findings(exc.findings, root, fmt, to_stderr=fmt is FindingFormat.TEXT,
                           summary={"refused": True, "message": str(exc)})
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        if exc.hint:
            err.print(f"[bold]hint:[/] {escape(exc.hint)}")
        code = EXIT_FINDINGS if isinstance(exc, ValidationFailed) else EXIT_USAGE
        raise typer.Exit(code) from None


def _no_space(full: DiskFull) -> None:
    """A full disk, said the same way by every command, whatever library was writing."""
    where = f" (`df -h {full.folder}`)" if full.folder else ""
    err.print(f"[bold red]error:[/] {escape(full.message())}")
    err.print(f"[bold]hint:[/] free some space there{escape(where)} or write to another disk, then run the command "
              "again: outputs are built beside their targets, so the previous ones are intact")


def shown_path(root: Path, path: str) -> str:
    """Finding paths are relative to the taxonomy root; show them relative to where the user stands."""
    return (root / path).as_posix() if str(root) not in ("", ".") else path


def print_findings(findings: list[Finding], root: Path, fmt: FindingFormat, to_stderr: bool = False,
                   summary: dict[str, Any] | None = None) -> None:
    console = err if to_stderr else out
    if fmt is FindingFormat.JSON:
        payload = {"findings": [_finding_json(f, root) for f in findings], "summary": summary or {}}
        sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        return
    for f in findings:
        where = shown_path(root, f.path)
        if fmt is FindingFormat.GITHUB:
            level = "error" if f.severity is Severity.ERROR else "warning"
            sys.stdout.write(f"::{level} file={_github_property(where)},line={f.line},col={f.col},title={f.code}::"
                             f"{_github_escape(_text(f))}\n")
        else:
            color = "red" if f.severity is Severity.ERROR else "yellow"
            yaml_path = f" [{escape(f.yaml_path)}]" if f.yaml_path else ""
            console.print(f"{escape(where)}:{f.line}:{f.col}{yaml_path} [bold {color}]{f.code}[/] "
                          f"{escape(f.message)}")


def print_summary(text: str, failed: bool) -> None:
    err.print(f"[bold {'red' if failed else 'green'}]{escape(text)}[/]")


def print_warning(text: str) -> None:
    err.print(f"[bold yellow]warning:[/] {escape(text)}")


def _text(f: Finding) -> str:
    yaml_path = f"[{f.yaml_path}] " if f.yaml_path else ""
    return f"{yaml_path}{f.code} {f.message}"


def _finding_json(f: Finding, root: Path) -> dict[str, Any]:
    return {"code": f.code, "rule": RULES[f.code].name, "severity": f.severity.value,
            "path": shown_path(root, f.path), "line": f.line, "col": f.col, "yaml_path": f.yaml_path,
            "message": f.message}


def _github_property(text: str) -> str:
    return _github_escape(text).replace(":", "%3A").replace(",", "%2C")


def _github_escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def print_rows(columns: list[str], rows: list[tuple[Any, ...]], fmt: TableFormat) -> None:
    if fmt is TableFormat.JSON:
        records = [dict(zip(columns, row, strict=True)) for row in rows]
        sys.stdout.write(json.dumps(records, indent=2, default=str, ensure_ascii=False) + "\n")
    elif fmt is TableFormat.CSV:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
    elif not out.is_terminal:  # logs and pipes: aligned plain lines, never cut to a guessed width
        cells = [list(columns), *[["NULL" if v is None else str(v) for v in row] for row in rows]]
        widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
        for line in cells:
            sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() + "\n")
        err.print(f"{len(rows)} row(s)")
    else:
        table = Table(*columns, show_lines=False)
        for row in rows:
            table.add_row(*(escape("NULL" if v is None else str(v)) for v in row))
        out.print(table)
        err.print(f"{len(rows)} row(s)")


def print_line(text: str) -> None:
    out.print(escape(text))


LOG_EVERY = 30.0  # seconds between the lines of a running stage in a log (off a terminal)
STAGE_MARKS = {"pending": "[dim]·[/]", "running": "[yellow]…[/]", "ran": "[green]✓[/]", "skipped": "[cyan]=[/]",
               "failed": "[bold red]✗[/]"}


class _Display:
    """A display that is live on a terminal (`live`, entered and left with it) and None off one."""

    live: Any = None

    def __enter__(self) -> Self:
        if self.live:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.live.__exit__(None, None, None)


class StageBoard(_Display):
    """The build's progress: one row per stage with its state, time and (while it runs) what it reports: live on a
    terminal, log lines otherwise (a running stage's at its start and then every `log_every` seconds it reports)."""

    def __init__(self, log_every: float = LOG_EVERY) -> None:
        from rich.live import Live

        self.live = Live(console=err, refresh_per_second=4, transient=False, get_renderable=self._render) \
            if err.is_terminal else None
        self.reports: list[Any] = []
        self.logged: set[tuple[str, str]] = set()
        self.log_every = log_every
        self.last_line: dict[str, float] = {}

    def update(self, reports: list[Any]) -> None:
        self.reports = reports
        if self.live:
            self.live.refresh()
            return
        for r in reports:  # one line per state change, for logs and CI; running stages now and then
            if r.status == "running":
                self._running_line(r)
            elif r.status != "pending" and (r.name, r.status) not in self.logged:
                self.logged.add((r.name, r.status))
                err.print(f"{STAGE_MARKS[r.status]} {escape(r.name):<15} {r.status:<8} {r.seconds:7.1f}s  "
                          f"{escape(r.detail)}")

    def _running_line(self, r: Any) -> None:
        now = time.monotonic()
        if now - self.last_line.get(r.name, -self.log_every) < self.log_every:
            return
        self.last_line[r.name] = now
        err.print(f"{STAGE_MARKS['running']} {escape(r.name):<15} running  {now - r.started:7.1f}s  "
                  f"{escape(_progress(r, now))}".rstrip())

    def _render(self) -> Table:
        table = Table("", "stage", "state", "time", "detail", box=None)
        now = time.monotonic()
        for r in self.reports:
            if r.status == "running":
                time_, detail = duration(now - r.started), _progress(r, now)
            else:
                time_, detail = ("" if r.status == "pending" else f"{r.seconds:.1f}s"), r.detail
            table.add_row(STAGE_MARKS[r.status], escape(r.name), r.status, time_, escape(detail))
        return table


def _progress(report: Any, now: float) -> str:
    """What a running stage last reported, with its ETA: 'step 12/60, loss 2.31, ETA 3m10s'."""
    step = report.progress
    return step.describe(now - report.started) if step is not None else ""


class StepDisplay(_Display):
    """A long command's progress (`builder.progress.Step`s): one live line on a terminal; off one, a line at most every
    `log_every` seconds and one when the count is complete."""

    def __init__(self, label: str, log_every: float = LOG_EVERY) -> None:
        from rich.live import Live

        self.label, self.log_every = label, log_every
        self.started = time.monotonic()
        self.last_line = -log_every
        self.step: Step | None = None
        self.live = Live(console=err, refresh_per_second=4, transient=True, get_renderable=self._line) \
            if err.is_terminal else None

    def update(self, step: Step) -> None:
        self.step = step
        if self.live:
            self.live.refresh()
            return
        now, complete = time.monotonic(), step.total is not None and step.done == step.total
        if complete or now - self.last_line >= self.log_every:
            self.last_line = now
            err.print(self._line(), markup=False, highlight=False)

    def _line(self) -> str:
        elapsed = time.monotonic() - self.started
        done = self.step.describe(elapsed) if self.step else "starting"
        return f"{self.label}: {done} ({duration(elapsed)} elapsed)"


class TrainingDisplay(_Display):
    """A live progress bar on a terminal; one line per logged loss, evaluation and checkpoint otherwise."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                            TimeRemainingColumn(), console=err, transient=True) \
            if err.is_terminal else None
        self.live = self.bar
        self.task: Any = None
        self.loss = self.eval_loss = ""

    def update(self, event: Any) -> None:
        if event.kind == "log":
            self._log(event)
        if self.bar is None:
            return
        if self.task is None:
            self.task = self.bar.add_task("", total=event.total or None, completed=event.step)
        self.bar.update(self.task, completed=event.step, total=event.total or None,
                        description=" ".join(x for x in (self.loss, self.eval_loss) if x))

    def _log(self, event: Any) -> None:
        logs, where = event.logs, f"step {event.step}/{event.total}"
        if "loss" in logs:
            self.loss = f"loss {logs['loss']:.4f}"
            self._line(f"{where}: loss {logs['loss']:.4f}, lr {logs.get('learning_rate', 0):.2e}")
        if "eval_loss" in logs:
            self.eval_loss = f"eval {logs['eval_loss']:.4f}"
            self._line(f"{where}: eval loss {logs['eval_loss']:.4f}")

    def _line(self, text: str) -> None:
        if self.bar is None:
            err.print(f"train {text}", markup=False, highlight=False)
        else:
            self.bar.console.print(text, highlight=False, markup=False)
