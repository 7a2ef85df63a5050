"""`taxreg serve` (an OpenAI-compatible HTTP server) and `taxreg chat` (a terminal conversation) over an
exported ONNX model folder."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from builder import console
from builder.cli.common import app, state
from builder.serve import Device
from registry.model_folder import DEMO_MARK

ModelDirArg = Annotated[Path, typer.Argument(
    help="An exported model folder (holds model.onnx), e.g. build/model/onnx or build/model/onnx-int8.")]
DeviceOpt = Annotated[Device, typer.Option("--device", help="auto (CUDA when onnxruntime-gpu offers it), cpu, cuda.")]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", min=1, help="onnxruntime intra-op threads "
                                                "(default: serve cores / workers, chat min(4, cores)).")]
LOOPBACK = ("127.0.0.1", "localhost", "::1")
CHAT_TEMPLATE_HINT = ("`taxreg chat` needs a model folder with a working chat template; without one, serve it with "
                      "`taxreg serve` and send plain prompts to /v1/completions")


class LogLevel(StrEnum):
    """uvicorn's log levels."""

    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    DEBUG = "debug"
    TRACE = "trace"


@app.command("serve")
def serve_command(
    model_dir: ModelDirArg,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (loopback only by default).")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port (0 picks a free one).")] = 8000,
    model_name: Annotated[str | None, typer.Option("--model-name", help="Model id clients ask for "
                                                                        "(default: the folder's name).")] = None,
    device: DeviceOpt = Device.AUTO,
    threads: ThreadsOpt = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=256, help="Requests decoded at once.")] = 4,
    max_waiting: Annotated[int, typer.Option("--max-waiting", min=0, help="Requests queued for a worker "
                                                                          "before 429.")] = 256,
    max_connections: Annotated[int, typer.Option("--max-connections", min=1, help="Open connections; past it the "
                                                 "longest-idle one is closed (503 when all are busy).")] = 512,
    idle_timeout: Annotated[float, typer.Option("--idle-timeout", help="Seconds a connection without a request in "
                                                                       "progress stays open.")] = 5.0,
    request_timeout: Annotated[float, typer.Option("--request-timeout", help="Seconds a request's headers, then its "
                                                                             "body, may take to arrive (else 408).")]
    = 10.0,
    log_level: Annotated[LogLevel, typer.Option("--log-level", help="uvicorn's: warning, info (with access "
                                                                    "log), debug...")] = LogLevel.WARNING,
) -> None:
    """Serve the model over HTTP: /v1/models, /v1/chat/completions, /v1/completions (OpenAI-compatible)."""
    from builder.serve.api import Limits, Service, listen, run
    from builder.serve.engine import Engine
    from builder.serve.text import ModelDirError

    with console.user_errors(state["debug"]):
        limits = Limits(workers, max_waiting, max_connections, idle_timeout, request_timeout)
        # Workers decode side by side: by default they share the cores rather than each asking for several.
        engine = Engine(model_dir, device, threads or max(1, (os.cpu_count() or 1) // workers))
        sock = listen(host, port, max_connections)
    service = Service(engine, model_name or model_dir.resolve().name, limits)
    bound = sock.getsockname()
    where = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    demo = " A DEMO model: answers carry no meaning." if engine.config.get(DEMO_MARK) else ""
    console.print_summary(
        f"serving {service.name} ({engine.provider}, context {engine.context_window} tokens, {workers} workers) "
        f"at http://{where}:{bound[1]}/v1.{demo}", False)
    if host not in LOOPBACK:
        console.print_summary(f"warning: listening on {host}: anyone who can reach it can use the model "
                              "(no authentication)", True)
    try:
        engine.codec.check_template()
    except ModelDirError as exc:  # plain prompts still work: serve them, and say what will not
        console.print_warning(f"{exc}: /v1/chat/completions will refuse requests; /v1/completions works")
    run(service, sock, log_level.value)


@app.command("chat")
def chat_command(
    model_dir: ModelDirArg,
    system: Annotated[str | None, typer.Option("--system", help="A system message opening the conversation.")]
    = None,
    temperature: Annotated[float, typer.Option("--temperature", min=0.0, max=2.0, help="0 is greedy.")] = 0.7,
    top_p: Annotated[float, typer.Option("--top-p", min=0.0, max=1.0, help="Nucleus sampling mass.")] = 1.0,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, help="Longest reply in tokens.")] = 256,
    seed: Annotated[int | None, typer.Option("--seed", help="Makes replies repeatable.")] = None,
    device: DeviceOpt = Device.AUTO,
    threads: ThreadsOpt = None,
) -> None:
    """Talk to the model in the terminal: each line is a turn; /reset forgets, /exit ends."""
    from builder.serve.chat import Conversation, converse
    from builder.serve.engine import Engine, Sampling
    from builder.serve.text import ModelDirError

    with console.user_errors(state["debug"]):
        sampling = Sampling(max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed)
        engine = Engine(model_dir, device, threads)
        try:
            engine.codec.check_template()
        except ModelDirError as exc:
            raise ModelDirError(str(exc), hint=CHAT_TEMPLATE_HINT) from None
        conversation = Conversation(engine, sampling, system)
        if sys.stdin.isatty():
            console.print_summary(f"chatting with {model_dir} ({engine.provider}); /reset forgets, /exit ends", False)
        converse(conversation, _lines(), _write)


def _write(text: str) -> None:
    """A piece of a reply, as it comes: no newline, no markup, no emoji codes."""
    console.out.print(text, end="", markup=False, highlight=False, emoji=False)


def _lines() -> Iterator[str]:
    """Lines typed at a prompt (with line editing) in a terminal, or read from a pipe. A line that is not text in
    the terminal's encoding is skipped with a one-line warning: guessing at its bytes would put words in the
    user's mouth."""
    if not sys.stdin.isatty():
        encoding = sys.stdin.encoding or "utf-8"
        for number, raw in enumerate(sys.stdin.buffer, 1):
            try:
                yield raw.decode(encoding)
            except UnicodeDecodeError as exc:
                console.print_warning(f"input line {number} is not {encoding} text ({exc.reason}); skipped")
        return
    while True:
        try:
            yield console.out.input("> ")
        except EOFError:
            return
        except UnicodeDecodeError as exc:
            console.print_warning(f"that line is not {exc.encoding} text ({exc.reason}); skipped")
