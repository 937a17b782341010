"""The HTTP API (FastAPI): studies, participants, codes, concepts, named queries, read-only Cypher,
uploads and the network views.

    from mmkg.server.api import create_app
    app = create_app()            # store from MMKG_STORE / NEO4J_URI; uvicorn.run(app)

The server keeps the graph open read-only.  On the embedded store, GET responses are replayed until an
upload swaps the store (close, open read-write, load atomically, reopen read-only) under an exclusive
lock and starts a new generation; the server therefore shows the embedded store as it was when the
server opened it.  Every error, whatever raised it, leaves as `{"error": {kind, message, details}}`.
"""
from __future__ import annotations

import errno
import hmac
import json
import logging
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, nullcontext
from inspect import Parameter as SigParameter
from inspect import Signature
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware

import mmkg
from mmkg.api import Mmkg, open_store
from mmkg.config import Settings
from mmkg.errors import (
    LoadError,
    MmkgError,
    NoSpaceError,
    NotFoundError,
    StoreBusyError,
    StoreError,
    TooLargeError,
    UnauthorizedError,
    UploadsDisabledError,
)
from mmkg.queries import PARAM_TYPES, NamedQuery, get_query, registry

log = logging.getLogger("mmkg.server")

KgFactory = Callable[[bool], Mmkg]  # read_only -> an open graph
CONCEPT_KINDS = ("pipeline_element", "aml_threat", "security_threat", "aml_defense", "security_defense",
                 "perception")
UPLOAD_SUFFIXES = {".zip": "a zipped study folder", ".csv": "a codings CSV", ".qdpx": "a REFI-QDA project",
                   ".qdc": "a REFI-QDA codebook", ".qde": "a REFI-QDA project document"}


# ------------------------------------------------------------------------------------------ errors

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
    body = {"error": {"kind": kind, "message": message, "details": list(details or [])}}
    return JSONResponse(body, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
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


# ------------------------------------------------------------------------------------------ the graph

class _ReadWriteLock:
    """Many readers or one writer."""

    def __init__(self):
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writing)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writing)
            self._writing = True
            self._cond.wait_for(lambda: self._readers == 0)
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


class GraphHolder:
    """The server's graph, read-only. Each request reads one version from start to end; on the embedded
    store, a request that finds a newer published version (this server's upload or another process's load:
    one stat of the store's `CURRENT` file) opens it, and the version it replaces is closed once its last
    request has finished. Uploads are written one at a time, as new versions, while requests go on."""

    def __init__(self, factory: KgFactory):
        self._factory = factory
        self._kg: Mmkg | None = None
        self._readers: dict[int, int] = {}  # id(graph) -> requests reading it
        self._retired: dict[int, Mmkg] = {}  # replaced graphs still being read
        self._lock = _ReadWriteLock()  # close() waits for the requests in flight
        self._open_lock = threading.Lock()
        self._upload_lock = threading.Lock()
        self._uploads = 0
        self.cacheable = False

    @property
    def generation(self) -> Any:
        """Changes whenever what requests see may change: this server's uploads and, on the embedded
        store, the version published in the store folder (by any process)."""
        kg = self._kg
        latest = getattr(kg.store, "latest_version", None) if kg is not None else None
        if latest is None:
            return self._uploads
        try:
            return self._uploads, latest()
        except MmkgError:
            return self._uploads, None

    @contextmanager
    def reading(self) -> Iterator[Mmkg]:
        with self._lock.read():
            kg = self._check_out()
            try:
                yield kg
            finally:
                self._check_in(kg)

    def _check_out(self) -> Mmkg:
        with self._open_lock:
            kg = self._kg
            if kg is None or _is_stale(kg):
                fresh = self._factory(True)
                # A read-only LadybugDB handle reads one published version, so its answers change only with
                # the version token; a Neo4j server can be written by anyone at any time.
                self.cacheable = fresh.store.name == "ladybug"
                if kg is not None:
                    self._retire(kg)
                self._kg = kg = fresh
            self._readers[id(kg)] = self._readers.get(id(kg), 0) + 1
            return kg

    def _check_in(self, kg: Mmkg) -> None:
        with self._open_lock:
            self._readers[id(kg)] -= 1
            if self._readers[id(kg)] == 0:
                del self._readers[id(kg)]
                if self._retired.pop(id(kg), None) is not None:
                    kg.close()

    def _retire(self, kg: Mmkg) -> None:
        if self._readers.get(id(kg), 0):
            self._retired[id(kg)] = kg
        else:
            kg.close()

    def load(self, source: Path, study_id: str | None,
             prepare: Callable[[], Path] | None = None) -> mmkg.api.LoadReport:
        """Load `source` as a new version under the store's writer lock; `prepare()` (unpacking a zip) runs
        under that lock too and returns the source to load. One upload at a time: a second one, or one that
        meets another process's load, is refused (`StoreBusyError`) without waiting."""
        if not self._upload_lock.acquire(blocking=False):
            raise StoreBusyError("another upload is being written to the store; send this one again when it "
                                 "has finished (nothing was written)")
        try:
            with self._factory(False) as writable:
                hold = getattr(writable.store, "writing", None)
                with hold() if hold is not None else nullcontext():
                    if prepare is not None:
                        source = prepare()
                    return writable.load(source, study_id=study_id)
        finally:
            self._uploads += 1
            self._upload_lock.release()

    def close(self) -> None:
        with self._lock.write(), self._open_lock:
            for kg in [self._kg, *self._retired.values()]:
                if kg is not None:
                    kg.close()
            self._kg = None
            self._retired.clear()


