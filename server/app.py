"""The HTTP API (FastAPI): studies, participants, codes, concepts, named queries, read-only Cypher,
uploads and the network views.

    from mmkg.server.app import create_app
    app = create_app()            # store from MMKG_STORE / NEO4J_URI; uvicorn.run(app)

The server keeps the graph open read-only.  On the embedded store, GET responses are replayed until an
upload swaps the store (close, open read-write, load atomically, reopen read-only) under an exclusive
lock and starts a new generation; the server therefore shows the embedded store as it was when the
server opened it.  Every error, whatever raised it, leaves as `{"error": {kind, message, details}}`.
"""
from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

import mmkg
from mmkg.config import Settings
from mmkg.server.cache import ResponseCache
from mmkg.server.compression import IsalGZipMiddleware
from mmkg.server.dependencies import reader_of
from mmkg.server.errors import ERROR_RESPONSES, install_error_handlers
from mmkg.server.holder import GraphHolder, KgFactory, default_factory
from mmkg.server.routers import ontology, queries, studies, uploads

__all__ = ["create_app"]


def create_app(settings: Settings | None = None, kg_factory: KgFactory | None = None, *,
               neo4j_uri: str | None = None, listen_host: str = "127.0.0.1") -> FastAPI:
    """The API over the store `settings` names (or `kg_factory(read_only)`), with its views; `listen_host`
    is the address the server listens on (a public one requires MMKG_CYPHER_TOKEN for ad-hoc Cypher)."""
    from fastapi_offline import FastAPIOffline

    from mmkg.server.cypher_route import MAX_BODY_BYTES, install_cypher_route
    from mmkg.server.http_hygiene import BodyLimit, SecurityHeaders, TrustedHosts
    from mmkg.server.view_routes import install_view_routes

    settings = settings or Settings()
    holder = GraphHolder(kg_factory or default_factory(settings, neo4j_uri))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        app.state.adhoc.close()
        holder.close()

    app = FastAPIOffline(
        title="mmkg", version=mmkg.__version__,
        description="A knowledge graph of mental-model codes and threats from qualitative security studies. "
                    "Named queries return JSON (or CSV with `format=csv` / `Accept: text/csv`); every error "
                    "has the shape `{\"error\": {\"kind\", \"message\", \"details\"}}`. The shipped study's "
                    "codings are a seeded reconstruction that reproduces the paper's figures, not the "
                    "authors' data.",
        responses=ERROR_RESPONSES, lifespan=lifespan, swagger_ui_parameters={"validatorUrl": None})
    app.state.holder = holder
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(studies.router)
    app.include_router(ontology.router)
    app.include_router(queries.queries_router())
    app.state.adhoc = install_cypher_route(app, holder, settings, listen_host)
    app.include_router(uploads.router)
    install_view_routes(app, reader_of(holder))
    app.add_middleware(IsalGZipMiddleware, minimum_size=500)
    app.add_middleware(ResponseCache, holder=holder, routes=app.router.routes)
    app.add_middleware(BodyLimit, paths={"/api/cypher": MAX_BODY_BYTES})
    app.add_middleware(SecurityHeaders)
    app.add_middleware(TrustedHosts, allowed_hosts=settings.allowed_hosts)
    return app
