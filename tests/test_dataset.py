"""`taxreg dataset build`: deterministic files, stable splits, mixes, card and Croissant, loadable by `datasets`."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from builder.datasets import DatasetOptions, build_dataset, split_of
from builder.generators.run import GenerateOptions, generate
from registry.catalog.indexer import index
from registry.catalog.query import run_query
from registry.errors import RegistryError
from tests.conftest import EXAMPLE_TAXONOMY, skill_yaml


def fresh_catalog(folder: Path, taxonomy: Path = EXAMPLE_TAXONOMY) -> Path:
    catalog = folder / "catalog.duckdb"
    index(taxonomy, catalog)
    generate(taxonomy, catalog, GenerateOptions())
    return catalog


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ds")
    build_dataset(fresh_catalog(folder), folder / "datasets", DatasetOptions())
    return folder


def test_files_card_and_catalog_rows(built: Path) -> None:
    folder = built / "datasets" / "default"
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md", "croissant.json", "test.jsonl", "test.parquet", "train.jsonl", "train.parquet"]
    lines = (folder / "train.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert [m["role"] for m in first["messages"]] == ["system", "user", "assistant"]
    assert [json.loads(x)["id"] for x in lines] == sorted(json.loads(x)["id"] for x in lines)
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlicense:") and "annotations_creators:\n- expert-generated" in card
    recorded = run_query(built / "catalog.duckdb", "SELECT split, format, row_count FROM dataset ORDER BY 1, 2").rows
    assert [r[:2] for r in recorded] == [("test", "jsonl"), ("test", "parquet"), ("train", "jsonl"),
                                         ("train", "parquet")]
    assert sum(int(str(r[2])) for r in recorded if r[1] == "jsonl") == run_query(
        built / "catalog.duckdb", "SELECT count(*) FROM sample WHERE kept").rows[0][0]


def test_loadable_by_hugging_face_datasets(built: Path) -> None:
    datasets = pytest.importorskip("datasets")
    folder = built / "datasets" / "default"
    from_json = datasets.load_dataset("json", data_files={"train": str(folder / "train.jsonl")}, split="train")
    from_parquet = datasets.load_dataset("parquet", data_files={"train": str(folder / "train.parquet")},
                                         split="train")
    assert len(from_json) == len(from_parquet) > 100
    assert from_parquet[0]["messages"][2]["role"] == "assistant"
    assert from_json[0]["id"] == from_parquet[0]["id"]


def test_croissant_passes_mlcroissant_validate(built: Path) -> None:
    path = built / "datasets" / "default" / "croissant.json"
    cli = Path(sys.executable).with_name("mlcroissant")  # the validator's own command line
    done = subprocess.run([str(cli), "validate", "--jsonld", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    croissant = json.loads(path.read_text())
    assert croissant["conformsTo"] == "http://mlcommons.org/croissant/1.1"
    files = {d["name"]: d["sha256"] for d in croissant["distribution"]}
    for name, digest in files.items():
        assert hashlib.sha256((path.parent / name).read_bytes()).hexdigest() == digest
    assert croissant["prov:wasDerivedFrom"] and "rai:dataCollection" in croissant


def test_identical_inputs_give_identical_bytes(built: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    again.mkdir()
    build_dataset(fresh_catalog(again), again / "datasets", DatasetOptions())
    for name in ("train.jsonl", "test.jsonl", "train.parquet", "test.parquet"):
        assert (again / "datasets/default" / name).read_bytes() == (built / "datasets/default" / name).read_bytes()


def test_splits_are_stable_when_leaves_are_added(built: Path, tmp_path: Path) -> None:
    taxonomy = tmp_path / "taxonomy"
    shutil.copytree(EXAMPLE_TAXONOMY, taxonomy)
    leaf = taxonomy / "compositional_skills/extra/new_leaf/qna.yaml"
    leaf.parent.mkdir(parents=True)
    leaf.write_text(skill_yaml(n=12, prefix="Brand new"))
    (leaf.parent / "attribution.txt").write_text((taxonomy / "compositional_skills/linguistics/antonyms/"
                                                  "attribution.txt").read_text())
    catalog = fresh_catalog(tmp_path, taxonomy)
    build_dataset(catalog, tmp_path / "datasets", DatasetOptions())
    def ids(folder: Path, split: str) -> set[str]:
        return {json.loads(x)["id"] for x in (folder / f"{split}.jsonl").read_text().splitlines()}
    old, new = built / "datasets/default", tmp_path / "datasets/default"
    assert ids(old, "train") <= ids(new, "train") and ids(old, "test") <= ids(new, "test")
    assert len(ids(new, "train") | ids(new, "test")) == len(ids(old, "train") | ids(old, "test")) + 12


def test_mix_ratios(built: Path, tmp_path: Path) -> None:
    catalog = built / "catalog.duckdb"
    out = build_dataset(catalog, tmp_path, DatasetOptions(name="skills-only", mix={"knowledge": 0, "skills": 2}))
    rows = [json.loads(x) for x in (out.folder / "train.jsonl").read_text().splitlines()]
    assert rows and all(r["kind"] != "knowledge" for r in rows)
    assert all(n == 2 for n in {r["id"]: sum(1 for x in rows if x["id"] == r["id"]) for r in rows}.values())


def test_split_is_a_function_of_the_id() -> None:
    assert split_of("0" * 64, 0.1) == "test" and split_of("f" * 64, 0.1) == "train"


def test_a_failed_build_keeps_the_previous_dataset(built: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "datasets"
    first = build_dataset(built / "catalog.duckdb", out, DatasetOptions())
    before = {p.name: p.read_bytes() for p in first.folder.iterdir()}

    def broken(*_: object) -> None:
        raise RegistryError("croissant broke")

    monkeypatch.setattr("builder.dataset_card.validate_croissant", broken)
    with pytest.raises(RegistryError, match="croissant broke"):
        build_dataset(built / "catalog.duckdb", out, DatasetOptions(test_fraction=0.5))
    assert {p.name: p.read_bytes() for p in first.folder.iterdir()} == before
    assert [p.name for p in out.iterdir()] == ["default"]


def test_bad_options_and_empty_catalogs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="invalid mix"):
        DatasetOptions(mix={"poems": 1.0})
    with pytest.raises(RegistryError, match="test fraction"):
        DatasetOptions(test_fraction=1.5)
    index(EXAMPLE_TAXONOMY, tmp_path / "c.duckdb")
    with pytest.raises(RegistryError, match="no kept samples"):
        build_dataset(tmp_path / "c.duckdb", tmp_path / "out", DatasetOptions())


def test_every_contribution_keeps_some_samples_in_the_test_split(built: Path, tmp_path: Path) -> None:
    """The split by hash alone left 4 of the embedded taxonomy's 17 contributions with nothing held out, so
    `taxreg eval` had nothing to measure them on; each now keeps min(2, half of its samples) in test."""
    catalog = built / "catalog.duckdb"

    def held_out(folder: Path) -> dict[str, tuple[int, int]]:
        test = {json.loads(x)["id"] for x in (folder / "test.jsonl").read_text().splitlines()}
        rows = run_query(catalog, "SELECT contribution_id, list(DISTINCT sample_id) FROM sample_lineage "
                                  "WHERE contribution_id IS NOT NULL GROUP BY 1").rows
        return {str(cid): (len(set(ids) & test), len(ids)) for cid, ids in rows}  # type: ignore[arg-type]

    counts = held_out(built / "datasets" / "default")
    assert all(test >= min(2, total // 2) for test, total in counts.values()), counts
    hashed = held_out(build_dataset(catalog, tmp_path, DatasetOptions(min_test=0)).folder)
    assert [c for c, (test, _) in hashed.items() if test == 0]  # what the old split did
    assert all(hashed[c][0] <= counts[c][0] for c in counts)  # only train samples moved, and only into test
