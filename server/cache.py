"""The response cache of the embedded store: GET responses replayed while the store generation is unchanged."""
from __future__ import annotations

from collections import OrderedDict

from starlette.datastructures import Headers

from mmkg.server.compression import accepts_gzip
from mmkg.server.holder import GraphHolder


class ResponseCache:
    """ASGI middleware: replay a GET response byte for byte while the store generation is unchanged.

    On the embedded store the graph is a read-only snapshot between loads, so a 200 response depends only
    on path, parameters, the Accept header and whether the client takes gzip (the cache sits outside the
    compression: a hit replays the compressed bytes instead of compressing them again). Only requests whose
    query parameters are all ones the route declares are cached (keyed on the sorted parameters), so junk
    parameters cannot fill the cache, which is bounded in bytes (least recently used out first). Nothing is
    cached on Neo4j, which others may write."""

    def __init__(self, app, holder: GraphHolder, routes: list, max_bytes: int = 64 * 1024 * 1024,
                 max_body: int = 8 * 1024 * 1024):
        self.app, self.holder, self.routes = app, holder, routes
        self.max_bytes, self.max_body = max_bytes, max_body
        self.entries: OrderedDict[tuple, tuple[dict, bytes]] = OrderedDict()
        self.size = 0

    def key(self, scope) -> tuple | None:
        """The cache key of a GET request, or None when it has a parameter its route does not declare."""
        from urllib.parse import parse_qsl

        from starlette.routing import Match

        try:
            pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True, strict_parsing=False)
        except ValueError:
            return None
        route = next((r for r in leaf_routes(self.routes) if r.matches(scope)[0] == Match.FULL), None)
        dependant = getattr(route, "dependant", None)
        if dependant is None:
            return None
        declared = {p.alias for p in dependant.query_params}
        names = [name for name, _ in pairs]
        if len(set(names)) != len(names) or not set(names) <= declared:
            return None
        headers = Headers(scope=scope)
        # Whether the body comes compressed, by the compression's own test: not the header itself, which a
        # client could vary endlessly.
        return (self.holder.generation, scope["path"], tuple(sorted(pairs)), headers.get("accept", ""),
                accepts_gzip(headers))

    async def __call__(self, scope, receive, send) -> None:
        if (scope["type"] != "http" or scope["method"] != "GET" or not self.holder.cacheable
                or not scope["path"].startswith(("/api/", "/views/"))):
            await self.app(scope, receive, send)
            return
        key = self.key(scope)
        hit = self.entries.get(key) if key is not None else None
        if hit is not None:
            self.entries.move_to_end(key)
            start, body = hit
            await send({**start, "headers": list(start["headers"])})  # outer middleware may edit headers
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return
        captured: dict = {"chunks": [], "size": 0}

        async def capture(message) -> None:
            if message["type"] == "http.response.start":
                captured["start"] = {**message, "headers": list(message.get("headers", []))}
            elif message["type"] == "http.response.body":
                captured["chunks"].append(message.get("body", b""))
                captured["size"] += len(message.get("body", b""))
                if not message.get("more_body", False):
                    captured["done"] = True
            await send(message)

        await self.app(scope, receive, capture)
        start = captured.get("start")
        if key is not None and start and start["status"] == 200 and captured.get("done") \
                and captured["size"] <= self.max_body and key[0] == self.holder.generation:
            self._store(key, start, b"".join(captured["chunks"]))

    def _store(self, key: tuple, start: dict, body: bytes) -> None:
        if self.entries and next(iter(self.entries))[0] != key[0]:  # a load started a new generation
            self.entries.clear()
            self.size = 0
        if key in self.entries:
            return
        self.entries[key] = (start, body)
        self.size += len(body)
        while self.size > self.max_bytes and self.entries:
            _, (_, evicted) = self.entries.popitem(last=False)
            self.size -= len(evicted)


def leaf_routes(routes: list) -> list:
    """The routes themselves, those of included routers (FastAPI keeps them nested) in their order."""
    leaves = []
    for route in routes:
        included = getattr(route, "original_router", None)
        leaves.extend(leaf_routes(included.routes) if included is not None else [route])
    return leaves
