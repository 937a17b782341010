"""The embedded store's multi-process model (docs/store.md): readers in any number of processes, one writer
that publishes a new version atomically or is refused naming the holder, old stores upgraded, and the
published version intact whatever happens to a writer (kill -9 at random moments)."""
from __future__ import annotations

import io
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import MINI_STUDY
from store_processes import clean_env, lock_holder, mmkg_cli, start_mmkg

import mmkg
from mmkg.errors import StoreBusyError, StoreError
from mmkg.store.embedded import LEGACY_FILE, POINTER_FILE, SCHEMA_FILE, current_database_file, writer_lock
from mmkg.synthetic import synthetic_codings

TIDY = ["<current version>", POINTER_FILE, SCHEMA_FILE, "writer.lock"]


def store_files(store: Path) -> list[str]:
    current = (store / POINTER_FILE).read_text().strip()
    return sorted("<current version>" if p.name == current else p.name for p in store.iterdir())


def studies_csv(store: Path) -> pd.DataFrame:
    """`mmkg query studies` (a read-only command) in another process, as a frame."""
    done = mmkg_cli("query", "studies", "--format", "csv", "--store", store)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return pd.read_csv(io.StringIO(done.stdout))


@pytest.mark.slow
def test_a_reader_keeps_its_version_until_it_refreshes(founding_store):
    reader = mmkg.open_store(founding_store, read_only=True)
    try:
        file, token = current_database_file(founding_store)
        assert reader.store.version == token == file.name and file.is_file()
        assert not reader.store.is_stale() and reader.refresh() is False

        loaded = mmkg_cli("load", MINI_STUDY, "--store", founding_store)  # a writer in another process
        assert loaded.returncode == 0, loaded.stderr

        new_file, new_token = current_database_file(founding_store)
        assert new_token != token and reader.store.latest_version() == new_token and reader.store.is_stale()
        assert not file.exists(), "the writer collects the version nobody names any more"
        assert reader.study_ids() == ["founding"], "a reader sees its one version, even after it was collected"
        assert reader.refresh() is True and reader.store.version == new_token
        assert reader.study_ids() == ["founding", "mini"]
        assert store_files(founding_store) == TIDY
    finally:
        reader.close()


@pytest.mark.slow
def test_a_notebook_holding_the_store_locks_out_no_command(founding_store, tmp_path):
    """`open_store(S)` as in a notebook, kept open while the CLI loads, lists, queries and exports; the
    notebook's own load afterwards keeps what the CLI wrote."""
    with mmkg.open_store(founding_store) as notebook:
        assert notebook.study_ids() == ["founding"]
        loaded = mmkg_cli("load", MINI_STUDY, "--store", founding_store)
        assert loaded.returncode == 0, loaded.stderr
        listed = mmkg_cli("studies", "--store", founding_store)
        assert listed.returncode == 0 and "mini" in listed.stdout, listed.stderr
        exported = mmkg_cli("export", "codings", "--study", "mini", "--store", founding_store)
        assert exported.returncode == 0 and len(exported.stdout.splitlines()) == 1 + 17, exported.stderr
        paper = mmkg_cli("paper", "--format", "json", "--store", founding_store)
        assert paper.returncode == 0, paper.stderr
        assert notebook.study_ids() == ["founding"]  # its version, until it refreshes or loads

        second = tmp_path / "second.csv"
        synthetic_codings(300, seed=3, study_id="second").to_csv(second, index=False)
        notebook.load(second)
        assert notebook.study_ids() == ["founding", "mini", "second"]
    assert list(studies_csv(founding_store)["study_id"]) == ["founding", "mini", "second"]


@pytest.mark.slow
def test_a_second_writer_is_refused_naming_the_holder_and_a_killed_holder_frees_the_lock(founding_store):
    before = store_files(founding_store)
    with lock_holder(founding_store) as holder:
        refused = mmkg_cli("load", MINI_STUDY, "--store", founding_store)
        assert refused.returncode == 5, refused.stderr
        message = " ".join(refused.stderr.split())
        assert f"process {holder.pid}" in message and "is writing this store" in message, message
        assert "nothing was written" in message and "Wait for that load to finish" in message, message
        assert "Traceback" not in refused.stderr
        assert list(studies_csv(founding_store)["study_id"]) == ["founding"], "readers go on meanwhile"
        with pytest.raises(StoreBusyError, match=f"process {holder.pid}"), mmkg.open_store(founding_store) as kg:
            kg.load(MINI_STUDY)
        holder.send_signal(signal.SIGKILL)  # the kernel drops the lock with the process: no stale lock
        holder.wait()
        assert store_files(founding_store) == before
        loaded = mmkg_cli("load", MINI_STUDY, "--store", founding_store)
        assert loaded.returncode == 0, loaded.stderr
    assert list(studies_csv(founding_store)["study_id"]) == ["founding", "mini"]


@pytest.mark.slow
def test_a_load_waits_for_the_lock_when_asked_to(founding_store):
    with lock_holder(founding_store, hold_s=1.5):
        waited = mmkg_cli("load", MINI_STUDY, "--store", founding_store, env=clean_env(MMKG_WRITE_WAIT_S="60"))
    assert waited.returncode == 0, waited.stderr
    assert list(studies_csv(founding_store)["study_id"]) == ["founding", "mini"]