def _is_stale(kg: Mmkg) -> bool:
    """True when the graph's store has published a newer version than the one `kg` reads."""
    is_stale = getattr(kg.store, "is_stale", None)
    return bool(is_stale()) if is_stale is not None else False


class ResponseCache:
    """ASGI middleware: replay a GET response byte for byte while the store generation is unchanged.

    On the embedded store the graph is a read-only snapshot between loads, so a 200 response depends only
    on path, parameters and the Accept header. Only requests whose query parameters are all ones the route
    declares are cached (keyed on the sorted parameters), so junk parameters cannot fill the cache, which is
    bounded in bytes (least recently used out first). Nothing is cached on Neo4j, which others may write."""

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
        route = next((r for r in self.routes if r.matches(scope)[0] == Match.FULL), None)
        dependant = getattr(route, "dependant", None)
        if dependant is None:
            return None
        declared = {p.alias for p in dependant.query_params}
        names = [name for name, _ in pairs]
        if len(set(names)) != len(names) or not set(names) <= declared:
            return None
        accept = next((v for k, v in scope["headers"] if k == b"accept"), b"")
        return self.holder.generation, scope["path"], tuple(sorted(pairs)), accept

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


def default_factory(settings: Settings, neo4j_uri: str | None = None) -> KgFactory:
    """Open the store the settings name (Neo4j when a URI is given or NEO4J_URI is set)."""
    return lambda read_only: open_store(settings.store, neo4j_uri=neo4j_uri, read_only=read_only)


# ------------------------------------------------------------------------------------------ models

class Study(BaseModel):
    model_config = ConfigDict(extra="allow")
    study_id: str
    title: str | None = None
    provenance: str | None = Field(None, description="where the study's data come from (shown with every result)")


class Participant(BaseModel):
    participant_id: str
    label: str | None = None
    attributes: dict[str, str | float | bool | None] = Field(
        default_factory=dict, description="participant attributes (Table 1 / case variables), typed")


class ConceptLink(BaseModel):
    concept: str
    label: str | None = None
    kind: str | None = None
    match: str | None = Field(None, description="SKOS match of code to concept: exact, close, broad, narrow, related")


