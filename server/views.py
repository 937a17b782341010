"""Network views: co-occurrence, the pipeline threat map, one participant's mental model and a comparison of
participant groups — each a figure a researcher can put in a paper.

Every number comes from a named query (`mmkg.queries`); node positions are computed here by a seeded layout
(`view_figures.layout`), so the same URL draws the same figure; clicking a node or an edge lists the segments
behind it (named query `segments`).  Pages load vis-network, the stylesheet and the script from this server
(`/static/…`, cached), never from the internet.

In a notebook::

    import mmkg
    from mmkg.server import views
    kg = mmkg.open_store("/tmp/x")
    net = views.cooccurrence_network(kg, unit="segment", metric="jaccard")   # a pyvis Network
    net.show("cooccurrence.html")                                           # one self-contained file

Networks are built from node and edge lists directly (pyvis's `add_edge` scans every existing edge).  Pages are
rendered by `mmkg.server.render`; the routes that serve them are `mmkg.server.view_routes`.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Literal

import pandas as pd
from pyvis.network import Network

from mmkg.api import attribute_names, comparison_attribute
from mmkg.errors import NotFoundError, QueryError
from mmkg.metrics import view_metrics
from mmkg.models import BOOKKEEPING_ATTRIBUTES
from mmkg.server import view_figures as fig
from mmkg.server.render import TEMPLATE_DIR, render_page, table
from mmkg.server.version_memo import per_version
from mmkg.server.version_memo import studies as kept_studies

KIND_COLOURS = {
    "pipeline_element": "#3b6591", "aml_threat": "#d62728", "security_threat": "#f28e2b",
    "aml_defense": "#2ca02c", "security_defense": "#17becf", "perception": "#9467bd", None: "#9aa5b1",
}
KIND_LABELS = {
    "pipeline_element": "pipeline element", "aml_threat": "AML threat", "security_threat": "security threat",
    "aml_defense": "AML defense", "security_defense": "security defense", "perception": "perception",
    None: "not mapped",
}
EDGE_GREY = "#8a96a3"
FADED = "#c3cad3"
# The ML pipeline in the order of the paper's Figure 1 (narrower elements right after their broader one).
PIPELINE_ORDER = ["DataCollection", "DataLabelling", "Data", "DataPreprocessing", "FeatureExtraction", "Database",
                  "Design", "Training", "Model", "Testing", "Deployment", "API", "DeploymentEnvironment", "Cloud"]
PIPELINE_MAIN = ["DataCollection", "DataLabelling", "Design", "Training", "Model", "Testing", "Deployment"]
MAX_EDGES = 150  # a view opens with at most this many edges unless the reader asks for more
Metric = str  # a view name of `mmkg.metrics.view_metrics()`; the routes declare the registered names as enum


def units() -> tuple[str, ...]:
    """The co-occurrence units the analysis offers (segment, source, participant, …)."""
    from mmkg.analysis import UNITS

    return tuple(UNITS)


Unit = Literal[units()]  # type: ignore[valid-type]
SourceKind = Literal["interview", "drawing", "other", ""]  # mmkg.tables.SOURCE_KINDS; '' = every source


class MmkgNetwork(Network):
    """A pyvis `Network` that renders with mmkg's page template: heading, legend, table, drill-down."""

    def __init__(self, heading: str = "", *, directed: bool = False, height: str = "540px"):
        super().__init__(height=height, width="100%", directed=directed, heading=heading, cdn_resources="in_line")
        self.set_template_dir(str(TEMPLATE_DIR), "page.html")
        self.subtitle = ""
        self.caption = ""  # the figure's caption, also written into the SVG export
        self.legend: list[dict] = []
        self.table: dict | None = None  # the view's data as a table (shown, exported as CSV, read by screen readers)
        self.drill: dict | None = None  # parameters of the `segments` query common to every click
        self.empty = ""  # why nothing is drawn and what to change
        self.export_name = "network"
        self.search = False
        self.page: dict[str, Any] = {}

    def generate_html(self, name: str = "index.html", local: bool = True, notebook: bool = False) -> str:
        """One self-contained page (assets inlined), for `show()` / `write_html()` outside the server."""
        page = {"title": self.heading or "mmkg network", **self.page}
        self.html = render_page(panels=[self], inline=True, **page)
        return self.html

    def panel_data(self) -> dict:
        options = self.options if isinstance(self.options, dict) else json.loads(self.options.to_json())
        return {"nodes": self.nodes, "edges": self.edges, "options": options, "drill": self.drill,
                "export": self.export_name, "caption": self.caption or self.heading,
                "directed": bool(self.directed), "table": self.table}


def build_network(nodes: list[dict], edges: list[dict], *, heading: str = "", directed: bool = False,
                  options: dict | None = None, height: str = "540px") -> MmkgNetwork:
    """A network from node dicts (`id`, `label`, …) and edge dicts (`from`, `to`, …) in linear time."""
    net = MmkgNetwork(heading, directed=directed, height=height)
    net.nodes = nodes
    net.node_ids = [n["id"] for n in nodes]
    net.node_map = {n["id"]: n for n in nodes}
    for i, edge in enumerate(edges):
        edge.setdefault("id", f"e{i}")
        if directed:
            edge.setdefault("arrows", "to")
    net.edges = edges
    net.options = options or default_options()
    return net


def default_options() -> dict:
    """vis-network options of every view: positions come from the server (physics off), the wheel scrolls the
    page (zoom with Ctrl/⌘ + wheel or the buttons, handled in mmkg.js)."""
    return {
        "autoResize": True,
        "nodes": {"shape": "dot", "borderWidth": 1.5,
                  "font": {"size": fig.FONT_SIZE, "color": fig.TEXT, "strokeWidth": 4, "strokeColor": "#ffffff",
                           "face": "system-ui, -apple-system, Segoe UI, sans-serif"}},
        "edges": {"color": {"color": EDGE_GREY, "inherit": False, "opacity": 0.75}, "smooth": False,
                  "selectionWidth": 1.5, "font": {"size": 13, "color": fig.TEXT, "strokeWidth": 4,
                                                   "strokeColor": "#ffffff", "align": "middle"}},
        "physics": {"enabled": False},
        "layout": {"improvedLayout": False, "randomSeed": 1},
        "interaction": {"hover": True, "tooltipDelay": 150, "zoomView": False, "dragView": True,
                        "navigationButtons": False, "keyboard": False, "multiselect": False},
    }


