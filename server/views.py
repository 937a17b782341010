"""Network views (pyvis): co-occurrence, the pipeline threat map, one participant's mental model and a
comparison of participant groups.  Every page is one self-contained HTML file: vis-network is inlined
from pyvis's own copy and our template links no CDN.

In a notebook::

    import mmkg
    from mmkg.server import views
    kg = mmkg.open_store("/tmp/x")
    net = views.cooccurrence_network(kg, unit="segment", metric="jaccard")   # a pyvis Network
    net.show("cooccurrence.html")                                           # or net.generate_html()

Networks are built from node and edge lists directly (pyvis's `add_edge` scans every existing edge).
"""
from __future__ import annotations

import json
import re
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Literal

import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pyvis.network import Network

from mmkg.errors import NotFoundError, QueryError

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
PYVIS_LIB = Path(__import__("pyvis").__file__).parent / "templates" / "lib" / "vis-9.1.2"

KIND_COLOURS = {
    "pipeline_element": "#4e79a7", "aml_threat": "#e15759", "security_threat": "#f28e2b",
    "aml_defense": "#59a14f", "security_defense": "#76b7b2", "perception": "#b07aa1", None: "#bab0ac",
}
KIND_LABELS = {
    "pipeline_element": "pipeline element", "aml_threat": "AML threat", "security_threat": "security threat",
    "aml_defense": "AML defense", "security_defense": "security defense", "perception": "perception",
    None: "not mapped",
}
GROUP_PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                 "#9c755f", "#bab0ac", "#86bcb6", "#d37295", "#a0cbe8", "#ffbe7d", "#8cd17d", "#f1ce63"]
# The ML pipeline in the order of the paper's Figure 1 (narrower elements right after their broader one).
PIPELINE_ORDER = ["DataCollection", "DataLabelling", "Data", "DataPreprocessing", "FeatureExtraction", "Database",
                  "Design", "Training", "Model", "Testing", "Deployment", "API", "DeploymentEnvironment", "Cloud"]
PIPELINE_MAIN = ["DataCollection", "DataLabelling", "Design", "Training", "Model", "Testing", "Deployment"]
UNITS = ("segment", "exact", "source", "participant")
METRICS = {"count": "n_ab", "jaccard": "c_coefficient", "p_b_given_a": "p_b_given_a", "lift": "lift"}
Unit = Literal["segment", "exact", "source", "participant"]
SourceKind = Literal["interview", "drawing", "other", ""]
Metric = Literal["count", "jaccard", "p_b_given_a", "lift"]


class MmkgNetwork(Network):
    """A pyvis `Network` that renders with mmkg's offline page template (title, provenance, legend)."""

    def __init__(self, heading: str = "", *, directed: bool = False, height: str = "720px"):
        super().__init__(height=height, width="100%", directed=directed, heading=heading, cdn_resources="in_line")
        self.set_template_dir(str(TEMPLATE_DIR), "page.html")
        self.subtitle = ""
        self.legend: list[tuple[str, str]] = []  # (colour, label)
        self.page: dict[str, Any] = {}  # title, provenance, controls, tables, nav of the whole page

    def generate_html(self, name: str = "index.html", local: bool = True, notebook: bool = False) -> str:
        page = {"title": self.heading or "mmkg network", **self.page}
        self.html = render_page(panels=[self], **page)
        return self.html

    def panel_data(self) -> dict:
        return {"nodes": self.nodes, "edges": self.edges,
                "options": self.options if isinstance(self.options, dict) else json.loads(self.options.to_json())}


def build_network(nodes: list[dict], edges: list[dict], *, heading: str = "", directed: bool = False,
                  options: dict | None = None, height: str = "720px") -> MmkgNetwork:
    """A network from node dicts (`id`, `label`, …) and edge dicts (`from`, `to`, …) in linear time."""
    net = MmkgNetwork(heading, directed=directed, height=height)
    net.nodes = nodes
    net.node_ids = [n["id"] for n in nodes]
    net.node_map = {n["id"]: n for n in nodes}
    if directed:
        for edge in edges:
            edge.setdefault("arrows", "to")
    net.edges = edges
    net.options = options or default_options()
    return net


