"""Serving the dashboard: ``GET /dashboard`` (the page) and ``GET /dashboard/static/{name}`` (its files).

In:  a browser's GET.
Out: the files of ``static/`` as they are in the package (no build step, nothing from a CDN), with
     headers that keep the page from running anything but those files:

     - ``Content-Security-Policy``: scripts, styles and connections from this origin only, no inline
       script or style, no plugins, no ``<base>``, no form posts, and no framing (``frame-ancestors``);
     - ``X-Frame-Options: DENY`` for browsers that predate ``frame-ancestors``;
     - ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``;
     - ``Cache-Control: no-store`` on the page (it is the entry point and must never be stale),
       ``no-cache`` on the files (revalidated by ETag, so an upgrade is picked up at once).

The page holds no data and needs no credential; the API calls it makes carry the key.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from .. import errors

STATIC = Path(__file__).parent / "static"
PAGE = "index.html"
# the files that may be served: a fixed set read once, so no request path ever reaches the file system
ASSETS = frozenset(p.name for p in STATIC.iterdir() if p.is_file() and p.name != PAGE) if STATIC.is_dir() \
    else frozenset()

CSP = "; ".join([
    "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self'", "connect-src 'self'",
    "font-src 'self'", "manifest-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
    "object-src 'none'",
])
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
               ".svg": "image/svg+xml", ".html": "text/html; charset=utf-8"}


def page(request: Request) -> Response:
    """The dashboard page; its links are absolute under the app's root path."""
    base = request.scope.get("root_path", "") + "/dashboard"
    html = (STATIC / PAGE).read_text("utf-8").replace("{{base}}", base)
    return Response(html, media_type="text/html; charset=utf-8",
                    headers={**SECURITY_HEADERS, "Cache-Control": "no-store"})


def asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in ASSETS:
        raise errors.GatewayError(404, "NOT_FOUND", f"No dashboard file named '{name}'",
                                  next_actions="Open /dashboard")
    path = STATIC / name
    media = MEDIA_TYPES.get(path.suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media, headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


ROUTES = [
    Route("/dashboard", page, methods=["GET"]),
    Route("/dashboard/", page, methods=["GET"]),
    Route("/dashboard/static/{name}", asset, methods=["GET"]),
]