def test_the_writer_lock_is_reentrant_in_a_process_and_exclusive_between_threads(founding_store):
    import threading

    outcome = []
    with writer_lock(founding_store):
        with writer_lock(founding_store):  # a load inside `EmbeddedStore.writing()`
            pass

        def other_thread():
            try:
                with writer_lock(founding_store):
                    outcome.append("acquired")
            except StoreBusyError as exc:
                outcome.append(str(exc))

        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert len(outcome) == 1 and "another thread" in outcome[0]
    with writer_lock(founding_store):  # released by the outer context
        pass


@pytest.mark.slow
def test_read_only_opens_create_nothing(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(StoreError, match="no mmkg store here yet"):
        mmkg.open_store(missing, read_only=True)
    assert not missing.exists()
    listed = mmkg_cli("studies", "--store", missing)
    assert listed.returncode == 5 and "no mmkg store here yet" in listed.stderr
    assert not missing.exists()


@pytest.mark.slow
def test_a_store_of_an_earlier_mmkg_with_a_pending_wal_is_recovered_by_a_read_only_command(founding_store,
                                                                                        tmp_path):
    """An earlier mmkg kept one `graph.lbug` and wrote it in place; a crash left its WAL, and read-only opens
    then failed with 'checkpoint recovery is pending'. Any open now recovers it into a published version."""
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    file, _ = current_database_file(founding_store)
    (legacy / LEGACY_FILE).write_bytes(file.read_bytes())
    crash = ("import os, ladybug\n"
             f"db = ladybug.Database({str(legacy / LEGACY_FILE)!r}, auto_checkpoint=False)\n"
             "conn = ladybug.Connection(db)\n"
             "conn.execute(\"MATCH (s:Study) SET s.title = 'written just before the crash'\")\n"
             "os._exit(0)\n")  # no close: the committed write is only in the WAL
    subprocess.run([sys.executable, "-c", crash], check=True)
    assert (legacy / (LEGACY_FILE + ".wal")).exists(), "the crash must leave a WAL for this test"

    studies = studies_csv(legacy)
    assert list(studies["study_id"]) == ["founding"]
    assert studies["title"].iloc[0] == "written just before the crash"
    assert store_files(legacy) == TIDY


@pytest.mark.slow
@pytest.mark.parametrize("path", ["transaction", "rebuild"])
def test_kill_9_at_random_moments_of_a_load_then_read_only_opens_see_a_whole_version(path, founding_store, tmp_path):
    """SIGKILL a CLI load at seeded random moments (from its start to past its expected end); after each kill a
    read-only command in another process must open the store and see the old version or all of the new
    study, and the folder must be tidy again after that open."""
    size = 600 if path == "transaction" else 30_000
    study = tmp_path / "big.csv"
    synthetic_codings(size, seed=5, study_id="big").to_csv(study, index=False)
    founding_codings = studies_csv(founding_store).set_index("study_id").loc["founding", "codings"]

    started = time.monotonic()
    timed = mmkg_cli("load", study, "--store", tmp_path / "timing")
    assert timed.returncode == 0, timed.stderr
    duration = time.monotonic() - started

    rng = random.Random(20261201)
    outcomes = []
    for _ in range(6):
        delay = rng.uniform(0.1, 1.1) * duration
        process = start_mmkg("load", study, "--store", founding_store)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.communicate()
        outcomes.append(process.returncode)

        studies = studies_csv(founding_store).set_index("study_id")
        assert studies.loc["founding", "codings"] == founding_codings
        assert sorted(studies.index) in (["founding"], ["big", "founding"])
        if "big" in studies.index:
            assert studies.loc["big", "codings"] == size, "a published version holds all of the study"
            deleted = mmkg_cli("load", MINI_STUDY, "--store", founding_store)  # any write tidies as well
            assert deleted.returncode == 0, deleted.stderr
            with mmkg.open_store(founding_store) as kg:
                kg.delete_study("big")
                kg.delete_study("mini")
        assert store_files(founding_store) == TIDY, "the read-only open removed what the killed load left"
    assert -signal.SIGKILL in outcomes, "every load finished before it could be killed"
    loaded = mmkg_cli("load", study, "--store", founding_store)
    assert loaded.returncode == 0, loaded.stderr
    assert studies_csv(founding_store).set_index("study_id").loc["big", "codings"] == size


@pytest.mark.parametrize("pointer,message", [
    ("../../etc/passwd", "does not name a database file of this store"),
    ("graph-000009-0badc0de.lbug", "which is missing; something other than mmkg changed the store folder"),
    ("", "does not name a database file of this store"),
])
def test_a_damaged_version_pointer_is_a_clear_store_error(pointer, message, founding_store):
    (founding_store / POINTER_FILE).write_text(pointer)
    with pytest.raises(StoreError, match=message.replace(".", r"\.")):
        mmkg.open_store(founding_store, read_only=True)
