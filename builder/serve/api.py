"""The OpenAI-compatible HTTP API over an Engine (Starlette; run by uvicorn).

`/v1/models`, `/v1/chat/completions` and `/v1/completions`, streamed (server-sent events ending `data: [DONE]`) or
not. Requests are validated by pydantic models; every refusal is a 4xx JSON body in OpenAI's error shape
(`{"error": {"message", "type", "param", "code"}}`), never a 500 or a dropped connection.

Decoding runs in a bounded pool of threads (one request per thread; onnxruntime sessions run concurrently), so the
event loop only moves bytes. Requests beyond the pool wait in line; beyond `max_waiting` of them, 429 with
`Retry-After` (the teacher generator and the openai client retry those).
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
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from builder.serve.engine import Completion, Delta, Engine, Event, PromptTooLong, Sampling
from registry.errors import RegistryError

MAX_N = 16  # choices per request
MAX_STOP = 4  # stop strings per request (OpenAI's limit)
MAX_PROMPTS = 32  # prompts in one /v1/completions request
MAX_BODY = 8 * 1024 * 1024  # bytes
INT64 = 2**63

RequestT = TypeVar("RequestT", bound=BaseModel)


class ApiError(Exception):
    """A refusal: becomes an OpenAI-shaped error body with this status."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


# --- request bodies -------------------------------------------------------------------------------------

class StreamOptions(BaseModel):
    include_usage: bool = False


