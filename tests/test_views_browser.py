"""Every view in real headless Chromium against a live `mmkg serve`: reproducible positions, drill-down rows equal to
`mmkg query segments`, PNG/SVG/CSV export, readable defaults, gzip, the wheel, no request off 127.0.0.1.
Screenshots (1440×900) go to test-artifacts/views/."""
from __future__ import annotations

import csv
import io
import json
import shutil
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import httpx
import pytest
from chromium_cdp import Chromium, chromium_path
from defusedxml import ElementTree
from live_server import live_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "views"
MMKG = Path(sys.executable).with_name("mmkg")
PAGES = {
    "cooccurrence": "/views/cooccurrence",
    "cooccurrence-both-by-group": "/views/cooccurrence?codebook=&color_by=group",
    "cooccurrence-participant": "/views/cooccurrence?unit=participant&metric=jaccard&codebook=",
    "cooccurrence-empty": "/views/cooccurrence?min_count=999",
    "threat-map": "/views/threat-map",
    "participant": "/views/participants/P4",
    "comparison": "/views/comparison?attribute=works_in_security",
    "comparison-numeric": "/views/comparison?attribute=experience_years",
    "index": "/",
    "error": "/views/participants/P99",
}


@pytest.fixture(scope="module")
def server(founding_template, tmp_path_factory):
    store = tmp_path_factory.mktemp("browser") / "store"
    shutil.copytree(founding_template, store)
    with live_server(store) as base:
        yield base, store


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    executable = chromium_path()
    if executable is None:
        pytest.skip("headless Chromium is not installed (apt-get install chromium); .ci/run installs it")
    chrome = Chromium(executable)
    chrome.send("Emulation.setDeviceMetricsOverride", {"width": 1440, "height": 900, "deviceScaleFactor": 1,
                                                       "mobile": False}, session=True)
    downloads = tmp_path_factory.mktemp("downloads")
    chrome.send("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads),
                                                "eventsEnabled": True})
    chrome.downloads = downloads
    yield chrome
    chrome.close()


def show(browser: Chromium, url: str) -> None:
    browser.open(url)
    browser.wait_for("!document.querySelector('.network') || "
                     "Array.from(document.querySelectorAll('.network')).every(n => n.dataset.ready)")


def foreign_requests(browser: Chromium, base: str) -> list[str]:
    return [u for u in browser.requested_urls() if not u.startswith((base + "/", "data:", "blob:" + base))]


def cli_segments(store: Path, **params) -> list[dict]:
    args = [str(MMKG), "query", "segments", "--store", str(store), "--format", "json"]
    for key, value in params.items():
        args += ["-p", f"{key}={value}"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def click_at(browser: Chromium, x: float, y: float) -> None:
    """A real mouse click at page coordinates (scrolled into the viewport first)."""
    scroll = browser.evaluate(f"(() => {{ window.scrollTo(0, Math.max(0, {y} - 450)); return window.scrollY; }})()")
    y -= scroll
    browser.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y}, session=True)
    for kind in ("mousePressed", "mouseReleased"):
        browser.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
                     session=True)


def panel_rows(browser: Chromium) -> list[list[str]]:
    browser.wait_for("document.getElementById('drill-body').dataset.state === 'done'")
    fields = ["participant", "source", "position", "coder", "codes", "text"]
    return browser.evaluate(f"Array.from(document.querySelectorAll('#drill-body li')).map(li => {json.dumps(fields)}"
                            ".map(f => li.querySelector(`[data-field=${f}]`).textContent))")


def assert_rows_match(shown: list[list[str]], expected: list[dict]) -> None:
    assert len(shown) == len(expected) > 0
    for cells, row in zip(shown, expected):
        participant, source, place, coder, codes, text = cells
        assert participant == row["participant_id"]
        assert row["source_id"] in source and row["segment_id"] in source
        if row["start"] is not None:
            assert str(row["start"]) in place and str(row["end"]) in place
        assert coder == row["coder"]
        assert codes == ", ".join(row["codes"])
        assert text == (row["text"] or "(no text in the study)")


