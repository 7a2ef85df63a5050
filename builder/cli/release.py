"""`taxreg release cut|verify|diff|list|show` and `taxreg takedown`."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from builder import console, settings
from builder.cli.common import READ_WAIT, ReadWaitOpt, WaitOpt, app, state, writing
from builder.console import TableFormat
from builder.layout import BuildLayout
from registry.errors import RegistryError

release_app = typer.Typer(no_args_is_help=True, help="Releases anyone can verify: cut, verify, diff, list, show.")
app.add_typer(release_app, name="release")

BuildDirOpt = Annotated[Path, typer.Option("--build-dir", help="The build directory.")]


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


FormatOpt = Annotated[OutputFormat, typer.Option("--format", help="text or json.")]


@release_app.command()
def cut(
    version: Annotated[str, typer.Argument(help="The release version, e.g. 1.0.0 (never overwritten).")],
    build_dir: BuildDirOpt = settings.DEFAULT_BUILD,
    dataset: Annotated[str, typer.Option(help="The dataset (under BUILD/datasets/) to ship.")] = "default",
    license: Annotated[str | None, typer.Option(
        "--license", help="SPDX license the release is declared under [default: taxreg.toml \\[release] license, "
                          "else the union of its sources, with a warning].")] = None,
    allow: Annotated[list[str] | None, typer.Option(
        "--allow", help="Override a failed gate (repeat); recorded in the manifest.")] = None,
    sign: Annotated[Path | None, typer.Option(help="Sign with this local ECDSA private key (PEM).")] = None,
    no_model: Annotated[bool, typer.Option("--no-model", help="A data-only release (no model files).")] = False,
    wait: WaitOpt = 0.0,
) -> None:
    """Check the release gates, then write BUILD/releases/VERSION/ with its manifest and SHA256SUMS."""
    from builder.release.cut import CutOptions, cut_release, dirty_note
    from registry.catalog.policy import disclosure_warning, undeclared_warning
    from registry.licenses import LicensePolicy
    from registry.release.integrity import count_phrase

    with console.user_errors(state["debug"]):
        loaded = settings.load()
        options = CutOptions(version, build_dir, dataset, license or loaded.release_license, tuple(allow or ()),
                             sign, not no_model, policy=LicensePolicy(frozenset(loaded.allowed_licenses)),
                             disclosure=loaded.disclosure, eval_thresholds=loaded.evaluation.thresholds.as_dict())
        with writing(BuildLayout(build_dir).catalog, wait=wait):
            outcome = cut_release(options)
    m = outcome.manifest
    site = BuildLayout(build_dir).site  # the cut does not rebuild it: the site needs the taxonomy, which a cut lacks
    stale = f"{site} does not list release {m.version} yet: run `taxreg site` to publish it" if site.is_dir() else None
    for warning in (undeclared_warning(m.policy), disclosure_warning(m.policy), dirty_note(m), stale):
        if warning is not None:
            console.print_warning(warning)
    overridden = sorted({p.rule for p in m.policy if p.overridden})
    console.print_line(f"{outcome.folder}: {count_phrase(m)}, {m.samples.get('total', 0)} samples from "
                       f"{len(m.contributions)} contributions, license {m.license}")
    console.print_summary(
        f"release {m.version} {'recovered from an interrupted cut' if outcome.recovered else 'cut'}: "
        f"{sum(p.passed for p in m.policy)}/{len(m.policy)} checks passed"
        + (f", overridden: {', '.join(overridden)}" if overridden else "")
        + (", data only" if m.model is None else "") + (", signed" if m.signature else ""), False)


@release_app.command()
def verify(
    folder: Annotated[Path, typer.Argument(help="The release folder (holds SHA256SUMS and manifest.json).")],
    key: Annotated[Path | None, typer.Option(help="Public key (PEM) the signature must verify with.")] = None,
    fmt: FormatOpt = OutputFormat.TEXT,
) -> None:
    """Re-hash every file against SHA256SUMS and the manifest, check the signature; exit 1 on any difference."""
    from builder.release.verify import verify_folder
    from registry.release.integrity import count_phrase

    with console.user_errors(state["debug"]):
        manifest, differences, signature = verify_folder(folder, key)
    if fmt is OutputFormat.JSON:
        _json({"ok": not differences, "release": manifest.version if manifest else None, "signature": signature,
               "differences": [{"path": d.path, "problem": d.problem, "detail": d.detail} for d in differences]})
    else:  # the verdict is the command's output (stdout); only errors go to stderr
        for d in differences:
            console.print_line(f"{d.path}: {d.problem}: {d.detail}")
        console.print_line(f"{folder}: {len(differences)} difference(s); signature: {signature}" if differences
                           or manifest is None else
                           f"{folder}: OK, all {count_phrase(manifest)} match; signature: {signature}")
    raise typer.Exit(console.EXIT_FINDINGS if differences else console.EXIT_OK)


@release_app.command()
def diff(
    old: Annotated[str, typer.Argument(help="The older release: a version or a folder.")],
    new: Annotated[str, typer.Argument(help="The newer release: a version or a folder.")],
    build_dir: BuildDirOpt = settings.DEFAULT_BUILD,
    files: Annotated[bool, typer.Option("--files", help="List every differing file (text; json always does).")]
    = False,
    fmt: FormatOpt = OutputFormat.TEXT,
) -> None:
    """Contributions added, changed, removed (their text and samples), counts, license mix, inputs, gates, metrics
    (marked when worse), files by folder; json: a stable structure (see README)."""
    from builder.release.compare import diff_folders, locate, report_lines

    with console.user_errors(state["debug"]):
        result = diff_folders(locate(build_dir, old), locate(build_dir, new))
    if fmt is OutputFormat.JSON:
        _json(result.to_json())
        return
    for line in report_lines(result, files):
        console.print_line(line)
    worse = [v.name for v in result.metrics if v.worse]
    console.print_summary(f"{result.old} -> {result.new}: {len(result.contributions)} contribution(s) changed, "
                          f"{len(result.files)} file(s) differ, {len(result.effects)} effect(s) changed beyond "
                          "their intervals"
                          + (f", {len(worse)} metric(s) worse" if worse else "")
                          + f"; reproducible outputs identical: {'yes' if result.reproducible_match else 'no'}",
                          bool(worse))


@release_app.command("list")
def list_releases(
    build_dir: BuildDirOpt = settings.DEFAULT_BUILD,
    fmt: Annotated[TableFormat, typer.Option("--format", help="table, csv or json.")] = TableFormat.TABLE,
    wait: ReadWaitOpt = READ_WAIT,
) -> None:
    """Every release recorded in the catalog (files: how many its SHA256SUMS lists, as cut and verify count)."""
    from registry.catalog.connection import open_read_only_waiting
    from registry.catalog.releases import list_releases as rows_of

    with console.user_errors(state["debug"]):
        catalog = BuildLayout(build_dir).catalog
        if not catalog.is_file():
            raise RegistryError(f"no releases: {build_dir} holds no catalog ({catalog})",
                                hint="run `taxreg build --release VERSION`, or pass --build-dir with a build folder")
        with open_read_only_waiting(catalog, wait) as con:
            columns, rows = rows_of(con)
    console.print_rows(columns, rows, fmt)


@release_app.command()
def show(
    release: Annotated[str, typer.Argument(help="A version (under BUILD/releases/) or a release folder.")],
    build_dir: BuildDirOpt = settings.DEFAULT_BUILD,
    fmt: FormatOpt = OutputFormat.TEXT,
) -> None:
    """What a release holds: inputs, model, data, license mix, gates, signature (json: the whole manifest)."""
    from builder.release.compare import locate
    from registry.release.integrity import count_phrase
    from registry.release.manifest import read_manifest

    with console.user_errors(state["debug"]):
        manifest, _ = read_manifest(locate(build_dir, release))
    if fmt is OutputFormat.JSON:
        _json(manifest.to_dict())
        return
    m = manifest
    model = m.model or {}
    lines = [
        f"release {m.version}  ({m.released_at}, taxonomy-registry {m.builder_version})",
        f"license: {m.license}", f"taxonomy commit: {m.inputs.get('taxonomy_commit') or 'none (not a git tree)'}"
        + (f" plus {len(m.inputs['taxonomy_dirty'])} uncommitted change(s): {', '.join(m.inputs['taxonomy_dirty'])}"
           f" (tree sha256 {m.inputs.get('taxonomy_tree_sha256')})" if m.inputs.get("taxonomy_dirty") else ""),
        f"model: {model.get('base_model')} + " + ", ".join(a["kind"] for a in model.get("artifacts", []))
        if m.model else "model: none (data-only release)",
        "datasets: " + ", ".join(f"{d['path']} ({d['rows']} rows)" for d in m.inputs["datasets"]),
        f"samples: {m.samples.get('total', 0)} from {len(m.contributions)} contributions",
        *(f"  {x['license']} ({x['license_class']}): {x['samples']} samples" for x in m.license_mix),
        *([f"evaluation: {ev['items']} items, {ev['regressions']} regression(s), {ev['empty']} contribution(s) "
           f"with nothing held out (evaluation.json {ev['results_sha256'][:16]})"]
          if (ev := m.metrics.get("evaluation")) else []),
        f"gates: {sum(p.passed for p in m.policy)}/{len(m.policy)} passed"
        + (f"; overridden with --allow: {', '.join(m.allowed)}" if m.allowed else ""),
        *(f"  {_gate(p)}" for p in m.policy if not p.passed),
        f"files: {count_phrase(m)}; {sum(f.size for f in m.files):,} bytes besides the manifest",
        f"signature: {m.signature['method'] if m.signature else 'unsigned'}",
    ]
    for line in lines:
        console.print_line(line)


@app.command()
def takedown(
    subject: Annotated[str, typer.Argument(help="A document's sha256 or a contribution's taxonomy path.")],
    reason: Annotated[str, typer.Option(help="Why it must go (kept in the catalog).")] = "",
    by: Annotated[str | None, typer.Option(help="Who asked for it.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show the impact.")] = False,
    build_dir: BuildDirOpt = settings.DEFAULT_BUILD,
    wait: WaitOpt = 0.0,
    fmt: FormatOpt = OutputFormat.TEXT,
) -> None:
    """Show what depends on a document or contribution (samples, datasets, models, releases) and take it down."""
    from builder.release.takedown import takedown as run_takedown

    with console.user_errors(state["debug"]):
        catalog = BuildLayout(build_dir).catalog
        if dry_run:  # only reads (the catalog opened read-only): no need to wait for a build
            impact, new = run_takedown(catalog, subject, reason, by, dry_run)
        else:
            with writing(BuildLayout(build_dir).catalog, wait=wait):
                impact, new = run_takedown(catalog, subject, reason, by, dry_run)
    counts = {what: len(impact.ids(what)) for what in ("sample", "run", "dataset", "model", "release")}
    if fmt is OutputFormat.JSON:
        _json({"subject": impact.subject, "kind": impact.subject_kind, "taken_down": not dry_run, "counts": counts,
               "impact": {what: impact.ids(what) for what in counts}})
        return
    console.print_line(f"{impact.subject_kind} {impact.subject}: " + ", ".join(
        f"{n} {what}(s)" for what, n in counts.items()))
    for what in ("dataset", "model", "release"):
        for id_, detail in sorted({(i, d) for w, i, d in impact.rows if w == what}):
            console.print_line(f"  {what} {id_} {detail}")
    if dry_run:
        console.print_summary("dry run: nothing changed", False)
    else:
        console.print_summary(("taken down" if new else "already taken down") + f"; the next dataset build leaves "
                              f"out its {counts['sample']} sample(s)"
                              + ("; cut a new release to replace the affected ones" if counts["release"] else ""),
                              False)


def _gate(result: Any) -> str:
    """A gate that did not pass, in words: which rule, about what (a gate about the whole release names none), and
    why."""
    about = "" if result.subject == "*" else f" {result.subject}"
    verdict = "overridden with --allow" if result.overridden else \
        "warning" if result.severity == "warning" else "failed"
    reason = result.details.get("reason") or result.details.get("message")
    return f"{result.rule}{about}: {verdict}" + (f" ({reason})" if reason else "")


def _json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")
