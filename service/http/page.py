"""The status page (``/``), its static files, and what guards every response.

The page is plain HTML, CSS and a small script (``service/http/static``; no build step,
no library): it opens ``/api/events`` (server-sent events) and redraws its table on
each ``positions`` event; a row opens the position's detail (``/api/positions/{id}``).
Read-only: the server answers GET only (and the login's POST).

Every response carries a Content-Security-Policy that lets the page load only its own
script and style and talk only to its own origin. With a token (``http_token``) every
path but ``/healthz`` (the container's health check) asks for it: an ``Authorization:
Bearer`` header, or the cookie the page's login form sets (HttpOnly, SameSite=Strict).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from importlib import resources

from aiohttp import web
from aiohttp.typedefs import Middleware

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
COOKIE = "spreadwatch_token"
OPEN_PATHS = frozenset({"/healthz"})
STATIC = {"app.js": "text/javascript", "style.css": "text/css"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _file(name: str) -> str:
    return resources.files("service.http").joinpath("static", name).read_text("utf-8")


async def headers(request: web.Request, response: web.StreamResponse) -> None:
    """The security headers on every response, as it is prepared (streams and errors
    too: a stream's headers go before its handler returns)."""
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"


def guard(token: str) -> tuple[Middleware, Handler]:
    """A middleware that lets through only requests that carry ``token``, and the login
    form's handler that sets the cookie."""

    def holds(request: web.Request) -> bool:
        given = request.headers.get("Authorization", "")
        bearer = given[7:] if given.startswith("Bearer ") else ""
        cookie = request.cookies.get(COOKIE, "")
        return any(hmac.compare_digest(x.encode(), token.encode()) for x in (bearer, cookie))

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS or request.path == "/login" or holds(request):
            return await handler(request)
        if request.path == "/":
            return web.Response(text=_file("login.html"), content_type="text/html", status=401)
        return web.json_response({"error": "a token is needed"}, status=401)

    async def login(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        given = str(form.get("token", ""))
        if not hmac.compare_digest(given.encode(), token.encode()):
            return web.Response(text=_file("login.html"), content_type="text/html", status=401)
        response = web.HTTPSeeOther("/")
        response.set_cookie(COOKIE, given, httponly=True, samesite="Strict", path="/")
        return response

    return check, login


def add_page(app: web.Application, token: str | None) -> None:
    """``/`` and its static files on ``app``; with ``token``, the guard and ``/login``."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=_file("index.html"), content_type="text/html")

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC:
            raise web.HTTPNotFound()
        return web.Response(text=_file(name), content_type=STATIC[name])

    app.router.add_get("/", page)
    app.router.add_get("/static/{name}", static)
    app.on_response_prepare.append(headers)
    if token is not None:
        check, login = guard(token)
        app.middlewares.append(check)
        app.router.add_post("/login", login)
