"""The OpenAI-compatible HTTP API over an Engine (Starlette; run by uvicorn).

`/v1/models`, `/v1/chat/completions` and `/v1/completions`, streamed (server-sent events ending `data: [DONE]`) or
not. Requests are validated by the models of builder/serve/requests.py; every refusal is a 4xx JSON body in
OpenAI's error shape (`{"error": {"message", "type", "param", "code"}}`), never a dropped connection; a 500 (same
shape) is reserved for faults of the server or its model folder (a chat template that fails).

Decoding runs in a bounded pool of threads (one request per thread; onnxruntime sessions run concurrently), so the
event loop only moves bytes. Requests beyond the pool wait in line; beyond `max_waiting` of them, 429 with
`Retry-After` (the teacher generator and the openai client retry those), streamed or not: a request is admitted
before its response starts. Decoding stops when its client goes away and when the server is asked to stop.
Connections (how many, how long idle, how slow a request may arrive) are bounded by builder/serve/connections.py.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from builder.serve.engine import Completion, Delta, EmptyPrompt, Engine, Event, PromptTooLong, Sampling
from builder.serve.requests import (
    ApiError,
    ChatRequest,
    CompletionRequest,
    parse,
    read_json,
)
from builder.serve.text import NoChatTemplate, TemplateBroken, TemplateRefused
from registry.errors import RegistryError

if TYPE_CHECKING:
    import uvicorn

# --- the service ----------------------------------------------------------------------------------------

@dataclass
class Limits:
    """What the server takes on: requests (decoding, waiting) and connections (how many, how long idle or slow)."""

    workers: int = 4  # requests decoding at once
    max_waiting: int = 256  # requests waiting for a worker before 429
    max_connections: int = 512  # open connections (with room to spare within the usual 1024-file limit)
    idle_timeout: float = 5.0  # seconds a connection without a request in progress is kept (uvicorn's keep-alive)
    request_timeout: float = 10.0  # seconds a request's headers, and then its body, may take to arrive

    def __post_init__(self) -> None:
        if min(self.workers, self.max_connections) < 1 or self.max_waiting < 0:
            raise RegistryError("workers and max_connections must be at least 1, max_waiting at least 0")
        if min(self.idle_timeout, self.request_timeout) <= 0:
            raise RegistryError("idle_timeout and request_timeout must be above 0 seconds",
                                hint="e.g. --idle-timeout 5 --request-timeout 10")


class Service:
    """The engine behind a bounded thread pool, and the shapes of OpenAI's answers."""

    def __init__(self, engine: Engine, name: str, limits: Limits) -> None:
        self.engine, self.name, self.limits = engine, name, limits
        self.pool = ThreadPoolExecutor(limits.workers, thread_name_prefix="decode")
        self.created = int(time.time())
        self.active = 0  # admitted requests not yet finished (event loop only: no lock needed)
        self.stopping = threading.Event()  # set when the server is asked to stop: decoding ends early

    def admit(self) -> Callable[[], None]:
        """Takes a slot or refuses with 429; returns what frees the slot (once, however often it is called)."""
        if self.active >= self.limits.workers + self.limits.max_waiting:
            raise ApiError(429, f"the server is busy ({self.active} requests in progress); retry shortly",
                           code="rate_limit_exceeded", kind="rate_limit_error")
        self.active += 1
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                self.active -= 1

        return release

    @contextmanager
    def admitted(self) -> Iterator[None]:
        release = self.admit()
        try:
            yield
        finally:
            release()

    def check_model(self, model: str) -> None:
        if model != self.name:
            raise ApiError(404, f"The model '{model}' does not exist; this server serves '{self.name}'",
                           param="model", code="model_not_found")

    async def prepare(self, make: Callable[[], list[list[int]]], param: str) -> list[list[int]]:
        """Prompt token ids, off the event loop (templates and tokenizing take time on long prompts)."""
        try:
            return await asyncio.to_thread(make)
        except PromptTooLong as exc:
            raise ApiError(400, f"{exc}: {exc.hint}", param=param, code="context_length_exceeded") from None
        except EmptyPrompt as exc:
            raise ApiError(400, str(exc), param=param, code="invalid_value") from None
        except TemplateRefused as exc:
            raise ApiError(400, f"the chat template refused the messages: {exc}", param=param) from None
        except TemplateBroken as exc:
            raise _template_fault(exc) from None

    async def complete(self, request: Request, prompts: list[list[int]], sampling: Sampling) -> list[Completion]:
        """Decodes every prompt; stops early (and answers nobody) when the client goes away or the server stops."""
        loop = asyncio.get_running_loop()
        gone = threading.Event()
        with self.admitted():
            watch = asyncio.create_task(_until_disconnected(request, gone))
            try:
                done = await loop.run_in_executor(self.pool, lambda: [
                    self.engine.complete(ids, sampling, lambda: gone.is_set() or self.stopping.is_set())
                    for ids in prompts])
            finally:
                watch.cancel()
        self.check_running()
        return done

    def check_running(self) -> None:
        """After decoding: answers that stopping cut short are refused rather than passed off as complete."""
        if self.stopping.is_set():
            raise ApiError(503, "the server is shutting down; retry on another or after it restarts",
                           kind="server_error")

    async def events(self, prompts: list[list[int]], sampling: Sampling) -> AsyncGenerator[tuple[int, Event], None]:
        """(prompt index, event) as the worker decodes; the worker stops when the client goes away or the server
        stops. The caller admits the request (before its response starts, so that a full server can say 429)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[int, Event] | BaseException | None] = asyncio.Queue()
        cancelled = threading.Event()

        def put(item: tuple[int, Event] | BaseException | None) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop closed (server shutting down): nobody is listening
                cancelled.set()

        def work() -> None:
            try:
                for p, ids in enumerate(prompts):
                    for event in self.engine.generate(ids, sampling,
                                                      lambda: cancelled.is_set() or self.stopping.is_set()):
                        put((p, event))
            except Exception as exc:
                put(exc)
            finally:
                put(None)

        loop.run_in_executor(self.pool, work)
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancelled.set()
        self.check_running()

    def usage(self, completions: list[Completion]) -> dict[str, int]:
        prompt = sum(c.prompt_tokens for c in completions)
        generated = sum(sum(c.tokens) for c in completions)
        return {"prompt_tokens": prompt, "completion_tokens": generated, "total_tokens": prompt + generated}


# --- the server ----------------------------------------------------------------------------------------

def listen(host: str, port: int, max_connections: int = Limits.max_connections) -> socket.socket:
    """A bound socket (port 0 picks a free one) in a process that may hold `max_connections` at once: a taken port
    or too low an open-file limit is a clear error before anything starts."""
    from builder.serve.connections import reserve_open_files

    reserve_open_files(max_connections)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise RegistryError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                            hint="pick another --port (0 picks a free one) or --host") from None
    return sock


def run(service: Service, sock: socket.socket, log_level: str) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM end it gracefully)."""
    server(service, log_level).run(sockets=[sock])


