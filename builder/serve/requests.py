"""What a request to the OpenAI-compatible API may say: limits, the pydantic request models, and reading a body.

Every refusal is an ApiError, which the app renders as a 4xx JSON body in OpenAI's error shape
(`{"error": {"message", "type", "param", "code"}}`).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from starlette.requests import Request

from builder.serve.engine import Sampling

MAX_N = 16  # choices per request
MAX_STOP = 4  # stop strings per request (OpenAI's limit)
MAX_PROMPTS = 32  # prompts in one /v1/completions request
MAX_BODY = 8 * 1024 * 1024  # bytes
INT64 = 2**63
SURROGATE = re.compile("[\ud800-\udfff]")  # JSON's "\ud800" escapes parse to lone surrogates: not text
# Fields that change what an answer must be, refused unless they ask for the default.
DEFAULT_ONLY = {"tools": (None, []), "functions": (None, []), "tool_choice": (None, "none"),
                "function_call": (None, "none"), "response_format": (None, {"type": "text"})}

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
    # Python's json reads NaN and Infinity: refused as such, before the range check says something odd about them.
    temperature: Annotated[float, Field(ge=0, le=2, allow_inf_nan=False)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] | None = None
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

    @field_validator("stream_options")
    @classmethod
    def _stream_only(cls, value: StreamOptions | None, info: ValidationInfo) -> StreamOptions | None:
        if value is not None and not info.data.get("stream"):
            raise ValueError("stream_options is only allowed when stream is true")
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

    @field_validator("content", mode="before")
    @classmethod
    def _text_parts_only(cls, value: Any) -> Any:
        # Said here, by name: the union's own errors would list every way the part fails to be a string.
        for part in value if isinstance(value, list) else []:
            if isinstance(part, dict) and part.get("type") != "text":
                raise ValueError(f"content part type {part.get('type')!r} is not supported (only text)")
        return value

    def plain(self) -> dict[str, Any]:
        content = self.content if isinstance(self.content, str) or self.content is None else \
            "".join(part.text for part in self.content)
        return {"role": "system" if self.role == "developer" else self.role, "content": content or ""}


class ChatRequest(_Request):
    messages: Annotated[list[Message], Field(min_length=1)]
    max_completion_tokens: Annotated[int, Field(ge=1, lt=INT64)] | None = None
    tools: Any = None
    functions: Any = None
    tool_choice: Any = None
    function_call: Any = None
    response_format: Any = None

    @field_validator(*DEFAULT_ONLY)
    @classmethod
    def _defaults_only(cls, value: Any, info: ValidationInfo) -> Any:
        if value not in DEFAULT_ONLY[info.field_name or ""]:
            raise ValueError("not supported by this server")
        return value


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

    @field_validator("echo", "suffix")
    @classmethod
    def _unsupported(cls, value: Any) -> Any:
        if value:
            raise ValueError("not supported by this server")
        return value

    @field_validator("best_of")
    @classmethod
    def _one_best(cls, value: int | None) -> int | None:
        if value not in (None, 1):
            raise ValueError("not supported by this server")
        return value



async def read_json(request: Request, timeout: float) -> Any:
    """The body as JSON; a body that takes over `timeout` seconds to arrive is refused (408)."""
    try:
        async with asyncio.timeout(timeout):
            body = await _body(request)
    except TimeoutError:
        raise ApiError(408, f"the request body did not arrive within {timeout:g} s", code="request_timeout") from None
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than the parser goes
        raise ApiError(400, f"the request body is not valid JSON ({exc}); send a JSON object",
                       code="invalid_json") from None


async def _body(request: Request) -> bytes:
    """The body, refused (413) as soon as it is known to be too big: by its Content-Length, or while reading."""
    too_big = ApiError(413, f"the request body is over {MAX_BODY // (1024 * 1024)} MiB")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise too_big
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise too_big
    return bytes(body)


def parse(model: type[RequestT], body: Any) -> RequestT:
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    bad = _surrogate(body)
    if bad is not None:
        raise ApiError(400, f"{'.'.join(map(str, bad)) or 'body'}: holds a lone UTF-16 surrogate (e.g. \\ud800); "
                            "send valid Unicode text", param=str(bad[0]) if bad else None, code="invalid_value")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        message = first["msg"].removeprefix("Value error, ")  # our validators' own words
        raise ApiError(400, f"{where}: {message}" + (f" ({exc.error_count()} problems)"
                                                     if exc.error_count() > 1 else ""),
                       param=str(first["loc"][0]) if first["loc"] else None, code="invalid_value") from None


def _surrogate(body: Any) -> tuple[str | int, ...] | None:
    """Where a string (a key or a value) holding a lone surrogate is, if any: no tokenizer reads those. A loop, not
    recursion: JSON nests deeper than Python's call stack."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), body)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            if SURROGATE.search(value):
                return where
            continue
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, item in items:
            if isinstance(key, str) and SURROGATE.search(key):
                return (*where, key)
            stack.append(((*where, key), item))
    return None