# ------------------------------------------------------------------------------------------ shared lookups

def code_kinds(kg, study_id: str) -> dict[tuple[str, str], tuple[str | None, str | None]]:
    """(codebook, code_id) → (concept kind, concept uid); an exact match wins over other matches."""
    frame = kg.rows("code_concepts", study_id=study_id)
    rank = {"exact": 0, "close": 1, "narrow": 2, "broad": 3, "related": 4}
    frame = frame.assign(rank=frame["match"].map(rank).fillna(9)).sort_values(["rank", "concept"])
    result: dict[tuple[str, str], tuple[str | None, str | None]] = {}
    for row in frame.itertuples():
        result.setdefault((row.codebook, row.code_id), (row.kind, row.concept))
    return result


def study_codebooks(kg, study_id: str) -> list[str]:
    studies = kept_studies(kg)
    row = studies[studies["study_id"] == study_id]
    if row.empty or "codebooks" not in row or not isinstance(row["codebooks"].iloc[0], str):
        return sorted(kg.query("codes", study_id=study_id)["codebook"].unique())
    return [b for b in row["codebooks"].iloc[0].split(";") if b]


def coders(kg, study_id: str) -> list[str]:
    return kg.rows("study_coders", study_id=study_id)["coder"].tolist()


def group_styles(codes: pd.DataFrame, codebooks: list[str]) -> dict[tuple[str, str], dict]:
    """(codebook, group id) → colour, shape and legend label: colours in the order of each codebook's groups
    (so no two groups of a codebook share one while there are ≤ 20), one shape per codebook."""
    styles = {}
    for b, book in enumerate(codebooks + sorted(set(codes["codebook"]) - set(codebooks))):
        groups = codes[codes["codebook"] == book].drop_duplicates("group_id")
        groups = sorted(groups.itertuples(index=False), key=lambda r: fig.natural_key(r.group_id))
        for i, row in enumerate(groups):
            styles[(book, row.group_id)] = {"colour": fig.categorical(i), "shape": fig.SHAPES[b % len(fig.SHAPES)],
                                            "label": f"{row.group_id} {row.group_label}", "codebook": book}
    return styles


def _query_params(name: str, given: dict) -> dict:
    """The subset of `given` that the named query declares (None values dropped)."""
    from mmkg.queries import get_query

    declared = {p.name for p in get_query(name).parameters}
    return {k: v for k, v in given.items() if k in declared and v is not None}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _node(node_id: str, label: str, *, colour: str, radius: float, x: float, y: float, shape: str = "dot",
          title: str = "", drill: dict | None = None, **extra) -> dict:
    node = {"id": node_id, "label": label, "x": x, "y": y, "size": radius, "shape": shape, "title": title,
            "color": {"background": colour, "border": _darker(colour),
                      "highlight": {"background": colour, "border": fig.TEXT},
                      "hover": {"background": colour, "border": fig.TEXT}}}
    if drill is not None:
        node["drill"] = drill
    node.update(extra)
    return node


def _darker(colour: str, factor: float = 0.7) -> str:
    c = colour.lstrip("#")
    return "#" + "".join(f"{int(int(c[i:i + 2], 16) * factor):02x}" for i in (0, 2, 4))


def _size_legend(title: str, values: list[float], scale: Callable[[float], float], fmt=_fmt) -> dict:
    lo, hi = min(values), max(values)
    ticks = fig.nice_ticks(lo, hi) if hi > lo else [lo]
    return {"type": "size", "title": title, "items": [{"radius": scale(t), "label": fmt(t)} for t in ticks]}


def _width_legend(title: str, values: list[float], scale: Callable[[float], float], colour: str = EDGE_GREY,
                  fmt=_fmt) -> dict:
    lo, hi = min(values), max(values)
    ticks = fig.nice_ticks(lo, hi) if hi > lo else [lo]
    return {"type": "width", "title": title, "colour": colour,
            "items": [{"width": scale(t), "label": fmt(t)} for t in ticks]}


# ------------------------------------------------------------------------------------------ co-occurrence

def choose_min_count(counts: pd.Series, max_edges: int = MAX_EDGES) -> int:
    """The smallest minimum count n_ab that leaves at most `max_edges` pairs (or the largest count there is)."""
    if counts.empty:
        return 1
    per_count = counts.value_counts().sort_index(ascending=False).cumsum()  # count → pairs with n_ab ≥ count
    fitting = per_count[per_count <= max_edges]
    return int(fitting.index.min()) if not fitting.empty else int(counts.max())


def cooccurrence_pairs(kg, params: dict) -> pd.DataFrame:
    """The named query `cooccurrence` with `params` (the caller must not change the frame), kept per store
    version (`version_memo.per_version`): a view drawn again with another layout seed, metric, threshold, edge
    cap or colouring does not count the study's co-occurrences again (at 10^6 codings, seconds)."""
    return per_version(kg, ("cooccurrence", tuple(sorted(params.items()))),
                       lambda: kg.query("cooccurrence", **params))