def server(service: Service, log_level: str) -> uvicorn.Server:
    """uvicorn over the app, with the connection limits of builder/serve/connections.py; asked to stop, it first
    stops decoding, so requests in flight end within a step."""
    import uvicorn

    from builder.serve.connections import ACCEPT_BATCH, MAX_HEAD, protocol_for

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            service.stopping.set()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(create_app(service), log_level=log_level, access_log=log_level in ("info", "debug"),
                            timeout_graceful_shutdown=5, http=protocol_for(service.limits),
                            h11_max_incomplete_event_size=MAX_HEAD, backlog=ACCEPT_BATCH)
    return Server(config)


# --- endpoints ------------------------------------------------------------------------------------------

def create_app(service: Service) -> Starlette:
    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [_model_card(service)]})

    async def model(request: Request) -> Response:
        service.check_model(request.path_params["model"])
        return JSONResponse(_model_card(service))

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "model": service.name, "active": service.active})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        service.pool.shutdown(wait=False, cancel_futures=True)

    routes = [Route("/v1/models", models), Route("/v1/models/{model:path}", model), Route("/health", health),
              Route("/v1/chat/completions", _chat_endpoint(service), methods=["POST"]),
              Route("/v1/completions", _completion_endpoint(service), methods=["POST"])]
    handlers: dict[Any, Any] = {ApiError: _api_error, HTTPException: _http_error, Exception: _unexpected}
    return Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)