class CodeWithConcepts(BaseModel):
    model_config = ConfigDict(extra="allow")
    study_id: str
    codebook: str
    code_id: str
    label: str | None = None
    concepts: list[ConceptLink] = Field(default_factory=list, description="ontology concepts the code maps to")


class ExternalLink(BaseModel):
    scheme: str | None = None
    external_id: str | None = None
    name: str | None = None
    url: str | None = None
    match: str | None = None


class MappedCode(BaseModel):
    study_id: str
    codebook: str
    code_id: str
    label: str | None = None
    match: str | None = None


class Concept(BaseModel):
    concept: str = Field(description="the concept's uid (local name in the mmkg ontology)")
    iri: str | None = None
    label: str | None = None
    kind: str | None = None
    definition: str | None = None
    alt_labels: list[str] = Field(default_factory=list)
    broader: list[str] = Field(default_factory=list)
    external_ids: list[ExternalLink] = Field(default_factory=list, description="e.g. MITRE ATLAS techniques")
    codes: list[MappedCode] = Field(default_factory=list, description="study codes that map to the concept")


class QueryParameterInfo(BaseModel):
    name: str
    type: Literal["STRING", "INTEGER", "FLOAT", "BOOLEAN"]
    default: Any = None
    description: str = ""


class QueryInfo(BaseModel):
    name: str
    title: str
    description: str
    parameters: list[QueryParameterInfo]
    path: str = Field(description="where to run it: GET with the parameters as query string")


class QueryResult(BaseModel):
    query: str
    parameters: dict[str, Any]
    provenance: dict[str, str] = Field(description="study id → where its data come from, for the studies in the rows")
    columns: list[str]
    rows: list[dict[str, Any]]


class LoadResult(BaseModel):
    study_id: str
    counts: dict[str, int]
    seconds: float
    warnings: list[str]
    provenance: str


# ------------------------------------------------------------------------------------------ reads

_PARTICIPANTS = """
MATCH (s:Study)-[:HAS_PARTICIPANT]->(p:Participant) WHERE s.id = $study_id
OPTIONAL MATCH (p)-[:HAS_ATTRIBUTE]->(a:Attribute)
RETURN p.id AS participant_id, p.label AS label, a.name AS name, a.value AS value, a.value_num AS value_num,
       a.type AS type
ORDER BY participant_id, name"""
_CODE_CONCEPTS = """
MATCH (k:Code)-[m:MAPS_TO]->(c:Concept) WHERE k.study_id = $study_id
RETURN k.codebook AS codebook, k.id AS code_id, c.uid AS concept, c.label AS label, c.kind AS kind,
       m.match AS match
ORDER BY codebook, code_id, concept"""
_CONCEPTS = """
MATCH (c:Concept)
RETURN c.uid AS concept, c.iri AS iri, c.label AS label, c.kind AS kind, c.definition AS definition,
       c.alt_labels AS alt_labels
ORDER BY concept"""
_BROADER = "MATCH (c:Concept)-[:BROADER]->(b:Concept) RETURN c.uid AS concept, b.uid AS broader ORDER BY broader"
_EXTERNAL = """
MATCH (c:Concept)-[m:EXTERNAL_MATCH]->(x:ExternalId)
RETURN c.uid AS concept, x.scheme AS scheme, x.external_id AS external_id, x.name AS name, x.url AS url,
       m.match AS match
ORDER BY concept, external_id"""
_MAPPED = """
MATCH (k:Code)-[m:MAPS_TO]->(c:Concept)
RETURN c.uid AS concept, k.study_id AS study_id, k.codebook AS codebook, k.id AS code_id, k.label AS label,
       m.match AS match
ORDER BY study_id, codebook, code_id"""