def cooccurrence_network(kg, study_id: str = "", *, unit: str = "segment", metric: Metric = "count",
                         min_count: int | None = None, max_edges: int = MAX_EDGES, codebook: str | None = None,
                         color_by: Literal["kind", "group"] = "kind", coder: str = "", group: str = "",
                         seed: int = 1) -> MmkgNetwork:
    """Codes as nodes sized by how many units carry them; an edge per pair co-occurring at least `min_count`
    times in `unit` (None: the smallest count that leaves at most `max_edges` pairs), at most `max_edges`
    edges (the strongest by `metric`; 0 = no limit), positions from a layout seeded with `seed`.
    `study_id` '' = the only study in the store; `codebook` None = the study's first codebook ('' = every one)."""
    study_id = kg.resolve_study(study_id, every=False)
    codebook = default_codebook(kg, study_id) if codebook is None else codebook
    if unit not in units():
        raise QueryError(f"unit must be one of {', '.join(units())}, not '{unit}'")
    metrics = view_metrics()
    if metric not in metrics:
        raise QueryError(f"metric must be one of {', '.join(metrics)}, not '{metric}'")
    params = _query_params("cooccurrence", {"study_id": study_id, "unit": unit, "min_count": 1,
                                            "codebook": codebook, "coder": coder, "group": group})
    pairs = cooccurrence_pairs(kg, params)
    column, metric_title = metrics[metric].column, metrics[metric].title
    pairs = pairs[pairs[column].notna()]
    chosen = min_count is None
    threshold = choose_min_count(pairs["n_ab"], max_edges or len(pairs) or 1) if chosen else int(min_count)
    shown = pairs[pairs["n_ab"] >= threshold]
    capped = bool(max_edges) and len(shown) > max_edges
    if capped:
        shown = shown.sort_values([column, "n_ab", "codebook_a", "code_a", "codebook_b", "code_b"],
                                  ascending=[False, False, True, True, True, True]).head(max_edges)
    where = (f"{codebook or 'both codebooks'}{', group ' + group if group else ''}"
             f"{', coder ' + coder if coder else ', analysis codings'}")
    net = MmkgNetwork(f"Code co-occurrence — {where}; unit: {unit}; edge width: {metric_title}")
    net.options = default_options()
    net.export_name = f"cooccurrence-{study_id}-{unit}-{metric}"
    net.search = True
    net.drill = {"study_id": study_id, "unit": unit, "coder": coder}
    if shown.empty:
        net.nodes, net.edges = [], []
        net.empty = _empty_reason(pairs, threshold, unit, where)
        net.subtitle = net.empty
        return net
    codes = kg.query("codes", study_id=study_id)
    books = study_codebooks(kg, study_id)
    styles = group_styles(codes, books)
    group_of = {(r.codebook, r.code_id): r.group_id for r in codes.itertuples(index=False)}
    kinds = code_kinds(kg, study_id)

    carriers: dict[str, int] = {}
    info: dict[str, dict] = {}
    for row in shown.itertuples(index=False):
        for side in ("a", "b"):
            book, code = getattr(row, f"codebook_{side}"), getattr(row, f"code_{side}")
            key = f"{book}:{code}"
            carriers[key] = int(getattr(row, f"n_{side}"))
            info[key] = {"codebook": book, "code": code, "label": str(getattr(row, f"label_{side}"))}
    radius = fig.radius_scale(carriers.values(), 6, 20)
    widths = fig.width_scale(shown[column].astype(float))
    layout_edges = [(f"{r.codebook_a}:{r.code_a}", f"{r.codebook_b}:{r.code_b}", float(r.n_ab))
                    for r in shown.itertuples(index=False)]
    labels = {k: v["label"] for k, v in info.items()}
    radii = {k: radius(v) for k, v in carriers.items()}
    height = fig.box_height(list(info), labels, radii)
    positions = fig.layout(list(info), layout_edges, seed=seed, labels=labels, radius=radii,
                           box=(fig.BOX_WIDTH, height))
    nodes = []
    used_styles: dict[str, tuple[str, str]] = {}
    for key in sorted(info, key=lambda k: (info[k]["codebook"], fig.natural_key(info[k]["code"]))):
        book, code, label = info[key]["codebook"], info[key]["code"], info[key]["label"]
        kind, concept = kinds.get((book, code), (None, None))
        style = styles.get((book, group_of.get((book, code))), {"colour": KIND_COLOURS[None], "shape": "dot",
                                                                 "label": "no group"})
        shape = style["shape"]
        if color_by == "kind":
            colour = KIND_COLOURS.get(kind, KIND_COLOURS[None])
            used_styles[KIND_LABELS.get(kind, str(kind))] = (colour, "dot")
        else:
            colour = style["colour"]
            used_styles[f"{book}: {style['label']}"] = (colour, shape)
        x, y = positions[key]
        nodes.append(_node(
            key, label, colour=colour, radius=radius(carriers[key]), x=x, y=y, shape=shape,
            title=(f"{code} {label} ({book})\ngroup: {style['label']}\nconcept: {concept or '—'} "
                   f"({KIND_LABELS.get(kind, kind)})\n{unit}s with this code: {carriers[key]}\nclick: its segments"),
            drill={"code_a": key}, codebook=book, group=style["label"]))
    edges = []
    for i, row in enumerate(shown.sort_values(["n_ab", column], ascending=False).itertuples(index=False)):
        a, b = f"{row.codebook_a}:{row.code_a}", f"{row.codebook_b}:{row.code_b}"
        value = float(getattr(row, column))
        lines = [f"{row.code_a} {row.label_a} — {row.code_b} {row.label_b}",
                 f"unit: {unit} (N = {int(row.n_units)})",
                 f"n_a = {int(row.n_a)}, n_b = {int(row.n_b)}, n_ab = {int(row.n_ab)}",
                 f"{metric_title} = {_fmt(value)}", "click: the segments where both occur"]
        edges.append({"id": f"e{i}", "from": a, "to": b, "width": widths(value), "title": "\n".join(lines),
                      "drill": {"code_a": a, "code_b": b}, "value_label": _fmt(value)})
    net.nodes, net.edges = nodes, edges
    net.height = f"{round(height + 20)}px"
    net.node_ids = [n["id"] for n in nodes]
    net.node_map = {n["id"]: n for n in nodes}
    statement = (f"{len(edges)} of {len(pairs)} co-occurring pairs are drawn: n_ab ≥ {threshold}"
                 + (" (chosen from the data so that at most " f"{max_edges} pairs are drawn)" if chosen else "")
                 + (f", the {max_edges} strongest by {metric_title}" if capped else "")
                 + ". Change “min. count” or “max. edges” to see more or fewer.")
    net.subtitle = statement
    from mmkg.analysis import UNIT_RULES

    net.caption = (f"Code co-occurrence ({study_id}; {where}; unit: {unit} — {UNIT_RULES[unit]}; N = units that can "
                   f"carry both codes). Node size: {unit}s carrying the code; edge width: {metric_title}; "
                   f"{statement}")
    net.legend = ([{"type": "swatch", "title": "colour: " + ("concept kind" if color_by == "kind" else "code group"),
                    "items": [{"colour": c, "shape": s, "label": t} for t, (c, s) in sorted(used_styles.items())]}]
                  + ([{"type": "swatch", "title": "shape: codebook",
                       "items": [{"colour": "#ffffff", "shape": fig.SHAPES[i % len(fig.SHAPES)], "label": b}
                                 for i, b in enumerate(books) if codebook in ("", b)]}] if color_by == "kind" else [])
                  + [_size_legend(f"node size: {unit}s carrying the code", list(carriers.values()), radius),
                     _width_legend(f"edge width: {metric_title}", list(shown[column].astype(float)), widths)])
    frame = shown.sort_values(["n_ab", column, "codebook_a", "code_a"], ascending=[False, False, True, True])
    columns = ["codebook_a", "code_a", "label_a", "codebook_b", "code_b", "label_b", "n_units", "n_a", "n_b",
               *(m.column for m in view_metrics().values())]
    net.table = table("The pairs drawn", frame[[c for c in columns if c in frame.columns]],
                      note=f"n_ab: {unit}s where both codes occur; N (n_units): {unit}s counted.")
    return net


