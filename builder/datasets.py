"""`taxreg dataset build`: a training dataset from the catalog, byte-identical for identical inputs.

Split and mix are decided by each sample's id (a content hash), not by a random draw, so a sample
stays on its side of the split when leaves are added. Files are written into a temporary folder and
swapped into place: a failed build leaves the previous dataset as it was.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder import dataset_card
from registry import folders, source_date
from registry.catalog.connection import open_catalog
from registry.catalog.datasets import LINEAGE, DatasetSample, WrittenFile, eligible_samples, record_dataset
from registry.errors import RegistryError
from registry.records import sha256_bytes

SPLITS = ("train", "test")


@dataclass(frozen=True, slots=True)
class DatasetOptions:
    name: str = "default"
    test_fraction: float = 0.1
    mix: dict[str, float] = field(default_factory=lambda: {"knowledge": 1.0, "skills": 1.0})
    run_id: str | None = None
    # Each contribution keeps at least this many samples in the test split (never more than half of its samples),
    # so that each can be evaluated on something it was not trained on (`taxreg eval`); 0: the hash decides alone.
    min_test: int = 2

    def __post_init__(self) -> None:
        if not 0 <= self.test_fraction < 1:
            raise RegistryError(f"test fraction {self.test_fraction} must be in [0, 1)")
        if self.min_test < 0:
            raise RegistryError(f"--min-test {self.min_test} must be 0 or more")
        unknown = set(self.mix) - {"knowledge", "skills"}
        if unknown or any(v < 0 for v in self.mix.values()):
            raise RegistryError(f"invalid mix {self.mix}", hint="use knowledge=RATIO and skills=RATIO, ratios >= 0")
        if not self.name.replace("-", "").replace("_", "").isalnum():
            raise RegistryError(f"dataset name {self.name!r} must be letters, digits, '-' or '_'")


@dataclass(frozen=True, slots=True)
class DatasetOutcome:
    folder: Path
    files: list[WrittenFile]
    license_expression: str


def build_dataset(catalog: Path, out_root: Path, options: DatasetOptions) -> DatasetOutcome:
    with open_catalog(catalog) as con:
        samples = eligible_samples(con, options.run_id)
        if not samples:
            raise RegistryError("no kept samples from active contributions in the catalog",
                                hint="run `taxreg index` and `taxreg generate` first")
        created, _ = source_date.stamp(con)
        sides = splits(samples, options)
        rows = {split: _rows(samples, sides, split, options) for split in SPLITS}
        license_expression = _license_expression(samples)
        target = out_root / options.name
        with folders.building(target) as staging:
            files = [f for split in SPLITS for f in _write_split(con, staging, split, rows[split], target)]
            dataset_card.write(staging, options, samples, files, license_expression, created)
            record_dataset(con, options.name, files, license_expression, _params(options), created,
                           before_commit=lambda: folders.swap_into_place((staging, target)))
        return DatasetOutcome(target, files, license_expression)


def split_of(sample_id: str, test_fraction: float) -> str:
    return "test" if _split_key(sample_id) < test_fraction * 10_000 else "train"


def _split_key(sample_id: str) -> int:
    return int(sample_id[:8], 16) % 10_000


def splits(samples: list[DatasetSample], options: DatasetOptions) -> dict[str, str]:
    """sample id -> train | test: by the id's hash, then, for a contribution with fewer than `min_test` test
    samples, its train samples whose hash is nearest the cut move to test (at most half of its samples are
    held out). Each contribution's side depends on its own samples only, so adding leaves moves no sample."""
    side = {s.sample_id: split_of(s.sample_id, options.test_fraction) for s in samples}
    if options.test_fraction == 0 or options.min_test == 0:
        return side
    mine: dict[str, list[str]] = defaultdict(list)
    for s in samples:
        for contribution in s.contribution_ids:
            mine[contribution].append(s.sample_id)
    for contribution in sorted(mine):
        ids = mine[contribution]
        missing = min(options.min_test, len(ids) // 2) - sum(side[i] == "test" for i in ids)
        nearest = sorted((i for i in ids if side[i] == "train"), key=lambda i: (_split_key(i), i))
        for sample_id in nearest[:max(0, missing)]:
            side[sample_id] = "test"
    return side


def copies_of(sample: DatasetSample, mix: dict[str, float]) -> int:
    """Whole copies of the ratio, plus one more for a hash-chosen share of the fractional part."""
    ratio = mix.get("knowledge" if sample.kind == "knowledge" else "skills", 1.0)
    whole = int(ratio)
    share = int(sample.sample_id[8:16], 16) / 16**8
    return whole + (1 if share < ratio - whole else 0)


def _rows(samples: list[DatasetSample], sides: dict[str, str], split: str, options: DatasetOptions
          ) -> list[tuple[DatasetSample, int]]:
    chosen = [(s, copies_of(s, options.mix)) for s in samples if sides[s.sample_id] == split]
    return [(s, n) for s, n in chosen if n > 0]


def _write_split(con: Any, folder: Path, split: str, rows: list[tuple[DatasetSample, int]],
                 target: Path) -> list[WrittenFile]:
    members = {s.sample_id: n for s, n in rows}
    jsonl, parquet = folder / f"{split}.jsonl", folder / f"{split}.parquet"
    _copy_out(con, rows, jsonl, "FORMAT json")
    _copy_out(con, rows, parquet, "FORMAT parquet, COMPRESSION zstd")
    count = sum(members.values())
    return [_written(jsonl, split, "jsonl", count, members, target),
            _written(parquet, split, "parquet", count, members, target)]


def _copy_out(con: Any, rows: list[tuple[DatasetSample, int]], path: Path, options: str) -> None:
    """DuckDB writes the stored messages as a list of {role, content}, then each record's lineage (LINEAGE); ORDER BY
    makes the bytes reproducible."""
    import pyarrow as pa

    lineage = [s.lineage() for s, _ in rows]
    con.register("_members", pa.table({
        "sample_id": pa.array([s.sample_id for s, _ in rows], pa.string()),
        "copies": pa.array([n for _, n in rows], pa.int64()),
        **{column: pa.array([x[column] for x in lineage], pa.string()) for column in LINEAGE}}))
    try:
        con.execute(f"""
            COPY (SELECT s.sample_id AS id, s.kind,
                         from_json(s.messages, '[{{"role": "VARCHAR", "content": "VARCHAR"}}]') AS messages,
                         {", ".join(f"m.{column}" for column in LINEAGE)}
                  FROM sample s JOIN _members m USING (sample_id), range(m.copies)
                  ORDER BY s.sample_id)
            TO '{_sql_path(path)}' ({options})""").fetchall()
    finally:
        con.unregister("_members")


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _written(path: Path, split: str, fmt: str, rows: int, members: dict[str, int], target: Path) -> WrittenFile:
    data = path.read_bytes()
    return WrittenFile(split, fmt, str(target / path.name), sha256_bytes(data), len(data), rows, members)


def _license_expression(samples: list[DatasetSample]) -> str:
    licenses = sorted({lic for s in samples for lic in s.licenses})
    return " AND ".join(licenses)


def _params(options: DatasetOptions) -> dict[str, Any]:
    return {"name": options.name, "test_fraction": options.test_fraction, "mix": options.mix,
            "run_id": options.run_id, "min_test": options.min_test}
