"""The HTTP routes of the views (`/`, `/views/…`, `/static/…`): parameters, controls and the index page."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import quote

import pandas as pd
from fastapi import Request

from mmkg.api import attribute_names
from mmkg.errors import MmkgError, NotFoundError
from mmkg.metrics import view_metrics
from mmkg.server import view_figures as fig
from mmkg.server.render import ASSET_FILES, asset, error_page, provenance_lines, render_page, table
from mmkg.server.version_memo import studies as kept_studies
from mmkg.server.views import (
    MAX_EDGES,
    Metric,
    SourceKind,
    Unit,
    coders,
    comparison_figures,
    cooccurrence_network,
    default_attribute,
    default_codebook,
    default_source_kind,
    participant_attributes,
    participant_ids,
    participant_network,
    study_codebooks,
    threat_map_network,
    units,
)

# ------------------------------------------------------------------------------------------ HTTP routes

def install_view_routes(app, read: Callable) -> None:
    """GET /, /views/cooccurrence, /views/threat-map, /views/participants/{id}, /views/comparison, /static/…,
    /favicon.ico.  A view that fails answers an HTML page when the client asks for HTML (a browser), else the
    API's JSON error shape."""
    from fastapi import APIRouter, Query
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, Response
    from fastapi.routing import APIRoute

    class HtmlErrorRoute(APIRoute):
        def get_route_handler(self):
            handler = super().get_route_handler()

            async def route(request: Request):
                try:
                    return await handler(request)
                except (MmkgError, RequestValidationError) as exc:
                    if "text/html" not in request.headers.get("accept", ""):
                        raise
                    if isinstance(exc, RequestValidationError):
                        details = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                                   for e in exc.errors()]
                        return HTMLResponse(error_page(422, None, "The page's parameters are invalid.", details),
                                            status_code=422)
                    return HTMLResponse(error_page(exc.http_status, exc, str(exc), list(getattr(exc, "details", []))),
                                        status_code=exc.http_status)
            return route

    router = APIRouter(route_class=HtmlErrorRoute)
    html = {"response_model": None, "tags": ["views"],
            "responses": {200: {"content": {"text/html": {"schema": {"type": "string"}}}, "description": "HTML page"}}}
    study = Query("", max_length=200, description="study id ('' = the only study in the store)")
    seed_param = Query(1, ge=0, le=1_000_000, description="layout seed: the same seed draws the same figure")

    async def page(build: Callable) -> HTMLResponse:
        return HTMLResponse(await read(build))

    @router.get("/", **html)
    async def index():
        """The index page: studies with provenance, links to every view and query."""
        return await page(index_page)

    async def cooccurrence_view(study_id: str = study, unit: Unit = "segment", metric: Metric = "count",
                                min_count: str = Query("", max_length=9, pattern=r"^\d*$", description=(
                                    "smallest n_ab drawn; empty: the smallest that leaves at most max_edges pairs")),
                                max_edges: int = Query(MAX_EDGES, ge=0, le=100_000, description="0 = no limit"),
                                codebook: str | None = Query(None, max_length=200, description=(
                                    "codebook ('' = every codebook; omitted: the study's first)")),
                                color_by: Literal["kind", "group"] = "kind",
                                coder: str = Query("", max_length=200), group: str = Query("", max_length=200),
                                seed: int = seed_param):
        """Code co-occurrence network: unit, metric, threshold, codebook, code group, coder, layout seed."""
        args = dict(study_id=study_id, unit=unit, metric=metric, min_count=int(min_count) if min_count else None,
                    max_edges=max_edges, codebook=codebook, color_by=color_by, coder=coder, group=group, seed=seed)

        def build(kg) -> str:
            args["study_id"] = study_of(kg, study_id)
            args["codebook"] = default_codebook(kg, args["study_id"]) if codebook is None else codebook
            net = cooccurrence_network(kg, **args)
            return render_page("Co-occurrence", [net], provenance=provenance_lines(kg, args["study_id"]),
                               controls=_controls(args, kg, min_count), action="/views/cooccurrence",
                               study_id=args["study_id"])
        return await page(build)

    # the metrics registered when the app is built are the enum of `metric` (mmkg.metrics)
    cooccurrence_view.__annotations__["metric"] = Literal[tuple(view_metrics())]  # type: ignore[misc]
    router.get("/views/cooccurrence", **html)(cooccurrence_view)

    @router.get("/views/threat-map", **html)
    async def threat_map_view(study_id: str = study, source_kind: SourceKind | None = None):
        """The pipeline threat map (after the paper's Figure 1) with participant counts from one kind of source
        (omitted: interviews where the study has them, else every source)."""
        def build(kg) -> str:
            chosen = study_of(kg, study_id)
            kind = default_source_kind(kg, chosen) if source_kind is None else source_kind
            net = threat_map_network(kg, chosen, kind)
            controls = [_studies_option(kg, chosen),
                        _select("source_kind", "counted in", source_kinds(kg, chosen, kind) + [""], kind,
                                {"": "every source"})]
            return render_page("Threat map", [net], provenance=provenance_lines(kg, chosen), controls=controls,
                               action="/views/threat-map", study_id=chosen)
        return await page(build)

    @router.get("/views/participants/{participant_id}", **html)
    async def participant_view(participant_id: str, study_id: str = study):
        """One participant's mental model: pipeline elements, threats and defenses they name."""
        def build(kg) -> str:
            chosen = study_of(kg, study_id)
            net = participant_network(kg, participant_id, chosen)
            links = [{"href": f"/views/participants/{quote(p, safe='')}?study_id={quote(chosen)}", "text": p}
                     for p in participant_ids(kg, chosen)]
            attributes = table(f"Attributes of {participant_id}", participant_attributes(kg, participant_id, chosen))
            return render_page(f"Participant {participant_id}", [net], provenance=provenance_lines(kg, chosen),
                               links=links, tables=[attributes], study_id=chosen)
        return await page(build)

    @router.get("/views/comparison", **html)
    async def comparison_view(study_id: str = study, attribute: str | None = Query(None, max_length=200, description=(
                                  "participant attribute (omitted: works_in_security where the study has it, else "
                                  "its first attribute with two or more values)")),
                              codebook: str | None = Query(None, max_length=200, description=(
                                  "codebook ('' = every codebook; omitted: the study's first)")),
                              min_participants: int = Query(1, ge=1, le=10_000), seed: int = seed_param):
        """Participant groups compared: AML vs security codes per group, codes each group mentions more."""
        args = dict(study_id=study_id, attribute=attribute, codebook=codebook, min_participants=min_participants,
                    seed=seed)

        def build(kg) -> str:
            args["study_id"] = chosen = study_of(kg, study_id)
            args["codebook"] = default_codebook(kg, chosen) if codebook is None else codebook
            if attribute is None and not attribute_names(kg, chosen):
                return render_page("Comparison", [], provenance=provenance_lines(kg, chosen),
                                   controls=[_studies_option(kg, chosen)], action="/views/comparison",
                                   intro=f"Study '{chosen}' has no participant attributes to compare participants by.",
                                   study_id=chosen)
            args["attribute"] = default_attribute(kg, chosen) if attribute is None else attribute
            figures = comparison_figures(kg, **args)
            return render_page("Comparison", figures["panels"], provenance=provenance_lines(kg, chosen),
                               charts=[figures["chart"]], controls=_comparison_controls(args, kg),
                               action="/views/comparison", study_id=chosen)
        return await page(build)

    @router.get("/views/{rest:path}", include_in_schema=False)
    async def unknown_view(rest: str):
        raise NotFoundError(f"no view '/views/{rest}' (views: cooccurrence, threat-map, participants/<id>, comparison)")

    app.include_router(router)

    @app.get("/static/{name}", include_in_schema=False)
    async def static_asset(name: str, request: Request, v: str = ""):
        if name not in ASSET_FILES:
            raise NotFoundError(f"no static file '{name}'")
        data, media, version = asset(name)
        headers = {"ETag": f'"{version}"', "Cache-Control": "public, max-age=31536000, immutable" if v == version
                   else "public, max-age=300"}
        if request.headers.get("if-none-match") == f'"{version}"':
            return Response(status_code=304, headers=headers)
        return Response(data, media_type=media, headers=headers)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():
        data, media, version = asset("favicon.svg")
        return Response(data, media_type=media, headers={"Cache-Control": "public, max-age=86400"})



