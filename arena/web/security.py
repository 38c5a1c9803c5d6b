"""Response headers that keep the page from talking to anyone but the arena.

``CONTENT_SECURITY_POLICY`` lets the page load scripts, styles, fonts and data only from its own
origin, and images only from its own origin or ``data:`` URLs: an answer that slipped an image
or a stylesheet past arena.web.answer_safety still cannot make the voter's browser call its host
before the vote. Gradio's page needs inline scripts and styles (its config and theme are inline),
hence ``'unsafe-inline'`` for those two; everything it loads (JS, CSS, fonts) it serves itself.
"""

from __future__ import annotations

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "media-src 'self' data: blob:",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "frame-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'self'",
])

SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
)


class SecurityHeaders:
    """ASGI middleware adding SECURITY_HEADERS to every HTTP response (streams pass untouched)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message = {**message, "headers": [*message.get("headers", []),
                                                  *[(n, v) for n, v in SECURITY_HEADERS if n not in present]]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
