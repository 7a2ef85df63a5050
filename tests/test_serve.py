"""`taxreg serve` and `taxreg chat` on the real chain: `taxreg model init` -> `taxreg export` -> onnxruntime.

The server runs as a subprocess on a free port of 127.0.0.1 and is spoken to with the real `openai` client and
raw HTTP; the teacher generator runs against it end to end.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from builder.cli import app
from registry.catalog.query import run_query
from tests.conftest import EXAMPLE_TAXONOMY, TaxonomyMaker, skill_yaml

pytestmark = pytest.mark.slow  # real models or whole builds: left out of `pytest -m "not slow"`

openai = pytest.importorskip("openai")
pytest.importorskip("onnxruntime", reason="onnxruntime is part of the project's dependencies: pip install -e '.[dev]'")
pytest.importorskip("starlette", reason="starlette is part of the onnx extra: pip install -e '.[dev]'")

CONTEXT = 1024
TAXREG = [sys.executable, "-c", "from builder.cli import main; main()"]


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo model, shrunk for speed, exported by `taxreg export` (fp32; the parity gate passed)."""
    root = tmp_path_factory.mktemp("serve")
    init = invoke("model", "init", "--out", str(root / "base"), "--taxonomy", str(EXAMPLE_TAXONOMY),
                  "--hidden", "64", "--layers", "2", "--heads", "4", "--kv-heads", "2", "--intermediate", "128",
                  "--vocab", "1024", "--context", str(CONTEXT))
    assert init.exit_code == 0, init.output
    (root / "none").mkdir()  # a dataset folder without a test split: the fixed parity prompts
    export = invoke("export", "--base-model", str(root / "base"), "--no-adapter", "--out", str(root / "model"),
                    "--catalog", str(root / "catalog.duckdb"), "--dataset", str(root / "none"), "--prompts", "2",
                    "--greedy-tokens", "4")
    assert export.exit_code == 0, export.output
    return root / "model" / "onnx"


def start_server(model_dir: Path, *options: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([*TAXREG, "serve", str(model_dir), "--port", "0", *options],
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert process.stderr is not None
    line = process.stderr.readline()  # the first line says where it listens; it is printed once bound
    if "serving" not in line:
        process.kill()
        pytest.fail(f"the server did not start: {line}{process.stderr.read()}")
    url = line.split(" at ")[1].split("/v1")[0] + "/v1"
    for _ in range(100):  # uvicorn accepts connections a moment after the line
        try:
            urllib.request.urlopen(f"{url}/models", timeout=1).close()
            return process, url
        except OSError:
            time.sleep(0.05)
    process.kill()
    pytest.fail("the server never answered /v1/models")


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[str]:
    process, url = start_server(model_dir, "--model-name", "demo", "--workers", "4", "--threads", "1")
    yield url
    process.terminate()
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal so the exit status tells why.
    assert process.wait(timeout=10) in (0, -signal.SIGTERM)


@pytest.fixture(scope="module")
def client(server: str) -> Any:
    return openai.OpenAI(base_url=server, api_key="none", max_retries=0)


def post(url: str, body: bytes | dict[str, Any]) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def chat(client: Any, **extra: Any) -> Any:
    return client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "Where do birds live?"}],
                                          **extra)


def test_models_list_the_served_model(client: Any, server: str) -> None:
    assert [m.id for m in client.models.list().data] == ["demo"]
    assert client.models.retrieve("demo").owned_by == "taxreg"


def test_chat_template_and_tokens_match_transformers(model_dir: Path) -> None:
    from transformers import PreTrainedTokenizerFast

    from builder.serve.text import TextCodec

    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Héllo, wörld 日本?"},
                {"role": "assistant", "content": "Hi."}, {"role": "user", "content": "Again <|end_of_text|>"}]
    reference = PreTrainedTokenizerFast.from_pretrained(model_dir)
    codec = TextCodec(model_dir)
    text = codec.render_chat(messages)
    assert text == reference.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = reference.apply_chat_template(messages, tokenize=True, add_generation_prompt=True, return_dict=True)
    assert codec.encode(text) == ids["input_ids"]


def test_kv_cache_decoding_matches_full_recomputation(model_dir: Path) -> None:
    import numpy as np

    from builder.serve.engine import Engine, Sampling

    engine = Engine(model_dir, threads=1)
    ids = engine.prompt_ids("What is a taxonomy?")
    cached = engine.complete(ids, Sampling(max_tokens=12, temperature=0))
    sequence = list(ids)
    for _ in range(12):  # no cache: the whole sequence each step, with an empty past
        logits, _ = engine._step(np.asarray([sequence], dtype=np.int64), engine._empty_past(), 0)
        sequence.append(int(np.argmax(logits[0])))
        if sequence[-1] in engine.eos:
            break
    assert cached.texts[0] == engine.codec.decode(sequence[len(ids):])
    assert cached.tokens[0] == len(sequence) - len(ids)


