"""The OS sandbox on its own, and the worker pool around it.

`sandbox_probe.py` runs raw statements inside a worker's sandbox without the grammar — what a parser
disagreement would let through — and the tests check that none reads a canary, writes a file, reaches an
extension or the network, or changes the store. The pool tests check the wall-clock kill, crash recovery
and new store versions.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmkg.adhoc.pool import Limits, WorkerPool
from mmkg.adhoc.runner import AdhocCypher, _parser_bytes
from mmkg.config import Settings
from mmkg.errors import QueryError, QueryRefusedError
from mmkg.store.embedded import current_database_file

PROBE = Path(__file__).with_name("sandbox_probe.py")
LIMITS = Limits(timeout_s=3.0, max_rows=100, max_bytes=100_000)
LIBRARY = next((str(p) for p in (Path("/usr/lib/x86_64-linux-gnu/libz.so.1"), Path("/lib/x86_64-linux-gnu/libz.so.1"),
                                 Path("/usr/lib/aarch64-linux-gnu/libz.so.1")) if p.exists()), "/usr/lib/libz.so.1")


def folder_state(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def places(founding_store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    token = secrets.token_hex(16)
    canary = outside / "canary.csv"
    canary.write_text(f"id,secret\n1,{token}\n", encoding="utf-8")
    before = folder_state(founding_store), folder_state(outside)
    yield founding_store, outside, canary, token
    assert (folder_state(founding_store), folder_state(outside)) == before


def probe(store: Path, statements: list[str]) -> tuple[dict, list[dict], int]:
    config = {"database_file": str(current_database_file(store)[0]), "memory_mb": 512, "buffer_pool_mb": 64}
    done = subprocess.run([sys.executable, "-I", str(PROBE), json.dumps(config)], input=json.dumps(statements),
                          capture_output=True, text=True, timeout=120)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    return lines[0], lines[1:], done.returncode


@pytest.mark.slow
def test_raw_file_network_extension_and_setting_statements_fail_inside_the_sandbox(places):
    store, outside, canary, token = places
    statements = [
        f"LOAD FROM '{canary}' RETURN *",
        f"LOAD FROM '{canary}' (file_format='csv', header=true) RETURN *",
        f"COPY (MATCH (c:Code) RETURN c.id) TO '{outside}/leak.csv'",
        f"EXPORT DATABASE '{outside}/dump'",
        "INSTALL httpfs",
        "LOAD EXTENSION httpfs",
        f"LOAD EXTENSION '{LIBRARY}'",
        f"ATTACH '{canary}' AS other (dbtype duckdb)",
        "CHECKPOINT",
        "LOAD FROM '/etc/passwd' (file_format='csv', delim=':', header=false) RETURN *",
        "CALL var_length_extend_max_depth=2",
        "CALL current_setting('var_length_extend_max_depth') RETURN *",
        "BEGIN TRANSACTION",
        "MATCH (c:Code) RETURN count(c) AS n",
    ]
    layers, results, returncode = probe(store, statements)
    assert returncode == 0
    assert layers["layers"]["seccomp"] is True and layers["layers"]["landlock_abi"] >= 1
    assert len(results) == len(statements)
    for result in results:
        text = json.dumps(result)
        assert token not in text and "root:x:0:0" not in text, result["statement"]
    by_statement = {r["statement"]: r for r in results}
    for statement in statements[:10]:  # each one fails: nothing it needs can be opened
        assert by_statement[statement]["header"]["ok"] is False, by_statement[statement]
    assert '"2"' not in by_statement["CALL current_setting('var_length_extend_max_depth') RETURN *"]["rows"]
    assert by_statement["MATCH (c:Code) RETURN count(c) AS n"]["header"]["ok"] is True  # no open transaction


def test_a_crashing_table_function_dies_inside_the_sandbox(places):
    store, outside, canary, token = places
    _, results, returncode = probe(store, [f"CALL READ_NPY('{canary}') RETURN *"])
    assert returncode != 0 or not results[0]["header"]["ok"]
    assert token not in json.dumps(results)


@pytest.fixture
def pool(founding_store):
    workers = WorkerPool(lambda: current_database_file(founding_store), _parser_bytes, size=1, memory_mb=512,
                         buffer_pool_mb=64)
    yield workers
    workers.close()


def test_workers_check_statements_themselves(pool):
    assert pool.run("MATCH (c:Code) RETURN count(c) AS n", {}, "ladybug", LIMITS).rows_json.startswith(b'[{"n": ')
    with pytest.raises(QueryRefusedError, match="LOAD"):
        pool.run("LOAD FROM '/etc/passwd' RETURN *", {}, "ladybug", LIMITS)
    assert pool.layers["seccomp"] is True


@pytest.mark.slow
def test_the_wall_clock_kills_a_query_the_engine_does_not_interrupt(pool):
    pool.run("RETURN 1 AS x", {}, "ladybug", LIMITS)  # a worker is up: time only the query
    started = time.monotonic()
    with pytest.raises(QueryError):
        pool.run("RETURN size(lpad('x', 200000000, 'y')) + size(lpad('x', 200000000, 'z')) AS n", {}, "ladybug",
                 Limits(timeout_s=0.2, max_rows=10, max_bytes=10_000))
    assert time.monotonic() - started < 0.2 + 2
    assert pool.run("RETURN 2 AS x", {}, "ladybug", LIMITS).rows_json == b'[{"x": 2}]'


def test_a_hostile_parse_costs_the_worker_not_the_server(pool):
    nested = "RETURN " + "(" * 9000 + "1" + ")" * 9000
    pool.run("RETURN 1 AS x", {}, "ladybug", LIMITS)
    started = time.process_time()
    with pytest.raises(QueryError):
        pool.run(nested, {}, "ladybug", Limits(timeout_s=0.5, max_rows=10, max_bytes=10_000))
    assert time.process_time() - started < 0.2  # the server process did not parse it


def test_a_new_store_version_gets_new_workers(founding_store):
    runner = AdhocCypher(Settings(store=founding_store, cypher_workers=1))

    class Store:
        name, path = "ladybug", founding_store

    limits = runner.limits(None, None)
    first = runner.run(Store, "MATCH (c:Coder) RETURN count(c) AS n", {}, limits, client="a").rows_json
    import mmkg

    with mmkg.open_store(founding_store) as kg:  # another writer publishes a new version
        kg.delete_study("founding")
    second = runner.run(Store, "MATCH (c:Coder) RETURN count(c) AS n", {}, limits, client="a").rows_json
    runner.close()
    assert first != second and second == b'[{"n": 0}]'


def test_limits_come_from_the_settings():
    runner = AdhocCypher(Settings(cypher_timeout_s=4, cypher_max_rows=7, cypher_max_bytes=5000))
    assert runner.limits(100, 100) == Limits(timeout_s=4, max_rows=7, max_bytes=5000)
    assert runner.limits(3, 1) == Limits(timeout_s=1, max_rows=3, max_bytes=5000)


def test_workers_outlive_the_request_thread_that_needed_them(pool):
    import threading

    answers = []
    first = threading.Thread(target=lambda: answers.append(pool.run("RETURN 1 AS x", {}, "ladybug", LIMITS)))
    first.start()
    first.join()
    time.sleep(0.5)  # a worker tied to that thread's life would be gone by now
    assert answers[0].rows_json == b'[{"x": 1}]'
    assert pool.run("RETURN 2 AS x", {}, "ladybug", LIMITS).rows_json == b'[{"x": 2}]'