def default_options(physics: bool = True) -> dict:
    return {
        "nodes": {"shape": "dot", "scaling": {"min": 8, "max": 40}, "font": {"size": 14}},
        "edges": {"scaling": {"min": 1, "max": 10}, "color": {"inherit": False, "color": "#9aa5b1"},
                  "smooth": False},
        "physics": {"enabled": physics, "solver": "forceAtlas2Based",
                    "forceAtlas2Based": {"gravitationalConstant": -60, "springLength": 120},
                    "stabilization": {"enabled": True, "iterations": 300, "fit": True}},
        "interaction": {"hover": True, "tooltipDelay": 100, "navigationButtons": False},
    }


# ------------------------------------------------------------------------------------------ page rendering

@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(str(TEMPLATE_DIR)), autoescape=select_autoescape(["html"]))


@lru_cache(maxsize=1)
def inline_assets() -> dict[str, str]:
    """vis-network (from pyvis's package) and our stylesheet, for inlining; source-map links removed."""
    strip = re.compile(r"/[/*]#\s*sourceMappingURL=\S*(\s*\*/)?")
    return {"vis_js": strip.sub("", (PYVIS_LIB / "vis-network.min.js").read_text(encoding="utf-8")),
            "vis_css": strip.sub("", (PYVIS_LIB / "vis-network.css").read_text(encoding="utf-8")),
            "page_css": (STATIC_DIR / "mmkg.css").read_text(encoding="utf-8"),
            "page_js": (STATIC_DIR / "mmkg.js").read_text(encoding="utf-8")}


def render_page(title: str, panels: list[MmkgNetwork] = (), *, provenance: list[str] | None = None,
                controls: list[dict] | None = None, tables: list[dict] | None = None, intro: str = "",
                action: str = "", links: list[dict] | None = None) -> str:
    """One offline HTML page: header with provenance, optional controls form, network panels, tables."""
    template = _environment().get_template("page.html")
    data = [{"id": f"network-{i}", "heading": p.heading, "subtitle": p.subtitle, "legend": p.legend,
             "height": p.height, "data": p.panel_data()} for i, p in enumerate(panels)]
    return template.render(title=title, panels=data, provenance=provenance or [], controls=controls or [],
                           tables=tables or [], intro=intro, action=action, links=links or [],
                           **inline_assets())


def provenance_lines(kg, study_id: str | None = None) -> list[str]:
    """'study: provenance' for one study or every study in the store."""
    frame = kg.studies()
    if study_id is not None:
        frame = frame[frame["study_id"] == study_id]
    return [f"{row.study_id}: {row.provenance}" for row in frame.itertuples() if isinstance(row.provenance, str)
            and row.provenance]


def table(title: str, frame: pd.DataFrame, note: str = "") -> dict:
    rows = [["" if pd.isna(v) else (f"{v:.3g}" if isinstance(v, float) else str(v)) for v in row]
            for row in frame.itertuples(index=False)]
    return {"title": title, "columns": [str(c) for c in frame.columns], "rows": rows, "note": note}


# ------------------------------------------------------------------------------------------ shared lookups

_CODE_CONCEPTS = """
MATCH (k:Code)-[m:MAPS_TO]->(c:Concept) WHERE k.study_id = $study_id
RETURN k.codebook AS codebook, k.id AS code_id, c.uid AS concept, c.label AS concept_label, c.kind AS kind,
       m.match AS match
ORDER BY codebook, code_id, concept"""
_CONCEPT_RELATIONS = "\nUNION ALL\n".join(
    f"MATCH (a:Concept)-[:{t}]->(b:Concept) RETURN a.uid AS source, b.uid AS target, '{t}' AS type"
    for t in ("CONTROLS", "AFFECTS", "MITIGATES", "BROADER"))


def code_kinds(kg, study_id: str) -> dict[tuple[str, str], tuple[str | None, str | None]]:
    """(codebook, code_id) → (concept kind, concept uid); an exact match wins over other matches."""
    frame = kg.cypher(_CODE_CONCEPTS, {"study_id": study_id})
    rank = {"exact": 0, "close": 1, "narrow": 2, "broad": 3, "related": 4}
    frame = frame.assign(rank=frame["match"].map(rank).fillna(9)).sort_values(["rank", "concept"])
    result: dict[tuple[str, str], tuple[str | None, str | None]] = {}
    for row in frame.itertuples():
        result.setdefault((row.codebook, row.code_id), (row.kind, row.concept))
    return result