def _chat_endpoint(service: Service) -> Callable[[Request], Any]:
    async def chat(request: Request) -> Response:
        body = parse(ChatRequest, await read_json(request, service.limits.request_timeout))
        service.check_model(body.model)
        _check_template(service.engine)
        messages = [m.plain() for m in body.messages]
        prompts = await service.prepare(
            lambda: [service.engine.prompt_ids(service.engine.codec.render_chat(messages))], "messages")
        sampling = body.sampling(body.max_completion_tokens or body.max_tokens)
        shape = _Shape(service.name, "chat.completion", "chatcmpl", sampling.n)
        if body.stream:
            return _Stream(_chat_chunks(service, shape, prompts, sampling, body.include_usage()), service.admit())
        completions = await service.complete(request, prompts, sampling)
        choices = [{"index": i, "message": {"role": "assistant", "content": text}, "logprobs": None,
                    "finish_reason": reason}
                   for i, (text, reason) in enumerate(zip(completions[0].texts, completions[0].reasons, strict=True))]
        return JSONResponse({**shape.head(), "choices": choices, "usage": service.usage(completions)})

    return chat


def _completion_endpoint(service: Service) -> Callable[[Request], Any]:
    async def completions(request: Request) -> Response:
        body = parse(CompletionRequest, await read_json(request, service.limits.request_timeout))
        service.check_model(body.model)
        prompt = body.prompt
        items: list[Any] = prompt if isinstance(prompt, list) and isinstance(prompt[0], str | list) else [prompt]
        engine = service.engine
        prompts = await service.prepare(lambda: [engine.prompt_ids(p) if isinstance(p, str) else _ids(engine, p)
                                                 for p in items], "prompt")
        sampling = body.sampling(body.max_tokens or 16)  # OpenAI's default for completions
        shape = _Shape(service.name, "text_completion", "cmpl", sampling.n)
        if body.stream:
            return _Stream(_text_chunks(service, shape, prompts, sampling, body.include_usage()), service.admit())
        done = await service.complete(request, prompts, sampling)
        choices = [{"index": p * sampling.n + i, "text": text, "logprobs": None, "finish_reason": reason}
                   for p, c in enumerate(done) for i, (text, reason) in enumerate(zip(c.texts, c.reasons, strict=True))]
        return JSONResponse({**shape.head(), "choices": choices, "usage": service.usage(done)})

    return completions


@dataclass
class _Shape:
    model: str
    object: str
    prefix: str
    n: int

    def __post_init__(self) -> None:
        self.id, self.created = f"{self.prefix}-{uuid.uuid4().hex}", int(time.time())

    def head(self, suffix: str = "") -> dict[str, Any]:
        return {"id": self.id, "object": self.object + suffix, "created": self.created, "model": self.model,
                "system_fingerprint": None}


