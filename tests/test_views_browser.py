"""Every view in headless Chromium against a live server: no console errors, no request to another host,
the network canvas drawn with the expected number of nodes.  Screenshots go to test-artifacts/."""
from __future__ import annotations

from pathlib import Path

import pytest

import mmkg
from chromium_cdp import Chromium, chromium_path
from live_server import live_server
from mmkg.server import views

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CANVAS_INK = """(() => Array.from(document.querySelectorAll('.network canvas')).map(c => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let ink = 0;
  for (let i = 0; i < d.length; i += 16) if (d[i + 3] > 0 && (d[i] < 240 || d[i + 1] < 240 || d[i + 2] < 240)) ink++;
  return ink; }))()"""


@pytest.fixture(scope="module")
def browser():
    executable = chromium_path()
    if executable is None:
        pytest.skip("headless Chromium is not installed (apt-get install chromium); .ci/run installs it")
    chrome = Chromium(executable)
    yield chrome
    chrome.close()


@pytest.fixture(scope="module")
def expected_and_server(founding_template, tmp_path_factory):
    """Node counts computed with the Python API first, then the server on a copy of the same store."""
    store = tmp_path_factory.mktemp("browser") / "store"
    import shutil

    shutil.copytree(founding_template, store)
    with mmkg.open_store(store, read_only=True) as kg:
        expected = {
            "cooccurrence": [len(views.cooccurrence_network(kg).nodes)],
            "cooccurrence-participant": [len(views.cooccurrence_network(kg, unit="participant", metric="jaccard",
                                                                        min_count=2, codebook="").nodes)],
            "threat-map": [len(views.threat_map_network(kg).nodes)],
            "participant": [len(views.participant_network(kg, "P4").nodes)],
            "comparison": [len(n.nodes) for n in views.comparison_networks(kg)],
        }
    with live_server(store) as base:
        yield expected, base


PAGES = {
    "cooccurrence": "/views/cooccurrence",
    "cooccurrence-participant": "/views/cooccurrence?unit=participant&metric=jaccard&min_count=2&codebook=",
    "threat-map": "/views/threat-map",
    "participant": "/views/participants/P4",
    "comparison": "/views/comparison?attribute=works_in_security",
    "index": "/",
    "docs": "/docs",
}


@pytest.mark.parametrize("name", list(PAGES))
def test_view_in_chromium(browser, expected_and_server, name):
    expected, base = expected_and_server
    browser.open(base + PAGES[name])
    if name == "docs":
        browser.wait_for("document.querySelectorAll('.opblock').length > 5")
    else:
        counts = browser.wait_for("window.mmkgNetworks && window.mmkgNetworks.map(n => n.body.data.nodes.length)"
                                  if name != "index" else "window.mmkgNetworks && [window.mmkgNetworks.length]")
        assert counts == (expected.get(name) or [0])
        if name != "index":
            assert all(n > 0 for n in counts)
            browser.wait_for(f"({CANVAS_INK}).every(ink => ink > 50)")
        assert "not the authors" in browser.evaluate("document.body.innerText")  # provenance line
    browser.screenshot(ARTIFACTS / f"view-{name}.png")
    assert browser.console_errors() == []
    foreign = [u for u in browser.requested_urls() if not (u.startswith(base + "/") or u.startswith("data:"))]
    assert foreign == []
