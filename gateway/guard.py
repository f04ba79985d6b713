"""Request limits, enforced before any handler runs: headers, request target, body.

In:  an ASGI ``http`` request (scope, receive) and the limits (``Limits``, from Settings).
Out: the request passed on unchanged, or the spec's error body with

    431 REQUEST_HEADER_FIELDS_TOO_LARGE  too many header fields, or too many header bytes
    414 URI_TOO_LONG                     path plus query string longer than the limit
    413 PAYLOAD_TOO_LARGE                body over ``max_body_bytes`` (JSON and everything that
                                         is not multipart) or ``max_upload_bytes`` (multipart)

The body is never buffered here. A declared ``Content-Length`` over the limit is refused
before a byte is read (a client sending ``Expect: 100-continue`` never sends the body);
a chunked body is counted as the handler reads it, and the first chunk that crosses the
limit ends the request with 413 — whatever the handler made of the failed read, since a
handler that catches the error must not turn it into a 400 or a half-stored upload.

Mount with ``Middleware(Guard, settings=settings)`` (or ``limits=Limits(...)``).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import GatewayError, front_for
from .settings import Settings

JSON_MEDIA = b"application/json; charset=utf-8"
MULTIPART = b"multipart/"  # media types whose body limit is max_upload_bytes


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 10 * 1024 * 1024  # JSON (and any non-multipart) request body
    max_upload_bytes: int = 50 * 1024 * 1024  # multipart/form-data uploads (import, bulk upsert)
    max_headers: int = 100  # header fields per request (nginx and Node stop near here too)
    max_header_bytes: int = 32 * 1024  # names plus values, all fields together
    max_target_bytes: int = 16 * 1024  # path plus query string; long in.(...) lists fit easily

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """Every limit from Settings."""
        return cls(
            max_body_bytes=settings.max_body_bytes,
            max_upload_bytes=settings.max_upload_bytes,
            max_headers=settings.max_headers,
            max_header_bytes=settings.max_header_bytes,
            max_target_bytes=settings.max_target_bytes,
        )


class BodyTooLarge(GatewayError):
    """Raised from ``receive`` when a streamed body crosses its limit; also rendered by the app's handler."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, "PAYLOAD_TOO_LARGE", f"Request body exceeds {limit} bytes")


def too_many_header_bytes(limits: Limits) -> GatewayError:
    return GatewayError(431, "REQUEST_HEADER_FIELDS_TOO_LARGE",
                        f"Request headers exceed {limits.max_headers} fields or {limits.max_header_bytes} bytes",
                        next_actions="Send fewer or shorter headers")


def target_too_long(limits: Limits) -> GatewayError:
    return GatewayError(414, "URI_TOO_LONG", f"Request path and query string exceed {limits.max_target_bytes} bytes",
                        next_actions="Shorten the query string, or filter with fewer values per request")


def header_problem(scope: Scope, limits: Limits) -> GatewayError | None:
    """The 431 or 414 this request deserves, if any."""
    headers: list[tuple[bytes, bytes]] = scope.get("headers") or []
    if len(headers) > limits.max_headers or sum(len(k) + len(v) for k, v in headers) > limits.max_header_bytes:
        return too_many_header_bytes(limits)
    target = len(scope.get("raw_path") or scope.get("path", "").encode()) + len(scope.get("query_string") or b"")
    if target > limits.max_target_bytes:
        return target_too_long(limits)
    return None


def body_limit(scope: Scope, limits: Limits) -> int:
    """The body limit for this request's media type."""
    for name, value in scope.get("headers") or []:
        if name == b"content-type":
            return limits.max_upload_bytes if value.lower().startswith(MULTIPART) else limits.max_body_bytes
    return limits.max_body_bytes


def declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or []:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def chunked(scope: Scope) -> bool:
    """Whether the request body comes with ``Transfer-Encoding`` (chunked) rather than a length."""
    return any(name == b"transfer-encoding" for name, _ in scope.get("headers") or [])


async def send_error(send: Send, exc: GatewayError, path: str = "") -> None:
    headers = [(b"content-type", JSON_MEDIA), (b"connection", b"close")]
    headers += [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
    body = exc.to_json(front_for(path))
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """ASGI middleware applying ``Limits`` to every HTTP request."""

    def __init__(self, app: ASGIApp, limits: Limits | None = None, settings: Settings | None = None) -> None:
        self.app = app
        self.limits = limits or (Limits.from_settings(settings) if settings else Limits())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = header_problem(scope, self.limits)
        limit = body_limit(scope, self.limits)
        declared = declared_length(scope)
        if problem is None and declared is not None and declared > limit:
            problem = BodyTooLarge(limit)
        if problem is not None:
            await send_error(send, problem, scope.get("path", ""))
            return
        if declared is not None or not chunked(scope):
            # a declared length within the limit is all the server reads, and a request with neither
            # header has no body: only a chunked body needs counting as it arrives
            await self.app(scope, receive, send)
            return
        await _Metered(self.app, limit).run(scope, receive, send)


class _Metered:
    """One request whose body is counted as it is read."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit  # bytes the body may have
        self.received = 0  # bytes read so far
        self.exceeded = False  # the limit was crossed: the response must be the 413
        self.started = False  # a response start went out

    async def run(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def metered_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
                if self.received > self.limit:
                    self.exceeded = True
                    raise BodyTooLarge(self.limit)
            return message

        async def guarded_send(message: Message) -> None:
            if self.exceeded and not self.started:
                # whatever the handler answers after a refused read, the client gets the 413
                self.started = True
                await send_error(send, BodyTooLarge(self.limit), scope.get("path", ""))
                return
            if self.exceeded:
                return
            if message["type"] == "http.response.start":
                self.started = True
            await send(message)

        try:
            await self.app(scope, metered_receive, guarded_send)
        except BodyTooLarge:
            if not self.started:
                self.started = True
                await send_error(send, BodyTooLarge(self.limit), scope.get("path", ""))

