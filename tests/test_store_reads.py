"""Reads in parallel on the embedded store: each read has a connection of its own, and a replaced version stays
open until its last read has finished."""
from __future__ import annotations

import threading

import mmkg
from mmkg.store.embedded import EmbeddedStore

COUNT = "MATCH (k:Code) RETURN count(k) AS n"


def test_a_read_in_progress_does_not_hold_up_another_thread(founding_store):
    store = EmbeddedStore(founding_store, read_only=True)
    try:
        expected = int(store.execute(COUNT)["n"].iloc[0])
        answers = []
        with store._connection() as busy:  # a read in flight on another thread's connection
            reader = threading.Thread(target=lambda: answers.append(int(store.execute(COUNT)["n"].iloc[0])))
            reader.start()
            reader.join(timeout=120)
            assert not reader.is_alive(), "a second read waited for the first"
            assert int(busy.execute(COUNT).get_as_df()["n"].iloc[0]) == expected
        assert answers == [expected]
    finally:
        store.close()


def test_a_replaced_version_closes_after_its_last_read(founding_store, tmp_path):
    reader = EmbeddedStore(founding_store, read_only=True)
    try:
        old = reader._open
        with reader._connection() as in_flight:
            with mmkg.open_store(founding_store) as writer:
                writer.delete_study("founding")
            assert reader.refresh()
            assert reader._open is not old and old.retired and not old.closed
            rows = in_flight.execute(COUNT).get_as_df()  # still reads the version it started on
            assert int(rows["n"].iloc[0]) > 0
        assert old.closed, "closed once the last read gave its connection back"
        assert int(reader.execute(COUNT)["n"].iloc[0]) == 0
    finally:
        reader.close()
