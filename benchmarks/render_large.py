"""The co-occurrence view of a large study opened in real headless Chromium, against the founding study's view in
the same run; and the page's server-side parts (layout, template) against their library baselines.

    python benchmarks/render_large.py [--size 1000000] [--store DIR] [--repeat 3] [--parts]

Browser (issue 18 goal 5: the 10^6 view settles in ≤ 3 s): a store with the shipped founding study and a synthetic
study of `--size` codings (`mmkg.synthetic.synthetic_codings`, loaded with `mmkg load`; `--store` keeps and re-uses
it), served by `mmkg serve` on a loopback port; headless Chromium (`tests/chromium_cdp.py`, as the browser tests)
opens `/views/cooccurrence?study_id=S` and the clock runs from the navigation until every network on the page is
drawn (`data-ready`, set by mmkg.js on vis-network's first `afterDrawing`; positions come from the server and
physics is off, so the first drawing is the settled figure).  Best of `--repeat`, each against a fresh `mmkg serve`
(nothing counted or cached before), split into:
- server: the HTML's time to last byte (`Network.loadingFinished` of the document);
- page: from there to `data-ready` (vis-network's script, parse, first drawing);
- baseline: the founding study's view, first opened the same way, in the same run;
- again: the large view with another layout seed (the server keeps the version's pairs: no counting again);
- the index page `/` (every study, never cached): the document's time to last byte and until its load event.
Checks: each page draws nodes and edges, states how many pairs it draws of how many, raises no console error and
requests nothing off the server.

Parts (`--parts`, no browser): `view_figures.layout` against networkx `spring_layout` of the same graph (same seed
and rounds), and `render_page` against `json.dumps` of the same nodes and edges, for synthetic networks of
150:150, 600:2000 and 2000:20000 nodes:edges (what a reader gets with max. edges = 0).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from chromium_cdp import Chromium, chromium_path  # noqa: E402  (the browser tests' driver: one way to drive it)
from live_server import live_server  # noqa: E402

MMKG = str(Path(sys.executable).with_name("mmkg"))
READY = ("!!document.querySelector('.network') && "
         "Array.from(document.querySelectorAll('.network')).every(n => n.dataset.ready)")


def build_store(store: Path, size: int) -> str:
    """The founding study and a synthetic study of `size` codings in `store` (each loaded unless there already)."""
    study = f"synthetic{size}"
    held = ""
    if store.exists():
        held = subprocess.run([MMKG, "studies", "--store", str(store)], capture_output=True, text=True, check=True,
                              env={**os.environ, "COLUMNS": "250"}).stdout
    if "founding" not in held:
        subprocess.run([MMKG, "load", "--store", str(store)], check=True, stdout=subprocess.DEVNULL)
    if study not in held:
        from mmkg.synthetic import synthetic_codings

        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / f"{study}.csv"
            synthetic_codings(size, study_id=study).to_csv(csv, index=False)
            subprocess.run([MMKG, "load", str(csv), "--store", str(store)], check=True, stdout=subprocess.DEVNULL)
    return study


def open_view(browser: Chromium, url: str, timeout: float = 300.0) -> dict:
    """Navigate to `url`; the seconds until the document arrived and until every network is drawn.  From a
    blank page: a view opened over another one must not be taken as drawn by the old page's networks."""
    browser.open("about:blank")
    browser.events.clear()
    started = time.perf_counter()
    browser.send("Page.navigate", {"url": url}, session=True, timeout=timeout)  # answers once the HTML arrives
    browser.wait_for(READY, timeout=timeout)
    settled = time.perf_counter() - started
    document = next((e["params"]["requestId"] for e in browser.events
                     if e.get("method") == "Network.requestWillBeSent" and e["params"]["request"]["url"] == url), None)
    sent = next(e["params"]["timestamp"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"
                and e["params"]["requestId"] == document)
    deadline = time.monotonic() + 10  # the event may be read from the browser just after the page drew
    while not (finished := [e["params"]["timestamp"] for e in browser.events
                            if e.get("method") == "Network.loadingFinished" and e["params"]["requestId"] == document]):
        if time.monotonic() > deadline:
            raise SystemExit(f"{url}: Chromium reported no end of the document's load")
        time.sleep(0.05)
    finished = finished[0]
    return {"settled": settled, "server": finished - sent,
            "nodes": browser.evaluate("mmkgNetworks.map(n => n.body.data.nodes.length).reduce((a, b) => a + b, 0)"),
            "edges": browser.evaluate("mmkgNetworks.map(n => n.body.data.edges.length).reduce((a, b) => a + b, 0)"),
            "statement": browser.evaluate("(document.querySelector('.threshold') || {}).textContent || ''"),
            "errors": browser.console_errors(), "urls": browser.requested_urls()}


def open_page(browser: Chromium, url: str) -> tuple[float, float]:
    """(seconds until the load event, the document's time to last byte) of a page without networks."""
    started = time.perf_counter()
    browser.open(url)
    loaded = time.perf_counter() - started
    document = next(e["params"]["requestId"] for e in browser.events
                    if e.get("method") == "Network.requestWillBeSent" and e["params"]["request"]["url"] == url)
    times = {e["method"]: e["params"]["timestamp"] for e in browser.events
             if e.get("method") in ("Network.requestWillBeSent", "Network.loadingFinished")
             and e["params"].get("requestId") == document}
    return loaded, times["Network.loadingFinished"] - times["Network.requestWillBeSent"]


def checked(run: dict, base: str, study: str) -> dict:
    foreign = [u for u in run["urls"] if not u.startswith((base + "/", "data:", "blob:"))]
    if run["errors"] or foreign or not run["nodes"] or not run["edges"] or " of " not in run["statement"]:
        raise SystemExit(f"{study}: the view is not right: errors {run['errors']}, foreign requests {foreign}, "
                         f"{run['nodes']} nodes, {run['edges']} edges, statement {run['statement']!r}")
    return run


def browser_benchmark(args) -> None:
    executable = chromium_path()
    if executable is None:
        raise SystemExit("headless Chromium is not installed (apt-get install chromium; .ci/run installs it)")
    keep = args.store is not None
    store = Path(args.store) if keep else Path(tempfile.mkdtemp(prefix="mmkg-render-large-")) / "store"
    runs: dict[str, list[dict]] = {"founding": [], "large": [], "again": []}
    index: list[tuple[float, float]] = []
    try:
        started = time.perf_counter()
        study = build_store(store, args.size)
        print(f"store with founding + {study} ready in {time.perf_counter() - started:.0f} s", flush=True)
        browser = Chromium(executable)
        browser.send("Emulation.setDeviceMetricsOverride", {"width": 1440, "height": 900, "deviceScaleFactor": 1,
                                                           "mobile": False}, session=True)
        try:
            for i in range(args.repeat):  # a fresh server each time: nothing counted or cached before
                with live_server(store, timeout_s=300) as base:
                    browser.open(f"{base}/")  # the server opens the store
                    index.append(open_page(browser, f"{base}/"))
                    view = f"{base}/views/cooccurrence?study_id="
                    runs["founding"].append(checked(open_view(browser, view + "founding"), base, "founding"))
                    runs["large"].append(checked(open_view(browser, view + study), base, study))
                    runs["again"].append(checked(open_view(browser, f"{view}{study}&seed={2 + i}"), base, study))
        finally:
            browser.close()
    finally:
        if not keep:
            shutil.rmtree(store.parent, ignore_errors=True)
    best = {name: min(found, key=lambda r: r["settled"]) for name, found in runs.items()}
    print(f"load average {os.getloadavg()[0]:.1f}; best of {args.repeat} (a fresh `mmkg serve` each); the view opened "
          "in headless Chromium until drawn (data-ready)")
    print(f"{'view':>34} {'nodes':>6} {'edges':>6} | {'server s':>8} {'page s':>7} {'settled s':>9} | "
          f"{'× founding':>10}  checked")
    for name, label in (("founding", "founding, first open"), ("large", f"{study}, first open"),
                        ("again", f"{study}, another seed")):
        run = best[name]
        print(f"{label:>34} {run['nodes']:>6} {run['edges']:>6} | {run['server']:>8.3f} "
              f"{run['settled'] - run['server']:>7.3f} {run['settled']:>9.3f} | "
              f"{run['settled'] / best['founding']['settled']:>10.2f}  drawn, no console error, nothing off the server")
    print(f"{study}: {best['large']['statement'].strip()}")
    loaded, server = min(index)
    print(f"index page (both studies; never cached): server {server:.3f} s, loaded {loaded:.3f} s")


def parts_benchmark(args) -> None:
    import networkx as nx

    from mmkg.server import view_figures as fig
    from mmkg.server.views import build_network, render_page

    def median_seconds(call) -> float:
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    render_page("warm-up", [])  # template and assets are read once per process
    print(f"{'nodes':>6} {'edges':>7} | {'layout s':>9} {'nx s':>7} {'ratio':>6} | {'page s':>7} {'json s':>7} "
          f"{'ratio':>6} {'page MB':>8}")
    for size in ("150:150", "600:2000", "2000:20000"):
        n_nodes, n_edges = map(int, size.split(":"))
        nodes = [{"id": f"n{i}", "label": f"code {i}", "size": 6 + i % 14, "title": f"code {i}", "x": 0, "y": 0}
                 for i in range(n_nodes)]
        edges = [{"from": f"n{i % n_nodes}", "to": f"n{(i * 7 + 1) % n_nodes}", "width": 1.0, "title": f"n_ab = {i}"}
                 for i in range(n_edges)]
        ids = [n["id"] for n in nodes]
        triples = [(e["from"], e["to"], 1.0) for e in edges]
        labels = {n["id"]: n["label"] for n in nodes}
        radius = {n["id"]: n["size"] for n in nodes}
        layout = median_seconds(lambda: fig.layout(ids, triples, labels=labels, radius=radius))

        def spring():
            g = nx.Graph()
            g.add_nodes_from(sorted(ids))
            g.add_edges_from((a, b) for a, b, _ in sorted(triples) if a != b)
            nx.spring_layout(g, seed=1, iterations=150 if len(g) < 300 else 60 if len(g) < 500 else 25)
        baseline = median_seconds(spring)

        def page() -> str:
            return render_page("large network", [build_network([dict(n) for n in nodes], [dict(e) for e in edges])])
        html = page()
        t_page = median_seconds(page)
        dump = median_seconds(lambda: json.dumps({"nodes": nodes, "edges": edges}))
        print(f"{n_nodes:>6,} {n_edges:>7,} | {layout:>9.3f} {baseline:>7.3f} {layout / baseline:>6.2f} | "
              f"{t_page:>7.3f} {dump:>7.3f} {t_page / dump:>6.2f} {len(html) / 1e6:>8.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="codings of the synthetic study")
    parser.add_argument("--store", help="store folder to build once and re-use (default: a temporary one)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--parts", action="store_true", help="time the layout and the template instead")
    args = parser.parse_args()
    (parts_benchmark if args.parts else browser_benchmark)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
