"""The HTTP connections of `taxreg serve`: uvicorn's h11 protocol with the limits uvicorn 0.55 lacks.

uvicorn times out a keep-alive connection only after a response: one that never sends a request, or sends its
head a byte at a time, was held for ever (3,000 of them held their memory; past the open-file limit accept()
failed and every real request timed out). Here, per connection:

- idle: without a request in progress (new, or after a response), it is closed after `idle_timeout` seconds
  without a byte (uvicorn's own keep-alive timer, armed on connect too);
- head: from the first byte of a request, its request line and headers must be in within `request_timeout`
  seconds, bytes trickling in or not; else 408 and close (the app bounds the body the same way);
- cap: at most `max_connections`. The one past the cap closes the longest-idle connection; when every connection
  has a request in progress, it is answered 503 once its request is in, and closed.

uvicorn's `limit_concurrency` is not used: it counts idle connections with requests, so idle sockets alone make
it refuse every real request, and in plain text. The errors this layer answers itself (malformed HTTP, a head over
the size limit, the timeouts, the cap) are OpenAI-shaped JSON like the app's.
"""

from __future__ import annotations

import asyncio
import resource
import time
from typing import TYPE_CHECKING, Any, ClassVar

import h11
from starlette.responses import JSONResponse
from uvicorn.protocols.http.h11_impl import H11Protocol

from builder.serve.requests import ApiError
from registry.errors import RegistryError

if TYPE_CHECKING:
    from builder.serve.api import Limits

MAX_HEAD = 16 * 1024  # bytes of request line and headers (h11's default, said here): more is answered 431
# asyncio accepts up to `backlog` connections per loop turn before any of them reaches connection_made (where the
# cap is kept), so this many may be open beyond the cap for a moment. uvicorn's 2048 would overrun a 1024-file
# limit, and asyncio (3.11) then logs every failed accept() of that turn, which stalls the server.
ACCEPT_BATCH = 128
SPARE_FILES = 64  # open files the server needs besides its connections: the model, the listener, the event loop


def protocol_for(limits: Limits) -> type[GuardedH11]:
    """The protocol class uvicorn instantiates per connection, bound to these limits."""

    class Bound(GuardedH11):
        pass

    Bound.limits = limits
    return Bound


def reserve_open_files(max_connections: int) -> None:
    """Raises the soft open-file limit to fit the connection cap (up to the hard limit), or refuses the cap."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = max_connections + ACCEPT_BATCH + SPARE_FILES
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise RegistryError(f"--max-connections {max_connections} needs {needed} open files; this process may "
                                f"open {hard} (ulimit -n)",
                                hint=f"pass --max-connections {max(1, hard - ACCEPT_BATCH - SPARE_FILES)} or less, or "
                                     "raise ulimit -n")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def refusal(status: int, message: str, code: str, kind: str = "invalid_request_error") -> JSONResponse:
    """An error the server answers before (or instead of) the app, closing the connection after it."""
    headers = {"Connection": "close", **({"Retry-After": "1"} if status == 503 else {})}
    return JSONResponse(ApiError(status, message, code=code, kind=kind).body(), status_code=status, headers=headers)


async def _busy(scope: Any, receive: Any, send: Any) -> None:
    """The app of a connection past the cap while every other one has a request in progress."""
    await refusal(503, "the server holds as many connections as it takes (--max-connections), each busy with a "
                       "request; retry shortly", "server_busy", kind="server_error")(scope, receive, send)


class GuardedH11(H11Protocol):
    limits: ClassVar[Limits]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout_keep_alive = self.limits.idle_timeout  # type: ignore[assignment]  # uvicorn says int; float works
        self.idle_since: float | None = time.monotonic()  # None while a request is in progress
        self.head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # uvicorn arms its idle timer only after a response: a connection that never sends a byte needs it too
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)
        if len(self.connections) > self.limits.max_connections:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._track()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._track()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to bytes h11 cannot parse, as JSON: 431 when the head outgrew MAX_HEAD."""
        if len(self.conn.trailing_data[0]) > MAX_HEAD:
            self._refuse(refusal(431, f"the request line and headers are over {MAX_HEAD // 1024} KiB",
                                 "headers_too_large"))
        else:
            self._refuse(refusal(400, "the request is not valid HTTP/1.1", "invalid_http"))

    # --- the guards -------------------------------------------------------------------------------------------

    def _track(self) -> None:
        """After every event: a connection waiting for a request is idle (evictable), and once that request's
        first byte is in, its head has `request_timeout` seconds; a request in progress is neither."""
        if self.transport.is_closing():
            return
        waiting = self.cycle is None or self.cycle.response_complete
        if not waiting:
            self.idle_since = None
            self._stop_head_timer()
            return
        if self.idle_since is None:
            self.idle_since = time.monotonic()
        started = self.conn.their_state is not h11.IDLE or bool(self.conn.trailing_data[0])
        if started and self.head_timer is None:
            self.head_timer = self.loop.call_later(self.limits.request_timeout, self._head_too_slow)

    def _stop_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_too_slow(self) -> None:
        self.head_timer = None
        if not self.transport.is_closing():
            self._refuse(refusal(408, f"the request's headers did not arrive within {self.limits.request_timeout:g}"
                                      " s", "request_timeout"))

    def _make_room(self) -> None:
        idle = [c for c in self.connections if isinstance(c, GuardedH11) and c is not self
                and c.idle_since is not None and not c.transport.is_closing()]
        if idle:
            min(idle, key=lambda c: c.idle_since or 0.0).timeout_keep_alive_handler()
        else:
            self.app = _busy  # answered once its request is in (an answer before it could be lost to a reset)

    def _refuse(self, response: JSONResponse) -> None:
        """Answers (when nothing else has been) and closes."""
        try:
            self.transport.write(self.conn.send(h11.Response(status_code=response.status_code,
                                                             headers=response.raw_headers)) or b"")
            self.transport.write(self.conn.send(h11.Data(data=bytes(response.body))) or b"")
            self.transport.write(self.conn.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError:  # a response was already sent on this cycle: closing says the rest
            pass
        self.transport.close()
