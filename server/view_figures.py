"""What makes a view a figure: seeded layouts, scales, palettes, label contrast and small inline SVG charts.

Layouts are computed here, on the server, so that the same URL always draws the same picture: networkx's
Fruchterman-Reingold layout with a fixed seed on nodes and edges in a fixed order, scaled into the canvas box,
then label boxes pushed apart until they no longer overlap (a deterministic pass over numpy arrays).
"""
from __future__ import annotations

import math
import re
from html import escape

import networkx as nx
import numpy as np
from scipy.spatial import cKDTree

# The box positions are laid out in, in CSS pixels: the network's canvas at 1440×900 with the side panel open,
# so that fitting the drawing keeps labels at their nominal size.
BOX_WIDTH, BOX_HEIGHT = 990.0, 520.0
FONT_SIZE = 14
CHAR_WIDTH = 0.56  # average glyph width of a system sans-serif, in font sizes
MAX_SPREAD = 5000  # beyond this many nodes labels cannot all be legible anyway: no label pass
TEXT = "#1f2933"  # label colour: 14.5:1 on white
MUTED = "#52606d"  # secondary text: 6.4:1 on white

# Categorical colours (Tableau 10 and the darker half of Tableau 20): distinct enough for 20 groups; a view
# assigns them in the order of its categories, never by hashing, so 20 categories never share one.
CATEGORICAL = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
               "#9c755f", "#bab0ac", "#1f77b4", "#8c564b", "#17becf", "#bcbd22", "#2ca02c", "#d62728",
               "#9467bd", "#e377c2", "#7f7f7f", "#ff7f0e"]
SHAPES = ["dot", "diamond", "square", "triangle", "star", "triangleDown"]  # one per codebook


def categorical(index: int) -> str:
    return CATEGORICAL[index % len(CATEGORICAL)]


def natural_key(value) -> tuple:
    """Sort key that orders numbers by value and text with embedded numbers naturally (P2 before P10)."""
    text = str(value)
    try:
        return (0, float(text), "")
    except ValueError:
        pass
    if text.lower() in ("false", "true"):
        return (1, float(text.lower() == "true"), "")
    parts = re.split(r"(\d+(?:\.\d+)?)", text.lower())
    return (2, 0.0, tuple((0, float(p), "") if i % 2 else (1, 0.0, p) for i, p in enumerate(parts)))


def label_width(label: str, font_size: float = FONT_SIZE) -> float:
    return max(1, len(label)) * font_size * CHAR_WIDTH


def layout(node_ids: list[str], edges: list[tuple[str, str, float]], *, seed: int = 1,
           labels: dict[str, str] | None = None, radius: dict[str, float] | None = None,
           box: tuple[float, float] = (BOX_WIDTH, BOX_HEIGHT),
           font_size: float = FONT_SIZE) -> dict[str, tuple[float, float]]:
    """Positions (x, y) in CSS pixels for `node_ids`: each connected component laid out by a seeded spring
    layout, the components packed in rows (largest first) to fill `box`, then overlapping labels pushed apart.

    `edges` are (a, b, weight); the same input and seed always give the same positions."""
    if not node_ids:
        return {}
    order = sorted(node_ids)
    labels = labels or {}
    radius = radius or {}
    graph = nx.Graph()
    graph.add_nodes_from(order)
    top = max((w for _, _, w in edges), default=1.0) or 1.0
    for a, b, weight in sorted(edges):
        if a != b and a in graph and b in graph:
            graph.add_edge(a, b, weight=0.2 + 0.8 * (weight / top))
    components = sorted((sorted(c) for c in nx.connected_components(graph)), key=lambda c: (-len(c), c[0]))
    pieces = []  # (node ids, unit-box positions, side length)
    for component in components:
        if len(component) == 1:
            unit = np.zeros((1, 2))
        else:
            sub = graph.subgraph(component)
            k = 1.8 / math.sqrt(len(component))
            # networkx switches to a slower sparse solver from 500 nodes: fewer rounds there keep a view usable
            iterations = 150 if len(component) < 300 else 60 if len(component) < 500 else 25
            raw = nx.spring_layout(sub, k=k, seed=seed, iterations=iterations, weight="weight")
            unit = np.array([raw[n] for n in component], dtype=float)
            low, high = unit.min(axis=0), unit.max(axis=0)
            unit = (unit - low) / np.where(high - low > 1e-9, high - low, 1.0) - 0.5
        pieces.append((component, unit, math.sqrt(len(component))))
    width, height = box
    total = sum(side * side for _, _, side in pieces)
    row_width = max(max(side for _, _, side in pieces), math.sqrt(total * width / height))
    points: dict[str, np.ndarray] = {}
    x = y = row_height = 0.0
    for component, unit, side in pieces:
        if x > 0 and x + side > row_width * 1.001:
            x, y, row_height = 0.0, y + row_height, 0.0
        centre = np.array([x + side / 2, y + side / 2])
        for n, p in zip(component, unit):
            points[n] = centre + p * side * 0.8
        x += side
        row_height = max(row_height, side)
    sizes = label_boxes(order, labels, radius, font_size)
    array = _fit(np.array([points[n] for n in order]), width, height)
    array = _spread(array, sizes, np.array([width, height]))
    return {n: (round(float(px), 1), round(float(py), 1)) for n, (px, py) in zip(order, array)}


