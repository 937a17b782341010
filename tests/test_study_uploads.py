"""Uploads as a stranger sends them (issue 16 item 2): multipart forms and raw bodies, ids from the file, an
existing id refused with 409 unless replace=true, and the browser's upload page. Real app, real store, real files."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from mmkg.config import Settings
from mmkg.server.app import create_app

DATA = Path(__file__).parent / "data"
CODINGS_FILE = DATA / "own_study" / "threat-interviews.csv"
REFI_FILE = DATA / "refi-qda" / "atlasti-8.4-refi-standard-project.qdpx"
TOKEN = "test-upload-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LOCAL = "http://127.0.0.1"
TAGUETTE = ("id,document,tag,content\n1,interview one,model stealing,they copy the model\n"
            "2,interview one,data poisoning,bad training data\n3,interview two,model stealing,steal it\n")


@pytest.fixture
def uploads(tmp_path):
    settings = Settings(store=tmp_path / "store", upload_token=SecretStr(TOKEN), max_upload_bytes=2_000_000)
    with TestClient(create_app(settings), base_url=LOCAL) as client:
        yield client


def study_ids(client) -> list[str]:
    return sorted(s["study_id"] for s in client.get("/api/studies").json())


def test_a_multipart_form_upload_loads_the_study_under_the_id_the_file_gives(uploads):
    response = uploads.post("/api/studies", headers=AUTH,
                            files={"file": (CODINGS_FILE.name, CODINGS_FILE.read_bytes(), "text/csv")})
    assert response.status_code == 201, response.text
    assert response.json()["study_id"] == "threat-interviews"  # the codings table's study_id column
    refi = uploads.post("/api/studies", headers=AUTH,
                        files={"file": (REFI_FILE.name, REFI_FILE.read_bytes(), "application/zip")})
    assert refi.status_code == 201, refi.text
    assert refi.json()["study_id"] == "atlas.ti-standard-project"  # the REFI-QDA project's name
    assert study_ids(uploads) == ["atlas.ti-standard-project", "threat-interviews"]


def test_two_uploads_without_ids_become_two_studies_and_a_repeated_id_gets_409(uploads):
    first = uploads.post("/api/studies", headers=AUTH, files={"file": ("interviews-2024.csv", TAGUETTE)})
    second = uploads.post("/api/studies", headers=AUTH, params={"filename": "interviews-2025.csv"},
                          content=TAGUETTE.encode())
    assert (first.status_code, second.status_code) == (201, 201), (first.text, second.text)
    assert study_ids(uploads) == ["interviews-2024", "interviews-2025"]  # named after their files
    again = uploads.post("/api/studies", headers=AUTH, files={"file": ("interviews-2024.csv", TAGUETTE + "4,x,y,z\n")})
    assert again.status_code == 409, again.text
    assert again.json()["error"]["kind"] == "study_exists" and "replace=true" in again.json()["error"]["message"]
    segments = uploads.get("/api/queries/selections", params={"study_id": "interviews-2024"}).json()
    assert len(segments["rows"] if isinstance(segments, dict) else segments) == 3, "the first upload is intact"
    replaced = uploads.post("/api/studies", headers=AUTH, data={"replace": "true"},
                            files={"file": ("interviews-2024.csv", TAGUETTE + "4,x,y,z\n")})
    assert replaced.status_code == 200 and replaced.json()["replaced_codings"] == 3, replaced.text
    segments = uploads.get("/api/queries/selections", params={"study_id": "interviews-2024"}).json()
    assert len(segments["rows"] if isinstance(segments, dict) else segments) == 4
    named = uploads.post("/api/studies", headers=AUTH, data={"study_id": "third"},
                         files={"file": ("interviews-2024.csv", TAGUETTE)})
    assert named.status_code == 201 and named.json()["study_id"] == "third"
    raw_again = uploads.post("/api/studies", headers=AUTH, params={"filename": "x.csv", "study_id": "third"},
                             content=TAGUETTE.encode())
    assert raw_again.status_code == 409


def test_a_form_without_a_file_or_a_body_without_a_name_is_a_clear_400(uploads):
    no_file = uploads.post("/api/studies", headers=AUTH, data={"study_id": "x"},
                           files={"other": ("a.csv", TAGUETTE)})
    assert no_file.status_code == 400 and "'file'" in no_file.json()["error"]["message"]
    no_name = uploads.post("/api/studies", headers=AUTH, content=TAGUETTE.encode())
    assert no_name.status_code == 400 and "-F file=@" in no_name.json()["error"]["message"]
    bad_id = uploads.post("/api/studies", headers=AUTH, data={"study_id": "../etc"},
                          files={"file": ("a.csv", TAGUETTE)})
    assert bad_id.status_code == 400 and "study_id" in bad_id.json()["error"]["message"]
    path_name = uploads.post("/api/studies", headers=AUTH, files={"file": ("../../evil name.csv", TAGUETTE)})
    assert path_name.status_code == 201 and path_name.json()["study_id"] == "evil-name"
    assert study_ids(uploads) == ["evil-name"]


def test_the_upload_page_is_offline_and_sends_the_form_with_the_token(uploads):
    page = uploads.get("/upload")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    assert 'name="file"' in text and 'name="token"' in text and 'type="password"' in text
    assert "<script>" not in text, "no inline script (CSP)"
    assert not re.search(r"\son[a-z]+=", text), "no inline handlers (CSP)"
    assert not re.search(r'(src|href)="(https?:)?//', text), "nothing from the internet"
    script = re.search(r'<script src="(/static/upload\.js[^"]*)"', text).group(1)
    js = uploads.get(script)
    assert js.status_code == 200 and "Authorization" in js.text and "/api/studies" in js.text
    assert "script-src 'self'" in page.headers.get("content-security-policy", "")
    assert uploads.post("/api/studies", headers=AUTH, files={"file": ("a.csv", TAGUETTE)}).status_code == 201
    assert 'href="/upload"' in uploads.get("/").text, "the index links the upload page"


def test_two_concurrent_uploads_of_one_id_give_one_study_and_one_409(uploads):
    """The exists-check and the write hold one lock: of two uploads of the same id sent at once, exactly one
    is written and the other is refused (409: the id exists, or the store is being written), never both."""
    import threading

    barrier = threading.Barrier(2)
    statuses: list[tuple[int, str]] = []

    def send(extra: str) -> None:
        barrier.wait()
        response = uploads.post("/api/studies", headers=AUTH, data={"study_id": "same"},
                                files={"file": ("a.csv", TAGUETTE + extra)})
        statuses.append((response.status_code, response.json().get("error", {}).get("kind", "")))

    threads = [threading.Thread(target=send, args=(extra,)) for extra in ("", "4,x,y,z\n")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(status for status, _ in statuses)
    assert codes == [201, 409], statuses
    assert {kind for status, kind in statuses if status == 409} <= {"study_exists", "store_busy"}
    assert study_ids(uploads) == ["same"]


def test_a_load_checks_for_the_id_on_the_newest_version_under_the_writer_lock(tmp_path):
    """A handle opened before another process's load of the same id sees that load when it decides."""
    import mmkg
    from mmkg.errors import StudyExistsError

    store = tmp_path / "store"
    with mmkg.open_store(store) as early:
        early.load(CODINGS_FILE, study_id="first")
        with mmkg.open_store(store) as other:
            other.load(CODINGS_FILE, study_id="same")
        with pytest.raises(StudyExistsError, match="'same' is in the store already"):
            early.load(CODINGS_FILE, study_id="same", replace=False)
        report = early.load(CODINGS_FILE, study_id="same", replace=True)
        assert report.replaced_codings == report.codings > 0