def test_a_cancelled_generation_stops_and_a_full_server_says_429(model_dir: Path) -> None:
    from builder.serve.api import ApiError, Limits, Service
    from builder.serve.engine import Delta, Engine, Sampling

    engine = Engine(model_dir, threads=1)
    ids = engine.prompt_ids("Tell me everything.")
    events: list[Any] = []
    for event in engine.generate(ids, Sampling(max_tokens=500, temperature=1.0, seed=1), lambda: len(events) >= 3):
        events.append(event)
    assert len(events) == 3 and all(isinstance(e, Delta) for e in events)  # no Finished: it was cut off

    service = Service(engine, "demo", Limits(workers=1, max_waiting=1))
    with service.admitted(), service.admitted(), pytest.raises(ApiError) as full, service.admitted():
        pass
    assert full.value.status == 429 and full.value.body()["error"]["type"] == "rate_limit_error"
    assert service.active == 0

    async def first_then_leave() -> None:  # a client that goes away: its worker must stop, its slot free up
        stream = service.events([ids], Sampling(max_tokens=900, temperature=1.0, seed=2))
        await anext(stream)
        await stream.aclose()

    asyncio.run(first_then_leave())
    assert service.active == 0
    began = time.perf_counter()
    service.pool.shutdown(wait=True)
    assert time.perf_counter() - began < 1.0


