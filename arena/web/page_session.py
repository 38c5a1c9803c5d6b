"""The page's session cookie: every page request (anything but the JSON API and the probes) carries
a session this process issued. A request without one, or with one it did not sign (``000...0``,
another process's), gets a new one: in the request as the app sees it, and in a ``Set-Cookie`` on
its response. The page's battles belong to ``ui:`` + that session (``page_session``), never to
Gradio's session hash, which the browser chooses."""

from __future__ import annotations

import gradio as gr
from starlette.requests import cookie_parser

from arena.trust.identity import PageSessions

PAGE_COOKIE = "arena_page"
# The JSON API has its own sessions (arena.web.api); probes and scrapers need none.
NOT_THE_PAGE = ("/api/", "/healthz", "/metrics")

NO_COOKIE = ("This page needs its session cookie to keep your battle: allow cookies for this site and "
             "reload the page.")


class PageSessionMiddleware:
    """ASGI middleware: a signed ``arena_page`` cookie on every page request (see the module docstring)."""

    def __init__(self, app, sessions: PageSessions):
        self.app = app
        self.sessions = sessions

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith(NOT_THE_PAGE):
            await self.app(scope, receive, send)
            return
        cookies = cookie_parser("; ".join(value.decode("latin-1") for name, value in scope["headers"]
                                          if name == b"cookie"))
        if self.sessions.verified(cookies.get(PAGE_COOKIE)) is not None:
            await self.app(scope, receive, send)
            return
        cookies[PAGE_COOKIE] = issued = self.sessions.issue()
        # one Cookie header (Starlette reads only the first), the made-up session gone from it
        header = "; ".join(f"{name}={value}" for name, value in cookies.items()).encode("latin-1")
        scope = {**scope, "headers": [*[(n, v) for n, v in scope["headers"] if n != b"cookie"], (b"cookie", header)]}
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        set_cookie = f"{PAGE_COOKIE}={issued}; Path=/; HttpOnly; SameSite=Lax{secure}".encode("latin-1")

        async def send_with_cookie(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", set_cookie)]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def page_session(request: gr.Request) -> str:
    """The page's session of a Gradio event: ``ui:`` + the id in its cookie (checked by the middleware
    on the way in)."""
    cookies = getattr(request, "cookies", None)
    signed = cookies.get(PAGE_COOKIE) if cookies is not None else None
    if not signed:  # only a client that drops cookies between requests
        raise gr.Error(NO_COOKIE)
    return "ui:" + signed.partition(".")[0]
