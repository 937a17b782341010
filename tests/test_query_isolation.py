"""Loading another study changes no answer about a study already in the graph — in particular not when the
embedded store rebuilds its database file for a large study (there, LadybugDB 0.22 applied
`drawn_pipeline`'s mapping filter wrongly until the query projected the relationship properties first)."""
from __future__ import annotations

import pytest
from test_cross_store import differences

import mmkg
from mmkg.queries import registry
from mmkg.synthetic import synthetic_codings

pytestmark = pytest.mark.slow


def test_a_large_other_study_changes_no_answer_about_the_founding_study(founding_store, tmp_path):
    queries = sorted(name for name, q in registry().items() if q.mode == "read" and name != "studies")
    codings = tmp_path / "synthetic.csv"
    synthetic_codings(100_000).to_csv(codings, index=False)
    # the founding study named: with two studies in the store an empty study parameter is an error
    founding = {name: {"study_id": "founding"} if any(p.name == "study_id" for p in registry()[name].parameters)
                else {} for name in queries}
    with mmkg.open_store(founding_store) as kg:
        before = {name: kg.query(name, **founding[name]) for name in queries}
        kg.load(codings)  # larger than what the store holds: written into a new database file
        assert kg.study_ids() == ["founding", "synthetic"]
        for name in queries:
            problems = differences(before[name], kg.query(name, **founding[name]))
            assert not problems, f"{name} changed after another study was loaded:\n" + "\n".join(problems)
