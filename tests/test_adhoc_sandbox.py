"""The OS sandbox on its own: raw statements sent to a worker, bypassing the grammar (as a parser
disagreement would), still reach no file, socket, extension or setting of another request."""
from __future__ import annotations

import hashlib
import secrets
import shutil
import time

import pytest

from mmkg.adhoc import AdhocCypher, database_version
from mmkg.adhoc.pool import Limits, WorkerPool
from mmkg.adhoc.statement import CheckedStatement
from mmkg.config import Settings
from mmkg.errors import QueryError

LIMITS = Limits(timeout_s=3.0, max_rows=100, max_bytes=100_000)


def raw(text: str) -> CheckedStatement:
    """A statement as it would look had the grammar let it through."""
    return CheckedStatement(text=text, parameters={})


@pytest.fixture
def sandbox(founding_store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    token = secrets.token_hex(16)
    canary = outside / "canary.csv"
    canary.write_text(f"id,secret\n1,{token}\n", encoding="utf-8")
    pool = WorkerPool(lambda: database_version(founding_store), size=1, per_client=1, memory_mb=512,
                      buffer_pool_mb=64, queue_timeout_s=5)
    store_before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in founding_store.iterdir() if p.is_file()}
    yield pool, founding_store, outside, canary, token
    pool.close()
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in founding_store.iterdir() if p.is_file()} == store_before
    assert sorted(p.name for p in outside.iterdir()) == ["canary.csv"]


def outcome(pool, text: str) -> str:
    """The rows or the error message of one raw statement."""
    try:
        return pool.run(raw(text), LIMITS, client="test").rows_json.decode()
    except QueryError as exc:
        return str(exc)


def test_the_worker_reports_every_sandbox_layer(sandbox):
    pool = sandbox[0]
    assert outcome(pool, "RETURN 1 AS x") == '[{"x": 1}]'
    assert pool.layers["seccomp"] is True and pool.layers["landlock_abi"] >= 1


@pytest.mark.parametrize("template", [
    "LOAD FROM '{canary}' RETURN *",
    "LOAD FROM '{canary}' (file_format='csv', header=true) RETURN *",
    "COPY (MATCH (c:Code) RETURN c.id) TO '{outside}/leak.csv'",
    "EXPORT DATABASE '{outside}/dump'",
    "INSTALL httpfs",
    "LOAD EXTENSION '/usr/lib/x86_64-linux-gnu/libz.so.1'",
    "ATTACH '{canary}' AS other (dbtype duckdb)",
    "CHECKPOINT",
    "LOAD FROM '/etc/passwd' (file_format='csv', delim=':', header=false) RETURN *",
])
def test_raw_file_network_and_extension_statements_fail_inside_the_sandbox(sandbox, template):
    pool, store, outside, canary, token = sandbox
    text = outcome(pool, template.format(canary=canary, outside=outside))
    assert token not in text and "root:x:0:0" not in text
    assert outcome(pool, "MATCH (c:Code) RETURN count(c) AS n").startswith('[{"n": ')


def test_a_crashing_table_function_kills_only_its_worker(sandbox):
    pool, store, outside, canary, token = sandbox
    with pytest.raises(QueryError) as crashed:
        pool.run(raw(f"CALL READ_NPY('{store}/graph.lbug') RETURN *"), LIMITS, client="test")
    assert token not in str(crashed.value)
    assert outcome(pool, "MATCH (c:Code) RETURN count(c) AS n").startswith('[{"n": ')


def test_settings_and_transactions_do_not_outlive_their_request(sandbox):
    pool = sandbox[0]
    outcome(pool, "CALL var_length_extend_max_depth=2")
    assert '"var_length_extend_max_depth": "2"' not in outcome(
        pool, "CALL current_setting('var_length_extend_max_depth') RETURN *")
    outcome(pool, "BEGIN TRANSACTION")
    assert outcome(pool, "MATCH (c:Code) RETURN count(c) AS n").startswith('[{"n": ')


def test_the_wall_clock_kills_a_query_the_engine_does_not_interrupt(sandbox):
    pool = sandbox[0]
    started = time.monotonic()
    with pytest.raises(QueryError):
        pool.run(raw("RETURN size(lpad('x', 200000000, 'y')) + size(lpad('x', 200000000, 'z')) AS n"),
                 Limits(timeout_s=0.2, max_rows=10, max_bytes=10_000), client="test")
    assert time.monotonic() - started < 0.2 + 2
    assert outcome(pool, "RETURN 2 AS x") == '[{"x": 2}]'


def test_a_new_store_version_gets_new_workers(founding_store, tmp_path):
    runner = AdhocCypher(Settings(store=founding_store, cypher_workers=1))

    class Store:
        name, path = "ladybug", founding_store

    limits = runner.limits(None, None)
    first = runner.run(Store, "MATCH (c:Coder) RETURN count(c) AS n", {}, limits, client="a").rows_json
    replacement = tmp_path / "replacement"
    shutil.copytree(founding_store, replacement)
    import mmkg

    with mmkg.open_store(replacement) as kg:
        kg.delete_study("founding")
    (founding_store / "graph.lbug").unlink()
    shutil.copy(replacement / "graph.lbug", founding_store / "graph.lbug")
    second = runner.run(Store, "MATCH (c:Coder) RETURN count(c) AS n", {}, limits, client="a").rows_json
    runner.close()
    assert first != second and second == b'[{"n": 0}]'


def test_limits_come_from_the_settings():
    runner = AdhocCypher(Settings(cypher_timeout_s=4, cypher_max_rows=7, cypher_max_bytes=5000))
    assert runner.limits(100, 100) == Limits(timeout_s=4, max_rows=7, max_bytes=5000)
    assert runner.limits(3, 1) == Limits(timeout_s=1, max_rows=3, max_bytes=5000)
