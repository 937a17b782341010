"""`POST /api/cypher`: ad-hoc read-only Cypher for exploring the graph, run through `mmkg.adhoc`.

The route only parses the request, checks the optional bearer token and formats the reply; the statement
check, the sandboxed workers and the limits are `mmkg.adhoc.AdhocCypher`'s (docs/security.md).
"""
from __future__ import annotations

import hmac
import ipaddress
import json
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from mmkg.adhoc.runner import AdhocCypher
from mmkg.config import Settings
from mmkg.errors import ForbiddenError, UnauthorizedError

MAX_BODY_BYTES = 1024 * 1024  # a statement (MMKG_CYPHER_MAX_CHARS) plus its parameters


class CypherRequest(BaseModel):
    cypher: str = Field(min_length=1, max_length=1_000_000,
                        description="one read-only Cypher statement (limit: MMKG_CYPHER_MAX_CHARS characters)")
    parameters: dict[str, Any] = Field(default_factory=dict, description="values for $parameters")
    max_rows: int | None = Field(None, ge=1, description="row limit (capped by MMKG_CYPHER_MAX_ROWS)")
    timeout_s: float | None = Field(None, gt=0, le=3600, description="time limit (capped by MMKG_CYPHER_TIMEOUT_S)")


class CypherResult(BaseModel):
    columns: list[str]
    rows: list[dict[str, Any]]
    row_count: int
    truncated: bool = Field(description="true when the result was cut at max_rows or max_bytes")
    truncated_by: Literal["rows", "bytes"] | None = Field(None, description="which limit cut the result")
    max_rows: int
    max_bytes: int
    timeout_s: float


CYPHER_ERRORS = {
    401: {"description": "missing or wrong bearer token (when MMKG_CYPHER_TOKEN is set)"},
    403: {"description": "ad-hoc Cypher is off: the server listens on a public address without MMKG_CYPHER_TOKEN"},
    429: {"description": "too many ad-hoc queries at once (per client, or all workers busy)"},
}


def is_loopback(host: str) -> bool:
    """True for loopback addresses and names (127.0.0.0/8, ::1, localhost)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def install_cypher_route(app: FastAPI, holder, settings: Settings, listen_host: str) -> AdhocCypher:
    """Add `POST /api/cypher` to `app`; returns the runner (close it when the app stops)."""
    runner = AdhocCypher(settings)
    token = settings.cypher_token.get_secret_value() if settings.cypher_token else ""
    public = not is_loopback(listen_host)

    @app.post("/api/cypher", response_model=CypherResult, tags=["queries"], responses=CYPHER_ERRORS)
    async def cypher(body: CypherRequest, request: Request):
        """Run one ad-hoc read-only Cypher statement. It is parsed by mmkg's read-only grammar (MATCH,
        OPTIONAL MATCH, WITH, UNWIND, RETURN, UNION, schema procedures, an allowlist of functions) and printed
        back canonically; on the embedded store it runs in a sandboxed worker process that can reach no file,
        socket or extension, and is killed at the time limit. Rows and bytes are capped; `truncated` says so."""
        _check_token(request, token, public, listen_host)
        limits = runner.limits(body.max_rows, body.timeout_s)
        client = request.client.host if request.client else "unknown"

        def run() -> bytes:
            with holder.reading() as kg:
                store = kg.store
            result = runner.run(store, body.cypher, body.parameters, limits, client=client)
            head = json.dumps({"columns": result.columns, "row_count": result.row_count,
                               "truncated": result.truncated_by is not None, "truncated_by": result.truncated_by,
                               "max_rows": limits.max_rows, "max_bytes": limits.max_bytes,
                               "timeout_s": limits.timeout_s}, ensure_ascii=False)
            return head[:-1].encode("utf-8") + b', "rows": ' + result.rows_json + b"}"

        return Response(await run_in_threadpool(run), media_type="application/json")

    return runner


def _check_token(request: Request, token: str, public: bool, listen_host: str) -> None:
    if not token:
        if public:
            raise ForbiddenError(
                f"ad-hoc Cypher is off: the server listens on {listen_host}, which is not a loopback address; "
                "set MMKG_CYPHER_TOKEN and send 'Authorization: Bearer <token>' to use it")
        return
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
        raise UnauthorizedError("a valid 'Authorization: Bearer <token>' header is required for /api/cypher")