def label_boxes(order: list[str], labels: dict[str, str], radius: dict[str, float], font_size: float) -> np.ndarray:
    """Width and height each node needs: its label (below the node) or the node, whichever is wider."""
    return np.array([[max(label_width(labels.get(n, n), font_size), 2 * radius.get(n, 8)) + 10,
                      font_size + 2 * radius.get(n, 8) + 8] for n in order])


def box_height(order: list[str], labels: dict[str, str], radius: dict[str, float], *, width: float = BOX_WIDTH,
               low: float = BOX_HEIGHT, high: float = 1000.0, font_size: float = FONT_SIZE) -> float:
    """The height a layout of these nodes needs at `width` so labels fit at their size (half the area free)."""
    if not order:
        return low
    area = float(np.prod(label_boxes(order, labels, radius, font_size), axis=1).sum()) * 2.2
    return float(min(high, max(low, area / width)))


def _fit(points: np.ndarray, width: float, height: float) -> np.ndarray:
    low, high = points.min(axis=0), points.max(axis=0)
    span = np.where(high - low > 1e-9, high - low, 1.0)
    unit = (points - low) / span - 0.5
    return unit * np.array([width, height])


def _spread(points: np.ndarray, sizes: np.ndarray, box: np.ndarray, rounds: int = 150) -> np.ndarray:
    """Push apart nodes whose label boxes (`sizes`: width, height around the node and its label) overlap, keeping
    every node inside `box` (centred on 0).  Candidate pairs come from a k-d tree (boxes can only overlap within
    the largest box's reach), so a round costs about n log n; deterministic."""
    n = len(points)
    if n < 2 or n > MAX_SPREAD:
        return points
    points = points.copy()
    half = sizes / 2
    limit = np.maximum(box / 2 - half, 0)
    # scale y so that one radius in the tree covers the widest reach in x and in y
    reach = 2 * half.max(axis=0)
    stretch = np.array([1.0, reach[0] / max(reach[1], 1e-9)])
    for _ in range(rounds):
        pairs = cKDTree(points * stretch).query_pairs(float(reach[0]) * 1.4143, output_type="ndarray")
        if len(pairs) == 0:
            break
        i, j = pairs[:, 0], pairs[:, 1]
        delta = points[i] - points[j]
        overlap = half[i] + half[j] - np.abs(delta)
        hit = (overlap[:, 0] > 0) & (overlap[:, 1] > 0)
        if not hit.any():
            break
        i, j, delta, overlap = i[hit], j[hit], delta[hit], overlap[hit]
        along_x = overlap[:, 0] < overlap[:, 1]  # move along the axis of the smaller overlap, half each
        sign = np.where(delta >= 0, 1.0, -1.0)  # i < j: coincident points separate the same way every run
        push = np.zeros_like(delta)
        push[along_x, 0] = sign[along_x, 0] * overlap[along_x, 0] / 2
        push[~along_x, 1] = sign[~along_x, 1] * overlap[~along_x, 1] / 2
        moved = np.zeros_like(points)
        np.add.at(moved, i, push * 0.5)
        np.add.at(moved, j, -push * 0.5)
        points = np.clip(points + moved, -limit, limit)
    return points


# ------------------------------------------------------------------------------------------ scales

def radius_scale(values, low: float = 7.0, high: float = 24.0, *, domain: tuple[float, float] | None = None):
    """A function value → node radius whose area grows with the value (sqrt scale over `domain`)."""
    values = [float(v) for v in values]
    lo, hi = domain if domain else (min(values, default=0.0), max(values, default=1.0))
    lo, hi = math.sqrt(max(lo, 0.0)), math.sqrt(max(hi, 0.0))

    def scale(value: float) -> float:
        if hi - lo < 1e-12:
            return (low + high) / 2
        return round(low + (high - low) * (math.sqrt(max(float(value), 0.0)) - lo) / (hi - lo), 2)
    return scale