def group_colour(group: str) -> str:
    return GROUP_PALETTE[zlib.crc32(str(group).encode()) % len(GROUP_PALETTE)]


def _query_params(name: str, given: dict) -> dict:
    """The subset of `given` that the named query declares (None values dropped)."""
    from mmkg.queries import get_query

    declared = {p.name for p in get_query(name).parameters}
    return {k: v for k, v in given.items() if k in declared and v is not None}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


# ------------------------------------------------------------------------------------------ co-occurrence

def cooccurrence_network(kg, study_id: str = "founding", *, unit: Unit = "segment", metric: Metric = "count",
                         min_count: int = 1, codebook: str = "interview", color_by: Literal["kind", "group"] = "kind",
                         coder: str | None = None) -> MmkgNetwork:
    """Codes as nodes sized by how many units carry them, coloured by concept kind or code group; an edge per
    co-occurring pair, weighted by `metric` (count = n_ab, jaccard, p_b_given_a, lift) in `unit`."""
    if unit not in UNITS:
        raise QueryError(f"unit must be one of {', '.join(UNITS)}, not '{unit}'")
    if metric not in METRICS:
        raise QueryError(f"metric must be one of {', '.join(METRICS)}, not '{metric}'")
    params = _query_params("cooccurrence", {"study_id": study_id, "unit": unit, "min_count": min_count,
                                            "codebook": codebook, "coder": coder})
    pairs = kg.query("cooccurrence", **params)
    kinds = code_kinds(kg, study_id)
    codes = kg.query("codes", study_id=study_id)
    groups = {(r.codebook, r.code_id): f"{r.group_id} {r.group_label}" for r in codes.itertuples(index=False)}
    column = METRICS[metric]
    nodes: dict[str, dict] = {}
    edges = []
    for row in pairs.itertuples(index=False):
        ends = []
        for side in ("a", "b"):
            book, code = getattr(row, f"codebook_{side}"), getattr(row, f"code_{side}")
            node_id = f"{book}:{code}"
            ends.append(node_id)
            if node_id in nodes:
                continue
            kind, concept = kinds.get((book, code), (None, None))
            group = groups.get((book, code), "")
            label = getattr(row, f"label_{side}")
            colour = KIND_COLOURS.get(kind, KIND_COLOURS[None]) if color_by == "kind" else group_colour(group)
            n = int(getattr(row, f"n_{side}"))
            nodes[node_id] = {
                "id": node_id, "label": f"{code} {label}", "value": n, "color": colour, "shape": "dot",
                "title": (f"{code} {label} ({book})\ngroup: {group}\nconcept: {concept or '—'} "
                          f"({KIND_LABELS.get(kind, kind)})\n{unit}s with this code: {n}")}
        value = getattr(row, column)
        if pd.isna(value):
            continue
        lines = [f"{row.code_a} {row.label_a} — {row.code_b} {row.label_b}",
                 f"unit: {unit} (N = {int(row.n_units)})",
                 f"n_a = {int(row.n_a)}, n_b = {int(row.n_b)}, n_ab = {int(row.n_ab)}",
                 f"{metric} = {_fmt(value)}"]
        if metric != "count":
            lines.append(f"c-coefficient (Jaccard) = {_fmt(row.c_coefficient)}, P(b|a) = {_fmt(row.p_b_given_a)}, "
                         f"lift = {_fmt(row.lift)}")
        if bool(getattr(row, "imbalanced", False)):
            lines.append("imbalanced: one code is more than 5 times as frequent as the other")
        edges.append({"from": ends[0], "to": ends[1], "value": float(value), "title": "\n".join(lines)})
    net = build_network(list(nodes.values()), edges,
                        heading=f"Code co-occurrence — {codebook or 'both codebooks'}, unit: {unit}, metric: {metric}")
    from mmkg.analysis import UNIT_RULES

    net.subtitle = (f"{len(nodes)} codes, {len(edges)} pairs with n_ab ≥ {min_count}; node size: {unit}s carrying "
                    f"the code; edge width: {metric}. Unit: {UNIT_RULES[unit]}; N = units that can carry both codes.")
    used = {groups.get(tuple(node_id.split(":", 1)), "") for node_id in nodes}
    net.legend = _kind_legend() if color_by == "kind" else [(group_colour(g), g) for g in sorted(used)]
    return net


