"""CLI wiring: exit codes, output formats, errors without tracebacks, light start-up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from builder.cli import app
from registry.findings import RULES
from tests.conftest import TaxonomyMaker, skill_yaml

runner = CliRunner()


def bad_tree(make_taxonomy: TaxonomyMaker) -> Path:
    return make_taxonomy({
        "compositional_skills/a/ok/qna.yaml": skill_yaml(prefix="Ok"),
        "compositional_skills/a/bad/qna.yaml": skill_yaml(n=3, prefix="Bad"),
    })


def test_validate_exit_codes(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    clean = make_taxonomy({"compositional_skills/a/ok/qna.yaml": skill_yaml()})
    assert runner.invoke(app, ["validate", str(clean), "--catalog", str(tmp_path / "none")]).exit_code == 0
    result = runner.invoke(app, ["validate", str(bad_tree(make_taxonomy)), "--catalog", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "compositional_skills/a/bad/qna.yaml:4:1 [.seed_examples] TR204" in result.output


def test_strict_turns_warnings_into_failures(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root = make_taxonomy({"compositional_skills/a/x/qna.yaml": skill_yaml(), "compositional_skills/a/x/qna.yml": ""})
    args = ["validate", str(root), "--catalog", str(tmp_path / "none")]
    assert runner.invoke(app, args).exit_code == 0
    assert runner.invoke(app, [*args, "--strict"]).exit_code == 1


def test_json_and_github_formats(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root = bad_tree(make_taxonomy)
    result = runner.invoke(app, ["validate", str(root), "--format", "json", "--catalog", str(tmp_path / "x")])
    payload = json.loads(result.stdout)
    assert payload["summary"]["errors"] == 1 and payload["findings"][0]["code"] == "TR204"
    assert payload["findings"][0]["line"] == 4
    result = runner.invoke(app, ["validate", str(root), "--format", "github", "--catalog", str(tmp_path / "x")])
    assert result.stdout.startswith(f"::error file={root.as_posix()}/compositional_skills/a/bad/qna.yaml,line=4,")


def test_usage_and_environment_errors_exit_2_without_traceback(make_taxonomy: TaxonomyMaker,
                                                               tmp_path: Path) -> None:
    missing = runner.invoke(app, ["validate", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "Traceback" not in missing.output and "error:" in missing.output
    not_git = runner.invoke(app, ["diff", "--since", "HEAD", str(bad_tree(make_taxonomy))])
    assert not_git.exit_code == 2 and "not inside a git repository" in not_git.output
    assert runner.invoke(app, ["validate", "--format", "xml"]).exit_code == 2
    debug = runner.invoke(app, ["--debug", "validate", str(tmp_path / "nowhere")])
    assert debug.exit_code == 2


def test_index_then_query_formats(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root, catalog = make_taxonomy({"compositional_skills/a/ok/qna.yaml": skill_yaml()}), tmp_path / "c.duckdb"
    assert runner.invoke(app, ["index", str(root), "--catalog", str(catalog)]).exit_code == 0
    result = runner.invoke(app, ["query", "SELECT contribution_id, kind FROM contribution", "--catalog",
                                 str(catalog), "--format", "json"])
    assert json.loads(result.stdout) == [{"contribution_id": "compositional_skills/a/ok",
                                          "kind": "compositional_skill"}]
    csv_out = runner.invoke(app, ["query", "SELECT 1 AS one", "--catalog", str(catalog), "--format", "csv"])
    assert csv_out.stdout == "one\n1\n"
    refused = runner.invoke(app, ["query", "DROP TABLE contribution", "--catalog", str(catalog)])
    assert refused.exit_code == 2 and "read-only" in refused.output


def test_index_refuses_errors_with_exit_1(make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    result = runner.invoke(app, ["index", str(bad_tree(make_taxonomy)), "--catalog", str(tmp_path / "c.duckdb")])
    assert result.exit_code == 1 and "nothing was indexed" in result.output


def test_rules_lists_every_code() -> None:
    result = runner.invoke(app, ["rules", "--format", "json"])
    assert [r["code"] for r in json.loads(result.stdout)] == list(RULES)


def test_help_and_validate_do_not_import_ml_libraries(make_taxonomy: TaxonomyMaker) -> None:
    root = make_taxonomy({"compositional_skills/a/ok/qna.yaml": skill_yaml()})
    probe = ("import sys; from builder.cli import app\n"
             "try:\n    app(['validate', sys.argv[1]])\nexcept SystemExit: pass\n"
             "print([m for m in ('torch', 'transformers', 'onnxruntime', 'peft') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", probe, str(root)], capture_output=True, text=True, check=True)
    assert done.stdout.strip().endswith("[]")


def test_every_rule_code_is_used_by_the_registry() -> None:
    source = "\n".join(p.read_text() for p in Path(__file__).parents[1].joinpath("registry").rglob("*.py")
                       if p.name != "findings.py")
    unused = [code for code in RULES if f'"{code}"' not in source]
    assert unused == []


def test_validate_since_checks_only_changed_leaves_and_diff_lists_them(make_taxonomy: TaxonomyMaker,
                                                                     tmp_path: Path) -> None:
    from tests.conftest import git

    root = bad_tree(make_taxonomy)  # the committed tree already has an error in a/bad
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "base")
    (root / "compositional_skills/a/ok/qna.yaml").write_text(skill_yaml(n=6, prefix="Ok"))
    args = ["validate", str(root), "--since", "HEAD", "--format", "json", "--catalog", str(tmp_path / "x")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and json.loads(result.stdout)["summary"]["leaves"] == 1
    listed = runner.invoke(app, ["diff", "--since", "HEAD", str(root), "--format", "json"])
    assert json.loads(listed.stdout) == [
        {"status": "modified", "path": "compositional_skills/a/ok/qna.yaml", "old_path": None}]
    unknown = runner.invoke(app, ["validate", str(root), "--since", "v9.9"])
    assert unknown.exit_code == 2 and "unknown git ref 'v9.9'" in unknown.output


def test_flags_show_no_type_in_help_and_in_the_reference_page() -> None:
    """A flag takes no value: neither `--help` nor the site's CLI reference shows `<bool>` after it (issue 16.9);
    options that take one keep their type."""
    from builder.cli.reference import cli_markdown

    for command in (["release", "cut", "--help"], ["build", "--help"], ["takedown", "--help"]):
        shown = runner.invoke(app, command, env={"COLUMNS": "200"}).output
        assert "<bool>" not in shown and "<float>" in shown, shown
    cut = runner.invoke(app, ["release", "cut", "--help"], env={"COLUMNS": "200"}).output
    assert any(line.split()[1:3] == ["--no-model", "A"] for line in cut.splitlines() if "--no-model" in line)
    page = cli_markdown()
    assert "| bool |" not in page and "| `--no-model` |  |" in page and "| `--wait` | float |" in page