def _empty_reason(pairs: pd.DataFrame, threshold: int, unit: str, where: str) -> str:
    if pairs.empty:
        return (f"No two codes co-occur in any {unit} ({where}). Choose another unit (source or participant), "
                "both codebooks, another coder or no code group.")
    top = int(pairs["n_ab"].max())
    return (f"No pair of codes co-occurs in {threshold} or more {unit}s ({where}); the most any pair does is {top}. "
            f"Set “min. count” to {top} or lower (or leave it empty to choose it from the data).")


# ------------------------------------------------------------------------------------------ threat map

def threat_map_network(kg, study_id: str = "", source_kind: str | None = None) -> MmkgNetwork:
    """The paper's Figure 1 redrawn: pipeline steps left to right; each attack one colour, an arrow from each step
    the attacker controls to each step it affects, labelled once with how many participants mention it in sources
    of `source_kind` (None: `default_source_kind`; '' = every source)."""
    study_id = kg.resolve_study(study_id, every=False)
    source_kind = default_source_kind(kg, study_id) if source_kind is None else source_kind
    params = _query_params("threat_map", {"study_id": study_id, "kind": "aml_threat", "source_kind": source_kind})
    counted_in = {"": "every source together"}.get(source_kind, f"{source_kind}s")
    frame = kg.query("threat_map", **params)
    labels = _ontology_labels()
    by_label = {label: uid for uid, label in labels.items() if uid in PIPELINE_ORDER}
    attacks = []
    for row in frame.itertuples(index=False):
        ends = [(by_label.get(c, c), by_label.get(a, a)) for c in row.controls for a in row.affects]
        if ends:
            attacks.append({"uid": row.threat, "label": row.label, "n": int(row.participants), "ends": ends,
                            "codes": [c for c in (getattr(row, "codes", None) or []) if c]})
    touched = {step for attack in attacks for pair in attack["ends"] for step in pair}
    steps = [s for s in PIPELINE_ORDER if s in set(PIPELINE_MAIN) | touched]
    step_colour = KIND_COLOURS["pipeline_element"]
    nodes = [{"id": s, "label": labels.get(s, s), "shape": "box", "x": i * 135, "y": 0, "fixed": True,
              "color": {"background": step_colour, "border": _darker(step_colour),
                        "highlight": {"background": step_colour, "border": fig.TEXT}},
              "font": {"color": fig.text_on(step_colour), "size": 16, "strokeWidth": 0},
              "margin": 10, "title": f"pipeline element {labels.get(s, s)}"} for i, s in enumerate(steps)]
    edges = [{"id": f"p{i}", "from": a, "to": b, "color": {"color": "#d5dae0"}, "width": 8, "arrows": "to",
              "title": "the pipeline", "smooth": False} for i, (a, b) in enumerate(zip(steps, steps[1:]))]
    mentioned = [a["n"] for a in attacks if a["n"] > 0] or [1]
    widths = fig.width_scale([0] + mentioned, 1.5, 9)
    x_of = {n["id"]: n["x"] for n in nodes}
    levels: dict[int, list[tuple[float, float]]] = {}  # side*level → label extents taken
    legend_items = []
    for index, attack in enumerate(sorted(attacks, key=lambda a: (-a["n"], a["label"]))):
        colour = fig.categorical(index) if attack["n"] else FADED
        text = f"{attack['label']} ({attack['n']})"
        legend_items.append({"colour": colour, "shape": "line", "dashed": attack["n"] == 0, "label": text})
        sources = sorted({c for c, _ in attack["ends"]}, key=_pipeline_rank)
        targets = sorted({a for _, a in attack["ends"]}, key=_pipeline_rank)
        start_x = sum(x_of[s] for s in sources) / len(sources)
        end_x = sum(x_of[s] for s in targets) / len(targets)
        # forward attacks above the pipeline, backward ones below, each label on the first free level
        side = -1 if end_x >= start_x else 1
        centre = (start_x + end_x) / 2
        half = fig.label_width(text, 14) / 2 + 12
        level = 1
        while any(lo < centre + half and centre - half < hi for lo, hi in levels.get(side * level, [])):
            level += 1
        levels.setdefault(side * level, []).append((centre - half, centre + half))
        hub = f"attack:{attack['uid']}"
        title = (f"{attack['label']}: the attacker controls {', '.join(labels.get(s, s) for s in sources)} and "
                 f"affects {', '.join(labels.get(s, s) for s in targets)}\n"
                 f"mentioned by {attack['n']} participant(s) in their {counted_in}; click for the segments coded "
                 "with it")
        drill = {"calls": [{"code_a": c} for c in attack["codes"]]} if attack["codes"] else None
        node = {"id": hub, "label": text, "shape": "box", "x": round(centre, 1), "y": side * (40 + 44 * level),
                "color": {"background": "#ffffff", "border": colour, "highlight": {"background": "#ffffff",
                                                                                   "border": fig.TEXT}},
                "borderWidth": 2, "shapeProperties": {"borderDashes": [5, 4] if attack["n"] == 0 else False},
                "font": {"color": fig.TEXT if attack["n"] else fig.MUTED, "size": 14, "strokeWidth": 0},
                "margin": 5, "title": title, "fixed": True}
        if drill:
            node["drill"] = drill
        nodes.append(node)
        style = {"color": {"color": colour, "highlight": colour, "hover": colour, "opacity": 1.0},
                 "width": widths(attack["n"]),
                 "dashes": attack["n"] == 0, "title": title}
        if drill:
            style["drill"] = drill
        for k, step in enumerate(sources):
            edges.append({"id": f"a{index}-from{k}", "from": step, "to": hub, "arrows": "", **style,
                          **({"smooth": {"enabled": True, "type": "curvedCW", "roundness": 0.3}}
                             if step in targets else {})})
        for k, step in enumerate(targets):
            edges.append({"id": f"a{index}-to{k}", "from": hub, "to": step, "arrows": "to", **style,
                          **({"smooth": {"enabled": True, "type": "curvedCW", "roundness": 0.3}}
                             if step in sources else {})})
    options = default_options()
    net = build_network(nodes, edges, heading="AML attacks within the ML pipeline (after the paper's Figure 1)",
                        directed=True, options=options, height="520px")
    counted = ", ".join(f"{k} = {v!r}" for k, v in params.items())
    net.subtitle = ("Each attack is one labelled box: lines from the pipeline steps the attacker controls lead to it, "
                    "an arrow leads on to the step where it takes effect (above the pipeline: a later step; below: an "
                    "earlier one); the number is how many participants mention it, counted in their "
                    f"{counted_in}. Click an attack for the segments coded with it.")
    net.caption = ("AML attacks within the ML pipeline. The arrow ends (which step an attack controls and which it "
                   "affects) follow the paper's text as transcribed in mmkg's ontology (CONTROLS and AFFECTS); the "
                   f"counts are participants from the named query threat_map ({counted}). Arrow width: "
                   "participants mentioning the attack; dashed, faint: no participant mentions it.")
    net.legend = [{"type": "swatch", "title": "pipeline", "items": [{"colour": step_colour, "shape": "box",
                                                                       "label": "pipeline element"}]},

                  {"type": "swatch", "title": "colour: attack (participants)", "items": legend_items},
                  _width_legend("arrow width: participants mentioning the attack", [0] + mentioned, widths,
                                colour=fig.categorical(0))]
    net.export_name = f"threat-map-{study_id}"
    net.drill = {"study_id": study_id, "unit": "segment", "coder": ""}
    rows = [{"attack": a["label"], "controls": ", ".join(sorted({labels.get(c, c) for c, _ in a["ends"]})),
             "affects": ", ".join(sorted({labels.get(t, t) for _, t in a["ends"]})), "participants": a["n"],
             "codes": ", ".join(a["codes"])} for a in sorted(attacks, key=lambda a: (-a["n"], a["label"]))]
    net.table = table("The attacks drawn", pd.DataFrame(rows, columns=["attack", "controls", "affects",
                                                                       "participants", "codes"]))
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

