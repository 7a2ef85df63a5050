"""How `taxreg serve` and `taxreg chat` meet bad input, broken model folders, full queues, clients that hang up
and a SIGTERM: each one a clear answer (4xx, or a 500 that blames the model folder), never a crash.

Most tests run the real server in this process (uvicorn on a free port of 127.0.0.1, spoken to over sockets) so
that they can fill its queue or watch its active requests; the rest run `taxreg` as a subprocess.
"""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from tests.test_serve import TAXREG, invoke, model_dir, post, start_server

pytestmark = pytest.mark.slow  # real models or whole builds: left out of `pytest -m "not slow"`

openai = pytest.importorskip("openai")
pytest.importorskip("starlette", reason="starlette is part of the onnx extra: pip install -e '.[dev]'")

__all__ = ["model_dir"]  # the exported demo model, a fixture of this module too

LONG = {"n": 16, "max_tokens": 1000, "temperature": 1.0, "seed": 1}  # about a second of decoding on one thread


@pytest.fixture(scope="module")
def engine(model_dir: Path) -> Any:
    from builder.serve.engine import Engine

    return Engine(model_dir, threads=1)


@contextmanager
def serving(engine: Any, workers: int = 2, max_waiting: int = 8, **connections: Any) -> Iterator[tuple[Any, str]]:
    """The real app under uvicorn in a thread: (its Service, its base URL). `connections`: the other Limits."""
    from builder.serve.api import Limits, Service, listen, server

    service = Service(engine, "demo", Limits(workers, max_waiting, **connections))
    sock = listen("127.0.0.1", 0)
    uvicorn_server = server(service, "warning")
    thread = threading.Thread(target=uvicorn_server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: uvicorn_server.started, "the server to start")
    try:
        yield service, f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    finally:
        uvicorn_server.should_exit = True
        thread.join(timeout=10)
        service.pool.shutdown(wait=True)


def wait_for(condition: Any, what: str, timeout: float = 10.0) -> float:
    """Seconds it took `condition()` to hold."""
    began = time.perf_counter()
    while not condition():
        if time.perf_counter() - began > timeout:
            pytest.fail(f"waited {timeout} s for {what}")
        time.sleep(0.01)
    return time.perf_counter() - began


def send_and_leave(url: str, body: dict[str, Any]) -> socket.socket:
    """A request whose client will hang up without reading the answer (close the returned socket)."""
    data = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", port_of(url)))
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
    return sock


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


def model_copy(model_dir: Path, tmp_path: Path, files: dict[str, str | None]) -> Path:
    """The exported folder with some files replaced (None: removed)."""
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    for name, text in files.items():
        if text is None:
            (copy / name).unlink()
        else:
            (copy / name).write_text(text, "utf-8")
    return copy


def without_template_config(model_dir: Path) -> str:
    config = json.loads((model_dir / "tokenizer_config.json").read_text("utf-8"))
    config.pop("chat_template")
    return json.dumps(config)


