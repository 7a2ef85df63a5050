"""The HTTP side of the teacher: the official `openai` client over an httpx2 client that bounds every response.

httpx bounds each read (a server dripping a byte a second never trips it) and reads any body whole, so:

- `post` runs an attempt under `asyncio.timeout`: connecting, sending and reading the last byte share one deadline;
- a response hook wraps every response's byte stream in a budget (`OversizedResponse` past it, a declared
  Content-Length over it refused before a byte is read), error bodies and redirects included, whoever reads them;
- bodies are asked for uncompressed (`Accept-Encoding: identity`) and a compressed one is refused
  (`EncodedResponse`): the budget counts the bytes that reach memory, and a gzip bomb would slip past it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx2  # the openai client's HTTP library (openai >= 3)


class OversizedResponse(Exception):
    """The endpoint sent (or declared) a body larger than the byte budget."""


class EncodedResponse(Exception):
    """The endpoint compressed a body although it was asked not to."""


class _Budgeted(httpx2.AsyncByteStream):
    """A response's raw bytes, refused past `limit`."""

    def __init__(self, stream: httpx2.AsyncByteStream, limit: int) -> None:
        self._stream, self._limit = stream, limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        left = self._limit
        async for chunk in self._stream:
            left -= len(chunk)
            if left < 0:
                raise OversizedResponse(f"the response is over {self._limit} bytes")
            yield chunk

    async def aclose(self) -> None:
        await self._stream.aclose()


def _budget_hook(limit: int) -> Callable[[httpx2.Response], Awaitable[None]]:
    async def hook(response: httpx2.Response) -> None:
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise EncodedResponse(f"the response is {encoding}-encoded although identity was asked")
        declared = response.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > limit:
            raise OversizedResponse(f"the response is over {limit} bytes (Content-Length {declared})")
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        response.stream = _Budgeted(response.stream, limit)

    return hook


def open_client(url: str, api_key: str, timeout: float, concurrency: int, max_bytes: int) -> Any:
    """AsyncOpenAI with its own retries off (the sender retries), over a pool of `concurrency` connections."""
    from openai import AsyncOpenAI, DefaultAsyncHttpxClient

    http = DefaultAsyncHttpxClient(
        timeout=timeout, headers={"Accept-Encoding": "identity"}, event_hooks={"response": [_budget_hook(max_bytes)]},
        limits=httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency))
    return AsyncOpenAI(base_url=url, api_key=api_key, max_retries=0, timeout=timeout, http_client=http)


async def post(client: Any, content: bytes, idempotency_key: str, deadline: float) -> str:
    """POST /chat/completions through the client, the whole attempt within `deadline` seconds; the body as UTF-8
    (what JSON must be: a charset the endpoint names, `unicode_escape` say, could decode to lone surrogates).

    (`chat.completions.create` would re-serialize the body after walking every message through the
    typed-dict unions, a few ms of CPU per request that cost ~20% of the throughput at 8 in flight.)
    """
    async with asyncio.timeout(deadline):
        raw = await client.post("/chat/completions", cast_to=httpx2.Response, content=content,
                                options={"idempotency_key": idempotency_key})
    return bytes(raw.content).decode("utf-8", "replace")
