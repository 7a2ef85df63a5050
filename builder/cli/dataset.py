"""`taxreg dataset build`: train/test splits, card and croissant.json from the catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from builder import console, layout, settings
from builder.cli.common import CatalogOpt, WaitOpt, dataset_app, state, writing


@dataset_app.command("build")
def dataset_build(
    catalog: CatalogOpt = settings.DEFAULT_CATALOG,
    name: Annotated[str, typer.Option(help="Dataset name: the folder under --out.")] = "default",
    out: Annotated[Path, typer.Option(help="Folder that holds the datasets.")] = layout.DEFAULT.datasets,
    test_fraction: Annotated[float, typer.Option(help="Share of samples in the test split.")] = 0.1,
    mix: Annotated[list[str] | None, typer.Option(help="Ratio per kind: knowledge=1.0, skills=0.5 (repeat).")]
    = None,
    run: Annotated[str | None, typer.Option(help="Only samples of this generation run.")] = None,
    min_test: Annotated[int, typer.Option(
        "--min-test", min=0, help="Test samples each contribution keeps at least (at most half of its samples), so "
                                  "`taxreg eval` has something held out for every contribution.")] = 2,
    wait: WaitOpt = 0.0,
) -> None:
    """Write train/test JSONL and Parquet, a dataset card and croissant.json (byte-identical for the same inputs)."""
    from builder.datasets import DatasetOptions, build_dataset

    with console.user_errors(state["debug"]):
        ratios = {"knowledge": 1.0, "skills": 1.0} | _ratios(mix or [])
        with writing(catalog, out / name, wait=wait):
            outcome = build_dataset(catalog, out, DatasetOptions(name, test_fraction, ratios, run, min_test))
    for f in outcome.files:
        console.print_line(f"{f.sha256}  {f.path}  ({f.rows} rows)")
    console.print_summary(f"dataset {name} -> {outcome.folder} (license: {outcome.license_expression})", False)


def _ratios(items: list[str]) -> dict[str, float]:
    from registry.errors import RegistryError

    ratios = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            ratios[key.strip()] = float(value)
        except ValueError:
            raise RegistryError(f"--mix {item!r}: expected KIND=RATIO, e.g. knowledge=0.5") from None
    return ratios