def study_of(kg, study_id: str) -> str:
    """The study a view shows: the one named (which must exist) or, for '', the only study in the store."""
    chosen = kg.resolve_study(study_id, every=False)
    kg.require_study(chosen)
    return chosen


def source_kinds(kg, study_id: str, chosen: str) -> list[str]:
    """The kinds of the study's sources, in `mmkg.tables.SOURCE_KINDS` order (and the chosen one)."""
    from mmkg.tables import SOURCE_KINDS

    present = set(kg.query("sources", study_id=study_id)["kind"].astype(str)) | ({chosen} - {""})
    return [k for k in SOURCE_KINDS if k in present]


def _select(name: str, label: str, options: list, value: Any, texts: dict | None = None) -> dict:
    texts = texts or {}
    return {"name": name, "label": label, "value": "" if value is None else str(value),
            "options": [{"value": str(o), "text": texts.get(o, str(o))} for o in options]}


def _studies_option(kg, value: str) -> dict:
    return _select("study_id", "study", kg.study_ids(), value)


def _controls(args: dict, kg, min_count_text: str) -> list[dict]:
    study_id = args["study_id"]
    codes = kg.query("codes", study_id=study_id)
    books = study_codebooks(kg, study_id)
    in_book = codes if not args["codebook"] else codes[codes["codebook"] == args["codebook"]]
    group_rows = sorted(in_book.drop_duplicates("group_label").itertuples(index=False),
                        key=lambda r: (r.codebook, fig.natural_key(r.group_id)))
    groups = [""] + [r.group_label for r in group_rows]
    group_texts = {"": "every group", **{r.group_label: f"{r.group_id} {r.group_label}" for r in group_rows}}
    return [_studies_option(kg, study_id),
            _select("codebook", "codebook", books + [""], args["codebook"], {"": "both"}),
            _select("group", "code group", groups, args["group"], group_texts),
            _select("coder", "coder", [""] + coders(kg, study_id), args["coder"], {"": "analysis codings"}),
            _select("unit", "unit", list(units()), args["unit"]),
            _select("metric", "edge width", list(view_metrics()), args["metric"],
                    {name: m.title for name, m in view_metrics().items()}),
            {"name": "min_count", "label": "min. count", "value": min_count_text, "type": "number", "min": 0,
             "placeholder": "auto"},
            {"name": "max_edges", "label": "max. edges", "value": str(args["max_edges"]), "type": "number", "min": 0},
            _select("color_by", "colour by", ["kind", "group"], args["color_by"],
                    {"kind": "concept kind", "group": "code group"}),
            {"name": "seed", "label": "layout seed", "value": str(args["seed"]), "type": "number", "min": 0,
             "relayout": True}]


