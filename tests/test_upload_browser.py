"""The upload page in real headless Chromium against a live `mmkg serve`: a person picks a file, types the token
and gets the study loaded — with no request off the server and no console error (CSP holds)."""
from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from chromium_cdp import Chromium, chromium_path
from live_server import live_server

import mmkg

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CODINGS_FILE = Path(__file__).parent / "data" / "own_study" / "threat-interviews.csv"
TOKEN = "browser-upload-token"


@pytest.fixture(scope="module")
def browser():
    executable = chromium_path()
    if executable is None:
        pytest.skip("headless Chromium is not installed (apt-get install chromium); .ci/run installs it")
    chrome = Chromium(executable)
    yield chrome
    chrome.close()


def submit(browser: Chromium, name: str, text: str, token: str) -> str:
    """Put a file into the form's file field as a person would pick it, type the token, press upload."""
    browser.evaluate(f"""(() => {{
        const transfer = new DataTransfer();
        transfer.items.add(new File([{json.dumps(text)}], {json.dumps(name)}, {{type: "text/csv"}}));
        document.querySelector('input[name=file]').files = transfer.files;
        document.querySelector('input[name=token]').value = {json.dumps(token)};
        document.querySelector('#upload button[type=submit]').click();
        return true; }})()""")
    return browser.wait_for("(() => { const t = document.getElementById('upload-result').textContent; "
                            "return t && t !== 'uploading …' ? t : ''; })()")


def test_the_upload_page_loads_a_study_with_the_token(browser, tmp_path):
    store = tmp_path / "store"
    with mmkg.open_store(store) as kg:
        kg.load(Path(__file__).parent / "data" / "mini_study")
    with live_server(store, env={"MMKG_UPLOAD_TOKEN": TOKEN}) as base:
        browser.open(f"{base}/upload")
        text = CODINGS_FILE.read_text(encoding="utf-8")
        wrong = submit(browser, CODINGS_FILE.name, text, "not-the-token")
        assert wrong.startswith("Error 401"), wrong
        loaded = submit(browser, CODINGS_FILE.name, text, TOKEN)
        assert loaded.startswith("Loaded study 'threat-interviews'"), loaded
        again = submit(browser, CODINGS_FILE.name, text, TOKEN)
        assert again.startswith("Error 409") and "replace=true" in again, again
        assert browser.console_errors() == [] or all("409" in e or "401" in e for e in browser.console_errors())
        assert all(u.startswith(base + "/") for u in browser.requested_urls() if not u.startswith("data:"))
        ids = sorted(s["study_id"] for s in httpx.get(f"{base}/api/studies").json())
    assert ids == ["mini", "threat-interviews"]
