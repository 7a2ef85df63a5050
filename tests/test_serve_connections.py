"""`taxreg serve` against connections that hold it up: idle and half-open sockets, heads and bodies sent a byte
at a time, more connections than it takes, malformed HTTP. The real server on 127.0.0.1, spoken to over sockets;
every answer the HTTP layer gives itself is OpenAI-shaped JSON."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.test_serve import TAXREG
from tests.test_serve_errors import LONG, engine, model_dir, port_of, send_and_leave, serving, wait_for

pytest.importorskip("starlette", reason="starlette is part of the onnx extra: pip install -e '.[dev]'")

__all__ = ["engine", "model_dir"]  # fixtures of this module too


def open_idle(url: str, count: int) -> list[socket.socket]:
    """`count` connections that never finish a request: every other one sends half a request line."""
    sockets = []
    for i in range(count):
        sock = socket.create_connection(("127.0.0.1", port_of(url)))
        if i % 2:
            sock.sendall(b"GET /v1/models HTTP/1.1\r\nHo")
        sockets.append(sock)
    return sockets


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed it (reading past any answer it sent first)."""
    sock.setblocking(False)
    try:
        while sock.recv(65536):
            pass
        return True
    except BlockingIOError:
        return False
    except ConnectionError:
        return True


def answer(sock: socket.socket, timeout: float = 10.0) -> tuple[int, dict[str, str], dict[str, Any]]:
    """(status, headers, JSON body) of the response the server sends before it closes the connection."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass  # the server closed with our bytes unread: what it sent first is still here
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body)


def get_models(url: str) -> tuple[int, dict[str, Any], float]:
    began = time.perf_counter()
    try:
        with urllib.request.urlopen(f"{url}/models", timeout=5) as response:
            return response.status, json.loads(response.read()), time.perf_counter() - began
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), time.perf_counter() - began


def test_idle_and_half_open_connections_are_capped_and_timed_out(engine: Any) -> None:
    with serving(engine, max_connections=50, idle_timeout=1.0, request_timeout=2.0) as (_, url):
        idle = open_idle(url, 200)
        # Past the cap each new connection closes the longest-idle one: 150 are closed at once.
        wait_for(lambda: sum(map(closed_by_server, idle)) >= 150, "the connections past the cap to be closed", 5)
        status, payload, seconds = get_models(url)
        assert status == 200 and payload["data"][0]["id"] == "demo" and seconds < 1.0
        # The other 50: the silent ones after the idle timeout, the half-sent ones after the head timeout (408).
        wait_for(lambda: all(map(closed_by_server, idle)), "every idle connection to be closed", 5)
        for sock in idle:
            sock.close()


def test_a_client_dripping_its_headers_is_cut_off_with_408(engine: Any) -> None:
    with serving(engine, request_timeout=1.0) as (_, url):
        sock = socket.create_connection(("127.0.0.1", port_of(url)))
        began = time.perf_counter()
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n")
        while time.perf_counter() - began < 5 and not closed_by_server(sock):
            try:
                sock.sendall(b"X")  # a header name, a byte every 0.3 s: each byte must not restart the clock
            except OSError:
                break
            time.sleep(0.3)
        seconds = time.perf_counter() - began
        assert 1.0 <= seconds < 2.5, seconds
        sock.close()
        # The same, read: the answer is a 408 in OpenAI's shape, and the connection is closed after it.
        sock = socket.create_connection(("127.0.0.1", port_of(url)))
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX")
        status, headers, body = answer(sock)
        assert (status, body["error"]["code"], headers["connection"]) == (408, "request_timeout", "close"), body
        assert "headers did not arrive within 1 s" in body["error"]["message"]
        assert set(body["error"]) == {"message", "type", "param", "code"}
        sock.close()


def test_a_body_that_trickles_in_is_refused_with_408(engine: Any) -> None:
    with serving(engine, request_timeout=1.0) as (service, url):
        sock = socket.create_connection(("127.0.0.1", port_of(url)))
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"model\": ")
        began = time.perf_counter()
        status, headers, body = answer(sock)
        assert (status, body["error"]["code"], headers["connection"]) == (408, "request_timeout", "close"), body
        assert "body did not arrive within 1 s" in body["error"]["message"] and time.perf_counter() - began < 3
        assert service.active == 0  # never admitted: it held no decoding slot
        sock.close()


def test_malformed_http_and_oversized_heads_get_json_errors(engine: Any) -> None:
    with serving(engine) as (_, url):
        sock = socket.create_connection(("127.0.0.1", port_of(url)))
        sock.sendall(b"NONSENSE\r\n\r\n")
        status, headers, body = answer(sock)
        assert (status, body["error"]["code"], headers["content-type"]) == (400, "invalid_http", "application/json")
        sock.close()
        sock = socket.create_connection(("127.0.0.1", port_of(url)))
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000)  # no end of head yet
        status, _, body = answer(sock)
        assert (status, body["error"]["code"]) == (431, "headers_too_large") and "16 KiB" in body["error"]["message"]
        sock.close()


def test_past_the_cap_with_every_connection_busy_the_answer_is_503_json(engine: Any) -> None:
    with serving(engine, workers=1, max_connections=2) as (service, url):
        busy = [send_and_leave(url, {"model": "demo", "prompt": "Tell me everything", **LONG}) for _ in range(2)]
        wait_for(lambda: service.active == 2, "the two requests to be admitted")
        status, payload, _ = get_models(url)
        assert (status, payload["error"]["code"], payload["error"]["type"]) == (503, "server_busy", "server_error")
        for sock in busy:
            sock.close()
        wait_for(lambda: service.active == 0, "the abandoned requests to stop")
        assert get_models(url)[0] == 200


def serve_limited(model_dir: Path, soft: int, hard: int, *options: str) -> subprocess.Popen[str]:
    """`taxreg serve` in a process that may open `soft` files (`hard` if it raises its own limit)."""
    limited = f"import resource; resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard})); {TAXREG[-1]}"
    return subprocess.Popen([*TAXREG[:-1], limited, "serve", str(model_dir), "--port", "0", *options],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)


def test_the_connection_cap_fits_the_open_file_limit(model_dir: Path) -> None:
    refused = serve_limited(model_dir, 1024, 1024, "--max-connections", "5000")
    _, stderr = refused.communicate(timeout=60)
    assert refused.returncode == 2 and "--max-connections 5000 needs" in stderr and "ulimit -n" in stderr, stderr
    raised = serve_limited(model_dir, 256, 4096)  # the default cap of 512 needs more than 256 files: raised to fit
    try:
        assert raised.stderr is not None and "serving" in raised.stderr.readline()
        limits = Path(f"/proc/{raised.pid}/limits").read_text()
        soft = int(next(line for line in limits.splitlines() if line.startswith("Max open files")).split()[3])
        assert soft >= 512
    finally:
        raised.terminate()
        raised.wait(timeout=10)
    bad = serve_limited(model_dir, 1024, 1024, "--idle-timeout", "0")
    _, stderr = bad.communicate(timeout=60)
    assert bad.returncode == 2 and "above 0 seconds" in stderr and "Traceback" not in stderr, stderr