# ------------------------------------------------------------------------------------------ every view

@pytest.mark.parametrize("name", list(PAGES))
def test_every_view_loads_offline_and_is_photographed(browser, server, name):
    base, _ = server
    show(browser, base + PAGES[name])
    text = browser.evaluate("document.body.innerText")
    if name == "error":
        assert "Error 404" in text and "no participant 'P99'" in text
    else:
        assert "not the authors" in text  # the provenance line
    if name == "cooccurrence-empty":
        assert "the most any pair does is" in text and "Set “min. count” to" in text
        assert browser.evaluate("window.mmkgNetworks.length") == 0
    elif name not in ("index", "error"):
        counts = browser.evaluate("window.mmkgNetworks.map(n => n.body.data.nodes.length)")
        assert counts and all(n > 0 for n in counts)
    browser.screenshot(ARTIFACTS / f"after-{name}.png")
    assert browser.console_errors() == [] or name == "error"
    assert foreign_requests(browser, base) == []


def test_the_same_url_draws_the_same_positions(browser, server):
    base, _ = server
    positions = []
    for url in ("/views/cooccurrence", "/views/cooccurrence", "/views/cooccurrence?seed=2"):
        show(browser, base + url)
        positions.append(browser.evaluate("JSON.stringify(mmkgNetworks[0].getPositions())"))
        assert browser.evaluate("mmkgNetworks[0].physics.options.enabled") is False
    first, again, reseeded = map(json.loads, positions)
    assert first == again and len(first) > 10
    assert set(reseeded) == set(first) and reseeded != first  # another seed is another (reproducible) figure


def test_default_view_of_the_founding_study_is_readable_and_states_its_threshold(browser, server):
    base, store = server
    done = subprocess.run([str(MMKG), "query", "cooccurrence", "--store", str(store), "--format", "json",
                           "-p", "codebook=interview"], capture_output=True, text=True, timeout=120)
    counts = [row["n_ab"] for row in json.loads(done.stdout)]
    threshold = min(m for m in range(1, max(counts) + 1) if sum(c >= m for c in counts) <= 150)
    show(browser, base + "/views/cooccurrence")
    edges = browser.evaluate("mmkgNetworks[0].body.data.edges.length")
    assert edges == sum(c >= threshold for c in counts) <= 150
    assert f"n_ab ≥ {threshold}" in browser.evaluate("document.querySelector('.threshold').textContent")
    # labels are drawn at 12 px or more on the 1440×900 screen
    font = browser.evaluate("mmkgNetworks[0].getScale() * mmkgNetworks[0].body.nodes["
                            "mmkgNetworks[0].body.nodeIndices[0]].options.font.size")
    assert font >= 12, font
    # every pair drawn is in the table beside the figure (also the screen reader's alternative)
    rows = browser.evaluate("document.querySelectorAll('#network-0-table tbody tr').length")
    described = browser.evaluate("document.getElementById('network-0').getAttribute('aria-describedby')")
    assert rows == edges and described == "network-0-table"


