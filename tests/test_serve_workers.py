"""`mmkg serve --workers N`: N server processes share the port, each reading the store on its own; all of them
answer, all of them pick up a study a CLI load publishes, and stopping the server stops every one."""
from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from conftest import MINI_STUDY
from live_server import live_server
from store_processes import mmkg_cli

UNCACHED = "/api/queries/cooccurrence?study_id=founding&study_id=founding"  # the cache keys no repeated parameter


def study_ids(base: str) -> list[str]:
    response = httpx.get(base + "/api/studies", timeout=30)
    assert response.status_code == 200, response.text
    return sorted(row["study_id"] for row in response.json())


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").iterdir():
            children = [int(c) for c in (task / "children").read_text().split()]
            found += children
            todo += children
    return found


def worker_pids(pid: int) -> list[int]:
    """The server's worker processes (uvicorn spawns them through multiprocessing)."""
    return [child for child in descendants(pid)
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]


@pytest.mark.slow
def test_workers_share_the_port_see_new_versions_and_stop_together(founding_store):
    with live_server(founding_store, args=("--workers", "2")) as base:
        server = live_server.process  # type: ignore[attr-defined]
        workers = worker_pids(server.pid)
        assert len(workers) == 2, workers
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: httpx.get(base + UNCACHED, timeout=60), range(16)))
        assert {a.status_code for a in answers} == {200}
        assert len({a.content for a in answers}) == 1  # every process answers the same

        loaded = mmkg_cli("load", MINI_STUDY, "--store", founding_store)
        assert loaded.returncode == 0, loaded.stderr
        deadline = time.monotonic() + 10
        while True:  # requests spread over both processes: each must have picked up the new version
            with ThreadPoolExecutor(4) as pool:
                seen = list(pool.map(lambda _: study_ids(base), range(12)))
            if all(ids == ["founding", "mini"] for ids in seen) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert all(ids == ["founding", "mini"] for ids in seen), seen

        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(Path(f"/proc/{pid}").exists() for pid in workers), "a worker outlived the server"
