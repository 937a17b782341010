"""Server-side cost of a network view: the seeded layout and the page, against baselines measured in the same run.

    python benchmarks/render_large.py [--sizes 150:150,600:2000,2000:20000] [--runs 3]

For each size (nodes:edges) it times, as the median of `--runs` runs:
- layout: `view_figures.layout` (spring layout per component, packing, label spreading), against the baseline
  networkx `spring_layout` of the same graph with the same seed and rounds (what the library alone costs);
- page: `render_page` of a network of that size, against the baseline `json.dumps` of its nodes and edges (the
  least any page that carries the data must do).
The views open with at most 150 edges; the larger sizes are what a reader gets with max. edges = 0."""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import networkx as nx

from mmkg.server import view_figures as fig
from mmkg.server.views import build_network, render_page


def median_seconds(call, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def graph(n_nodes: int, n_edges: int):
    nodes = [{"id": f"n{i}", "label": f"code {i}", "size": 6 + i % 14, "title": f"code {i}", "x": 0, "y": 0}
             for i in range(n_nodes)]
    edges = [{"from": f"n{i % n_nodes}", "to": f"n{(i * 7 + 1) % n_nodes}", "width": 1.0, "title": f"n_ab = {i}"}
             for i in range(n_edges)]
    return nodes, edges


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="150:150,600:2000,2000:20000")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    render_page("warm-up", [])  # template and assets are read once per process
    print(f"{'nodes':>6} {'edges':>7} | {'layout s':>9} {'nx s':>7} {'ratio':>6} | {'page s':>7} {'json s':>7} "
          f"{'ratio':>6} {'page MB':>8}")
    for size in args.sizes.split(","):
        n_nodes, n_edges = map(int, size.split(":"))
        nodes, edges = graph(n_nodes, n_edges)
        ids = [n["id"] for n in nodes]
        triples = [(e["from"], e["to"], 1.0) for e in edges]
        labels = {n["id"]: n["label"] for n in nodes}
        radius = {n["id"]: n["size"] for n in nodes}
        layout = median_seconds(lambda: fig.layout(ids, triples, labels=labels, radius=radius), args.runs)

        def spring():
            g = nx.Graph()
            g.add_nodes_from(sorted(ids))
            g.add_edges_from((a, b) for a, b, _ in sorted(triples) if a != b)
            nx.spring_layout(g, seed=1, iterations=150 if len(g) < 300 else 60 if len(g) < 500 else 25)
        baseline = median_seconds(spring, args.runs)
        html = render_page("large network", [build_network([dict(n) for n in nodes], [dict(e) for e in edges])])
        page = median_seconds(lambda: render_page("large network", [build_network(
            [dict(n) for n in nodes], [dict(e) for e in edges])]), args.runs)
        dump = median_seconds(lambda: json.dumps({"nodes": nodes, "edges": edges}), args.runs)
        print(f"{n_nodes:>6,} {n_edges:>7,} | {layout:>9.3f} {baseline:>7.3f} {layout / baseline:>6.2f} | "
              f"{page:>7.3f} {dump:>7.3f} {page / dump:>6.2f} {len(html) / 1e6:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