RELATION_STYLES = {"CONTROLS": ("controls", "#c0392b", True), "AFFECTS": ("affects", "#b35900", False),
                   "MITIGATES": ("mitigates", "#1e7b34", True), "BROADER": ("broader", "#52606d", True)}


def participant_network(kg, participant_id: str, study_id: str = "") -> MmkgNetwork:
    """One participant's mental model: the concepts their material is coded with (pipeline elements in a row,
    threats above, defenses below), linked by the ontology's controls/affects/mitigates relations."""
    study_id = kg.resolve_study(study_id, every=False)
    frame = kg.query("participant_model", **_query_params(
        "participant_model", {"study_id": study_id, "participant": participant_id, "participant_id": participant_id}))
    if frame.empty:
        people = participant_ids(kg, study_id)
        if participant_id not in people:
            raise NotFoundError(f"no participant '{participant_id}' in study '{study_id}' "
                                f"(participants: {', '.join(people) or 'none'})")
    labels, kinds = _ontology_labels(), _ontology_kinds()
    frame = frame.dropna(subset=["concept"])
    frame = frame.assign(kind=frame["concept"].map(kinds), concept_label=frame["concept"].map(labels))
    concepts = frame.drop_duplicates("concept")
    rows = {"pipeline_element": 0, "aml_threat": -1, "security_threat": -1, "aml_defense": 1,
            "security_defense": 1, "perception": 2}
    counts = frame.groupby("concept").size()
    radius = fig.radius_scale(counts.tolist() or [1], 9, 22)
    cursor: dict[int, list[float]] = {}  # level → [x of the next node, sub-row]
    nodes = []
    for row in concepts.sort_values("concept", key=lambda s: s.map(_pipeline_rank)).itertuples(index=False):
        level = rows.get(row.kind, 2)
        needed = fig.label_width(str(row.concept_label), fig.FONT_SIZE) + 26
        x_next, sub_row = cursor.get(level, [0.0, 0])
        if x_next + needed > fig.BOX_WIDTH and x_next > 0 and level != 0:  # wrap a long row of threats or defenses
            x_next, sub_row = 0.0, sub_row + 1
        cursor[level] = [x_next + needed, sub_row]
        x, y = x_next + needed / 2, level * 150 + (sub_row * 70 if level > 0 else -sub_row * 70)
        codes = frame[frame["concept"] == row.concept]
        code_text = ", ".join(f"{c.code_id} {c.label} ({c.source_kind})" for c in codes.itertuples(index=False))
        colour = KIND_COLOURS.get(row.kind, KIND_COLOURS[None])
        title = f"{row.concept_label} ({KIND_LABELS.get(row.kind, row.kind)})\ncoded as: {code_text}"
        drill = {"calls": [{"code_a": f"{c.codebook}:{c.code_id}", "participant": participant_id}
                           for c in codes.drop_duplicates(["codebook", "code_id"]).itertuples(index=False)]}
        if row.kind == "pipeline_element":
            nodes.append({"id": row.concept, "label": row.concept_label, "shape": "box", "x": x, "y": y,
                          "color": {"background": colour, "border": _darker(colour)}, "margin": 9,
                          "font": {"color": fig.text_on(colour), "strokeWidth": 0}, "title": title, "drill": drill})
        else:
            nodes.append(_node(row.concept, row.concept_label, colour=colour, radius=radius(len(codes)), x=x, y=y,
                               title=title, drill=drill))
    present = {n["id"] for n in nodes}
    edges = []
    used = set()
    for rel in kg.rows("concept_relations").itertuples(index=False):
        if rel.source in present and rel.target in present:
            label, colour, dashed = RELATION_STYLES[rel.type]
            used.add(rel.type)
            edges.append({"from": rel.source, "to": rel.target, "label": label, "color": {"color": colour},
                          "dashes": dashed, "width": 1.5,
                          "smooth": {"enabled": True, "type": "curvedCW", "roundness": 0.15},
                          "font": {"color": fig.TEXT, "size": 12},
                          "title": f"{labels.get(rel.source, rel.source)} {label} "
                                   f"{labels.get(rel.target, rel.target)}"})
    net = build_network(nodes, edges, heading=f"Mental model of {participant_id}", directed=True,
                        options=default_options(), height="620px")
    net.subtitle = ("Concepts the participant's interview and drawing are coded with: pipeline elements in the "
                    "middle row, threats above, defenses below, perceptions at the bottom; arrows are the "
                    "ontology's relations between them. Click a concept for the participant's segments.")
    net.caption = f"Mental model of participant {participant_id} ({study_id}): concepts their material is coded with."
    kinds_used = sorted({n_kind for n_kind in concepts["kind"]}, key=lambda k: list(KIND_LABELS).index(k)
                        if k in KIND_LABELS else 99)
    net.legend = [{"type": "swatch", "title": "colour: concept kind",
                   "items": [{"colour": KIND_COLOURS.get(k, KIND_COLOURS[None]),
                              "shape": "box" if k == "pipeline_element" else "dot",
                              "label": KIND_LABELS.get(k, str(k))} for k in kinds_used]},
                  _size_legend("node size: codes mapped to the concept", counts.tolist() or [1], radius),
                  {"type": "swatch", "title": "arrows: ontology relation",
                   "items": [{"colour": RELATION_STYLES[t][1], "shape": "line", "dashed": RELATION_STYLES[t][2],
                              "label": RELATION_STYLES[t][0]} for t in RELATION_STYLES if t in used]}]
    net.export_name = f"participant-{study_id}-{participant_id}"
    net.drill = {"study_id": study_id, "unit": "segment", "coder": ""}
    shown = frame[["category", "source_kind", "codebook", "code_id", "label", "concept", "codings"]]
    net.table = table("The codes behind the concepts", shown)
    return net