def _clean(value: Any) -> Any:
    """A JSON-ready Python value (NaN → None, numpy scalars → Python)."""
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value.item() if hasattr(value, "item") else value


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: _clean(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _attribute_value(row: dict) -> str | float | bool | None:
    if row["type"] == "bool":
        return None if row["value"] is None else str(row["value"]).lower() in ("true", "1", "yes")
    if row["type"] in ("float", "int", "integer", "number"):
        return row["value_num"]
    return row["value"]



def read_participants(kg: Mmkg, study_id: str) -> list[dict]:
    kg.require_study(study_id)
    people: dict[str, dict] = {}
    for row in _records(kg.cypher(_PARTICIPANTS, {"study_id": study_id})):
        person = people.setdefault(row["participant_id"], {"participant_id": row["participant_id"],
                                                           "label": row["label"], "attributes": {}})
        if row["name"] is not None:
            person["attributes"][row["name"]] = _attribute_value(row)
    return list(people.values())


def read_codes(kg: Mmkg, study_id: str) -> list[dict]:
    kg.require_study(study_id)
    codes = _records(kg.query("codes", study_id=study_id))
    links: dict[tuple, list] = {}
    for row in _records(kg.cypher(_CODE_CONCEPTS, {"study_id": study_id})):
        links.setdefault((row.pop("codebook"), row.pop("code_id")), []).append(row)
    for code in codes:
        code["concepts"] = links.get((code["codebook"], code["code_id"]), [])
    return codes


def read_concepts(kg: Mmkg) -> list[dict]:
    concepts = {row["concept"]: row for row in _records(kg.cypher(_CONCEPTS))}
    for concept in concepts.values():
        concept["alt_labels"] = [a for a in (concept.get("alt_labels") or "").split(";") if a]
        concept.update(broader=[], external_ids=[], codes=[])
    for row in _records(kg.cypher(_BROADER)):
        concepts[row["concept"]]["broader"].append(row["broader"])
    for key, statement in (("external_ids", _EXTERNAL), ("codes", _MAPPED)):
        for row in _records(kg.cypher(statement)):
            concepts[row.pop("concept")][key].append(row)
    return list(concepts.values())


# ------------------------------------------------------------------------------------------ output

def _frame_json(frame: pd.DataFrame) -> str:
    return frame.to_json(orient="records", date_format="iso", default_handler=str, force_ascii=False)


def result_provenance(kg: Mmkg, params: dict, frame: pd.DataFrame) -> dict[str, str]:
    """Provenance lines of the studies a result speaks about (its study_id column, else its parameter)."""
    studies = kg.query("studies").set_index("study_id")["provenance"].fillna("")
    if "study_id" in frame.columns:
        wanted = set(frame["study_id"].dropna().astype(str))
    elif params.get("study_id"):
        wanted = {params["study_id"]}
    else:
        wanted = set(studies.index)
    return {study: studies[study] for study in sorted(wanted) if study in studies.index and studies[study]}


def query_json(name: str, params: dict, frame: pd.DataFrame, provenance: dict[str, str]) -> bytes:
    """The `QueryResult` body, built without a per-row Python round trip."""
    head = json.dumps({"query": name, "parameters": params, "provenance": provenance,
                       "columns": [str(c) for c in frame.columns]}, default=str, ensure_ascii=False)
    return (head[:-1] + ', "rows": ' + _frame_json(frame) + "}").encode("utf-8")


def frame_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def wants_csv(request: Request, fmt: str | None) -> bool:
    if fmt is not None:
        return fmt == "csv"
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept


# ------------------------------------------------------------------------------------------ the app

def create_app(settings: Settings | None = None, kg_factory: KgFactory | None = None, *,
               neo4j_uri: str | None = None, listen_host: str = "127.0.0.1") -> FastAPI:
    """The API over the store `settings` names (or `kg_factory(read_only)`), with its views; `listen_host`
    is the address the server listens on (a public one requires MMKG_CYPHER_TOKEN for ad-hoc Cypher)."""
    from fastapi_offline import FastAPIOffline

    from mmkg.server.cypher_route import MAX_BODY_BYTES, install_cypher_route
    from mmkg.server.http_hygiene import BodyLimit, SecurityHeaders, TrustedHosts

    settings = settings or Settings()
    holder = GraphHolder(kg_factory or default_factory(settings, neo4j_uri))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        app.state.adhoc.close()
        holder.close()

    app = FastAPIOffline(
        title="mmkg", version=mmkg.__version__ if hasattr(mmkg, "__version__") else "0.1.0",
        description="A knowledge graph of mental-model codes and threats from qualitative security studies. "
                    "Named queries return JSON (or CSV with `format=csv` / `Accept: text/csv`); every error "
                    "has the shape `{\"error\": {\"kind\", \"message\", \"details\"}}`. The shipped study's "
                    "codings are a seeded reconstruction that reproduces the paper's figures, not the "
                    "authors' data.",
        responses=ERROR_RESPONSES, lifespan=lifespan, swagger_ui_parameters={"validatorUrl": None})
    app.state.holder = holder
    app.state.settings = settings
    _install_error_handlers(app)

    async def read(compute: Callable[[Mmkg], Any]) -> Any:
        """Run `compute(kg)` in the thread pool under the read lock."""
        def run() -> Any:
            with holder.reading() as kg:
                return compute(kg)

        return await run_in_threadpool(run)

    # --- studies, participants, codes, concepts ---------------------------------------------------------
    @app.get("/api/studies", response_model=list[Study], tags=["studies"])
    async def list_studies():
        """Every study in the graph with its counts and provenance."""
        return await read(lambda kg: _records(kg.studies()))

    @app.get("/api/studies/{study_id}", response_model=Study, tags=["studies"])
    async def one_study(study_id: str):
        """One study with its counts and provenance."""
        studies = await read(lambda kg: _records(kg.studies()))
        for study in studies:
            if study["study_id"] == study_id:
                return study
        raise NotFoundError(f"no study '{study_id}' in the store "
                            f"(studies: {', '.join(s['study_id'] for s in studies) or 'none'})")

    @app.get("/api/studies/{study_id}/participants", response_model=list[Participant], tags=["studies"])
    async def participants(study_id: str):
        """The study's participants with their attributes."""
        return await read(lambda kg: read_participants(kg, study_id))

    @app.get("/api/studies/{study_id}/codes", response_model=list[CodeWithConcepts], tags=["studies"])
    async def codes(study_id: str):
        """The study's codes (both codebooks) with the ontology concepts each maps to."""
        return await read(lambda kg: read_codes(kg, study_id))

    @app.get("/api/concepts", response_model=list[Concept], tags=["ontology"])
    async def concepts(kind: Literal[CONCEPT_KINDS] | None = Query(None, description="only concepts of this kind")):
        """Ontology concepts with broader terms, external ids (MITRE ATLAS) and the study codes mapped to them."""
        every = await read(read_concepts)
        return [c for c in every if kind is None or c["kind"] == kind]

    @app.get("/api/concepts/{concept}", response_model=Concept, tags=["ontology"])
    async def one_concept(concept: str):
        """One ontology concept by uid (e.g. ModelStealing)."""
        every = await read(read_concepts)
        for item in every:
            if item["concept"] == concept:
                return item
        raise NotFoundError(f"no concept '{concept}' in the ontology")

    # --- named queries ----------------------------------------------------------------------------------
    def read_queries() -> list[NamedQuery]:
        return [q for q in registry().values() if q.mode == "read"]

    @app.get("/api/queries", response_model=list[QueryInfo], tags=["queries"])
    async def list_queries():
        """The named queries with their typed parameters and defaults."""
        return [{"name": q.name, "title": q.title, "description": q.description, "path": f"/api/queries/{q.name}",
                 "parameters": [{"name": p.name, "type": p.type, "default": p.default, "description": p.description}
                                for p in q.parameters]} for q in read_queries()]

    async def run_named(request: Request, named: NamedQuery, given: dict, fmt: str | None) -> Response:
        params = named.bind({k: v for k, v in given.items() if v is not None})
        csv = wants_csv(request, fmt)

        def compute(kg: Mmkg) -> bytes:
            frame = kg.query(named.name, **params)
            return frame_csv(frame) if csv else query_json(named.name, params, frame,
                                                             result_provenance(kg, params, frame))

        body = await read(compute)
        if csv:
            return Response(body, media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": f'inline; filename="{named.name}.csv"'})
        return Response(body, media_type="application/json")

    for named in read_queries():
        app.add_api_route(f"/api/queries/{named.name}", _query_endpoint(named, run_named), methods=["GET"],
                          tags=["queries"], summary=named.title, description=named.description,
                          operation_id=f"query_{named.name}", response_model=QueryResult,
                          responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                                           "description": "rows as JSON (default) or CSV"}})

    @app.get("/api/queries/{name}", include_in_schema=False)
    async def unknown_query(name: str):
        get_query(name)  # raises NotFoundError naming the known queries
        raise NotFoundError(f"query '{name}' is not a read query and cannot run over HTTP")

    # --- ad-hoc Cypher ----------------------------------------------------------------------------------
    adhoc = install_cypher_route(app, holder, settings, listen_host)

    # --- uploads ----------------------------------------------------------------------------------------
    @app.post("/api/studies", response_model=LoadResult, status_code=201, tags=["studies"],
              responses=UPLOAD_ERRORS, openapi_extra={"requestBody": {"required": True, "content": {
                  "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
    async def upload_study(request: Request,
                           filename: str = Query(..., min_length=1, max_length=255, description=(
                               "name of the uploaded file; its ending says what it is: "
                               + ", ".join(f"{k} ({v})" for k, v in UPLOAD_SUFFIXES.items()))),
                           study_id: str | None = Query(None, min_length=1, max_length=64,
                                                        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                                                        description="load under this study id")):
        """Load a study sent as the raw request body (bearer token required; off unless MMKG_UPLOAD_TOKEN is
        set). The load is atomic: it replaces the study of the same id, or changes nothing."""
        _check_token(request, settings)
        _remove_abandoned_uploads()
        suffix = Path(filename).suffix.lower()
        if suffix not in UPLOAD_SUFFIXES:
            raise LoadError(f"cannot load '{filename}': expected one of {', '.join(UPLOAD_SUFFIXES)}")
        try:
            workdir = Path(tempfile.mkdtemp(prefix=f"{UPLOAD_PREFIX}{os.getpid()}-"))  # private (0700), removed below
        except OSError as exc:
            raise _temporary_folder_error(exc) from None
        try:
            upload = workdir / ("upload" + suffix)
            try:
                await _receive(request, upload, settings.max_upload_bytes)
            except OSError as exc:
                raise _temporary_folder_error(exc) from None
            prepare = (lambda: _unpack(upload, workdir)) if suffix == ".zip" else None
            report = await run_in_threadpool(holder.load, upload, study_id, prepare)
        except MmkgError as exc:  # name the client's file, not the server's temporary folder
            hidden = [(f"{workdir}/upload{suffix}", Path(filename).name), (f"{workdir}/", "")]
            for private, shown in hidden:
                exc.message = exc.message.replace(private, shown)
                exc.details = [d.replace(private, shown) for d in exc.details]
            raise
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return JSONResponse({"study_id": report.study_id, "counts": report.counts, "seconds": report.seconds,
                             "warnings": report.warnings, "provenance": report.provenance}, status_code=201)

    # --- views ------------------------------------------------------------------------------------------
    from mmkg.server.views import install_view_routes

    install_view_routes(app, read)
    app.state.adhoc = adhoc
    app.add_middleware(ResponseCache, holder=holder, routes=app.router.routes)
    app.add_middleware(GZipMiddleware, minimum_size=500)  # outside the cache: it stores bodies uncompressed
    app.add_middleware(BodyLimit, paths={"/api/cypher": MAX_BODY_BYTES})
    app.add_middleware(SecurityHeaders)
    app.add_middleware(TrustedHosts, allowed_hosts=settings.allowed_hosts)
    return app


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
    parameters.append(SigParameter("format", SigParameter.KEYWORD_ONLY, annotation=Literal["json", "csv"] | None,
                                   default=Query(None, description="json (default) or csv; also Accept: text/csv")))
    endpoint.__signature__ = Signature(parameters)
    endpoint.__name__ = f"query_{named.name}"
    return endpoint


def _check_token(request: Request, settings: Settings) -> None:
    token = settings.upload_token.get_secret_value() if settings.upload_token else ""
    if not token:
        raise UploadsDisabledError("uploads are off: set MMKG_UPLOAD_TOKEN on the server to allow them")
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
        raise UnauthorizedError("a valid 'Authorization: Bearer <token>' header is required to upload")


async def _receive(request: Request, target: Path, limit: int) -> None:
    """Stream the request body to `target`, refusing it as soon as it exceeds `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLargeError(f"upload of {int(declared):,} bytes exceeds the limit of {limit:,} bytes "
                            "(MMKG_MAX_UPLOAD_BYTES)")
    size = 0
    with target.open("wb") as out:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLargeError(f"upload exceeds the limit of {limit:,} bytes (MMKG_MAX_UPLOAD_BYTES)")
            out.write(chunk)
    if size == 0:
        raise LoadError("the upload is empty: send the file as the request body")


def _unpack(upload: Path, workdir: Path) -> Path:
    """Write the files a study folder has (study.json and its CSV tables) out of a zipped study into
    `workdir`; return the folder. The whole archive is checked first (`SafeArchive`: member count, names,
    links and devices, clashes, sizes and ratios per member and in total); nothing else is extracted."""
    from mmkg.loader.refi_qda import ArchiveLimits, MiB, SafeArchive
    from mmkg.loader.study_folder import META_FILE, TABLE_FILES

    limits = ArchiveLimits(max_members=1_000, max_total_uncompressed=512 * MiB)
    archive = SafeArchive(upload, upload.read_bytes(), limits)
    metas = sorted((key for key in archive.files if key.rsplit("/", 1)[-1] == META_FILE),
                   key=lambda key: (key.count("/"), key))
    if not metas:
        raise LoadError(f"{upload.name}: the zip holds no study.json; zip a study folder (see docs/study-format.md)")
    if len(metas) > 1 and metas[1].count("/") == metas[0].count("/"):
        raise LoadError(f"{upload.name}: the zip holds several study folders ({', '.join(metas[:3])}); "
                        "upload one study at a time")
    folder = metas[0][:-len(META_FILE)]
    target = workdir / "study"
    target.mkdir()
    for filename in [META_FILE, *TABLE_FILES.values()]:
        member = archive.lookup(folder + filename)
        if member is None:
            continue  # the study folder reader says which file is missing
        data = archive.read(member, limits.max_member_bytes)
        try:
            (target / filename).write_bytes(data)
        except OSError as exc:
            raise _temporary_folder_error(exc) from None
    return target


UPLOAD_PREFIX = "mmkg-upload-"


def _remove_abandoned_uploads() -> None:
    """Remove the temporary folders of uploads whose server process died (kill -9) before removing them."""
    if os.name != "posix":
        return
    for folder in Path(tempfile.gettempdir()).glob(f"{UPLOAD_PREFIX}*-*"):
        pid = folder.name[len(UPLOAD_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass  # alive, under another user


def _temporary_folder_error(exc: OSError) -> MmkgError:
    """An upload that cannot be kept in the temporary folder: nothing reached the store."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return NoSpaceError(f"the server's temporary folder is full ({exc.strerror}); the upload was not "
                            "loaded and nothing was written")
    return StoreError(f"the server cannot keep the upload in its temporary folder ({exc.strerror}); nothing "
                      "was written")
