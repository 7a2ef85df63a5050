"""`taxreg serve` under load: requests/s and completion tokens/s at several concurrency levels, side by side.

    python bench/serve.py                                  # builds the demo model, serves fp32 and int8 (~3 min)
    python bench/serve.py build/model/onnx build/model/onnx-int8 --concurrency 1,8,32 --rounds 5

Each model folder gets its own `taxreg serve` process (--workers, --threads pinned). Per round and concurrency level,
the servers take turns (the order rotates every round): --requests chat completions (--max-tokens each, seeded)
with that many in flight at once, sent by the real AsyncOpenAI client. Printed per server and level: medians over
the rounds of requests/s, completion tokens/s, median latency, and the server's CPU seconds per 1,000 tokens (from
/proc), with tokens/s as a ratio to the first folder. The machine is shared: compare figures of one run only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TAXREG = [sys.executable, "-c", "from builder.cli import main; main()"]


@dataclass
class Server:
    folder: Path
    process: subprocess.Popen[str]
    url: str
    figures: dict[int, list[dict[str, float]]] = field(default_factory=dict)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def build_demo(root: Path) -> list[Path]:
    """The default demo model, exported for real (fp32 and int8)."""
    subprocess.run([*TAXREG, "model", "init", "--out", str(root / "base"), "--taxonomy", str(REPO / "taxonomy")],
                   check=True, stdout=subprocess.DEVNULL)
    (root / "none").mkdir(exist_ok=True)  # an empty dataset folder: the export's fixed parity prompts
    subprocess.run([*TAXREG, "export", "--base-model", str(root / "base"), "--no-adapter", "--out", str(root / "m"),
                    "--catalog", str(root / "catalog.duckdb"), "--dataset", str(root / "none")], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return [root / "m" / "onnx", root / "m" / "onnx-int8"]


def start(folder: Path, workers: int, threads: int) -> Server:
    process = subprocess.Popen([*TAXREG, "serve", str(folder), "--port", "0", "--model-name", "bench",
                                "--workers", str(workers), "--threads", str(threads)],
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert process.stderr is not None
    line = process.stderr.readline()
    if "serving" not in line:
        raise SystemExit(f"{folder}: the server did not start: {line}{process.stderr.read()}")
    time.sleep(0.5)
    return Server(folder, process, line.split(" at ")[1].split("/v1")[0] + "/v1")


async def load(server: Server, concurrency: int, requests: int, max_tokens: int) -> dict[str, float]:
    import openai

    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    tokens = 0

    async def one(client: Any, i: int) -> None:
        nonlocal tokens
        async with gate:
            began = time.perf_counter()
            done = await client.chat.completions.create(
                model="bench", messages=[{"role": "user", "content": f"Tell me about birds, number {i}."}],
                max_tokens=max_tokens, temperature=0.7, seed=i)
            latencies.append(time.perf_counter() - began)
            tokens += done.usage.completion_tokens

    async with openai.AsyncOpenAI(base_url=server.url, api_key="none", max_retries=0, timeout=300) as client:
        cpu, began = server.cpu_seconds(), time.perf_counter()
        await asyncio.gather(*(one(client, i) for i in range(requests)))
        wall, cpu = time.perf_counter() - began, server.cpu_seconds() - cpu
    return {"requests_per_s": requests / wall, "tokens_per_s": tokens / wall,
            "latency_ms": 1000 * statistics.median(latencies), "cpu_s_per_1k_tokens": 1000 * cpu / max(tokens, 1)}


def report(servers: list[Server], levels: list[int]) -> None:
    print(f"{'model':<28} {'conc':>4} {'req/s':>8} {'tok/s':>8} {'ratio':>6} {'p50 ms':>8} {'cpu s/1k tok':>12}")
    for level in levels:
        base = statistics.median(f["tokens_per_s"] for f in servers[0].figures[level])
        for server in servers:
            runs = server.figures[level]

            def med(key: str, runs: list[dict[str, float]] = runs) -> float:
                return statistics.median(r[key] for r in runs)
            name = f"{server.folder.parent.name}/{server.folder.name}"[-28:]
            print(f"{name:<28} {level:>4} {med('requests_per_s'):>8.1f} {med('tokens_per_s'):>8.0f} "
                  f"{med('tokens_per_s') / base:>6.2f} {med('latency_ms'):>8.0f} {med('cpu_s_per_1k_tokens'):>12.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="*", type=Path, help="exported model folders [the demo, fp32 and int8]")
    parser.add_argument("--concurrency", default="1,8,32", help="clients in flight, comma-separated")
    parser.add_argument("--requests", type=int, default=64, help="requests per measurement")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4, help="the servers' --workers")
    parser.add_argument("--threads", type=int, default=1, help="the servers' --threads (intra-op)")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as temp:
        folders = args.folders or build_demo(Path(temp))
        servers = [start(folder, args.workers, args.threads) for folder in folders]
        try:
            for server in servers:  # warm-up: first runs allocate
                asyncio.run(load(server, 4, 8, 8))
            for round_ in range(args.rounds):
                for level in levels:
                    turn = servers[round_ % len(servers):] + servers[:round_ % len(servers)]
                    for server in turn:
                        figures = asyncio.run(load(server, level, args.requests, args.max_tokens))
                        server.figures.setdefault(level, []).append(figures)
        finally:
            for server in servers:
                server.process.terminate()
                server.process.wait(timeout=10)
    print(f"{args.requests} chat requests x {args.max_tokens} max tokens per measurement, medians of {args.rounds} "
          f"rounds; servers: --workers {args.workers} --threads {args.threads}; {os.cpu_count()} cores")
    report(servers, levels)


if __name__ == "__main__":
    main()