def _pipeline_rank(uid: str) -> int:
    return PIPELINE_ORDER.index(uid) if uid in PIPELINE_ORDER else len(PIPELINE_ORDER)


def participant_ids(kg, study_id: str) -> list[str]:
    """The study's participant ids in natural order (from its participant nodes: nothing is counted, so the index
    page and the participant view cost the same at 10^7 codings as at 10^3)."""
    ids = kg.rows("participant_attributes", study_id=study_id)["participant_id"].drop_duplicates().tolist()
    return sorted(ids, key=fig.natural_key)


def participant_attributes(kg, participant_id: str, study_id: str) -> pd.DataFrame:
    """One participant's attributes (bookkeeping ones hidden) as attribute, value rows in natural order."""
    rows = kg.rows("participant_attributes", study_id=study_id)
    rows = rows[(rows["participant_id"] == participant_id) & rows["name"].notna()]
    pairs = [(str(r.name), "" if r.value is None else str(r.value)) for r in rows.itertuples(index=False)
             if r.name and r.name not in BOOKKEEPING_ATTRIBUTES]
    return pd.DataFrame(sorted(pairs, key=lambda pair: fig.natural_key(pair[0])), columns=["attribute", "value"])


# ------------------------------------------------------------------------------------------ comparison

NUMERIC_ATTRIBUTE_TYPES = frozenset({"int", "float"})  # of mmkg.tables.ATTRIBUTE_TYPES: binned for comparison


def is_numeric_attribute(kg, study_id: str, attribute: str) -> bool:
    """True when the study declares `attribute` a number (int or float) for every participant that has it."""
    types = kg.rows("attribute_names", study_id=study_id)
    declared = set(types.loc[types["name"] == attribute, "type"])
    return bool(declared) and declared <= NUMERIC_ATTRIBUTE_TYPES


def default_attribute(kg, study_id: str) -> str:
    """The attribute the comparison opens with (`mmkg.api.comparison_attribute`)."""
    attribute = comparison_attribute(kg, study_id)
    if not attribute:
        raise NotFoundError(f"study '{study_id}' has no participant attributes to compare participants by")
    return attribute


def default_codebook(kg, study_id: str) -> str:
    """The codebook a view opens with: the study's first ('' when it has none)."""
    books = study_codebooks(kg, study_id)
    return books[0] if books else ""


