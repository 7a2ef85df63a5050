"""A fake OpenAI-compatible teacher and judge for the tests: real HTTP on 127.0.0.1, and the same answers written
to Batch API result files by another process (`python -m tests.fake_teacher REQUESTS RESULTS`).

`FakeTeacher` is a small server (`POST /v1/chat/completions`) in a thread: it answers deterministically
(`completion`): a teacher request in the `[Question] [Answer] [End]` block format, a judge request (its system
prompt is the judge's) with `criterion: N` scores, 5 for each pair but the third of a teacher answer, which gets 2.
It injects faults on request (429 with Retry-After, 500, a response slower than the client's timeout, a malformed
or truncated body, an answer that does not parse, a 400; a body dripped a byte at a time, one over the size limit
with or without its length, a gzip body, answers with a lone surrogate or control characters), can refuse every
request, can stop answering after K requests (dropping or holding the rest), and counts what it received and
answered per request key (the sha256 of the canonical request, as the client computes it), and the API keys it
was sent.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
import threading
import time
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from builder.generators.sending import request_sha256

MODEL = "fake-teacher-1"


class FakeTeacher:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.faults: deque[str] = deque()  # given to the next teacher requests, in order
        self.judge_faults: deque[str] = deque()  # ... and to the next judge requests
        self.roles: dict[str, str] = {}  # request key -> teacher | judge
        self.api_keys: Counter[str] = Counter()  # the bearer tokens requests carried
        self.received: Counter[str] = Counter()  # arrivals per request key
        self.answered: Counter[str] = Counter()  # 200 chat completions fully written, per key
        self.arrivals: list[tuple[float, str, str]] = []  # (time, key, fault)
        self.serve_limit: int | None = None  # arrivals after this many are not answered
        self.limit_role: str | None = None  # ... counting only this role's arrivals (None: every arrival)
        self.role_arrivals: Counter[str] = Counter()
        self.hold = False  # ... and are held until `released` (else the connection is dropped at once)
        self.released = threading.Event()
        self.retry_after = "1"
        self.slow_seconds = 1.0
        self.drip_seconds, self.drip_for = 0.2, 8.0  # a dripped body: a byte each 0.2 s for 8 s, then the rest
        self.refuse: str | None = None  # a status every request gets (e.g. "401")
        self.judge_refuse: str | None = None  # ... every judge request
        self.encodings: Counter[str] = Counter()  # the Accept-Encoding of the requests
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.fake = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def arrive(self, key: str, role: str) -> str:
        with self.lock:
            counted = len(self.arrivals) if self.limit_role is None else self.role_arrivals[role]
            over = self.serve_limit is not None and self.limit_role in (None, role) and counted >= self.serve_limit
            faults, refuse = (self.judge_faults, self.judge_refuse) if role == "judge" else (self.faults, None)
            fault = "over_limit" if over else self.refuse or refuse or (faults.popleft() if faults else "")
            self.received[key] += 1
            self.roles[key] = role
            self.role_arrivals[role] += 1
            self.arrivals.append((time.monotonic(), key, fault))
            return fault

    def heal(self) -> None:
        with self.lock:
            self.serve_limit = None
        self.released.set()

    def total_answered(self, role: str | None = None) -> int:
        with self.lock:
            return sum(n for key, n in self.answered.items() if role is None or self.roles[key] == role)

    def keys_of(self, role: str) -> set[str]:
        with self.lock:
            return {key for key, r in self.roles.items() if r == role}


def answer_text(key: str, twists: tuple[str, ...] = ("", "", "")) -> str:
    return "Here they are.\n\n" + "".join(
        f"[Question]\n  Question {key[:12]} number {i}?\n[Answer]\nAnswer {key[12:24]} number {i},{twist} in words."
        "\n[End]\n\n" for i, twist in enumerate(twists))


TWISTS = {"surrogate": ("\ud800", "", ""), "control": ("\x00", " \x1b[2J", "")}  # in the first answers of three
HUGE = 4 << 20  # bytes of an oversized body
JUDGE_SYSTEM = "You are a strict reviewer"  # how the judge's system prompt starts (judge_system_v1.j2)
LOW_SCORE = 2  # what the judge gives the third pair of every teacher answer ("number 2,"); the others get 5


def role_of(body: dict[str, Any]) -> str:
    return "judge" if body["messages"][0]["content"].startswith(JUDGE_SYSTEM) else "teacher"


def judge_text(body: dict[str, Any]) -> str:
    """`criterion: N` for every criterion the rubric names, as a judge that follows it answers."""
    prompt = body["messages"][-1]["content"]
    criteria = re.findall(r"^(\w+): a whole number from 1 to 5$", prompt, re.MULTILINE)
    answer = re.search(r"\[Answer\]\n(.*?)\n\[End\]", prompt, re.DOTALL)
    score = LOW_SCORE if answer and "number 2," in answer.group(1) else 5
    return "[Scores]\n" + "".join(f"{c}: {score}\n" for c in criteria) + f"[Reason]\nIt earns {score}.\n[End]\n"


def completion(body: dict[str, Any], key: str, fault: str = "") -> dict[str, Any]:
    """The chat completion the fake answers `body` with (live and in batch result files alike)."""
    if fault == "garbage":
        content = "I would rather not answer that."
    elif role_of(body) == "judge":
        content = judge_text(body)
    else:
        content = answer_text(key, TWISTS.get(fault, ("", "", "")))
    return {"id": f"chatcmpl-{key[:8]}", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def answer_batch(requests: Path, results: Path, fail: int = 0) -> None:
    """A Batch API request file answered as the server answers: one result line per request, in reverse order (a
    batch service keeps no order); the first `fail` requests get a 500."""
    lines = []
    for n, line in enumerate(requests.read_text(encoding="utf-8").splitlines()):
        request = json.loads(line)
        key = request_sha256(request["body"])
        assert (request["custom_id"], request["method"], request["url"]) == (key, "POST", "/v1/chat/completions")
        response = {"status_code": 500, "request_id": f"req-{n}", "body": {"error": {"message": "injected 500"}}} \
            if n < fail else {"status_code": 200, "request_id": f"req-{n}", "body": completion(request["body"], key)}
        lines.append(json.dumps({"id": f"batch_req_{n}", "custom_id": request["custom_id"], "response": response,
                                 "error": None}))
    results.write_text("".join(line + "\n" for line in reversed(lines)), encoding="utf-8")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as real servers do: no 40 ms wait on delayed ACKs

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        fake: FakeTeacher = self.server.fake  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        key = request_sha256(body)
        fault = fake.arrive(key, role_of(body))
        with fake.lock:
            fake.encodings[self.headers.get("Accept-Encoding", "")] += 1
            fake.api_keys[self.headers.get("Authorization", "").removeprefix("Bearer ")] += 1
        try:
            self._answer(fake, key, body, fault)
        except OSError:  # the client went away (timed out, or was killed)
            self.close_connection = True

    def _answer(self, fake: FakeTeacher, key: str, body: dict[str, Any], fault: str) -> None:
        if fault == "over_limit":
            if fake.hold:
                fake.released.wait(60)
            self.close_connection = True  # no response at all: the client sees a dropped connection
            return
        if fault in ("429", "500", "400"):
            headers = {"Retry-After": fake.retry_after} if fault == "429" else {}
            self._send(int(fault), json.dumps({"error": {"message": f"injected {fault}"}}).encode(), headers)
            return
        if fault == "401":  # raw control characters in the body: they must not reach the terminal
            self._send(401, b'{"error": {"message": "injected 401 \x1b[2J\x00"}}')
            return
        if fault.startswith("oversized"):
            self._oversized(declared=fault == "oversized_declared")
            return
        if fault == "malformed":
            self._send(200, b'{"choices": [{"message": ')
            return
        if fault == "truncated":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "4000")
            self.end_headers()
            self.wfile.write(b'{"id": "chatcmpl-1", "choices": [')
            self.wfile.flush()
            self.close_connection = True
            return
        if fault == "slow":
            time.sleep(fake.slow_seconds)
        payload = json.dumps(completion(body, key, fault)).encode()
        if fault == "drip":
            self._drip(fake, payload)
        elif fault == "gzip":
            self._send(200, gzip.compress(payload), {"Content-Encoding": "gzip"})
        else:
            self._send(200, payload)
        if fault != "slow":
            with fake.lock:
                fake.answered[key] += 1

    def _drip(self, fake: FakeTeacher, payload: bytes) -> None:
        """Each read the client makes gets a byte within its per-read timeout; the whole body takes `drip_for`."""
        self._head(200, len(payload))
        until, sent = time.monotonic() + fake.drip_for, 0
        while sent < len(payload) and time.monotonic() < until:
            self.wfile.write(payload[sent:sent + 1])
            self.wfile.flush()
            sent += 1
            time.sleep(fake.drip_seconds)
        self.wfile.write(payload[sent:])
        self.wfile.flush()

    def _oversized(self, declared: bool) -> None:
        """A body of HUGE bytes, its length declared or not (then it ends when the connection closes)."""
        self._head(200, HUGE if declared else None)
        self.close_connection = True
        block = b" " * (64 << 10)
        for _ in range(HUGE // len(block)):
            self.wfile.write(block)

    def _head(self, status: int, length: int | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if length is None:
            self.send_header("Connection", "close")
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()


if __name__ == "__main__":  # another process answering a batch: python -m tests.fake_teacher REQUESTS RESULTS [FAIL]
    answer_batch(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 0)
