"""One error root for mmkg, mapped in one place to CLI exit codes and to the HTTP JSON error shape."""
from __future__ import annotations

from typing import Any


def error_body(kind: str, message: str, details: list[str] | None = None) -> dict[str, Any]:
    """The one JSON error shape: `{"error": {"kind", "message", "details"}}` (the API builds every error body here)."""
    return {"error": {"kind": kind, "message": message, "details": list(details or [])}}


class MmkgError(Exception):
    """Root of every error mmkg raises on purpose; its message is meant for the user."""

    exit_code = 1
    http_status = 500
    kind = "error"

    def __init__(self, message: str, *, details: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.details = list(details or [])

    def __str__(self) -> str:
        if not self.details:
            return self.message
        return self.message + "\n" + "\n".join(f"  - {d}" for d in self.details)

    def to_json(self) -> dict[str, Any]:
        """The one JSON error shape of the HTTP API."""
        return error_body(self.kind, self.message, self.details)


class LoadError(MmkgError):
    """A study could not be read: unreadable, hostile or malformed input. Nothing was written."""

    exit_code = 2
    http_status = 400
    kind = "load_error"


class ValidationError(LoadError):
    """A study was read but fails validation; `details` lists every problem (file, row, column, what)."""

    kind = "validation_error"
    http_status = 422


class NotFoundError(MmkgError):
    """A named thing (study, query, participant, code, view) does not exist."""

    exit_code = 3
    http_status = 404
    kind = "not_found"


class StudyExistsError(LoadError):
    """A load would replace a study of the same id without being asked to (`replace`). Nothing was written."""

    http_status = 409
    kind = "study_exists"


class ExportError(MmkgError):
    """An export could not be written: the target exists and is not empty, or cannot be written. Nothing of the
    graph changed."""

    exit_code = 2
    http_status = 400
    kind = "export_error"


class QueryError(MmkgError):
    """A query was refused or failed: bad parameters, a write in a read-only context, a time-out."""

    exit_code = 4
    http_status = 400
    kind = "query_error"


class QueryRefusedError(QueryError):
    """An ad-hoc statement is outside the allowed read-only subset (grammar or allowlist); it never ran."""

    kind = "query_refused"


class QueryLimitError(QueryError):
    """An ad-hoc query was stopped at a limit (time, memory) enforced from outside the engine."""

    kind = "query_limit"


class BusyError(MmkgError):
    """Too many ad-hoc queries at once (from this client, or in all); try again shortly."""

    exit_code = 4
    http_status = 429
    kind = "busy"


class StoreError(MmkgError):
    """The graph store cannot be opened or is in a state mmkg does not expect."""

    exit_code = 5
    http_status = 500
    kind = "store_error"


class StoreUnavailableError(StoreError):
    """The server cannot open its store (missing, not a store folder, unreadable): a setting to fix on the
    server, not a fault of the request; nothing was read."""

    http_status = 503
    kind = "store_unavailable"


class StoreBusyError(StoreError):
    """Another process (or thread) holds the store's writer lock; nothing was written."""

    http_status = 409
    kind = "store_busy"


class NoSpaceError(StoreError):
    """The disk filled up while a new version of the store was written; nothing was published."""

    http_status = 507
    kind = "no_space"


class TooLargeError(LoadError):
    """An upload or archive exceeds a configured size limit."""

    http_status = 413
    kind = "too_large"


class ConfigError(MmkgError):
    """Settings are inconsistent (e.g. no upload token, bad Neo4j URI)."""

    exit_code = 6
    http_status = 500
    kind = "config_error"


class UploadsDisabledError(ConfigError):
    """Uploads are off because no upload token is configured."""

    http_status = 403
    kind = "uploads_disabled"


class ForbiddenError(ConfigError):
    """A feature is off in this server's configuration (e.g. ad-hoc Cypher on a public address without a token)."""

    http_status = 403
    kind = "forbidden"


class SandboxUnavailableError(ConfigError):
    """Ad-hoc Cypher is off because this machine cannot set up its OS sandbox (Landlock and seccomp)."""

    http_status = 503
    kind = "sandbox_unavailable"


class UnauthorizedError(MmkgError):
    """A bearer token is missing or wrong."""

    http_status = 401
    kind = "unauthorized"