async def _chat_chunks(service: Service, shape: _Shape, prompts: list[list[int]], sampling: Sampling,
                       include_usage: bool) -> AsyncIterator[dict[str, Any]]:
    head = shape.head(".chunk")
    yield {**head, "choices": [{"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                                "finish_reason": None} for i in range(shape.n)]}
    tokens = 0
    async for _, event in service.events(prompts, sampling):
        if isinstance(event, Delta):
            choice = {"index": event.choice, "delta": {"content": event.text}, "logprobs": None, "finish_reason": None}
        else:
            tokens += event.tokens
            choice = {"index": event.choice, "delta": {}, "logprobs": None, "finish_reason": event.reason}
        yield {**head, "choices": [choice]}
    if include_usage:
        yield {**head, "choices": [], "usage": _usage(len(prompts[0]), tokens)}


async def _text_chunks(service: Service, shape: _Shape, prompts: list[list[int]], sampling: Sampling,
                       include_usage: bool) -> AsyncIterator[dict[str, Any]]:
    head = shape.head()
    tokens = 0
    async for p, event in service.events(prompts, sampling):
        index = p * sampling.n + event.choice
        if isinstance(event, Delta):
            choice = {"index": index, "text": event.text, "logprobs": None, "finish_reason": None}
        else:
            tokens += event.tokens
            choice = {"index": index, "text": "", "logprobs": None, "finish_reason": event.reason}
        yield {**head, "choices": [choice]}
    if include_usage:
        yield {**head, "choices": [], "usage": _usage(sum(len(ids) for ids in prompts), tokens)}


class _Stream(StreamingResponse):
    """Server-sent events of an admitted request; its slot is freed when the response ends, however it ends."""

    def __init__(self, chunks: AsyncIterator[dict[str, Any]], release: Callable[[], None]) -> None:
        super().__init__(_sse_lines(chunks), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        self.release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.release()


async def _sse_lines(chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    try:
        async for chunk in chunks:
            yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"
    except Exception as exc:  # headers are sent: the error goes in the stream, as OpenAI does
        error = exc if isinstance(exc, ApiError) else ApiError(500, f"{type(exc).__name__}: {exc}",
                                                               kind="server_error")
        yield f"data: {json.dumps(error.body())}\n\n"
    yield "data: [DONE]\n\n"


async def _until_disconnected(request: Request, gone: threading.Event) -> None:
    """Sets `gone` when the client hangs up (the body is read, so the next ASGI message is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
    gone.set()


def _check_template(engine: Engine) -> None:
    try:
        engine.codec.check_template()
    except NoChatTemplate as exc:
        raise ApiError(400, f"{exc}: use /v1/completions with a plain prompt", code="chat_template_missing") from None
    except TemplateBroken as exc:
        raise _template_fault(exc) from None


def _template_fault(exc: TemplateBroken) -> ApiError:
    return ApiError(500, f"the model folder's chat template is at fault, not the request: {exc}", kind="server_error")


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _ids(engine: Engine, tokens: list[int]) -> list[int]:
    """A prompt sent as token ids: each must be in the vocabulary, and the whole must fit the context."""
    vocab = engine.codec.tokenizer.get_vocab_size(with_added_tokens=True)
    if not tokens:
        raise ApiError(400, "the prompt is empty (no token ids)", param="prompt", code="invalid_value")
    if any(t < 0 or t >= vocab for t in tokens):
        raise ApiError(400, f"a prompt of token ids must hold ids in 0..{vocab - 1}", param="prompt",
                       code="invalid_value")
    if len(tokens) >= engine.context_window:
        raise PromptTooLong(f"the prompt has {len(tokens)} tokens; this model's context window is "
                            f"{engine.context_window} tokens", hint="shorten the prompt")
    return tokens


def _model_card(service: Service) -> dict[str, Any]:
    return {"id": service.name, "object": "model", "created": service.created, "owned_by": "taxreg"}


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    # 408: the rest of a slow body may still come; closing is the only way to stop reading it
    headers = {"Retry-After": "1"} if exc.status == 429 else {"Connection": "close"} if exc.status == 408 else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    what = f"{request.method} {request.url.path}: {exc.detail}"
    return JSONResponse(ApiError(exc.status_code, what).body(), status_code=exc.status_code, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    error = ApiError(500, f"{type(exc).__name__}: {exc}", kind="server_error")
    return JSONResponse(error.body(), status_code=500)
