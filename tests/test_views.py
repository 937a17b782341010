"""The views' figures without a browser: thresholds from the data, seeded layouts, palettes, contrast, the threat
map's labels, the comparison's groups, static assets, gzip and HTML error pages (real store, real app)."""
from __future__ import annotations

import html
import re

import pandas as pd
import pytest
from fastapi.testclient import TestClient

import mmkg
from mmkg.config import Settings
from mmkg.server import views
from mmkg.server.app import create_app

LOCAL = "http://127.0.0.1"


@pytest.fixture(scope="module")
def kg(founding_template):
    with mmkg.open_store(founding_template, read_only=True) as graph:
        yield graph


@pytest.fixture(scope="module")
def client(founding_template, tmp_path_factory):
    import shutil

    store = tmp_path_factory.mktemp("views") / "store"
    shutil.copytree(founding_template, store)
    settings = Settings(store=store, upload_token=None)
    with TestClient(create_app(settings), base_url=LOCAL) as test_client:
        yield test_client


def wcag_contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio, written out here (not the module's helper)."""
    def lum(colour: str) -> float:
        values = []
        for i in (1, 3, 5):
            c = int(colour[i:i + 2], 16) / 255
            values.append(c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4)
        return 0.2126 * values[0] + 0.7152 * values[1] + 0.0722 * values[2]
    high, low = sorted((lum(a), lum(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def networks(kg) -> dict[str, views.MmkgNetwork]:
    nets = {"cooccurrence": views.cooccurrence_network(kg),
            "cooccurrence-group": views.cooccurrence_network(kg, codebook="", color_by="group"),
            "threat-map": views.threat_map_network(kg), "participant": views.participant_network(kg, "P4")}
    for i, net in enumerate(views.comparison_networks(kg)):
        nets[f"comparison-{i}"] = net
    return nets


@pytest.mark.slow
def test_default_threshold_is_the_smallest_count_that_leaves_at_most_150_pairs(kg):
    for unit in views.units():
        for codebook in ("interview", "drawing", ""):
            pairs = kg.query("cooccurrence", unit=unit, codebook=codebook)
            net = views.cooccurrence_network(kg, unit=unit, codebook=codebook)
            fitting = [m for m in range(1, int(pairs["n_ab"].max()) + 1) if (pairs["n_ab"] >= m).sum() <= 150]
            threshold = min(fitting)
            assert len(net.edges) == (pairs["n_ab"] >= threshold).sum() <= 150, (unit, codebook)
            assert f"n_ab ≥ {threshold}" in net.subtitle and "at most 150" in net.subtitle


@pytest.mark.slow
def test_a_threshold_given_is_kept_and_max_edges_caps_the_strongest(kg):
    pairs = kg.query("cooccurrence", unit="participant", codebook="")
    net = views.cooccurrence_network(kg, unit="participant", codebook="", min_count=1, max_edges=0)
    assert len(net.edges) == len(pairs) > 3000  # the reader asked for everything
    capped = views.cooccurrence_network(kg, unit="participant", codebook="", min_count=1, max_edges=40)
    assert len(capped.edges) == 40 and "the 40 strongest" in capped.subtitle
    strongest = sorted(pairs["n_ab"], reverse=True)[:40]
    drawn = sorted((int(e["title"].split("n_ab = ")[1].split("\n")[0]) for e in capped.edges), reverse=True)
    assert drawn == strongest


def test_an_empty_view_says_why_and_what_to_change(kg):
    top = int(kg.query("cooccurrence", codebook="interview")["n_ab"].max())
    net = views.cooccurrence_network(kg, min_count=999)
    assert net.nodes == [] and net.edges == []
    assert f"the most any pair does is {top}" in net.empty and f"to {top} or lower" in net.empty


def test_layouts_are_seeded_and_reproducible(kg):
    first = {n["id"]: (n["x"], n["y"]) for n in views.cooccurrence_network(kg).nodes}
    again = {n["id"]: (n["x"], n["y"]) for n in views.cooccurrence_network(kg).nodes}
    other = {n["id"]: (n["x"], n["y"]) for n in views.cooccurrence_network(kg, seed=7).nodes}
    assert first == again and set(other) == set(first) and other != first
    assert views.default_options()["physics"]["enabled"] is False


def test_labels_of_the_layout_do_not_overlap_much(kg):
    net = views.cooccurrence_network(kg)
    boxes = []
    for n in net.nodes:
        width = len(n["label"]) * 14 * 0.5
        boxes.append((n["x"] - width / 2, n["y"] + n["size"], n["x"] + width / 2, n["y"] + n["size"] + 14))
    overlapping = sum(1 for i, a in enumerate(boxes) for b in boxes[i + 1:]
                      if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])
    assert overlapping <= len(boxes) // 20, overlapping


def test_groups_get_distinct_colours_within_a_codebook_and_codebooks_distinct_shapes(kg):
    net = views.cooccurrence_network(kg, codebook="", color_by="group", min_count=1, max_edges=0)
    styles = {(n["codebook"], n["group"]): (n["color"]["background"], n["shape"]) for n in net.nodes}
    for book in {b for b, _ in styles}:
        colours = [c for (b, _), (c, _) in styles.items() if b == book]
        assert len(colours) == len(set(colours)) > 3
    assert len({s for (b, _), (_, s) in styles.items()}) == len({b for b, _ in styles}) == 2
    assert len({g for _, g in styles}) >= 17


@pytest.mark.slow
def test_every_label_has_at_least_4_5_to_1_contrast(kg):
    for name, net in networks(kg).items():
        for node in net.nodes:
            if not node.get("label"):
                continue
            font = node.get("font", {}).get("color", views.default_options()["nodes"]["font"]["color"])
            inside = node.get("shape") in ("box", "text")
            background = node["color"]["background"] if inside else "#ffffff"
            assert wcag_contrast(font, background) >= 4.5, (name, node["label"], font, background)
        for edge in net.edges:
            if edge.get("label"):
                font = edge.get("font", {}).get("color", views.default_options()["edges"]["font"]["color"])
                assert wcag_contrast(font, "#ffffff") >= 4.5, (name, edge["label"])


def test_threat_map_labels_each_attack_once_and_fades_unmentioned_ones(kg):
    frame = kg.query("threat_map", kind="aml_threat", source_kind=views.default_source_kind(kg, "founding"))
    net = views.threat_map_network(kg)
    labels = [n["label"] for n in net.nodes if n["id"].startswith("attack:")]
    edge_labels = [e["label"] for e in net.edges if e.get("label")]
    expected = [f"{r.label} ({r.participants})" for r in frame.itertuples() if list(r.controls) and list(r.affects)]
    assert sorted(labels) == sorted(expected) and len(set(labels)) == len(labels) and not edge_labels
    for row in frame.itertuples():
        hub = f"attack:{row.threat}"
        lines = [e for e in net.edges if hub in (e["from"], e["to"])]
        if not list(row.controls):
            continue
        assert lines and all(e["dashes"] == (row.participants == 0) for e in lines)
    assert "follow the paper's text" in net.caption
    legend = {g["title"] for g in net.legend}
    assert any("width" in t for t in legend) and any("colour" in t for t in legend)


def test_comparison_bins_numeric_attributes_and_sorts_values_naturally(kg):
    years = views.attribute_groups(kg, "founding", "experience_years")
    people = kg.query("participants")
    with_years = sum(any(a.startswith("experience_years=") for a in r) for r in people["attributes"])
    assert 2 <= len(years) <= 3 and sum(g["participants"] for g in years) == with_years
    lows = [float(re.findall(r"[\d.]+", g["label"])[0]) for g in years]
    assert lows == sorted(lows)
    knowledge = [g["label"] for g in views.attribute_groups(kg, "founding", "ml_knowledge")]
    assert knowledge == sorted(knowledge)
    security = views.attribute_groups(kg, "founding", "works_in_security")
    assert [g["label"] for g in security] == ["works_in_security = false", "works_in_security = true"]


def test_comparison_panels_share_positions_and_the_difference_is_the_share_gap(kg):
    figures = views.comparison_figures(kg)
    difference, *groups = figures["panels"]
    positions = [{n["id"]: (n["x"], n["y"]) for n in p.nodes} for p in figures["panels"]]
    assert all(p == positions[0] for p in positions)
    table = pd.DataFrame(figures["table"]["rows"], columns=figures["table"]["columns"])
    first, second = [g["label"] for g in figures["groups"]]
    for row in table.head(10).itertuples(index=False):
        values = dict(zip(table.columns, row))
        assert abs(float(values[second]) - float(values[first]) - float(values["difference"])) < 2e-3
    counts = kg.query("code_frequencies", codebook="interview", attribute="works_in_security", attribute_value="true")
    top = counts.iloc[0]
    row = table[table["code"] == f"interview:{top.code_id}"].iloc[0]
    assert abs(float(row[second]) - top.participants / figures["groups"][1]["participants"]) < 2e-3
    assert "<svg" in figures["chart"]["svg"] and "AML threat codes" in figures["chart"]["svg"]


def test_static_assets_are_cached_and_pages_link_them(client):
    page = client.get("/views/threat-map").text
    url = re.search(r'src="(/static/vis-network\.min\.js\?v=[0-9a-f]+)"', page).group(1)
    first = client.get(url)
    assert first.status_code == 200 and first.headers["content-type"].startswith("text/javascript")
    assert "immutable" in first.headers["cache-control"] and len(first.content) > 100_000
    again = client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert client.get("/static/../api.py").status_code == 404
    assert client.get("/static/nope.js").status_code == 404
    assert client.get("/favicon.ico").headers["content-type"].startswith("image/svg+xml")
    assert "vis-network" not in client.get("/").text  # the index has no network


def test_pages_json_and_scripts_are_gzipped(client):
    for path in ("/views/cooccurrence", "/api/queries/codes", "/static/mmkg.js"):
        raw = client.get(path, headers={"Accept-Encoding": "gzip"})
        assert raw.headers["content-encoding"] == "gzip", path
        plain = client.get(path, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.content == raw.content


def test_view_errors_are_pages_for_browsers_and_json_for_programs(client):
    page = client.get("/views/participants/P99", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "no participant 'P99'" in html.unescape(page.text) and 'href="/"' in page.text
    bad = client.get("/views/cooccurrence", params={"metric": "vibes"}, headers={"Accept": "text/html"})
    assert bad.status_code == 422 and "metric" in bad.text and bad.headers["content-type"].startswith("text/html")
    missing = client.get("/views/nothing-here", headers={"Accept": "text/html"})
    assert missing.status_code == 404 and "no view" in missing.text
    api = client.get("/api/studies/nope", headers={"Accept": "text/html"})
    assert api.headers["content-type"].startswith("application/json")
    program = client.get("/views/participants/P99")
    assert program.status_code == 404 and program.json()["error"]["kind"] == "not_found"


def test_provenance_is_read_once_per_store_version_and_anew_after_a_load(founding_store, tmp_path):
    """The studies' provenance every response carries is read once per published version of the server's
    read-only store (`version_memo.studies`); a newer version, and a writable store after its load, read anew."""
    from mmkg.server.render import provenance_lines
    from mmkg.server.version_memo import studies as kept_studies
    from mmkg.synthetic import synthetic_codings

    def counted_reads(kg) -> list[str]:
        names: list[str] = []
        query = kg.query

        def counting(name, **params):
            names.append(name)
            return query(name, **params)
        kg.query = counting  # type: ignore[method-assign]  (counts the real store's queries)
        return names

    with mmkg.open_store(founding_store, read_only=True) as kg:
        reads = counted_reads(kg)
        first = provenance_lines(kg)
        assert provenance_lines(kg) == first and reads.count("studies") == 1
        assert any(line.startswith("founding: ") and "reconstruction" in line for line in first)
    csv = tmp_path / "s.csv"
    synthetic_codings(500, n_codes=6, seed=3, study_id="s").to_csv(csv, index=False)
    with mmkg.open_store(founding_store) as writer:
        assert set(kept_studies(writer)["study_id"]) == {"founding"}
        writer.load(csv)
        assert set(kept_studies(writer)["study_id"]) == {"founding", "s"}
    with mmkg.open_store(founding_store, read_only=True) as kg:
        assert set(kept_studies(kg)["study_id"]) == {"founding", "s"}


def test_the_version_memo_keeps_what_fits_its_bytes_and_drops_the_least_recent(founding_store, monkeypatch):
    from mmkg.server import version_memo

    monkeypatch.setattr(version_memo, "_KEPT", type(version_memo._KEPT)())
    monkeypatch.setattr(version_memo, "_kept_bytes", 0)
    computed: list[int] = []

    def frame(n: int):
        def compute() -> pd.DataFrame:
            computed.append(n)
            return pd.DataFrame({"x": range(1000)}).assign(x=n)
        return compute
    monkeypatch.setattr(version_memo, "_MAX_BYTES", 3 * version_memo._size(frame(0)()))  # room for three
    computed.clear()
    with mmkg.open_store(founding_store, read_only=True) as kg:
        for n in (1, 2, 3, 1, 4, 1, 2):  # 4 drops 2 (1 was used since); 2 is computed again
            assert int(version_memo.per_version(kg, ("test", n), frame(n))["x"].iloc[0]) == n
    assert computed == [1, 2, 3, 4, 2]
    with mmkg.open_store(founding_store) as writable:  # a writable store is never memoised
        version_memo.per_version(writable, ("test", 1), frame(1))
    assert computed[-1] == 1 and len(computed) == 6


def test_a_notebook_network_is_one_self_contained_file(kg, tmp_path):
    net = views.cooccurrence_network(kg)
    page = net.generate_html()
    assert "vis.Network" in page and "<script src=" not in page and "/static/" not in page
    assert "interview:A.3" in page and page.rstrip().endswith("</html>")


def test_a_view_drawn_again_reuses_its_pairs_only_within_one_store_version(founding_store, tmp_path):
    """The server's read-only store keeps a version's co-occurrence pairs (`views.cooccurrence_pairs`): drawing
    the view again with another seed or metric does not count again, and a newer version is counted anew."""
    from mmkg.synthetic import synthetic_codings

    def load(seed: int) -> None:
        csv = tmp_path / f"s{seed}.csv"
        synthetic_codings(3000, n_codes=12, seed=seed, study_id="s").to_csv(csv, index=False)
        with mmkg.open_store(founding_store) as writer:
            writer.load(csv, replace=True)

    def drawn(kg, **options) -> dict[tuple, str]:
        net = views.cooccurrence_network(kg, "s", max_edges=0, min_count=1, **options)
        return {(e["from"], e["to"]): e["title"] for e in net.edges}

    load(seed=1)
    with mmkg.open_store(founding_store, read_only=True) as kg:
        counted = []
        query = kg.query

        def counting(name, **params):
            counted.append(name)
            return query(name, **params)
        kg.query = counting  # type: ignore[method-assign]  (counts the real store's queries)
        first = drawn(kg)
        assert drawn(kg, seed=2) == first and drawn(kg, metric="jaccard").keys() == first.keys()
        assert counted.count("cooccurrence") == 1
    load(seed=2)
    with mmkg.open_store(founding_store, read_only=True) as kg:
        again = drawn(kg)
        pairs = kg.query("cooccurrence", study_id="s", unit="segment", min_count=1, codebook="interview")
    assert again != first  # the new codings, not the kept pairs of the previous version
    assert len(again) == len(pairs)
