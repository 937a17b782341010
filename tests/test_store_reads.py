"""Reads in parallel on the embedded store: each read has a connection of its own, and a replaced version stays
open until its last read has finished."""
from __future__ import annotations

import threading

import pytest

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


@pytest.mark.parametrize("beside", ["founding", "nothing"])
def test_a_read_while_this_store_writes_reads_the_published_version(beside, founding_store, tmp_path):
    """The version this object reads is closed while it writes the next (its memory goes to the writer); a
    read in between opens it again and sees the published graph, not the one being written. Beside the
    founding study the load changes a copy of the file; alone in the store it rebuilds the file."""
    from mmkg.synthetic import synthetic_codings

    csv = tmp_path / "codings.csv"
    synthetic_codings(300).to_csv(csv, index=False)
    with mmkg.open_store(founding_store if beside == "founding" else tmp_path / "store") as kg:
        if beside == "nothing":
            kg.load(csv)  # loaded again below: replacing the only study rebuilds the file
        store = kg.store
        before = int(store.execute(COUNT)["n"].iloc[0])
        during: list[tuple[bool, int]] = []

        def progress(step, done, total):
            if step != "reading and validating" and not during:  # the first step of the write
                during.append((store._open is None, int(store.execute(COUNT)["n"].iloc[0])))

        kg.load(csv, progress=progress)
        assert during == [(True, before)], "closed while writing; the read saw the published version"
        after = int(store.execute(COUNT)["n"].iloc[0])
        assert after > before if beside == "founding" else after == before


def test_a_read_in_flight_keeps_its_version_open_through_a_write(founding_store, tmp_path):
    from mmkg.synthetic import synthetic_codings

    csv = tmp_path / "codings.csv"
    synthetic_codings(300).to_csv(csv, index=False)
    with mmkg.open_store(founding_store) as kg:
        with kg.store._connection() as in_flight:
            before = int(in_flight.execute(COUNT).get_as_df()["n"].iloc[0])
            kg.load(csv)
            assert int(in_flight.execute(COUNT).get_as_df()["n"].iloc[0]) == before
        assert int(kg.store.execute(COUNT)["n"].iloc[0]) > before


def test_the_server_runs_at_most_read_slots_graph_reads_at_once(founding_store):
    """reader_of: requests beyond `read_slots()` wait for a slot (threads beyond the cores only make every
    read slower under the GIL), and a slow read leaves the other slots to the rest."""
    import asyncio
    import time

    from mmkg.config import Settings
    from mmkg.server.dependencies import reader_of
    from mmkg.server.holder import GraphHolder, default_factory, read_slots

    holder = GraphHolder(default_factory(Settings(store=founding_store)))
    read = reader_of(holder)
    guard = threading.Lock()
    running = {"now": 0, "most": 0}
    slow_started, slow_may_end = threading.Event(), threading.Event()

    def slow(kg) -> list[str]:
        slow_started.set()
        slow_may_end.wait(timeout=60)
        return kg.study_ids()

    def counting(kg) -> list[str]:
        with guard:
            running["now"] += 1
            running["most"] = max(running["most"], running["now"])
        time.sleep(0.05)
        with guard:
            running["now"] -= 1
        return kg.study_ids()

    async def requests() -> list:
        held = asyncio.ensure_future(read(slow))
        while not slow_started.is_set():
            await asyncio.sleep(0.01)
        try:  # these finish while the slow read still holds its slot
            return await asyncio.wait_for(asyncio.gather(*(read(counting) for _ in range(4 * read_slots()))), 30)
        finally:
            slow_may_end.set()
            await held

    try:
        answers = asyncio.run(requests())
    finally:
        holder.close()
    assert answers == [["founding"]] * (4 * read_slots())
    assert running["most"] == read_slots() - 1, "the slow read held one slot and the others were all in use"