def default_source_kind(kg, study_id: str) -> str:
    """The source kind the threat map counts by default: interviews where the study has them (as the founding
    paper's text counts), else every source ('')."""
    kinds = set(kg.query("sources", study_id=study_id)["kind"].astype(str))
    return "interview" if "interview" in kinds else ""


def attribute_groups(kg, study_id: str, attribute: str, bins: int = 3) -> list[dict]:
    """The groups a participant attribute forms, sorted naturally: one per value, or — for an attribute the
    study declares a number (`is_numeric_attribute`) with more than `bins` values — `bins` ranges holding about
    as many participants each (text that looks like numbers, such as team ids, keeps one group per value).
    Each group: label, values (the attribute values it holds), participants."""
    frame = kg.query("security_vs_aml_groups", **_query_params(
        "security_vs_aml_groups", {"study_id": study_id, "attribute": attribute}))
    frame = frame[frame["attribute_value"] != "(missing)"]
    if frame.empty:
        raise NotFoundError(f"no participant attribute '{attribute}' in study '{study_id}' "
                            f"(attributes: {', '.join(attribute_names(kg, study_id)) or 'none'})")
    values = pd.to_numeric(frame["attribute_value"], errors="coerce")
    if is_numeric_attribute(kg, study_id, attribute) and values.notna().all() and len(frame) > bins:
        frame = frame.assign(number=values).sort_values("number")
        people = frame["participants"].astype(int).to_numpy()
        cumulative = people.cumsum() / people.sum()
        groups, start = [], 0
        for b in range(1, bins + 1):
            end = int((cumulative <= b / bins + 1e-9).sum()) if b < bins else len(frame)
            end = max(end, start + 1) if start < len(frame) else end
            part = frame.iloc[start:end]
            if not part.empty:
                lo, hi = part["number"].min(), part["number"].max()
                label = f"{attribute} {_fmt(lo)}–{_fmt(hi)}" if lo != hi else f"{attribute} = {_fmt(lo)}"
                groups.append({"label": label, "values": part["attribute_value"].tolist(),
                               "participants": int(part["participants"].sum())})
            start = end
        return groups
    ordered = sorted(frame.itertuples(index=False), key=lambda r: fig.natural_key(r.attribute_value))
    return [{"label": f"{attribute} = {r.attribute_value}", "values": [r.attribute_value],
             "participants": int(r.participants)} for r in ordered]


