"""The `taxreg` app, its global options and the option types the command modules share."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperOption

from builder import console
from builder.console import FindingFormat
from registry import __version__


def _value_type(option: TyperOption, ctx: Any) -> str | None:
    """What `--help` shows after an option: its value's type, or nothing for a flag (typer 0.29 shows `<bool>`
    after every flag, as though it took a value)."""
    if option.is_flag and not option.count:
        return None
    return _typed(option, ctx)


_typed = TyperOption.display_type_rich
TyperOption.display_type_rich = _value_type  # type: ignore[method-assign,assignment]

app = typer.Typer(
    name="taxreg", no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
    help="Validate, index and publish an InstructLab-format taxonomy with per-sample lineage.",
)
documents_app = typer.Typer(no_args_is_help=True, help="The local cache of knowledge documents.")
app.add_typer(documents_app, name="documents")
dataset_app = typer.Typer(no_args_is_help=True, help="Training datasets built from the catalog.")
app.add_typer(dataset_app, name="dataset")

state = {"debug": False}

TaxonomyArg = Annotated[Path, typer.Argument(help="Taxonomy root (holds knowledge/, compositional_skills/...).")]
CatalogOpt = Annotated[Path, typer.Option("--catalog", help="The DuckDB catalog file.")]
DocumentsOpt = Annotated[
    Path | None, typer.Option("--documents", help="Document cache [default: TAXONOMY/_documents].")]
FormatOpt = Annotated[FindingFormat, typer.Option("--format", help="text, github (annotations) or json.")]
MaxSizeOpt = Annotated[int | None, typer.Option("--max-file-size", help="Largest qna.yaml in bytes [1 MiB].")]
# Read-only commands wait this long for a writer (`taxreg index`, a build) to let go of the catalog.
READ_WAIT = 10.0
ReadWaitOpt = Annotated[float, typer.Option("--wait", min=0, help="Seconds to keep trying while another process "
                                                                  "writes the catalog.")]
LicenseOpt = Annotated[
    list[str] | None, typer.Option("--allow-license", help="Allowed SPDX license (repeat); replaces the policy.")]
WaitOpt = Annotated[float, typer.Option(help="Seconds to wait for another taxreg writing the build directory.")]


def writing(catalog: Path | None, *outputs: Path, wait: float = 0.0) -> AbstractContextManager[None]:
    """The lock of every build folder a command writes (`builder.buildlock.lock_paths`), saying when it waits."""
    from builder.buildlock import lock_paths

    return lock_paths(catalog, outputs, wait, on_wait=lambda note: console.print_summary(note, False))


def _version(value: bool) -> None:
    if value:
        console.print_line(f"taxreg {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version.")] = False,
) -> None:
    state["debug"] = debug