def test_chat_completion_streamed_and_not(client: Any, model_dir: Path) -> None:
    from transformers import PreTrainedTokenizerFast

    whole = chat(client, max_tokens=24, temperature=0.9, seed=7)
    choice = whole.choices[0]
    assert whole.object == "chat.completion" and whole.model == "demo"
    assert choice.message.role == "assistant" and choice.finish_reason in ("stop", "length")
    tokenizer = PreTrainedTokenizerFast.from_pretrained(model_dir)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Where do birds live?"}], tokenize=True,
                                           add_generation_prompt=True, return_dict=True)["input_ids"]
    assert whole.usage.prompt_tokens == len(prompt)
    assert 1 <= whole.usage.completion_tokens <= 24
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens

    chunks = list(chat(client, max_tokens=24, temperature=0.9, seed=7, stream=True,
                       stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == choice.message.content  # the same seed gives the same text, streamed or not
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == choice.finish_reason
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_seed_n_and_stop_strings(client: Any) -> None:
    def complete(**extra: Any) -> Any:
        return client.completions.create(model="demo", prompt="Chickadees live in", **extra)

    first = complete(max_tokens=32, temperature=1.0, seed=11, n=2)
    again = complete(max_tokens=32, temperature=1.0, seed=11, n=2)
    other = complete(max_tokens=32, temperature=1.0, seed=12, n=2)
    texts = [c.text for c in sorted(first.choices, key=lambda c: c.index)]
    assert [c.index for c in first.choices] == [0, 1] and len(texts) == 2
    assert texts == [c.text for c in sorted(again.choices, key=lambda c: c.index)]
    assert texts != [c.text for c in sorted(other.choices, key=lambda c: c.index)]
    assert 2 <= first.usage.completion_tokens <= 64 and first.usage.prompt_tokens > 0

    single = complete(max_tokens=32, temperature=1.0, seed=5).choices[0]
    assert len(single.text) >= 8, single.text
    stop = single.text[4:7]
    cut = single.text[:single.text.index(stop)]
    stopped = complete(max_tokens=32, temperature=1.0, seed=5, stop=[stop, "\x00never"]).choices[0]
    assert (stopped.text, stopped.finish_reason) == (cut, "stop")
    deltas = [c.choices[0].text for c in complete(max_tokens=32, temperature=1.0, seed=5, stop=stop, stream=True)
              if c.choices]
    assert "".join(deltas) == cut and not any(stop in d for d in deltas)  # held back, then cut


def test_refusals_are_openai_json_errors(server: str, client: Any) -> None:
    chat_url = f"{server}/chat/completions"
    good = {"model": "demo", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
    cases: list[tuple[str, bytes | dict[str, Any], int, str]] = [
        (chat_url, b'{"model": "demo", "messages": [', 400, "not valid JSON"),
        (chat_url, b"[1, 2]", 400, "JSON object"),
        (chat_url, {**good, "model": "gpt-9"}, 404, "does not exist"),
        (chat_url, {**good, "max_tokens": -1}, 400, "max_tokens"),
        (chat_url, {**good, "temperature": 5}, 400, "temperature"),
        (chat_url, {**good, "top_p": 0}, 400, "top_p"),
        (chat_url, {**good, "top_p": 1.5}, 400, "top_p"),
        (chat_url, {**good, "n": 10_000}, 400, "n"),
        (chat_url, {**good, "stop": ["a", "b", "c", "d", "e"]}, 400, "stop"),
        (chat_url, {**good, "seed": "x"}, 400, "seed"),
        (chat_url, {**good, "messages": []}, 400, "messages"),
        (chat_url, {**good, "messages": [{"role": "wizard", "content": "x"}]}, 400, "messages"),
        (chat_url, {**good, "messages": [{"role": "user", "content": "word " * 2000}]}, 400, "context window"),
        (f"{server}/completions", {"model": "demo", "prompt": [5_000_000]}, 400, "token ids"),
        (f"{server}/completions", {"model": "demo"}, 400, "prompt"),
        (f"{server}/nowhere", good, 404, "Not Found"),
    ]
    for url, body, status, words in cases:
        got, payload = post(url, body)
        assert got == status, (body, payload)
        assert words in payload["error"]["message"] and payload["error"]["type"], payload
    with pytest.raises(openai.BadRequestError) as refused:
        chat(client, max_tokens=4, temperature=3)
    assert refused.value.body["param"] == "temperature"
    assert post(chat_url, good)[0] == 200  # still serving


def test_32_concurrent_clients(server: str) -> None:
    async def one(client: Any, i: int) -> str:
        messages = [{"role": "user", "content": f"Question {i}?"}]
        if i % 2:
            stream = await client.chat.completions.create(model="demo", messages=messages, max_tokens=16, seed=i,
                                                          stream=True)
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        done = await client.chat.completions.create(model="demo", messages=messages, max_tokens=16, seed=i)
        return str(done.choices[0].message.content)

    async def main() -> list[str]:
        async with openai.AsyncOpenAI(base_url=server, api_key="none", max_retries=0, timeout=60) as client:
            return await asyncio.gather(*(one(client, i) for i in range(32)))

    texts = asyncio.run(main())
    assert len(texts) == 32 and all(isinstance(t, str) for t in texts)
    assert len(set(texts)) > 1


def test_served_model_is_a_teacher(server: str, make_taxonomy: TaxonomyMaker, tmp_path: Path) -> None:
    root = make_taxonomy({"compositional_skills/writing/poems/qna.yaml": skill_yaml(),
                          "compositional_skills/writing/lists/qna.yaml": skill_yaml(prefix="List")})
    catalog = str(tmp_path / "catalog.duckdb")
    assert invoke("index", str(root), "--catalog", catalog).exit_code == 0
    result = invoke("generate", str(root), "--catalog", catalog, "--generator", "teacher", "--teacher-url", server,
                    "--teacher-model", "demo", "--teacher-max-tokens", "48", "--teacher-concurrency", "8")
    assert result.exit_code == 0, result.output
    statuses = run_query(Path(catalog), "SELECT status, count(*), any_value(response) FROM teacher_request "
                                        "GROUP BY status").rows
    assert [(s, n) for s, n, _ in statuses] == [("ok", 2)]
    assert json.loads(statuses[0][2])["choices"][0]["message"]["role"] == "assistant"


def test_chat_reads_stdin_keeps_history_and_resets(model_dir: Path) -> None:
    from builder.serve.chat import Conversation
    from builder.serve.engine import Engine, Sampling

    typed = "Hello there\nAnd then?\n/reset\nHello there\n/exit\nnever read\n"
    done = subprocess.run([*TAXREG, "chat", str(model_dir), "--seed", "3", "--max-tokens", "12"], input=typed,
                          check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    conversation = Conversation(Engine(model_dir, threads=1), Sampling(max_tokens=12, temperature=0.7, seed=3))
    first, follow = "".join(conversation.reply("Hello there")), "".join(conversation.reply("And then?"))
    assert len(conversation.history) == 4
    # After /reset the same question gets the same answer as at first: the history is gone.
    assert done.stdout == f"{first}\n{follow}\n(conversation reset)\n{first}\n"


def test_device_and_folder_errors_exit_2(model_dir: Path, tmp_path: Path) -> None:
    import onnxruntime

    from builder.serve import Device
    from builder.serve.engine import Engine

    assert Engine(model_dir, Device.CPU).provider == "CPUExecutionProvider"
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        assert Engine(model_dir, Device.AUTO).provider == "CPUExecutionProvider"
        cuda = invoke("serve", str(model_dir), "--device", "cuda", "--port", "0")
        assert cuda.exit_code == 2 and "CUDAExecutionProvider" in cuda.output and "onnxruntime-gpu" in cuda.output
    not_a_model = invoke("serve", str(model_dir.parent), "--port", "0")
    assert not_a_model.exit_code == 2 and "build/model/onnx" in not_a_model.output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = invoke("serve", str(model_dir), "--port", str(taken.getsockname()[1]))
    assert busy.exit_code == 2 and "cannot listen" in busy.output and "Traceback" not in busy.output