class _Request(BaseModel):
    # strict: "0.5" is not a temperature; extra fields (user, metadata...) are accepted and not used.
    model_config = ConfigDict(strict=True, extra="allow")

    model: str
    max_tokens: Annotated[int, Field(ge=1, lt=INT64)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    n: Annotated[int, Field(ge=1, le=MAX_N)] | None = None
    seed: Annotated[int, Field(ge=-INT64, lt=INT64)] | None = None
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    logprobs: Any = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop strings")
        return value

    @field_validator("logprobs")
    @classmethod
    def _no_logprobs(cls, value: Any) -> Any:
        if value not in (None, False, 0):
            raise ValueError("logprobs are not supported by this server")
        return value

    def sampling(self, max_tokens: int | None) -> Sampling:
        stop = [self.stop] if isinstance(self.stop, str) else (self.stop or [])
        return Sampling(max_tokens=max_tokens, temperature=1.0 if self.temperature is None else self.temperature,
                        top_p=1.0 if self.top_p is None else self.top_p, seed=self.seed,
                        stop=tuple(s for s in stop if s), n=self.n or 1)

    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class TextPart(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")
    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None

    def plain(self) -> dict[str, Any]:
        content = self.content if isinstance(self.content, str) or self.content is None else \
            "".join(part.text for part in self.content)
        return {"role": "system" if self.role == "developer" else self.role, "content": content or ""}


class ChatRequest(_Request):
    messages: Annotated[list[Message], Field(min_length=1)]
    max_completion_tokens: Annotated[int, Field(ge=1, lt=INT64)] | None = None


class CompletionRequest(_Request):
    prompt: str | list[str] | list[int] | list[list[int]]
    echo: bool = False
    suffix: str | None = None
    best_of: int | None = None

    @field_validator("prompt")
    @classmethod
    def _prompts(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise ValueError("the prompt is empty")
        if isinstance(value, list) and isinstance(value[0], str | list) and len(value) > MAX_PROMPTS:
            raise ValueError(f"at most {MAX_PROMPTS} prompts per request")
        return value

    @field_validator("echo", "suffix", "best_of")
    @classmethod
    def _unsupported(cls, value: Any) -> Any:
        if value not in (None, False, 1):
            raise ValueError("not supported by this server")
        return value


# --- the service ----------------------------------------------------------------------------------------

@dataclass
class Limits:
    workers: int = 4  # requests decoding at once
    max_waiting: int = 256  # requests waiting for a worker before 429


class Service:
    """The engine behind a bounded thread pool, and the shapes of OpenAI's answers."""

    def __init__(self, engine: Engine, name: str, limits: Limits) -> None:
        self.engine, self.name, self.limits = engine, name, limits
        self.pool = ThreadPoolExecutor(limits.workers, thread_name_prefix="decode")
        self.created = int(time.time())
        self.active = 0  # admitted requests not yet finished (event loop only: no lock needed)

    @contextmanager
    def admitted(self) -> Iterator[None]:
        if self.active >= self.limits.workers + self.limits.max_waiting:
            raise ApiError(429, f"the server is busy ({self.active} requests in progress); retry shortly",
                           code="rate_limit_exceeded", kind="rate_limit_error")
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1

    def check_model(self, model: str) -> None:
        if model != self.name:
            raise ApiError(404, f"The model '{model}' does not exist; this server serves '{self.name}'",
                           param="model", code="model_not_found")

    async def prepare(self, make: Callable[[], list[list[int]]], param: str) -> list[list[int]]:
        """Prompt token ids, off the event loop (templates and tokenizing take time on long prompts)."""
        import jinja2

        try:
            return await asyncio.to_thread(make)
        except PromptTooLong as exc:
            raise ApiError(400, f"{exc}: {exc.hint}", param=param, code="context_length_exceeded") from None
        except jinja2.TemplateError as exc:
            raise ApiError(400, f"the chat template refused the messages: {exc}", param=param) from None

    async def complete(self, prompts: list[list[int]], sampling: Sampling) -> list[Completion]:
        loop = asyncio.get_running_loop()
        with self.admitted():
            return await loop.run_in_executor(
                self.pool, lambda: [self.engine.complete(ids, sampling) for ids in prompts])

    async def events(self, prompts: list[list[int]], sampling: Sampling) -> AsyncGenerator[tuple[int, Event], None]:
        """(prompt index, event) as the worker decodes; the worker stops when the client goes away."""
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
                    for event in self.engine.generate(ids, sampling, cancelled.is_set):
                        put((p, event))
            except Exception as exc:
                put(exc)
            finally:
                put(None)

        with self.admitted():
            loop.run_in_executor(self.pool, work)
            try:
                while (item := await queue.get()) is not None:
                    if isinstance(item, BaseException):
                        raise item
                    yield item
            finally:
                cancelled.set()

    def usage(self, completions: list[Completion]) -> dict[str, int]:
        prompt = sum(c.prompt_tokens for c in completions)
        generated = sum(sum(c.tokens) for c in completions)
        return {"prompt_tokens": prompt, "completion_tokens": generated, "total_tokens": prompt + generated}


# --- the server ----------------------------------------------------------------------------------------

def listen(host: str, port: int) -> socket.socket:
    """A bound socket (port 0 picks a free one): a taken port is a clear error before anything starts."""
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
    import uvicorn

    config = uvicorn.Config(create_app(service), log_level=log_level, access_log=log_level in ("info", "debug"),
                            timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])


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
        body = _parse(ChatRequest, await _json(request))
        service.check_model(body.model)
        messages = [m.plain() for m in body.messages]
        prompts = await service.prepare(
            lambda: [service.engine.prompt_ids(service.engine.codec.render_chat(messages))], "messages")
        sampling = body.sampling(body.max_completion_tokens or body.max_tokens)
        shape = _Shape(service.name, "chat.completion", "chatcmpl", sampling.n)
        if body.stream:
            return _sse(_chat_chunks(service, shape, prompts, sampling, body.include_usage()))
        completions = await service.complete(prompts, sampling)
        choices = [{"index": i, "message": {"role": "assistant", "content": text}, "logprobs": None,
                    "finish_reason": reason}
                   for i, (text, reason) in enumerate(zip(completions[0].texts, completions[0].reasons, strict=True))]
        return JSONResponse({**shape.head(), "choices": choices, "usage": service.usage(completions)})

    return chat


def _completion_endpoint(service: Service) -> Callable[[Request], Any]:
    async def completions(request: Request) -> Response:
        body = _parse(CompletionRequest, await _json(request))
        service.check_model(body.model)
        prompt = body.prompt
        items: list[Any] = prompt if isinstance(prompt, list) and isinstance(prompt[0], str | list) else [prompt]
        engine = service.engine
        prompts = await service.prepare(lambda: [engine.prompt_ids(p) if isinstance(p, str) else _ids(engine, p)
                                                 for p in items], "prompt")
        sampling = body.sampling(body.max_tokens or 16)  # OpenAI's default for completions
        shape = _Shape(service.name, "text_completion", "cmpl", sampling.n)
        if body.stream:
            return _sse(_text_chunks(service, shape, prompts, sampling, body.include_usage()))
        done = await service.complete(prompts, sampling)
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


def _sse(chunks: AsyncIterator[dict[str, Any]]) -> StreamingResponse:
    async def lines() -> AsyncIterator[str]:
        try:
            async for chunk in chunks:
                yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"
        except Exception as exc:  # headers are sent: the error goes in the stream, as OpenAI does
            error = exc if isinstance(exc, ApiError) else ApiError(500, f"{type(exc).__name__}: {exc}",
                                                                   kind="server_error")
            yield f"data: {json.dumps(error.body())}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(lines(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _ids(engine: Engine, tokens: list[int]) -> list[int]:
    """A prompt sent as token ids: each must be in the vocabulary, and the whole must fit the context."""
    vocab = engine.codec.tokenizer.get_vocab_size(with_added_tokens=True)
    if not tokens or any(t < 0 or t >= vocab for t in tokens):
        raise ApiError(400, f"a prompt of token ids must hold ids in 0..{vocab - 1}", param="prompt",
                       code="invalid_value")
    if len(tokens) >= engine.context_window:
        raise PromptTooLong(f"the prompt has {len(tokens)} tokens; this model's context window is "
                            f"{engine.context_window} tokens", hint="shorten the prompt")
    return tokens


async def _json(request: Request) -> Any:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ApiError(413, f"the request body is over {MAX_BODY // (1024 * 1024)} MiB")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ApiError(400, f"the request body is not valid JSON ({exc}); send a JSON object",
                       code="invalid_json") from None


def _parse(model: type[RequestT], body: Any) -> RequestT:
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise ApiError(400, f"{where}: {first['msg']}" + (f" ({exc.error_count()} problems)"
                                                          if exc.error_count() > 1 else ""),
                       param=str(first["loc"][0]) if first["loc"] else None, code="invalid_value") from None


def _model_card(service: Service) -> dict[str, Any]:
    return {"id": service.name, "object": "model", "created": service.created, "owned_by": "taxreg"}


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    headers = {"Retry-After": "1"} if exc.status == 429 else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    what = f"{request.method} {request.url.path}: {exc.detail}"
    return JSONResponse(ApiError(exc.status_code, what).body(), status_code=exc.status_code, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    error = ApiError(500, f"{type(exc).__name__}: {exc}", kind="server_error")
    return JSONResponse(error.body(), status_code=500)
