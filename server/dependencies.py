"""FastAPI dependencies of the routers: the graph holder, the settings and a reader of the graph."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from fastapi import Request

from mmkg.api import Mmkg
from mmkg.config import Settings
from mmkg.server.holder import GraphHolder

GraphReader = Callable[[Callable[[Mmkg], Any]], Awaitable[Any]]


def holder(request: Request) -> GraphHolder:
    """The graph the app holds (`create_app` puts it on `app.state`)."""
    return request.app.state.holder


def settings(request: Request) -> Settings:
    return request.app.state.settings


def reader_of(graphs: GraphHolder) -> GraphReader:
    """`await read(compute)` runs `compute(kg)` in a worker thread under the holder's read lock, at most
    `read_slots()` at once (`GraphHolder.read_limiter`)."""
    async def read(compute: Callable[[Mmkg], Any]) -> Any:
        def run() -> Any:
            with graphs.reading() as kg:
                return compute(kg)

        return await anyio.to_thread.run_sync(run, limiter=graphs.read_limiter)

    return read


def graph_reader(request: Request) -> GraphReader:
    """The dependency form of `reader_of`."""
    return reader_of(holder(request))