def test_clicking_a_node_and_an_edge_lists_the_segments_of_the_named_query(browser, server):
    base, store = server
    show(browser, base + "/views/cooccurrence")
    # the edge behind the paper's "occur together six times"
    point = browser.evaluate("""(() => {
      const n = mmkgNetworks[0], e = n.body.data.edges.get().find(e =>
        [e.from, e.to].sort().join() === 'interview:A.3,interview:C.4');
      const a = n.getPositions([e.from])[e.from], b = n.getPositions([e.to])[e.to];
      const p = n.canvasToDOM({x: (a.x + b.x) / 2, y: (a.y + b.y) / 2});
      const r = n.body.container.getBoundingClientRect();
      return {x: p.x + r.left, y: p.y + r.top + window.scrollY, id: e.id, hit: n.getEdgeAt(p), node: n.getNodeAt(p) ?? null}; })()""")  # noqa: E501 - data kept on one line
    assert point["hit"] == point["id"] and point["node"] is None
    click_at(browser, point["x"], point["y"])
    shown = panel_rows(browser)
    expected = cli_segments(store, study_id="founding", code_a="interview:A.3", code_b="interview:C.4",
                            unit="segment", coder="")
    assert len({r["passage"] for r in expected}) == 6  # the paper: "Both codes occur together six times"
    assert_rows_match(shown, expected)
    browser.screenshot(ARTIFACTS / "after-cooccurrence-edge-clicked.png")

    node = browser.evaluate("""(() => {
      const n = mmkgNetworks[0], p = n.canvasToDOM(n.getPositions(['interview:C.4'])['interview:C.4']);
      const r = n.body.container.getBoundingClientRect();
      return {x: p.x + r.left, y: p.y + r.top + window.scrollY, hit: n.getNodeAt(p)}; })()""")
    assert node["hit"] == "interview:C.4"
    click_at(browser, node["x"], node["y"])
    browser.wait_for("document.querySelector('#drill-body h3').textContent === 'code breach'")
    shown = panel_rows(browser)
    assert_rows_match(shown, cli_segments(store, study_id="founding", code_a="interview:C.4", unit="segment",
                                          coder=""))
    faded = browser.evaluate("mmkgNetworks[0].body.data.nodes.get().filter(n => n.color.background === '#e4e7eb')"
                             ".length")
    neighbours = browser.evaluate("mmkgNetworks[0].getConnectedNodes('interview:C.4').length")
    total = browser.evaluate("mmkgNetworks[0].body.data.nodes.length")
    assert faded == total - neighbours - 1 > 0  # the neighbourhood stands out
    browser.screenshot(ARTIFACTS / "after-cooccurrence-node-clicked.png")
    assert foreign_requests(browser, base) == []


def test_search_finds_a_code_and_opens_its_segments(browser, server):
    base, store = server
    show(browser, base + "/views/cooccurrence")
    browser.evaluate("(() => { const i = document.querySelector('[data-action=search]'); i.value = 'Model Stealing';"
                     " i.dispatchEvent(new Event('change')); })()")
    browser.wait_for("document.querySelector('#drill-body h3') && "
                     "document.querySelector('#drill-body h3').textContent === 'model stealing'")
    assert_rows_match(panel_rows(browser), cli_segments(store, study_id="founding", code_a="interview:A.3",
                                                        unit="segment", coder=""))
    assert browser.evaluate("mmkgNetworks[0].getSelectedNodes()") == ["interview:A.3"]


def wait_for_download(folder: Path, suffix: str, timeout: float = 20) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.glob(f"*{suffix}") if p.stat().st_size > 0]
        if done and not list(folder.glob("*.crdownload")):
            return done[0]
        time.sleep(0.1)
    raise TimeoutError(f"no {suffix} download in {folder}")


