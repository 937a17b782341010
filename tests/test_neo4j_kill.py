"""kill -9 of a Neo4j load at random points: the old study stays intact, and the next load cleans up.

A child process loads a new version of a synthetic study in many small staged transactions and prints each
finished step; the test kills it (SIGKILL) after a random number of steps plus a random delay, so the kill
lands anywhere: while registering, sweeping, staging, switching or deleting the old version.  Until the
child has finished staging, readers must see exactly the old version; after that, the old or the new one
(never a mix).  The next load, of another study, must leave no staging, marker or retired node behind.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest
from conftest import MINI_STUDY, NEO4J_URI, ROOT, open_backend
from test_neo4j_store import NOTHING_LEFT, leftovers

from mmkg.synthetic import synthetic_codings

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]

KILLS = 5
CHILD = """
import sys
import mmkg
from mmkg.store import neo4j_store
neo4j_store.BATCH_ROWS = 300
kg = mmkg.open_store(neo4j_uri=sys.argv[1])
def progress(step, done, total):
    print(f"{done}/{total} {step}", flush=True)
kg.load(sys.argv[2], progress=progress)
print("DONE", flush=True)
"""


def study_state(kg) -> tuple:
    """The synthetic study as readers see it: every coding and the per-participant counts."""
    codings = kg.query("codings", study_id="synthetic")
    participants = kg.query("participants", study_id="synthetic")
    return (tuple(map(tuple, codings.astype(str).itertuples(index=False))),
            tuple(map(tuple, participants.astype(str).itertuples(index=False))))


def read_until(child, text: str) -> list[str]:
    lines = []
    for line in child.stdout:
        lines.append(line)
        if text in line:
            return lines
    pytest.fail(f"the child load ended before {text!r}: {lines[-3:]}")


def test_a_load_killed_at_random_points_leaves_the_old_study_and_the_next_load_cleans_up(tmp_path):
    kg = open_backend("neo4j", tmp_path)
    old_csv, new_csv = tmp_path / "old.csv", tmp_path / "new.csv"
    synthetic_codings(6_000, seed=1).to_csv(old_csv, index=False)
    synthetic_codings(8_000, seed=2, n_participants=150).to_csv(new_csv, index=False)
    kg.load()
    kg.load(old_csv)
    old = study_state(kg)
    seed = random.SystemRandom().randrange(2**32)
    chance = random.Random(seed)
    environment = {**os.environ, "NEO4J_URI": NEO4J_URI}
    outcomes = []
    try:
        for kill in range(KILLS):
            child = subprocess.Popen([sys.executable, "-c", CHILD, NEO4J_URI, str(new_csv)], cwd=ROOT,
                                     env=environment, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            lines = read_until(child, "1/1 reading and validating")  # validated: the store's work begins
            if chance.random() < 0.25:
                time.sleep(chance.uniform(0, 0.5))  # while it registers or sweeps
            else:
                lines += read_until(child, "removed what earlier loads left behind")
                total = int(lines[-1].split()[0].split("/")[1])
                for _ in range(chance.randrange(0, total)):  # more of its steps before the kill
                    if not (line := child.stdout.readline()):
                        break
                    lines.append(line)
            time.sleep(chance.uniform(0, 0.3))
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            lines += child.stdout.readlines()  # what it printed between the last line read and the kill
            store_steps = [x.split()[0].split("/") for x in lines
                           if x[:1].isdigit() and not x.startswith(("0/1", "1/1"))]
            finished_staging = any(int(done) >= int(total) - 2 for done, total in store_steps)  # it may have switched
            where = f"kill {kill + 1} (seed {seed}): after {lines[-1].strip()!r}"
            state = study_state(kg)
            if state != old:
                assert finished_staging, f"{where}: a reader saw something other than the old version"
                kg.load(old_csv)  # the switch had committed: back to the old version for the next kill
                state = study_state(kg)
            assert state == old, where
            outcomes.append(f"{where}; left behind: {leftovers(kg)}")
            kg.load(MINI_STUDY)  # the next load, of another study
            assert leftovers(kg) == NOTHING_LEFT, where
            assert study_state(kg) == old, where
            kg.delete_study("mini")
    finally:
        kg.close()
    print("\n".join(outcomes))


def test_the_child_load_completes_when_not_killed(tmp_path):
    """The same child, left alone, loads the new version (so the kills above interrupt a working load)."""
    kg = open_backend("neo4j", tmp_path)
    csv = tmp_path / "new.csv"
    synthetic_codings(2_000, seed=2).to_csv(csv, index=False)
    done = subprocess.run([sys.executable, "-c", CHILD, NEO4J_URI, str(csv)], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "NEO4J_URI": NEO4J_URI}, timeout=600)
    assert done.returncode == 0 and done.stdout.strip().endswith("DONE"), done.stderr[-2000:]
    assert kg.query("studies")["codings"].tolist() == [2_000]
    assert leftovers(kg) == NOTHING_LEFT
    kg.close()