def comparison_figures(kg, study_id: str = "", attribute: str | None = None,
                       codebook: str | None = None, min_participants: int = 1, seed: int = 1) -> dict:
    """The comparison of participant groups: a chart of AML vs security codes per group, the codes' shares per
    group on one shared layout (a difference network for two groups, aligned small multiples for every group)
    and the table behind them.  None: `default_attribute`, `default_codebook`."""
    study_id = kg.resolve_study(study_id, every=False)
    attribute = default_attribute(kg, study_id) if attribute is None else attribute
    codebook = default_codebook(kg, study_id) if codebook is None else codebook
    groups = attribute_groups(kg, study_id, attribute)
    kinds = code_kinds(kg, study_id)
    shares: dict[str, dict[str, float]] = {}
    labels: dict[str, str] = {}
    for group in groups:
        per_code: dict[str, int] = {}
        for value in group["values"]:
            counts = kg.query("code_frequencies", **_query_params("code_frequencies", {
                "study_id": study_id, "codebook": codebook, "attribute": attribute, "attribute_value": str(value)}))
            for row in counts.itertuples(index=False):
                key = f"{row.codebook}:{row.code_id}"
                labels[key] = str(row.label)
                per_code[key] = per_code.get(key, 0) + int(row.participants)
        shares[group["label"]] = {k: v / group["participants"] for k, v in per_code.items()
                                  if v >= min_participants}
    every = sorted({k for s in shares.values() for k in s}, key=lambda k: (k.split(":")[0], fig.natural_key(k)))
    # one layout for every panel: the codes' co-occurrence in participants, as in the co-occurrence view
    pairs = kg.query("cooccurrence", **_query_params("cooccurrence", {
        "study_id": study_id, "unit": "participant", "codebook": codebook, "min_count": 1}))
    pairs = pairs.assign(a=pairs["codebook_a"] + ":" + pairs["code_a"], b=pairs["codebook_b"] + ":" + pairs["code_b"])
    pairs = pairs[pairs["a"].isin(every) & pairs["b"].isin(every)]
    threshold = choose_min_count(pairs["n_ab"]) if len(pairs) else 1
    skeleton = pairs[pairs["n_ab"] >= threshold].sort_values(["n_ab", "a", "b"], ascending=[False, True, True])
    skeleton = skeleton.head(max(len(every), 1))
    share_radius = fig.radius_scale([0.0, 1.0], 4, 20, domain=(0.0, 1.0))
    radii = {k: 12 for k in every}
    height = fig.box_height(every, labels, radii)
    positions = fig.layout(every, [(r.a, r.b, float(r.n_ab)) for r in skeleton.itertuples(index=False)], seed=seed,
                           labels=labels, radius=radii, box=(fig.BOX_WIDTH, height))
    skeleton_edges = [{"id": f"s{i}", "from": r.a, "to": r.b, "width": 1, "color": {"color": "#dde2e8"},
                       "title": f"{labels.get(r.a)} — {labels.get(r.b)}: {int(r.n_ab)} participants mention both"}
                      for i, r in enumerate(skeleton.itertuples(index=False))]
    names = [g["label"] for g in groups]
    drill = {"study_id": study_id, "unit": "segment", "coder": ""}
    panels = []
    if len(groups) == 2:
        first, second = names
        diffs = {k: shares[second].get(k, 0.0) - shares[first].get(k, 0.0) for k in every}
        limit = max((abs(v) for v in diffs.values()), default=0.0) or 1.0
        nodes = []
        for key in every:
            x, y = positions[key]
            larger = max(shares[first].get(key, 0.0), shares[second].get(key, 0.0))
            nodes.append(_node(key, labels.get(key, key), colour=fig.diverging(diffs[key], limit),
                               radius=share_radius(larger), x=x, y=y, drill={"code_a": key},
                               title=(f"{labels.get(key, key)} ({key})\n{first}: {shares[first].get(key, 0):.0%}\n"
                                      f"{second}: {shares[second].get(key, 0):.0%}\ndifference: {diffs[key]:+.0%}")))
        net = build_network(nodes, [dict(e) for e in skeleton_edges], heading=f"Which codes each group mentions more: "
                            f"{second} minus {first}", height=f"{round(height + 20)}px")
        net.subtitle = (f"Colour: share of {second} participants mentioning the code minus the share of {first} "
                        f"(orange: more in {second}, blue: more in {first}). Size: the larger of the two shares. "
                        "Grey lines: codes mentioned by the same participants (the layout's skeleton).")
        net.caption = f"Codes by group ({attribute}, {study_id}, {codebook or 'both codebooks'}): {net.subtitle}"
        steps = [-limit, -limit / 2, 0.0, limit / 2, limit]
        net.legend = [{"type": "swatch", "title": f"colour: share in {second} − share in {first}",
                       "items": [{"colour": fig.diverging(v, limit), "shape": "dot", "label": f"{v:+.0%}"}
                                 for v in steps]},
                      _size_legend("node size: share of the group's participants", [0.25, 0.5, 1.0], share_radius,
                                   fmt=lambda v: f"{v:.0%}")]
        net.export_name = f"comparison-{study_id}-{attribute}-difference"
        net.drill, net.search = drill, True
        panels.append(net)
    for group in groups:
        own = shares[group["label"]]
        # small panels label the codes most of the group mentions (at least its 15 most mentioned)
        ranked = sorted(own.values(), reverse=True)
        label_from = min(0.5, ranked[min(14, len(ranked) - 1)]) if ranked else 1.0
        nodes = []
        for key in every:
            x, y = positions[key]
            share = own.get(key, 0.0)
            kind = kinds.get(tuple(key.split(":", 1)), (None, None))[0]
            colour = KIND_COLOURS.get(kind, KIND_COLOURS[None]) if share else "#eef1f4"
            nodes.append(_node(key, labels.get(key, key) if share >= label_from and share else "", colour=colour,
                               radius=share_radius(share) if share else 3, x=x, y=y, drill={"code_a": key},
                               title=f"{labels.get(key, key)} ({key})\n{group['label']}: {share:.0%} of "
                                     f"{group['participants']} participants"))
        net = build_network(nodes, [dict(e) for e in skeleton_edges],
                            heading=f"{group['label']} ({group['participants']} participants)",
                            height=f"{round(height + 20)}px")
        net.subtitle = ("Same positions and size scale in every panel; labelled: the codes most of the group mention; "
                        "small grey dots: codes the group does not mention (hover or click any code).")
        net.caption = f"Codes mentioned by {group['label']} ({study_id}); size: share of the group's participants."
        net.export_name = f"comparison-{study_id}-{re.sub(r'[^A-Za-z0-9]+', '-', group['label']).strip('-')}"
        net.drill = drill
        panels.append(net)
    for net in panels[len(panels) - len(groups):]:
        net.legend = [] if len(groups) == 2 else [
            {"type": "swatch", "title": "colour: concept kind",
             "items": [{"colour": KIND_COLOURS[k], "shape": "dot", "label": KIND_LABELS[k]} for k in KIND_COLOURS]},
            _size_legend("node size: share of the group's participants", [0.25, 0.5, 1.0], share_radius,
                         fmt=lambda v: f"{v:.0%}")]
    rows = []
    for key in every:
        row = {"code": key, "label": labels.get(key, key)}
        for name in names:
            row[name] = round(shares[name].get(key, 0.0), 3)
        if len(names) == 2:
            row["difference"] = round(shares[names[1]].get(key, 0.0) - shares[names[0]].get(key, 0.0), 3)
        rows.append(row)
    frame = pd.DataFrame(rows)
    if len(names) == 2 and not frame.empty:
        frame = frame.assign(order=frame["difference"].abs()).sort_values(["order", "code"], ascending=[False, True])
        frame = frame.drop(columns="order")
    table_data = table("Share of each group's participants mentioning each code", frame)
    for net in panels:
        net.table = table_data if net is panels[0] else None
    return {"groups": groups, "panels": panels, "chart": security_chart(kg, study_id, attribute, groups),
            "table": table_data}


def security_chart(kg, study_id: str, attribute: str, groups: list[dict]) -> dict:
    """Mean distinct AML threat and security threat codes per participant, per group, as a bar chart."""
    frame = kg.query("security_vs_aml_groups", **_query_params("security_vs_aml_groups",
                                                              {"study_id": study_id, "attribute": attribute}))
    frame = frame.set_index(frame["attribute_value"].astype(str))
    series = [("AML threat codes", KIND_COLOURS["aml_threat"], "aml_threat_codes"),
              ("security threat codes", KIND_COLOURS["security_threat"], "security_threat_codes")]
    values = []
    for name, colour, column in series:
        if column not in frame.columns:
            continue
        per_group = []
        for group in groups:
            part = frame.loc[[str(v) for v in group["values"]]]
            per_group.append(float(part[column].sum()) / max(group["participants"], 1))
        values.append((name, colour, per_group))
    title = f"AML vs security: mean distinct threat codes per participant, by {attribute}"
    names = [f"{g['label'].removeprefix(attribute).lstrip(' =')} (n = {g['participants']})" for g in groups]
    svg = fig.bar_chart(title, names, values, width=820)
    return {"title": title, "svg": svg,
            "note": "From the named query security_vs_aml_groups (codes mapped to AML and security concepts)."}


def comparison_networks(kg, study_id: str = "", attribute: str | None = None,
                        codebook: str | None = None, min_participants: int = 1) -> list[MmkgNetwork]:
    """The comparison's network panels (see `comparison_figures`)."""
    return comparison_figures(kg, study_id, attribute, codebook, min_participants)["panels"]
