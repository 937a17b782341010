"""ASGI middleware every response passes: allowed Host names (DNS-rebinding guard), request body limits,
and security headers (nosniff everywhere; a content security policy on pages that keeps the views offline)."""
from __future__ import annotations

import json

from mmkg.errors import error_body

# Pages load scripts, styles and images from this server only (the views inline their network data).
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
                           "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY")]


async def _send_error(send, status: int, kind: str, message: str) -> None:
    body = json.dumps(error_body(kind, message)).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                + SECURITY_HEADERS})
    await send({"type": "http.response.body", "body": body})


class TrustedHosts:
    """Answer only requests whose Host header names this server (`*.example.org` and `*` allowed)."""

    def __init__(self, app, allowed_hosts: list[str]):
        self.app = app
        self.allowed = [h.lower() for h in allowed_hosts]

    def host_allowed(self, host: str) -> bool:
        name = host.lower()
        name = name.rsplit(":", 1)[0] if not name.startswith("[") else name.split("]")[0] + "]"
        for pattern in self.allowed:
            if pattern == "*" or name == pattern or (pattern.startswith("*.") and name.endswith(pattern[1:])):
                return True
        return False

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
            if not self.host_allowed(host):
                await _send_error(send, 400, "invalid_host",
                                  f"this server does not answer for host {host[:100]!r}; add it to MMKG_ALLOWED_HOSTS")
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuse request bodies over `limit` bytes on the given paths (declared or streamed), with 413."""

    def __init__(self, app, paths: dict[str, int]):
        self.app, self.paths = app, paths

    async def __call__(self, scope, receive, send) -> None:
        limit = self.paths.get(scope.get("path", "")) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
        if declared.isdigit() and int(declared) > limit:
            await _send_error(send, 413, "too_large", f"the request body is over the limit of {limit:,} bytes")
            return
        chunks, received, more = [], 0, True
        while more:  # read the whole (small) body first, so the app never sees a partial one
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            received += len(chunks[-1])
            more = message.get("more_body", False)
            if received > limit:
                await _send_error(send, 413, "too_large", f"the request body is over the limit of {limit:,} bytes")
                return
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)


class SecurityHeaders:
    """nosniff, no referrer and no framing on every response; the content security policy on HTML."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k not in dict(SECURITY_HEADERS)]
                headers += SECURITY_HEADERS
                content_type = next((v for k, v in headers if k == b"content-type"), b"")
                if content_type.startswith(b"text/html"):
                    headers.append((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