def test_a_tiny_temperature_is_greedy(engine: Any, model_dir: Path) -> None:
    with serving(engine) as (_, url):
        client = openai.OpenAI(base_url=url, api_key="none", max_retries=0)
        greedy = client.completions.create(model="demo", prompt="Birds live", max_tokens=12, temperature=0)
        for temperature in (5e-324, 1e-310):
            tiny = client.completions.create(model="demo", prompt="Birds live", max_tokens=12, temperature=temperature)
            assert tiny.choices[0].text == greedy.choices[0].text
            streamed = client.completions.create(model="demo", prompt="Birds live", max_tokens=12,
                                                 temperature=temperature, stream=True)
            assert "".join(c.choices[0].text for c in streamed if c.choices) == greedy.choices[0].text
    done = subprocess.run([*TAXREG, "chat", str(model_dir), "--temperature", "5e-324", "--max-tokens", "8"],
                          input="Hello\n", check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "error" not in done.stderr, done.stderr


def test_lone_surrogates_are_refused_by_field(engine: Any) -> None:
    with serving(engine) as (_, url):
        cases = [(f"{url}/completions", b'{"model": "demo", "prompt": "a\\ud800b"}', "prompt"),
                 (f"{url}/completions", b'{"model": "demo\\udfff", "prompt": "ab"}', "model"),
                 (f"{url}/chat/completions",
                  b'{"model": "demo", "messages": [{"role": "user", "content": "\\ud800"}]}', "messages.0.content")]
        for where, body, field in cases:
            status, payload = post(where, body)
            assert status == 400 and payload["error"]["code"] == "invalid_value", payload
            assert payload["error"]["message"].startswith(f"{field}: ") and "surrogate" in payload["error"]["message"]


def test_chat_skips_a_line_that_is_not_text(model_dir: Path) -> None:
    done = subprocess.run([*TAXREG, "chat", str(model_dir), "--max-tokens", "8", "--seed", "1"],
                          input=b"a\xff\xfeb\nHello\n", check=False, capture_output=True, timeout=60)
    stderr = done.stderr.decode()
    assert done.returncode == 0, stderr
    assert "input line 1" in stderr and "skipped" in stderr and "Traceback" not in stderr
    assert done.stdout.decode().count("\n") == 1  # the second line was answered


def test_a_full_server_says_429_to_streams_too(engine: Any) -> None:
    with serving(engine, workers=1, max_waiting=0) as (service, url):
        release = service.admit()  # the one slot, taken
        client = openai.OpenAI(base_url=url, api_key="none", max_retries=0)
        with pytest.raises(openai.RateLimitError) as refused:
            client.completions.create(model="demo", prompt="Hi", max_tokens=4, stream=True)
        assert refused.value.response.headers["Retry-After"] == "1"
        release()
        assert [c for c in client.completions.create(model="demo", prompt="Hi", max_tokens=4, stream=True)]
        wait_for(lambda: service.active == 0, "the stream's slot to be freed")


def test_decoding_stops_when_the_client_hangs_up(engine: Any) -> None:
    with serving(engine, workers=1) as (service, url):
        clients = [send_and_leave(url, {"model": "demo", "prompt": "Tell me everything", **LONG}) for _ in range(4)]
        wait_for(lambda: service.active == 4, "the requests to be admitted")
        for sock in clients:
            sock.close()
        # Left alone the four would decode one after another for about four seconds.
        assert wait_for(lambda: service.active == 0, "the abandoned requests to stop") < 1.0


def test_refusals_say_what_is_wrong(engine: Any) -> None:
    good_chat = {"model": "demo", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
    good_text = {"model": "demo", "prompt": "Hi", "max_tokens": 4}
    image = {"role": "user", "content": [{"type": "text", "text": "Look"},
                                         {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}
    cases: list[tuple[str, dict[str, Any] | bytes, str, str]] = [
        ("completions", {**good_text, "echo": True}, "echo", "not supported"),
        ("completions", {**good_text, "prompt": ""}, "prompt", "the prompt is empty"),
        ("completions", {**good_text, "prompt": [[]]}, "prompt", "the prompt is empty"),
        ("chat/completions", {**good_chat, "messages": [image]}, "messages",
         "content part type 'image_url' is not supported (only text)"),
        ("chat/completions", json.dumps(good_chat)[:-1].encode() + b', "temperature": NaN}', "temperature",
         "finite number"),
        ("completions", json.dumps(good_text)[:-1].encode() + b', "top_p": NaN}', "top_p", "finite number"),
        ("completions", {**good_text, "stream_options": {"include_usage": True}}, "stream_options",
         "only allowed when stream is true"),
        ("chat/completions", {**good_chat, "tools": [{"type": "function", "function": {"name": "f"}}]}, "tools",
         "not supported"),
        ("chat/completions", {**good_chat, "response_format": {"type": "json_object"}}, "response_format",
         "not supported"),
    ]
    with serving(engine) as (_, url):
        for path, body, param, words in cases:
            status, payload = post(f"{url}/{path}", body if isinstance(body, bytes) else json.dumps(body).encode())
            assert (status, payload["error"]["param"]) == (400, param), (body, payload)
            assert words in payload["error"]["message"] and "problems" not in payload["error"]["message"], payload
            assert payload["error"]["code"] == "invalid_value", payload
        assert post(f"{url}/chat/completions", {**good_chat, "response_format": {"type": "text"}})[0] == 200


def test_a_huge_prompt_is_refused_before_it_is_tokenized(engine: Any) -> None:
    with serving(engine) as (_, url):
        began = time.perf_counter()
        status, payload = post(f"{url}/completions", {"model": "demo", "prompt": "word " * (7 * 2**20 // 5)})
        assert (status, payload["error"]["code"]) == (400, "context_length_exceeded"), payload
        assert time.perf_counter() - began < 1.5  # tokenizing it would take seconds


def test_a_body_over_the_limit_is_refused_before_it_is_read(engine: Any) -> None:
    with serving(engine) as (_, url):
        port = port_of(url)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.putrequest("POST", "/v1/completions")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(600 * 2**20))
        connection.endheaders(b'{"model": "demo", ')  # the rest never comes: the answer must not wait for it
        response = connection.getresponse()
        assert response.status == 413 and "MiB" in json.loads(response.read())["error"]["message"]
        connection.close()

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is found while reading
            yield b'{"model": "demo", "prompt": "'
            yield from (b"x" * 2**20 for _ in range(9))

        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        with suppress(ConnectionError):  # the server may answer and close before the last chunk is sent
            connection.request("POST", "/v1/completions", body=chunks(), encode_chunked=True,
                               headers={"Content-Type": "application/json"})
        assert connection.getresponse().status == 413
        connection.close()


TEMPLATES = {  # chat_template.jinja -> (status of a chat request, words of its message)
    "{% for m in messages %}": (500, "does not compile"),
    "{{ messages + 1 }}": (500, "failed while rendering (TypeError"),
    "{{ raise_exception('roles must alternate') }}": (400, "the chat template refused the messages: roles must"),
}


@pytest.mark.parametrize("template", [*TEMPLATES, None])
def test_chat_template_faults_are_named(model_dir: Path, tmp_path: Path, template: str | None) -> None:
    from builder.serve.engine import Engine

    folder = model_copy(model_dir, tmp_path, {"chat_template.jinja": template} if template else
                        {"chat_template.jinja": None, "tokenizer_config.json": without_template_config(model_dir)})
    status, words = TEMPLATES[template] if template else (400, "no chat template: use /v1/completions")
    with serving(Engine(folder, threads=1)) as (_, url):
        got, payload = post(f"{url}/chat/completions", {"model": "demo", "max_tokens": 4,
                                                        "messages": [{"role": "user", "content": "Hi"}]})
        assert got == status and words in payload["error"]["message"], payload
        assert payload["error"]["type"] == ("server_error" if status == 500 else "invalid_request_error")
        if status == 500:
            assert "model folder's chat template is at fault" in payload["error"]["message"]
        assert post(f"{url}/completions", {"model": "demo", "prompt": "Hi", "max_tokens": 4})[0] == 200
    if template is None or "compile" in words:  # found at startup, before any request
        chat = invoke("chat", str(folder))
        assert chat.exit_code == 2 and "chat template" in chat.output and "taxreg serve" in chat.output
        process, _ = start_server(folder)
        assert process.stderr is not None
        warning = process.stderr.readline()
        process.terminate()
        process.wait(timeout=10)
        assert "warning" in warning and "/v1/completions works" in warning


def test_broken_folder_files_and_options_are_user_errors(model_dir: Path, tmp_path: Path) -> None:
    config = json.loads((model_dir / "config.json").read_text("utf-8"))
    broken = {"tokenizer.json": ("{not json", "tokenizer.json"),
              "config.json": (json.dumps({**config, "max_position_embeddings": "lots"}), "max_position_embeddings")}
    for name, (text, words) in broken.items():
        folder = model_copy(model_dir, tmp_path / name, {name: text})
        for command in ("serve", "chat"):
            result = invoke(command, str(folder), *(["--port", "0"] if command == "serve" else []))
            assert result.exit_code == 2 and words in result.output and name in result.output, result.output
            assert "report it" not in result.output, result.output
    bad_level = invoke("serve", str(model_dir), "--port", "0", "--log-level", "nonsense")
    assert bad_level.exit_code == 2 and "nonsense" in bad_level.output and "serving" not in bad_level.output


def test_the_sampling_rules_live_with_sampling_not_the_cli(model_dir: Path) -> None:
    from builder.serve.engine import BadSampling, Sampling

    for top_p in (0.0, -0.5, 1.5):
        with pytest.raises(BadSampling, match="top_p must be above 0 and at most 1"):
            Sampling(top_p=top_p)
    assert Sampling(top_p=1.0).top_p == 1.0
    result = invoke("chat", str(model_dir), "--top-p", "0")
    assert result.exit_code == 2 and "top_p must be above 0" in result.output and "1 keeps every token" in result.output


def test_sigterm_during_requests_shuts_down_quietly(model_dir: Path) -> None:
    process, url = start_server(model_dir, "--model-name", "demo", "--workers", "1", "--threads", "1")
    statuses: list[int] = []

    def ask() -> None:
        statuses.append(post(f"{url}/completions", {"model": "demo", "prompt": "Tell me everything", **LONG})[0])

    askers = [threading.Thread(target=ask) for _ in range(8)]  # about eight seconds of work in line
    for asker in askers:
        asker.start()

    def active() -> int:
        with urllib.request.urlopen(url.removesuffix("/v1") + "/health", timeout=5) as response:
            return int(json.loads(response.read())["active"])

    wait_for(lambda: active() == 8, "the requests to be admitted")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=4) in (0, -signal.SIGTERM)  # not the five seconds of a timed-out graceful stop
    for asker in askers:
        asker.join(timeout=10)
    assert process.stderr is not None
    stderr = process.stderr.read()
    assert "Traceback" not in stderr and "CancelledError" not in stderr, stderr
    assert statuses == [503] * 8