def _kind_legend() -> list[tuple[str, str]]:
    return [(KIND_COLOURS[k], KIND_LABELS[k]) for k in KIND_COLOURS]


# ------------------------------------------------------------------------------------------ threat map

def threat_map_network(kg, study_id: str = "founding", source_kind: str = "interview") -> MmkgNetwork:
    """The paper's Figure 1: pipeline elements left to right; each attack an arrow from the step the attacker
    controls to the step it affects, labelled with how many participants mention it in sources of
    `source_kind` (interview by default, as the paper's text counts; '' = interviews and drawings)."""
    frame = kg.query("threat_map", **_query_params("threat_map", {"study_id": study_id, "kind": "aml_threat",
                                                                  "source_kind": source_kind}))
    counted_in = {"": "interviews and drawings together"}.get(source_kind, f"{source_kind}s")
    labels = _ontology_labels()
    by_label = {label: uid for uid, label in labels.items() if uid in PIPELINE_ORDER}
    arrows = [(row.label, by_label.get(c, c), by_label.get(a, a), int(row.participants))
              for row in frame.itertuples(index=False) for c in row.controls for a in row.affects]
    touched = {c for _, c, _, _ in arrows} | {a for _, _, a, _ in arrows}
    steps = [s for s in PIPELINE_ORDER if s in set(PIPELINE_MAIN) | touched]
    nodes = [{"id": s, "label": labels.get(s, s), "shape": "box", "color": KIND_COLOURS["pipeline_element"],
              "font": {"color": "#ffffff", "size": 16}, "x": i * 190, "y": 0, "fixed": True,
              "title": f"pipeline element {s}"} for i, s in enumerate(steps)]
    edges = [{"from": a, "to": b, "color": {"color": "#c8ced6"}, "width": 6, "arrows": "to", "title": "pipeline"}
             for a, b in zip(steps, steps[1:])]
    parallel: dict[tuple[str, str], int] = {}
    for attack, controls, affects, n in arrows:
        key = (controls, affects)
        k = parallel.get(key, 0)
        parallel[key] = k + 1
        curve = {"enabled": True, "type": "curvedCW" if k % 2 == 0 else "curvedCCW", "roundness": 0.25 + 0.18 * (k // 2)}
        edge = {
            "from": controls, "to": affects, "arrows": "to", "label": f"{attack} ({n})",
            "color": {"color": KIND_COLOURS["aml_threat"]}, "width": 1 + min(n, 16) / 2, "smooth": curve,
            "font": {"size": 13, "strokeWidth": 3},
            "title": (f"{attack}: the attacker controls {labels.get(controls, controls)} and affects "
                      f"{labels.get(affects, affects)}\n"
                      f"mentioned by {n} participant(s) in their {counted_in}")}
        if controls == affects:
            edge["selfReference"] = {"size": 30 + 12 * k, "angle": 0.8}
        edges.append(edge)
    options = default_options(physics=False)
    options["edges"]["smooth"] = {"enabled": True, "type": "curvedCW", "roundness": 0.2}
    net = build_network(nodes, edges, heading="AML threats within the ML pipeline (the paper's Figure 1)",
                        directed=True, options=options, height="560px")
    net.subtitle = ("Each attack is an arrow from the pipeline step the attacker controls to the step where it takes "
                    f"effect; the number is how many participants mention the attack, counted in their {counted_in}.")
    net.legend = [(KIND_COLOURS["pipeline_element"], "pipeline element"), (KIND_COLOURS["aml_threat"], "AML attack")]
    return net


@lru_cache(maxsize=1)
def _ontology_labels() -> dict[str, str]:
    from mmkg.ontology import concept_tables

    concepts = concept_tables()["concepts"]
    return dict(zip(concepts["uid"], concepts["label"]))


@lru_cache(maxsize=1)
def _ontology_kinds() -> dict[str, str]:
    from mmkg.ontology import concept_tables

    concepts = concept_tables()["concepts"]
    return dict(zip(concepts["uid"], concepts["kind"]))


# ------------------------------------------------------------------------------------------ one participant

def participant_network(kg, participant_id: str, study_id: str = "founding") -> MmkgNetwork:
    """One participant's mental model: the concepts their material is coded with (pipeline elements in a row,
    threats above, defenses below), linked by the ontology's controls/affects/mitigates relations."""
    frame = kg.query("participant_model", **_query_params(
        "participant_model", {"study_id": study_id, "participant": participant_id, "participant_id": participant_id}))
    if frame.empty:
        people = kg.cypher("MATCH (p:Participant) WHERE p.study_id = $s RETURN p.id AS id ORDER BY id",
                           {"s": study_id})["id"].tolist()
        if participant_id not in people:
            raise NotFoundError(f"no participant '{participant_id}' in study '{study_id}' "
                                f"(participants: {', '.join(people) or 'none'})")
    labels, kinds = _ontology_labels(), _ontology_kinds()
    frame = frame.dropna(subset=["concept"])
    frame = frame.assign(kind=frame["concept"].map(kinds), concept_label=frame["concept"].map(labels))
    concepts = frame.drop_duplicates("concept")
    rows = {"pipeline_element": 0, "aml_threat": -1, "security_threat": -1, "aml_defense": 1,
            "security_defense": 1, "perception": 2}
    placed: dict[int, int] = {}
    nodes = []
    for row in concepts.sort_values("concept", key=lambda s: s.map(_pipeline_rank)).itertuples(index=False):
        level = rows.get(row.kind, 2)
        column = placed.get(level, 0)
        placed[level] = column + 1
        codes = frame[frame["concept"] == row.concept]
        code_text = ", ".join(f"{c.code_id} {c.label} ({c.source_kind})" for c in codes.itertuples(index=False))
        nodes.append({"id": row.concept, "label": row.concept_label, "color": KIND_COLOURS.get(row.kind, KIND_COLOURS[None]),
                      "shape": "box" if row.kind == "pipeline_element" else "dot", "value": len(codes),
                      "x": column * 170 + (85 if level != 0 else 0), "y": level * 170,
                      "title": f"{row.concept_label} ({KIND_LABELS.get(row.kind, row.kind)})\ncoded as: {code_text}"})
    present = {n["id"] for n in nodes}
    edges = []
    relations = kg.cypher(_CONCEPT_RELATIONS)
    style = {"CONTROLS": ("controls", "#e15759", True), "AFFECTS": ("affects", "#f28e2b", False),
             "MITIGATES": ("mitigates", "#59a14f", True), "BROADER": ("broader", "#9aa5b1", True)}
    for rel in relations.itertuples(index=False):
        if rel.source in present and rel.target in present:
            label, colour, dashed = style[rel.type]
            edges.append({"from": rel.source, "to": rel.target, "label": label, "color": {"color": colour},
                          "dashes": dashed, "title": f"{rel.source} {label} {rel.target}"})
    options = default_options(physics=False)
    net = build_network(nodes, edges, heading=f"Mental model of {participant_id}", directed=True, options=options,
                        height="620px")
    net.subtitle = ("Concepts the participant's interview and drawing are coded with: pipeline elements in the "
                    "middle row, threats above, defenses below, perceptions at the bottom; arrows are the "
                    "ontology's relations between them.")
    net.legend = _kind_legend()[:-1]
    return net


def _pipeline_rank(uid: str) -> int:
    return PIPELINE_ORDER.index(uid) if uid in PIPELINE_ORDER else len(PIPELINE_ORDER)


# ------------------------------------------------------------------------------------------ comparison

def comparison_networks(kg, study_id: str = "founding", attribute: str = "works_in_security",
                        codebook: str = "interview", min_participants: int = 1) -> list[MmkgNetwork]:
    """One network per value of a participant attribute (e.g. works in security: false / true): the codes
    that group's participants mention, sized by how many of them do, coloured by concept kind."""
    groups = kg.query("security_vs_aml_groups", **_query_params(
        "security_vs_aml_groups", {"study_id": study_id, "attribute": attribute}))
    groups = groups[groups["attribute_value"] != "(missing)"]
    if groups.empty:
        raise NotFoundError(f"no participant attribute '{attribute}' in study '{study_id}' "
                            f"(attributes: {', '.join(attribute_names(kg, study_id)) or 'none'})")
    kinds = code_kinds(kg, study_id)
    networks = []
    for group in groups.itertuples(index=False):
        value, people = group.attribute_value, int(group.participants)
        counts = kg.query("code_frequencies", **_query_params("code_frequencies", {
            "study_id": study_id, "codebook": codebook, "attribute": attribute, "attribute_value": str(value)}))
        counts = counts[counts["participants"] >= min_participants]
        nodes = []
        for row in counts.itertuples(index=False):
            kind, concept = kinds.get((row.codebook, row.code_id), (None, None))
            nodes.append({"id": f"{row.codebook}:{row.code_id}", "label": f"{row.code_id} {row.label}",
                          "value": int(row.participants), "color": KIND_COLOURS.get(kind, KIND_COLOURS[None]),
                          "title": (f"{row.code_id} {row.label} ({row.codebook})\nconcept: {concept or '—'} "
                                    f"({KIND_LABELS.get(kind, kind)})\nmentioned by {row.participants} of {people} "
                                    f"participant(s) with {attribute} = {value}; {row.codings} coding(s)")})
        net = build_network(nodes, [], heading=f"{attribute} = {value} ({people} participants)", height="520px")
        net.subtitle = f"{len(nodes)} codes mentioned by at least {min_participants} participant(s) of the group."
        net.legend = _kind_legend()
        networks.append(net)
    return networks


def attribute_names(kg, study_id: str) -> list[str]:
    return kg.cypher("MATCH (a:Attribute) WHERE a.study_id = $s RETURN DISTINCT a.name AS name ORDER BY name",
                     {"s": study_id})["name"].tolist()


# ------------------------------------------------------------------------------------------ HTTP routes

def install_view_routes(app, read: Callable) -> None:
    """GET /, /views/cooccurrence, /views/threat-map, /views/participants/{id}, /views/comparison."""
    from fastapi import Query
    from fastapi.responses import HTMLResponse

    # Errors stay JSON (the one error shape), so the route's default media type stays application/json.
    html = {"response_model": None, "tags": ["views"],
            "responses": {200: {"content": {"text/html": {"schema": {"type": "string"}}}, "description": "HTML page"}}}

    async def page(build: Callable) -> HTMLResponse:
        return HTMLResponse(await read(build))

    @app.get("/", **html)
    async def index():
        """The index page: studies with provenance, links to every view and query."""
        return await page(index_page)

    @app.get("/views/cooccurrence", **html)
    async def cooccurrence_view(study_id: str = Query("founding", max_length=200), unit: Unit = "segment",
                                metric: Metric = "count", min_count: int = Query(1, ge=1, le=1_000_000),
                                codebook: Literal["interview", "drawing", ""] = "interview",
                                color_by: Literal["kind", "group"] = "kind"):
        """Interactive code co-occurrence network with controls for unit, metric, minimum count and codebook."""
        args = dict(study_id=study_id, unit=unit, metric=metric, min_count=min_count, codebook=codebook,
                    color_by=color_by)

        def build(kg) -> str:
            kg.require_study(study_id)
            net = cooccurrence_network(kg, **args)
            return render_page("Co-occurrence", [net], provenance=provenance_lines(kg, study_id),
                               controls=_controls(args, kg), action="/views/cooccurrence")
        return await page(build)

    @app.get("/views/threat-map", **html)
    async def threat_map_view(study_id: str = Query("founding", max_length=200), source_kind: SourceKind = "interview"):
        """The pipeline threat map (the paper's Figure 1) with participant counts from one kind of source."""
        def build(kg) -> str:
            kg.require_study(study_id)
            net = threat_map_network(kg, study_id, source_kind)
            controls = [_studies_option(kg, study_id),
                        _select("source_kind", "counted in", ["interview", "drawing", "other", ""], source_kind)]
            return render_page("Threat map", [net], provenance=provenance_lines(kg, study_id), controls=controls,
                               action="/views/threat-map")
        return await page(build)

    @app.get("/views/participants/{participant_id}", **html)
    async def participant_view(participant_id: str, study_id: str = Query("founding", max_length=200)):
        """One participant's mental model: pipeline elements, threats and defenses they name."""
        def build(kg) -> str:
            kg.require_study(study_id)
            net = participant_network(kg, participant_id, study_id)
            people = kg.cypher("MATCH (p:Participant) WHERE p.study_id = $s RETURN p.id AS id ORDER BY id",
                               {"s": study_id})["id"].tolist()
            links = [{"href": f"/views/participants/{p}?study_id={study_id}", "text": p} for p in people]
            return render_page(f"Participant {participant_id}", [net], provenance=provenance_lines(kg, study_id),
                               links=links)
        return await page(build)

    @app.get("/views/comparison", **html)
    async def comparison_view(study_id: str = Query("founding", max_length=200),
                              attribute: str = Query("works_in_security", max_length=200),
                              codebook: Literal["interview", "drawing", ""] = "interview",
                              min_participants: int = Query(1, ge=1, le=10_000)):
        """Two participant groups side by side, and AML vs security codes per group."""
        args = dict(study_id=study_id, attribute=attribute, codebook=codebook, min_participants=min_participants)

        def build(kg) -> str:
            kg.require_study(study_id)
            nets = comparison_networks(kg, **args)
            tables = [table(f"AML vs security codes by {attribute}", _security_vs_aml(kg, study_id, attribute))]
            return render_page("Comparison", nets, provenance=provenance_lines(kg, study_id), tables=tables,
                               controls=_comparison_controls(args, kg), action="/views/comparison")
        return await page(build)



def _security_vs_aml(kg, study_id: str, attribute: str) -> pd.DataFrame:
    return kg.query("security_vs_aml_groups", **_query_params("security_vs_aml_groups",
                                                             {"study_id": study_id, "attribute": attribute}))


def _select(name: str, label: str, options: list, value: Any) -> dict:
    return {"name": name, "label": label, "value": "" if value is None else str(value),
            "options": [{"value": str(o), "text": str(o) or "both"} for o in options]}


def _studies_option(kg, value: str) -> dict:
    return _select("study_id", "study", kg.study_ids(), value)


def _controls(args: dict, kg) -> list[dict]:
    return [_studies_option(kg, args["study_id"]),
            _select("unit", "unit", list(UNITS), args["unit"]),
            _select("metric", "metric", list(METRICS), args["metric"]),
            {"name": "min_count", "label": "min. count", "value": str(args["min_count"]), "type": "number"},
            _select("codebook", "codebook", ["interview", "drawing", ""], args["codebook"]),
            _select("color_by", "colour by", ["kind", "group"], args["color_by"])]


def _comparison_controls(args: dict, kg) -> list[dict]:
    names = attribute_names(kg, args["study_id"])
    return [_studies_option(kg, args["study_id"]), _select("attribute", "participant attribute", names, args["attribute"]),
            _select("codebook", "codebook", ["interview", "drawing", ""], args["codebook"]),
            {"name": "min_participants", "label": "min. participants", "value": str(args["min_participants"]),
             "type": "number"}]


def index_page(kg) -> str:
    """Links to every view and named query, with each study's provenance."""
    from mmkg.queries import registry

    studies = kg.studies()
    first = studies["study_id"].iloc[0] if len(studies) else "founding"
    people = kg.cypher("MATCH (p:Participant) WHERE p.study_id = $s RETURN p.id AS id ORDER BY id",
                       {"s": first})["id"].tolist()
    links = [{"href": f"/views/cooccurrence?study_id={first}", "text": "Code co-occurrence network"},
             {"href": f"/views/threat-map?study_id={first}", "text": "Pipeline threat map (Figure 1)"},
             {"href": f"/views/comparison?study_id={first}", "text": "Comparison: works in security vs not"}]
    links += [{"href": f"/views/participants/{p}?study_id={first}", "text": f"Mental model of {p}"} for p in people[:1]]
    query_rows = pd.DataFrame([{"query": q.name, "title": q.title, "parameters": ", ".join(p.name for p in q.parameters)}
                               for q in registry().values() if q.mode == "read"])
    tables = [table("Studies", studies.drop(columns=[c for c in ("provenance", "description") if c in studies])),
              table("Named queries (GET /api/queries/<name>; add format=csv for CSV)", query_rows)]
    links += [{"href": f"/api/queries/{q}", "text": f"query: {q}"} for q in query_rows.get("query", [])]
    links += [{"href": "/docs", "text": "API documentation (OpenAPI)"}]
    return render_page("mmkg", [], provenance=provenance_lines(kg), links=links, tables=tables,
                       intro="A knowledge graph of mental-model codes and threats from qualitative security studies.")
