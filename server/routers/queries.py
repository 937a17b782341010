"""The named queries: the list, one route per read query (typed parameters in OpenAPI), JSON or CSV."""
from __future__ import annotations

import json
from collections.abc import Callable
from inspect import Parameter as SigParameter
from inspect import Signature
from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from mmkg.api import Mmkg
from mmkg.errors import NotFoundError, QueryError
from mmkg.formats import OUTPUT_FORMATS, OutputFormat, format_names
from mmkg.queries import PARAM_TYPES, NamedQuery, get_query, registry
from mmkg.server.dependencies import graph_reader
from mmkg.server.models import QueryInfo, QueryResult
from mmkg.server.responses import query_json, result_provenance


def read_queries() -> list[NamedQuery]:
    return [q for q in registry().values() if q.mode == "read"]


def queries_router() -> APIRouter:
    """The routes of the named queries registered now (shipped ones and those of MMKG_QUERY_PATH)."""
    router = APIRouter(tags=["queries"])

    @router.get("/api/queries", response_model=list[QueryInfo])
    async def list_queries():
        """The named queries with their typed parameters and defaults."""
        return [{"name": q.name, "title": q.title, "description": q.description, "path": f"/api/queries/{q.name}",
                 "parameters": [{"name": p.name, "type": p.type, "default": p.default, "description": p.description}
                                for p in q.parameters]} for q in read_queries()]

    for named in read_queries():
        router.add_api_route(f"/api/queries/{named.name}", _query_endpoint(named, run_named), methods=["GET"],
                             summary=named.title, description=named.description,
                             operation_id=f"query_{named.name}", response_model=QueryResult,
                             responses={200: {"content": {f.media_type.split(";")[0]: {"schema": {"type": "string"}}
                                                          for f in OUTPUT_FORMATS.values() if f.name != "json"},
                                              "description": "rows as JSON (default) or another format"}})

    @router.get("/api/queries/{name}", include_in_schema=False)
    async def unknown_query(name: str):
        get_query(name)  # raises NotFoundError naming the known queries
        raise NotFoundError(f"query '{name}' is not a read query and cannot run over HTTP")

    return router


def wanted_format(request: Request, fmt: str | None) -> OutputFormat:
    """The output format (`mmkg.formats`) a request asks for: its `format` parameter, else the first registered
    format other than JSON that its Accept header names alone (without application/json), else JSON."""
    if fmt is not None:
        if fmt not in OUTPUT_FORMATS:  # unregistered since the app was built
            raise QueryError(f"unknown format '{fmt}' (formats: {', '.join(OUTPUT_FORMATS)})")
        return OUTPUT_FORMATS[fmt]
    accept = request.headers.get("accept", "")
    if "application/json" not in accept:
        for output_format in OUTPUT_FORMATS.values():
            if output_format.name != "json" and output_format.media_type.split(";")[0] in accept:
                return output_format
    return OUTPUT_FORMATS["json"]


async def run_named(request: Request, named: NamedQuery, given: dict, fmt: str | None) -> Response:
    """Run one named query with the given parameters; JSON (`QueryResult`) or another registered format."""
    params = named.bind({k: v for k, v in given.items() if v is not None})
    chosen = wanted_format(request, fmt)
    envelope = chosen.name == "json"

    def compute(kg: Mmkg) -> bytes:
        frame = kg.query(named.name, **params)
        if envelope:
            return query_json(named.name, params, frame, result_provenance(kg, params, frame))
        return chosen.write(frame).encode("utf-8")

    body = await graph_reader(request)(compute)
    if envelope:
        return Response(body, media_type="application/json")
    return Response(body, media_type=chosen.media_type,
                    headers={"Content-Disposition": f'inline; filename="{named.name}{chosen.suffix}"'})


def _query_endpoint(named: NamedQuery, run_named) -> Callable:
    """An endpoint whose signature carries the query's typed parameters, so OpenAPI documents them."""
    async def endpoint(request: Request, **kwargs):
        fmt = kwargs.pop("format")
        return await run_named(request, named, kwargs, fmt)

    parameters = [SigParameter("request", SigParameter.POSITIONAL_OR_KEYWORD, annotation=Request)]
    for p in named.parameters:
        parameters.append(SigParameter(
            p.name, SigParameter.KEYWORD_ONLY, annotation=PARAM_TYPES[p.type] | None,
            default=Query(None, description=f"{p.description} (default: {json.dumps(p.default)})".strip())))
    names = format_names()  # the formats registered when the app is built are the enum (mmkg.formats)
    accepts = ", ".join(f"Accept: {f.media_type.split(';')[0]}" for f in OUTPUT_FORMATS.values() if f.name != "json")
    parameters.append(SigParameter(
        "format", SigParameter.KEYWORD_ONLY, annotation=Literal[tuple(names)] | None,  # type: ignore[misc]
        default=Query(None, description=f"{', '.join(names)} (json, the default: the query result with its "
                                        f"provenance); also {accepts}")))
    endpoint.__signature__ = Signature(parameters)
    endpoint.__name__ = f"query_{named.name}"
    return endpoint
