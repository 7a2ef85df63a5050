"""Seed generator plus dataset build on a synthetic taxonomy (issue 3's figure: 10,000 leaves, <= 20 s).

    python bench/generate.py --leaves 10000 --repeat 3

The tree comes from bench/ingest.py's deterministic generator; it is indexed once (not timed). Then,
interleaved over the repeats, each in its own process with OMP_NUM_THREADS=1: `taxreg generate` on a
fresh copy of the indexed catalog, and `taxreg dataset build` on its result. Medians, min and max.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from ingest import generate as make_tree


def timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SOURCE_DATE_EPOCH": "1700000000"}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, _, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, None) and usage is None:
        raise SystemExit(f"{cmd} failed")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261)
    args = parser.parse_args()
    taxreg = str(Path(sys.executable).with_name("taxreg"))
    with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
        work = Path(tmp)
        tree = work / "taxonomy"
        stats = make_tree(tree, args.leaves, args.seed)
        indexed = work / "indexed"
        indexed.mkdir()
        subprocess.run([taxreg, "index", str(tree), "--catalog", "catalog.duckdb"], cwd=indexed, check=True,
                       stdout=subprocess.DEVNULL)
        times: dict[str, list[float]] = {"generate": [], "dataset build": [], "both": []}
        for _ in range(args.repeat):
            run = work / f"run{len(times['both'])}"
            shutil.copytree(indexed, run)
            gen, _ = timed([taxreg, "generate", str(tree), "--catalog", "catalog.duckdb"], run)
            data, _ = timed([taxreg, "dataset", "build", "--catalog", "catalog.duckdb"], run)
            times["generate"].append(gen)
            times["dataset build"].append(data)
            times["both"].append(gen + data)
            rows = sum(1 for _ in (run / "build/datasets/default/train.jsonl").open())
            shutil.rmtree(run)
        print(f"tree: {stats.leaves:,} leaves, {stats.seeds:,} seed Q&A, {stats.documents:,} documents, "
              f"digest {stats.digest}")
        print(f"train rows in the last dataset: {rows:,}")
        print(f"{'measurement':<16}{'median':>9}{'min':>9}{'max':>9}   target")
        for name, values in times.items():
            target = "<= 20 s" if name == "both" else ""
            print(f"{name:<16}{statistics.median(values):>8.2f}s{min(values):>8.2f}s{max(values):>8.2f}s   {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