def check_png(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG whose chunks all carry a right CRC and whose image data inflates."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks, idat = 8, [], b""
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length:position + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        chunks.append(kind)
        idat += body if kind == b"IDAT" else b""
        position += 12 + length
    assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND"
    width, height = struct.unpack(">II", data[16:24])
    assert len(zlib.decompress(idat)) > width * height  # at least one byte per pixel
    return width, height


@pytest.mark.parametrize("name", ["cooccurrence", "threat-map", "participant", "comparison"])
def test_export_gives_a_png_an_svg_with_every_label_and_the_table_as_csv(browser, server, name):
    base, _ = server
    show(browser, base + PAGES[name])
    folder = browser.downloads
    for old in folder.iterdir():
        old.unlink()
    labels = browser.evaluate("mmkgNetworks[0].body.data.nodes.get().map(n => n.label).filter(l => l)")
    table = browser.evaluate("JSON.parse(document.getElementById('network-0-data').textContent).table")
    for action, suffix in (("png", ".png"), ("svg", ".svg"), ("csv", ".csv")):
        browser.evaluate(f"document.querySelector('#network-0-panel [data-action={action}]').click()")
        path = wait_for_download(folder, suffix)
        if suffix == ".png":
            width, height = check_png(path.read_bytes())
            assert width > 500 and height > 300
        elif suffix == ".svg":
            root = ElementTree.fromstring(path.read_bytes())
            assert root.tag == "{http://www.w3.org/2000/svg}svg"
            texts = {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
            assert set(labels) <= texts and labels
            shapes = [e for e in root.iter() if e.tag.split("}")[1] in ("circle", "rect", "polygon")]
            assert len(shapes) >= len(labels)
        else:
            rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
            assert rows[0] == table["columns"] and len(rows) - 1 == len(table["rows"])
    assert foreign_requests(browser, base) == []


def test_the_wheel_scrolls_the_page_and_zooms_only_with_ctrl(browser, server):
    base, _ = server
    show(browser, base + "/views/cooccurrence")
    box = browser.evaluate("(() => { const r = document.getElementById('network-0').getBoundingClientRect();"
                           " return [r.left + r.width / 2, r.top + r.height / 2]; })()")
    scale = browser.evaluate("mmkgNetworks[0].getScale()")

    def wheel(modifiers: int) -> None:
        browser.send("Input.dispatchMouseEvent", {"type": "mouseWheel", "x": box[0], "y": box[1], "deltaX": 0,
                                                  "deltaY": 200, "modifiers": modifiers}, session=True)
        time.sleep(0.3)

    wheel(0)
    assert browser.evaluate("mmkgNetworks[0].getScale()") == scale
    assert browser.evaluate("window.scrollY") > 0
    wheel(2)  # Ctrl
    zoomed = browser.evaluate("mmkgNetworks[0].getScale()")
    assert zoomed < scale
    browser.evaluate("document.querySelector('[data-action=reset]').click()")
    assert abs(browser.evaluate("mmkgNetworks[0].getScale()") - scale) < 1e-6


def test_pages_and_json_are_gzipped_and_vis_network_is_fetched_once(browser, server):
    base, _ = server
    with httpx.Client(base_url=base, timeout=30) as http:
        for path in ("/views/cooccurrence", "/views/threat-map", "/api/queries/codes", "/"):
            response = http.get(path, headers={"Accept-Encoding": "gzip"})
            assert response.status_code == 200
            assert response.headers["content-encoding"] == "gzip", path
            assert int(response.headers.get("content-length", 10 ** 9)) < len(response.content)
        page = http.get("/views/threat-map").text
    assert "vis.Network" not in page and len(page) < 200_000  # vis-network is linked, not inlined
    show(browser, base + "/views/threat-map")
    show(browser, base + "/views/participants/P4")
    vis = [e for e in browser.events if e.get("method") == "Network.responseReceived"
           and "vis-network.min.js" in e["params"]["response"]["url"]]
    cached = [e for e in browser.events if e.get("method") == "Network.requestServedFromCache"]
    assert vis and all(e["params"]["response"].get("fromDiskCache") or
                       e["params"]["requestId"] in {c["params"]["requestId"] for c in cached} for e in vis)


HOSTILE_A = '=HYPERLINK("http://127.0.0.2/x","click")'
HOSTILE_B = '"><img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    """A study whose code labels are formulas and markup, served for real."""
    import mmkg

    folder = tmp_path_factory.mktemp("hostile") / "study"
    shutil.copytree(Path(__file__).parent / "data" / "mini_study", folder)
    codes = (folder / "codes.csv").read_text(encoding="utf-8")
    codes = codes.replace("model stealing", '"' + HOSTILE_A.replace('"', '""') + '"')
    codes = codes.replace("code breach", '"' + HOSTILE_B.replace('"', '""') + '"')
    (folder / "codes.csv").write_text(codes, encoding="utf-8")
    store = folder.parent / "store"
    with mmkg.open_store(store) as kg:
        kg.load(folder)
    with live_server(store) as base:
        yield base


def test_hostile_labels_stay_text_everywhere(browser, hostile_server):
    base = hostile_server
    show(browser, base + "/views/cooccurrence?study_id=mini&min_count=1")
    labels = browser.evaluate("mmkgNetworks[0].body.data.nodes.get().map(n => n.label)")
    assert HOSTILE_A in labels and HOSTILE_B in labels  # drawn as the text it is
    assert browser.evaluate("window.__pwned === undefined && document.querySelectorAll('img[src=x]').length === 0")
    assert HOSTILE_B in browser.evaluate("document.querySelector('#network-0-table').innerText")
    point = browser.evaluate("""(() => {
      const n = mmkgNetworks[0], id = n.body.data.nodes.get().find(x => x.label.startsWith('"><img')).id;
      const p = n.canvasToDOM(n.getPositions([id])[id]), r = n.body.container.getBoundingClientRect();
      return {x: p.x + r.left, y: p.y + r.top + window.scrollY}; })()""")
    click_at(browser, point["x"], point["y"])
    browser.wait_for("document.getElementById('drill-body').dataset.state === 'done'")
    assert browser.evaluate("document.querySelector('#drill-body h3').textContent") == HOSTILE_B
    assert browser.evaluate("window.__pwned === undefined")
    folder = browser.downloads
    for old in folder.iterdir():
        old.unlink()
    browser.evaluate("document.querySelector('#network-0-panel [data-action=csv]').click()")
    rows = list(csv.reader(io.StringIO(wait_for_download(folder, ".csv").read_text(encoding="utf-8"))))
    cells = [c for row in rows[1:] for c in row]
    assert "'" + HOSTILE_A in cells and HOSTILE_A not in cells  # a spreadsheet reads it as text, not a formula
    browser.evaluate("document.querySelector('#network-0-panel [data-action=svg]').click()")
    root = ElementTree.fromstring(wait_for_download(folder, ".svg").read_bytes())
    assert {HOSTILE_A, HOSTILE_B} <= {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert not [e for e in root.iter() if e.tag.split("}")[1] in ("img", "script", "image", "foreignObject")]
    assert foreign_requests(browser, base) == []


def node_point(browser: Chromium, node_id: str) -> dict:
    return browser.evaluate(f"""(() => {{
      const n = mmkgNetworks[0], p = n.canvasToDOM(n.getPositions([{json.dumps(node_id)}])[{json.dumps(node_id)}]);
      const r = n.body.container.getBoundingClientRect();
      return {{x: p.x + r.left, y: p.y + r.top + window.scrollY, hit: n.getNodeAt(p)}}; }})()""")


def test_an_attack_and_a_participants_concept_list_their_segments(browser, server):
    base, store = server
    show(browser, base + "/views/threat-map")
    attack = browser.evaluate("mmkgNetworks[0].body.data.nodes.get().find(n => n.label.startsWith('poisoning')).id")
    node = f"mmkgNetworks[0].body.data.nodes.get({json.dumps(attack)})"
    codes = browser.evaluate(f"{node}.drill.calls.map(c => c.code_a)")
    point = node_point(browser, attack)
    assert point["hit"] == attack
    click_at(browser, point["x"], point["y"])
    expected = [row for code in codes for row in cli_segments(store, study_id="founding", code_a=code,
                                                              unit="segment", coder="")]
    assert_rows_match(panel_rows(browser), expected)
    browser.screenshot(ARTIFACTS / "after-threat-map-attack-clicked.png")

    show(browser, base + "/views/participants/P4")
    point = node_point(browser, "Evasion")
    assert point["hit"] == "Evasion"
    click_at(browser, point["x"], point["y"])
    calls = browser.evaluate("mmkgNetworks[0].body.data.nodes.get('Evasion').drill.calls")
    expected = [row for call in calls for row in cli_segments(store, study_id="founding", unit="segment", coder="",
                                                              **call)]
    shown = panel_rows(browser)
    assert_rows_match(shown, expected)
    assert {cells[0] for cells in shown} == {"P4"}
    browser.screenshot(ARTIFACTS / "after-participant-concept-clicked.png")
    assert foreign_requests(browser, base) == []