def _comparison_controls(args: dict, kg) -> list[dict]:
    names = attribute_names(kg, args["study_id"])
    names += [args["attribute"]] if args["attribute"] not in names else []
    return [_studies_option(kg, args["study_id"]),
            _select("attribute", "participant attribute", names, args["attribute"]),
            _select("codebook", "codebook", study_codebooks(kg, args["study_id"]) + [""], args["codebook"],
                    {"": "both"}),
            {"name": "min_participants", "label": "min. participants", "value": str(args["min_participants"]),
             "type": "number", "min": 1},
            {"name": "seed", "label": "layout seed", "value": str(args["seed"]), "type": "number", "min": 0,
             "relayout": True}]


def index_page(kg) -> str:
    """Links to every view and named query, with each study's provenance."""
    from mmkg.queries import registry

    studies = kept_studies(kg)
    links = []
    for study_id in studies["study_id"]:
        s = quote(str(study_id))
        people = participant_ids(kg, study_id)
        links += [{"href": f"/views/cooccurrence?study_id={s}", "text": f"{study_id}: code co-occurrence network"},
                  {"href": f"/views/threat-map?study_id={s}",
                   "text": f"{study_id}: pipeline threat map (after the founding paper's Figure 1)"},
                  {"href": f"/views/comparison?study_id={s}", "text": f"{study_id}: comparison of participant groups"}]
        links += [{"href": f"/views/participants/{quote(p, safe='')}?study_id={s}",
                   "text": f"{study_id}: mental model of {p}"} for p in people[:1]]
    query_rows = pd.DataFrame([{"query": q.name, "title": q.title,
                                "parameters": ", ".join(p.name for p in q.parameters)}
                               for q in registry().values() if q.mode == "read"])
    tables = [table("Studies", studies.drop(columns=[c for c in ("provenance", "description") if c in studies])),
              table("Named queries (GET /api/queries/<name>; add format=csv for CSV)", query_rows)]
    several = len(studies) > 1  # a query's default study is the only one; with several, link every study's rows
    first = str(studies["study_id"].iloc[0]) if len(studies) else ""
    links += [{"href": f"/api/queries/{q}" + (_study_query(q, first) if several else ""), "text": f"query: {q}"}
              for q in query_rows.get("query", [])]
    links += [{"href": "/docs", "text": "API documentation (OpenAPI)"},
              {"href": "/upload", "text": "Upload a study (needs the server's upload token)"}]
    # with several studies the navigation opens the first one's views (each study's are linked below)
    return render_page("mmkg", [], provenance=provenance_lines(kg, studies=studies), links=links, tables=tables,
                       study_id=first if several else "",
                       intro="A knowledge graph of mental-model codes and threats from qualitative security studies.")


def _study_query(name: str, first: str) -> str:
    """The query string of a named query's link in a store of several studies: every study where the query
    can show them ('*'), else the first study."""
    from mmkg.queries import get_query

    query = get_query(name)
    if not any(p.name == "study_id" for p in query.parameters):
        return ""
    return "?study_id=%2A" if "$study_id = '*'" in query.cypher else f"?study_id={quote(first)}"
