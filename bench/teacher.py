"""Teacher benchmark: request throughput against a loopback endpoint, and resume after kill -9.

Usage (from the repository root, with the project's virtual environment):

    .venv/bin/python bench/teacher.py                              # 1,000 requests, C=8, 50 ms, 3 repeats
    .venv/bin/python bench/teacher.py --endpoint-concurrency 32    # a wider endpoint (640 requests/s)
    .venv/bin/python bench/teacher.py --requests 2000 --repeat 5 --client-concurrency 16

The endpoint is an OpenAI-compatible `POST /v1/chat/completions` served in this process by
`ThreadingHTTPServer`: every answer takes a fixed latency (50 ms) and at most C requests are served at once
(the others wait their turn), so it can serve at most C / latency requests per second: the capacity the
figures are compared with. The client is a separate process (`bench/teacher.py _client ...`) that runs the
real `teacher` generator (the `openai` client, the journal in a fresh DuckDB catalog) over N synthetic skill
leaves, one request each. The measured time is the generator's `generate()` call: planning, journal lookups,
sending, journaling and parsing; process start and imports are shown apart.

1. throughput: R fresh runs of N requests (median, min, max) -> requests/s and % of capacity;
2. kill at ~50%: a fresh run; when N/2 requests have been answered the endpoint holds every further request
   (so the kill lands mid-run, with requests in flight, between answers), the client gets SIGKILL 0.3 s later;
   then a rerun on the same catalog against the healthy endpoint. `repeated` counts requests the endpoint
   answered in both runs: it must be 0;
3. kill mid-stream: the same, but SIGKILL as soon as N/2 answers are out, with answers still flowing. Answers
   the endpoint wrote in the last instant may not have been read (or journaled) by the client yet: those are
   sent again, and shown as `answered twice`. No client can avoid that window; it shows how wide it is.

Benchmarks are not pass/fail: the script prints figures and exits 0 unless a run failed outright.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MODEL = "bench-teacher"


# --- the endpoint ---------------------------------------------------------------------------------------

class Endpoint(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, latency: float, concurrency: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.latency, self.slots = latency, threading.BoundedSemaphore(concurrency)
        self.lock = threading.Lock()
        self.answered: Counter[str] = Counter()
        self.arrivals = 0
        self.hold_after: int | None = None  # arrivals after this many wait for `released`, then are dropped
        self.released = threading.Event()
        self.first: float | None = None
        self.last: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError | ValueError):  # a killed client: reset, half a body
            super().handle_error(request, client_address)

    def reset(self, hold_after: int | None = None) -> None:
        with self.lock:
            self.answered.clear()
            self.arrivals, self.first, self.last, self.hold_after = 0, None, None, hold_after
        self.released.clear()

    def heal(self) -> None:
        with self.lock:
            self.hold_after = None
        self.released.set()

    def total(self) -> int:
        with self.lock:
            return sum(self.answered.values())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as real servers do: no 40 ms wait on delayed ACKs
    server: Endpoint

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        endpoint = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        key = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"),
                                        ensure_ascii=False).encode()).hexdigest()
        with endpoint.lock:
            held = endpoint.hold_after is not None and endpoint.arrivals >= endpoint.hold_after
            endpoint.arrivals += 1
            endpoint.first = endpoint.first or time.perf_counter()
        if held:
            endpoint.released.wait(120)
            self.close_connection = True
            return
        with endpoint.slots:
            time.sleep(endpoint.latency)
            payload = json.dumps(_completion(key, body["model"])).encode()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                self.wfile.flush()
            except OSError:
                self.close_connection = True
                return
        with endpoint.lock:
            endpoint.answered[key] += 1
            endpoint.last = time.perf_counter()


def _completion(key: str, model: str) -> dict[str, Any]:
    content = "".join(f"[Question]\nWhat is item {key[:16]} number {i}?\n[Answer]\nIt is {key[16:32]}-{i}.\n[End]\n"
                      for i in range(3))
    return {"id": f"chatcmpl-{key[:12]}", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 60, "total_tokens": 160}}


# --- the client (a child process) -----------------------------------------------------------------------

def client(catalog: Path, url: str, requests: int, concurrency: int) -> None:
    """Runs the teacher generator over `requests` synthetic skill leaves; prints one JSON line."""
    started = time.perf_counter()
    sys.path.insert(0, str(REPO))
    import openai  # noqa: F401  (imported before the clock starts: start-up is reported apart)

    from builder.generators.base import GeneratorInput
    from builder.generators.teacher import TeacherConfig, TeacherGenerator
    from registry.catalog.connection import open_catalog
    from registry.catalog.generation import LeafInput, SeedRow

    leaves = [LeafInput(f"compositional_skills/bench/leaf_{n:05d}", f"v{n:05d}", "compositional_skill",
                        f"Bench task number {n}.",
                        [SeedRow(f"seed-{n}-{i}", i, None, f"Question {i} of leaf {n}?", f"Answer {i} of leaf {n}.")
                         for i in range(5)]) for n in range(requests)]
    config = TeacherConfig(url, MODEL, "bench", concurrency=concurrency, timeout=30.0)
    con = open_catalog(catalog)
    generator = TeacherGenerator()
    ready = time.perf_counter()
    samples = generator.generate(GeneratorInput(leaves, {}, 0, config, con, f"bench-{os.getpid()}"))
    done = time.perf_counter()
    con.close()
    print(json.dumps({"startup_s": ready - started, "generate_s": done - ready, "samples": len(samples),
                      **generator.report.as_dict()}), flush=True)


def start_client(catalog: Path, endpoint: Endpoint, requests: int, concurrency: int) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, "_client", str(catalog), endpoint.url, str(requests),
                             str(concurrency)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=os.environ | {"OMP_NUM_THREADS": "1"})


def finish(child: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = child.communicate(timeout=600)
    if child.returncode != 0:
        raise SystemExit(f"client failed ({child.returncode}):\n{err[-3000:]}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


# --- the measurements -----------------------------------------------------------------------------------

def round_trip(endpoint: Endpoint, n: int = 30) -> float:
    """Median seconds of one request at a time (stdlib http.client, keep-alive): latency + transport."""
    import http.client

    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "probe " * 300}], "seed": 0})
    connection = http.client.HTTPConnection("127.0.0.1", endpoint.server_address[1])
    times = []
    for i in range(n):
        started = time.perf_counter()
        connection.request("POST", "/v1/chat/completions", body.replace("probe", f"probe{i}", 1),
                           {"Content-Type": "application/json"})
        connection.getresponse().read()
        times.append(time.perf_counter() - started)
    connection.close()
    return statistics.median(times)


def throughput(endpoint: Endpoint, catalog: Path, requests: int, concurrency: int) -> dict[str, Any]:
    endpoint.reset()
    result = finish(start_client(catalog, endpoint, requests, concurrency))
    served = requests / ((endpoint.last or 0) - (endpoint.first or 0))
    return result | {"rate": requests / result["generate_s"], "endpoint_rps": served,
                     "repeated": sum(n - 1 for n in endpoint.answered.values())}


def kill_and_resume(endpoint: Endpoint, catalog: Path, args: argparse.Namespace, pause: bool) -> dict[str, Any]:
    half = args.requests // 2
    endpoint.reset(hold_after=half if pause else None)
    child = start_client(catalog, endpoint, args.requests, args.kill_concurrency)
    while endpoint.total() < half and child.poll() is None:
        time.sleep(0.001)
    if pause:
        time.sleep(0.3)
    child.send_signal(signal.SIGKILL)
    child.wait()
    before = Counter(endpoint.answered)
    in_flight = endpoint.arrivals - sum(before.values())
    endpoint.heal()
    time.sleep(3 * args.latency)  # what was in flight at the kill ends before the rerun starts
    endpoint.reset()
    rerun = finish(start_client(catalog, endpoint, args.requests, args.kill_concurrency))
    again = sum(1 for key in endpoint.answered if key in before)
    return {"answered_before_kill": sum(before.values()), "unanswered_in_flight": in_flight,
            "sent_by_rerun": endpoint.arrivals, "reused_by_rerun": rerun["requests_reused"], "repeated": again,
            "rerun_ok": rerun["requests_ok"], "samples": rerun["samples"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per answer (50 ms)")
    parser.add_argument("--endpoint-concurrency", type=int, default=8, help="C: requests the endpoint serves at once")
    parser.add_argument("--client-concurrency", type=int, nargs="+", default=None,
                        help="--teacher-concurrency values to measure [C and 2C]")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    c = args.endpoint_concurrency
    args.client_concurrency = args.client_concurrency or [c, 2 * c]
    args.kill_concurrency = args.client_concurrency[-1]
    capacity = c / args.latency
    endpoint = Endpoint(args.latency, c)
    threading.Thread(target=endpoint.serve_forever, daemon=True).start()
    rtt = round_trip(endpoint)
    print(f"teacher bench: {args.requests} requests; endpoint: {args.latency * 1000:.0f} ms per answer, at most {c} "
          f"at once -> capacity {capacity:.1f} requests/s; one request alone takes {rtt * 1000:.1f} ms here; "
          f"{os.cpu_count()} CPUs", flush=True)
    runs: dict[int, list[dict[str, Any]]] = {k: [] for k in args.client_concurrency}
    with tempfile.TemporaryDirectory(prefix="teacher-bench-") as tmp:
        work = Path(tmp)
        for i in range(args.repeat):  # interleaved: every repeat measures every concurrency
            for k in args.client_concurrency:
                runs[k].append(throughput(endpoint, work / f"full_{k}_{i}.duckdb", args.requests, k))
                print(f"  repeat {i + 1}, --teacher-concurrency {k}: {runs[k][-1]['rate']:.1f} requests/s", flush=True)
        paused = kill_and_resume(endpoint, work / "kill_paused.duckdb", args, pause=True)
        stream = kill_and_resume(endpoint, work / "kill_stream.duckdb", args, pause=False)
    endpoint.shutdown()
    report(args, capacity, rtt, runs, paused, stream)


def _cells(values: list[float], fmt: str) -> str:
    ordered = sorted(values)
    return f"{format(statistics.median(ordered), fmt)} ({format(ordered[0], fmt)}-{format(ordered[-1], fmt)})"


def report(args: argparse.Namespace, capacity: float, rtt: float, runs: dict[int, list[dict[str, Any]]],
           paused: dict[str, Any], stream: dict[str, Any]) -> None:
    width = 26
    print(f"\n{'median (min-max) of ' + str(args.repeat) + ' runs':<50}"
          + "".join(f"{'--teacher-concurrency ' + str(k):>{width}}" for k in runs))
    lines = (("generate(): requests/s", lambda r: r["rate"], ".1f"),
             (f"generate(): % of capacity ({capacity:.0f}/s)", lambda r: 100 * r["rate"] / capacity, ".1f"),
             ("generate(): seconds", lambda r: r["generate_s"], ".2f"),
             ("endpoint busy window: requests/s", lambda r: r["endpoint_rps"], ".1f"),
             ("client start-up and imports (apart): s", lambda r: r["startup_s"], ".2f"),
             ("requests answered twice", lambda r: r["repeated"], ".0f"))
    for label, value, fmt in lines:
        print(f"{label:<50}" + "".join(f"{_cells([value(r) for r in rs], fmt):>{width}}" for rs in runs.values()))
    print(f"{'ceiling from the round trip: k / ' + f'{rtt * 1000:.1f} ms':<50}"
          + "".join(f"{min(capacity, k / rtt):>{width}.1f}" for k in runs))
    print(f"\n{'kill -9 at ~50% then rerun (concurrency ' + str(args.kill_concurrency) + ')':<50}"
          f"{'answers paused':>{width}}{'mid-stream':>{width}}")
    for key, label in (("answered_before_kill", "answered before the kill"),
                       ("unanswered_in_flight", "in flight at the kill (never answered)"),
                       ("reused_by_rerun", "rerun: reused from the journal"),
                       ("sent_by_rerun", "rerun: requests sent"),
                       ("repeated", "repeated (answered in both runs)"),
                       ("samples", "rerun: samples")):
        print(f"{label:<50}{paused[key]:>{width}}{stream[key]:>{width}}")
    best = max(statistics.median(r["rate"] for r in rs) for rs in runs.values())
    verdict = "PASS" if best >= 0.9 * capacity and paused["repeated"] == 0 else "MISS"
    print(f"\ntarget: >= 90% of capacity and 0 repeated after a kill at ~50% -> {verdict} "
          f"(best median {100 * best / capacity:.1f}%, {paused['repeated']} repeated)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_client":
        client(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        main()
