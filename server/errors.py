"""The API's one error shape, its OpenAPI documentation and the handlers that give every error that shape."""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from mmkg.errors import MmkgError, error_body

log = logging.getLogger("mmkg.server")


class ErrorInfo(BaseModel):
    kind: str = Field(description="machine-readable error kind, e.g. not_found, query_error, invalid_request")
    message: str
    details: list[str] = Field(default_factory=list, description="one line per problem (file, row, field …)")


class ErrorBody(BaseModel):
    """The one error shape of the API."""

    error: ErrorInfo


def _error_doc(description: str) -> dict:
    return {"model": ErrorBody, "description": description}


ERROR_RESPONSES: dict[int | str, dict] = {
    400: _error_doc("bad request: a refused or failing query, an unreadable upload"),
    404: _error_doc("no such study, participant, concept, query or route"),
    422: _error_doc("invalid parameters or study data"),
    500: _error_doc("internal error"),
}
UPLOAD_ERRORS: dict[int | str, dict] = {
    401: _error_doc("missing or wrong bearer token"),
    403: _error_doc("uploads are off: no MMKG_UPLOAD_TOKEN is configured"),
    413: _error_doc("upload larger than MMKG_MAX_UPLOAD_BYTES or an archive over its limits"),
}


def error_response(status: int, kind: str, message: str, details: list[str] | None = None,
                   headers: dict | None = None) -> JSONResponse:
    """The one error shape (`mmkg.errors.error_body`) as a response."""
    return JSONResponse(error_body(kind, message, details), status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Every error leaves in the one shape: mmkg's errors with their status, invalid requests as 422, HTTP
    errors with theirs, and anything else — a bug — as a logged 500 `internal_error`, never as a 4xx."""
    @app.exception_handler(MmkgError)
    async def mmkg_error(request: Request, exc: MmkgError) -> JSONResponse:
        if exc.http_status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        return JSONResponse(exc.to_json(), status_code=exc.http_status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()]
        return error_response(422, "invalid_request", "the request's parameters or body are invalid", details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kinds = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        message = f"no route {request.url.path}" if exc.status_code == 404 else str(exc.detail)
        return error_response(exc.status_code, kinds.get(exc.status_code, "http_error"), message,
                              headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return error_response(500, "internal_error", f"internal error: {type(exc).__name__}")
