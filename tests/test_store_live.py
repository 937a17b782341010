"""A running `mmkg serve` and other processes on the same embedded store: the server serves each published
version whole (polled while a CLI load runs: never an error, never a count of neither version) and the new
one within 5 s; it survives a notebook holding the store and its own crash in the middle of an upload."""
from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest
from conftest import MINI_STUDY
from live_server import live_server
from store_processes import mmkg_cli, start_mmkg
from test_store_processes import TIDY, store_files, studies_csv

import mmkg
from mmkg.store.embedded import STAGING_FOLDER
from mmkg.synthetic import synthetic_codings

POLLED = ("/api/studies", "/api/queries/code_frequencies?study_id=founding",
          "/api/queries/threat_map?study_id=founding")
PICKUP_S = 5.0


def snapshot(base: str) -> dict[str, object]:
    answers = {}
    for path in POLLED:
        response = httpx.get(base + path, timeout=30)
        assert response.status_code == 200, (path, response.text)
        answers[path] = response.json()
    return answers


def poll_during(base: str, process, before: dict, after_expected) -> tuple[list[dict], float]:
    """Poll every path while `process` runs and until the new version shows (at most PICKUP_S after it
    ended); return every answer and how long after the writer's exit the new version was first served."""
    answers, ended, served_new = [], None, None
    while True:
        for path in POLLED:
            response = httpx.get(base + path, timeout=30)
            answers.append({"path": path, "status": response.status_code, "body": response.json(),
                            "t": time.monotonic()})
        running = process.poll() is None
        if not running and ended is None:
            ended = time.monotonic()
        latest = answers[-len(POLLED):]
        if ended is not None and after_expected(latest[0]["body"]):
            served_new = time.monotonic() - ended
            break
        if ended is not None and time.monotonic() - ended > PICKUP_S:
            break
        time.sleep(0.02)
    return answers, served_new


@pytest.mark.slow
@pytest.mark.parametrize("size", [600, 30_000], ids=["transaction", "rebuild"])
def test_server_serves_each_version_whole_while_the_cli_loads(size, founding_store, tmp_path):
    study = tmp_path / "other.csv"
    synthetic_codings(size, seed=11, study_id="other").to_csv(study, index=False)
    with live_server(founding_store) as base:
        before = snapshot(base)
        process = start_mmkg("load", study, "--store", founding_store)
        answers, served_new = poll_during(
            base, process, before, lambda studies: [s["study_id"] for s in studies] == ["founding", "other"])
        out, err = process.communicate()
        assert process.returncode == 0, err
        assert served_new is not None and served_new <= PICKUP_S, "the server did not pick up the new version"
        after = snapshot(base)

    # the new version, checked independently of the server: a read-only open in another process
    expected = studies_csv(founding_store).set_index("study_id")
    assert expected.loc["other", "codings"] == size
    other = next(s for s in after["/api/studies"] if s["study_id"] == "other")
    assert other["codings"] == size and other["participants"] == expected.loc["other", "participants"]
    assert next(s for s in after["/api/studies"] if s["study_id"] == "founding") == before["/api/studies"][0]

    errors = [a for a in answers if a["status"] != 200]
    assert not errors, errors[:3]
    for answer in answers:
        assert answer["body"] in (before[answer["path"]], after[answer["path"]]), \
            f"{answer['path']} answered neither the old nor the new version: {str(answer['body'])[:300]}"
    assert len(answers) >= 3 * len(POLLED), "too few polls to say anything"
    print(f"{len(answers)} answers while loading {size} codings; new version served {served_new:.2f} s "
          "after the load ended")


@pytest.mark.slow
def test_server_and_cli_beside_a_notebook_that_holds_the_store(founding_store):
    with mmkg.open_store(founding_store) as notebook, live_server(founding_store) as base:
        assert [s["study_id"] for s in httpx.get(f"{base}/api/studies").json()] == ["founding"]
        loaded = mmkg_cli("load", MINI_STUDY, "--store", founding_store)
        assert loaded.returncode == 0, loaded.stderr
        deadline = time.monotonic() + PICKUP_S
        while [s["study_id"] for s in httpx.get(f"{base}/api/studies").json()] != ["founding", "mini"]:
            assert time.monotonic() < deadline, "the server did not pick up the CLI's load"
            time.sleep(0.05)
        notebook.refresh()
        assert notebook.study_ids() == ["founding", "mini"]


@pytest.mark.slow
def test_a_server_killed_during_an_upload_leaves_a_store_every_command_opens(founding_store, tmp_path):
    study = tmp_path / "upload.csv"
    synthetic_codings(40_000, seed=2, study_id="uploaded").to_csv(study, index=False)
    payload = study.read_bytes()
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = {"MMKG_UPLOAD_TOKEN": "secret", "MMKG_MAX_UPLOAD_BYTES": str(len(payload) + 1), "TMPDIR": str(temporary)}
    with live_server(founding_store, env=env) as base:
        sender = threading.Thread(target=lambda: _post_quietly(f"{base}/api/studies?filename=upload.csv", payload))
        sender.start()
        deadline = time.monotonic() + 60
        while not (founding_store / STAGING_FOLDER).exists():  # the new version is being written
            assert time.monotonic() < deadline and sender.is_alive(), "the upload never started writing"
            time.sleep(0.005)
        live_server.process.send_signal(signal.SIGKILL)
        sender.join()
    studies = studies_csv(founding_store)  # a read-only command right after the crash
    assert list(studies["study_id"]) == ["founding"], "killed before publishing: the old version"
    assert store_files(founding_store) == TIDY
    assert len(list(temporary.iterdir())) == 1, "the killed server could not remove its upload folder"
    with live_server(founding_store, env=env) as base:
        assert httpx.get(f"{base}/api/studies").status_code == 200
        refused = httpx.post(f"{base}/api/studies?filename=x.txt", content=b"x",
                             headers={"Authorization": "Bearer secret"})
        assert refused.status_code == 400
    assert list(temporary.iterdir()) == [], "the next upload removed the dead server's folder"


def _post_quietly(url: str, payload: bytes) -> None:
    try:
        httpx.post(url, content=payload, headers={"Authorization": "Bearer secret"}, timeout=60)
    except httpx.HTTPError:
        pass  # the server died under it


@pytest.mark.slow
def test_the_servers_graph_moves_to_a_new_version_while_a_request_still_reads_the_old(founding_store):
    """GraphHolder: a request in flight keeps its version to the end; the next request reads the new one;
    the old one is closed when its last request ends."""
    from mmkg.config import Settings
    from mmkg.server.holder import GraphHolder, default_factory

    holder = GraphHolder(default_factory(Settings(store=founding_store)))
    try:
        with holder.reading() as old:
            generation = holder.generation
            with mmkg.open_store(founding_store) as writer:  # as another process would
                writer.load(MINI_STUDY)
            assert holder.generation != generation, "the version token is part of the cache key"
            with holder.reading() as new:
                assert new is not old and new.study_ids() == ["founding", "mini"]
            assert old.study_ids() == ["founding"], "the request in flight still reads its version"
        assert old.store._conn is None, "the replaced version was closed after its last request"
        with holder.reading() as again:
            assert again is new
    finally:
        holder.close()