def width_scale(values, low: float = 1.0, high: float = 8.0):
    """A function value → line width, linear over the values' range."""
    values = [float(v) for v in values]
    lo, hi = min(values, default=0.0), max(values, default=1.0)

    def scale(value: float) -> float:
        if hi - lo < 1e-12:
            return round((low + high) / 2, 2)
        return round(low + (high - low) * (float(value) - lo) / (hi - lo), 2)
    return scale


def nice_ticks(low: float, high: float, count: int = 3) -> list[float]:
    """Up to `count` round values spanning [low, high] (for size and width legends)."""
    if high <= low:
        return [low]
    if count <= 2:
        return [low, high]
    middle = (low + high) / 2
    magnitude = 10 ** math.floor(math.log10(abs(middle))) if middle else 1
    middle = round(middle / magnitude) * magnitude
    return sorted({low, middle, high})


def diverging(value: float, limit: float) -> str:
    """Blue (negative) through light grey to orange (positive), for differences in [-limit, limit]."""
    t = 0.0 if limit <= 0 else max(-1.0, min(1.0, value / limit))
    neutral, blue, orange = (0xd9, 0xdd, 0xe2), (0x2b, 0x6c, 0xb0), (0xd9, 0x5f, 0x0e)
    end = orange if t > 0 else blue
    mix = [round(n + (e - n) * abs(t)) for n, e in zip(neutral, end)]
    return "#" + "".join(f"{v:02x}" for v in mix)


# ------------------------------------------------------------------------------------------ contrast

def luminance(colour: str) -> float:
    """WCAG relative luminance of #rrggbb."""
    colour = colour.lstrip("#")
    channels = [int(colour[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(foreground: str, background: str) -> float:
    high, low = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def text_on(background: str) -> str:
    """The label colour (dark or white) with the higher contrast on `background`."""
    return TEXT if contrast(TEXT, background) >= contrast("#ffffff", background) else "#ffffff"


# ------------------------------------------------------------------------------------------ charts

def bar_chart(title: str, groups: list[str], series: list[tuple[str, str, list[float]]], *, unit: str = "",
              width: int = 640) -> str:
    """A compact horizontal grouped bar chart as inline SVG: one row of bars per group, one bar per series
    (label, colour, values).  Every value is written beside its bar."""
    bar, gap, right = 14, 10, 70
    label_width_px = int(max([label_width(g, 13) for g in groups] + [60]) + 16)
    rows = len(groups)
    per_group = bar * len(series) + gap
    legend_height = 22
    height = legend_height + rows * per_group + 24
    top = max([v for _, _, values in series for v in values] + [1e-9])
    plot = width - label_width_px - right
    parts = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f"<title>{escape(title)}</title>"]
    x = label_width_px
    for name, colour, _ in series:
        parts.append(f'<rect x="{x}" y="4" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{x + 16}" y="14" font-size="12" fill="{TEXT}">{escape(name)}</text>')
        x += 28 + label_width(name, 12)
    for i, group in enumerate(groups):
        y0 = legend_height + i * per_group
        parts.append(f'<text x="{label_width_px - 8}" y="{y0 + bar * len(series) / 2 + 4}" font-size="13" '
                     f'text-anchor="end" fill="{TEXT}">{escape(group)}</text>')
        for j, (name, colour, values) in enumerate(series):
            value = values[i]
            length = plot * value / top
            y = y0 + j * bar
            parts.append(f'<rect x="{label_width_px}" y="{y}" width="{length:.1f}" height="{bar - 2}" fill="{colour}">'
                         f"<title>{escape(group)}: {escape(name)} {value:.2f}{escape(unit)}</title></rect>"
                         f'<text x="{label_width_px + length + 4:.1f}" y="{y + bar - 4}" font-size="11" '
                         f'fill="{TEXT}">{value:.2f}</text>')
    axis_y = legend_height + rows * per_group
    parts.append(f'<line x1="{label_width_px}" y1="{axis_y}" x2="{label_width_px + plot}" y2="{axis_y}" '
                 f'stroke="{MUTED}"/>')
    parts.append(f'<text x="{label_width_px}" y="{axis_y + 16}" font-size="11" fill="{MUTED}">0</text>'
                 f'<text x="{label_width_px + plot}" y="{axis_y + 16}" font-size="11" text-anchor="end" '
                 f'fill="{MUTED}">{top:.2f}{escape(unit)}</text></svg>')
    return "".join(parts)
