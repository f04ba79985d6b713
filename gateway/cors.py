"""CORS: Starlette's middleware, with a short way through for requests that carry no ``Origin``.

In:  an ASGI request and the allowed origins (``Settings.cors_origins``).
Out: the app's response with the CORS headers Starlette's ``CORSMiddleware`` would add.

Most API traffic (SDKs, servers, scripts) sends no ``Origin``: all Starlette adds then is
``Origin`` to ``Vary``, yet its middleware parses the request headers and rebuilds the
response headers on every request. Here a request without ``Origin`` gets that one header
edit done on the raw header list; a request with ``Origin`` (browsers, preflights) goes
through Starlette's code unchanged, so the CORS rules themselves are Starlette's.
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import Message, Receive, Scope, Send

VARY = b"vary"


class Cors(CORSMiddleware):
    """``CORSMiddleware`` whose no-``Origin`` path costs one pass over the response headers."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(name == b"origin" for name, _ in scope["headers"]):
            await super().__call__(scope, receive, send)
            return

        async def send_varying(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = vary_on_origin(list(message["headers"]))
            await send(message)

        await self.app(scope, receive, send_varying)


def vary_on_origin(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` with ``Origin`` added to ``Vary``, as Starlette's ``MutableHeaders`` would leave
    them: the values of every ``Vary`` field joined into the first one, the others dropped."""
    found = [i for i, (name, _) in enumerate(headers) if name == VARY]  # Starlette matches the lowercase name
    if not found:
        headers.append((VARY, b"Origin"))
        return headers
    joined = b", ".join([*(headers[i][1] for i in found), b"Origin"])
    headers[found[0]] = (VARY, joined)
    for i in reversed(found[1:]):
        del headers[i]
    return headers
