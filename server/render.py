"""Rendering: the static assets (served from this server, never the internet), the HTML page of the views and
the error page, provenance lines and tables.  The panels are `mmkg.server.views.MmkgNetwork`s."""
from __future__ import annotations

import hashlib
import math
import re
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pyvis.network import Network

from mmkg.errors import MmkgError
from mmkg.server.version_memo import studies as kept_studies

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
PYVIS_LIB = Path(__import__("pyvis").__file__).parent / "templates" / "lib" / "vis-9.1.2"

# ------------------------------------------------------------------------------------------ static assets

ASSET_FILES = {
    "vis-network.min.js": (PYVIS_LIB / "vis-network.min.js", "text/javascript; charset=utf-8"),
    "vis-network.css": (PYVIS_LIB / "vis-network.css", "text/css; charset=utf-8"),
    "mmkg.js": (STATIC_DIR / "mmkg.js", "text/javascript; charset=utf-8"),
    "mmkg.css": (STATIC_DIR / "mmkg.css", "text/css; charset=utf-8"),
    "upload.js": (STATIC_DIR / "upload.js", "text/javascript; charset=utf-8"),
    "favicon.svg": (STATIC_DIR / "favicon.svg", "image/svg+xml"),
}


@cache
def asset(name: str) -> tuple[bytes, str, str]:
    """(content, media type, version hash) of a static asset; vis-network is read from pyvis's own copy,
    with its source-map link removed (the map is not shipped)."""
    path, media = ASSET_FILES[name]
    data = path.read_bytes()
    if name.startswith("vis-network"):
        data = re.sub(rb"/[/*]#\s*sourceMappingURL=\S*(\s*\*/)?", b"", data)
    return data, media, hashlib.sha256(data).hexdigest()[:12]


def asset_url(name: str) -> str:
    return f"/static/{name}?v={asset(name)[2]}"


# ------------------------------------------------------------------------------------------ page rendering

@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATE_DIR)), autoescape=select_autoescape(["html"]))
    env.globals["asset_url"] = asset_url
    env.globals["inline_asset"] = lambda name: asset(name)[0].decode("utf-8")
    return env


def render_page(title: str, panels: list[Network] = (), *, provenance: list[str] | None = None,
                controls: list[dict] | None = None, tables: list[dict] | None = None, intro: str = "",
                action: str = "", links: list[dict] | None = None, notes: list[str] | None = None,
                charts: list[dict] | None = None, inline: bool = False, status: str = "", study_id: str = "") -> str:
    """One HTML page: header with provenance, controls, notes, charts, network panels with their tables and the
    drill-down panel, further tables.  `inline` writes the assets into the page (a file outside the server);
    `study_id`: the study the navigation links keep ('' = none: the views then show the only study)."""
    template = _environment().get_template("page.html")
    data = []
    for i, p in enumerate(panels):
        data.append({"id": f"network-{i}", "heading": p.heading, "subtitle": p.subtitle, "legend": p.legend,
                     "height": p.height, "data": p.panel_data(), "table": p.table, "empty": p.empty,
                     "search": p.search, "drill": p.drill is not None, "caption": p.caption,
                     "summary": _summary(p)})
    return template.render(title=title, panels=data, provenance=provenance or [], controls=controls or [],
                           tables=tables or [], intro=intro, action=action, links=links or [], notes=notes or [],
                           charts=charts or [], inline=inline, status=status,
                           study_query=f"?study_id={quote(study_id)}" if study_id else "",
                           drill=any(p.drill is not None for p in panels))


def render_upload_page(formats: dict[str, str]) -> str:
    """The browser's upload form (`/upload`): a study file, the upload token, an optional id; `formats`: the
    accepted file endings with what each is."""
    text = ", ".join(f"{what} ({suffix})" for suffix, what in formats.items())
    return _environment().get_template("upload.html").render(formats=text, accept=",".join(formats))


def _summary(net: Network) -> str:
    if net.empty:
        return net.empty
    return (f"{net.heading}: a network of {len(net.nodes)} nodes and {len(net.edges)} links; "
            "the table below lists the same data.")


def error_page(status: int, error: MmkgError | None, message: str, details: list[str] = ()) -> str:
    """The HTML page of a view that failed: what went wrong and where to go."""
    return render_page(f"Error {status}", [], intro=message, status=str(status),
                       notes=list(details), links=[{"href": "/", "text": "all views and queries"}])


def provenance_lines(kg, study_id: str | None = None, studies: pd.DataFrame | None = None) -> list[str]:
    """'study: provenance' for one study or every study in the store (`studies`: `kg.studies()` when the
    caller has it already)."""
    frame = kept_studies(kg) if studies is None else studies
    if study_id is not None:
        frame = frame[frame["study_id"] == study_id]
    return [f"{row.study_id}: {row.provenance}" for row in frame.itertuples() if isinstance(row.provenance, str)
            and row.provenance]


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (list, tuple)):
        return "; ".join(map(str, value))
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def table(title: str, frame: pd.DataFrame, note: str = "") -> dict:
    rows = [[_cell(v) for v in row] for row in frame.itertuples(index=False)]
    return {"title": title, "columns": [str(c) for c in frame.columns], "rows": rows, "note": note}
