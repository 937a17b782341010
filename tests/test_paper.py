"""`mmkg paper` agrees with an independent recomputation from `mmkg export codings` on every fact it lists."""
from __future__ import annotations

import json
import sys

import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from mmkg.paper import paper_facts
from mmkg.server.cli import main as cli_main

PREFIX = {"I": "interview", "D": "drawing"}
COMPARE = {"==": lambda x, v: x == v, ">=": lambda x, v: x >= v, ">": lambda x, v: x > v,
           "<": lambda x, v: x < v, "approx": lambda x, v: abs(x - v) < 0.5}


def cli_json(capsys, *args):
    old = sys.argv
    sys.argv = ["mmkg", *args]
    try:
        cli_main()
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr().err
    finally:
        sys.argv = old
    return capsys.readouterr().out


@pytest.fixture(scope="module")
def exported(tmp_path_factory, founding_template):
    """The codings export and the codes export of the shipped study, through the real CLI."""
    import shutil

    import mmkg

    store = tmp_path_factory.mktemp("paper") / "store"
    shutil.copytree(founding_template, store)
    with mmkg.open_store(store) as kg:
        return store, kg.export_codings(), kg.export_codes()


def key(code: str) -> tuple[str, str]:
    prefix, _, code_id = code.partition(":")
    return PREFIX[prefix], code_id


def recompute(fact: dict, codings: pd.DataFrame, codes: pd.DataFrame):
    """The fact's value from the exported tables alone (consensus rows for coding facts)."""
    consensus = codings[codings["coder"] == "consensus"]
    keys = pd.Series(list(zip(consensus["codebook"], consensus["code_id"])), index=consensus.index)
    wanted = [key(c) for c in fact["codes"]]
    negated = {key(c) for c in fact["negated_codes"]}
    positive = set(wanted) - negated
    kind = fact["kind"]
    if kind == "code_count_codings":
        counts = [int((keys == k).sum()) for k in wanted]
        return counts[0] if len(counts) == 1 else counts
    if kind == "cooccurrence" and fact["unit"] == "codings":
        sets = keys.groupby(consensus["segment_id"]).agg(set)
        return int(sum(positive <= s and not (negated & s) for s in sets))
    if kind in ("code_count_participants", "participants_list", "cooccurrence"):
        sets = keys.groupby(consensus["participant_id"]).agg(set)
        every = fact["code_logic"] in ("single", "all", "each")
        holders = {p for p, s in sets.items()
                   if not (negated & s) and (positive <= s if every else bool(positive & s))}
        if kind == "participants_list":
            return len(holders & {f"P{p}" for p in fact["participants"]})
        return len(holders)
    if kind == "agreement":
        return recompute_agreement(fact, codings, codes)
    if kind == "codebook":
        book = "interview" if ("interview" in fact["id"] or "table2" in fact["id"]) else "drawing"
        mine = codes[codes["codebook"] == book]
        if fact["unit"] == "groups":
            return mine["group_id"].nunique()
        if "leaf" in fact["id"]:
            return int((~mine["code_id"].isin(set(mine["parent_code_id"].dropna()))).sum())
        return len(mine)
    raise AssertionError(f"mmkg paper listed a fact the test cannot recompute: {fact['id']}")


def recompute_agreement(fact, codings, codes):
    coders = sorted(set(codings["coder"]) - {"consensus"})
    if fact["id"] == "coding-two-coders":
        return len(coders)
    book = "interview" if "interview" in fact["id"] else "drawing"
    mine = codings[codings["codebook"] == book]
    pairs = {c: set(zip(mine.loc[mine["coder"] == c, "segment_id"], mine.loc[mine["coder"] == c, "code_id"]))
             for c in coders}
    a, b = pairs[coders[0]], pairs[coders[1]]
    if fact["id"].endswith("-agreed"):
        return len(a & b)
    if fact["id"].endswith("-disagreed"):
        return len(a ^ b)
    if fact["id"].endswith("-total"):
        return len(a | b)
    segments = sorted(set(codings.loc[codings["source_kind"] == book, "segment_id"]))
    book_codes = sorted(codes.loc[codes["codebook"] == book, "code_id"])
    grid = pd.MultiIndex.from_product([segments, book_codes])
    return round(cohen_kappa_score([g in a for g in grid], [g in b for g in grid]), 3)


def test_paper_json_agrees_with_independent_recomputation(exported, capsys):
    store, codings, codes = exported
    listed = json.loads(cli_json(capsys, "paper", "--store", str(store), "--format", "json"))
    facts = {f["id"]: f for f in paper_facts()}
    assert len(listed) >= 100
    for row in listed:
        fact = facts[row["id"]]
        expected = recompute(fact, codings, codes)
        assert row["graph_value"] == expected, row["id"]
        if not fact["participants"] and not isinstance(expected, list):
            assert row["match"] == COMPARE[fact["comparator"]](expected, fact["value"]), row["id"]


@pytest.fixture(scope="module")
def listed(exported):
    import mmkg
    from mmkg.paper import paper_vs_graph

    with mmkg.open_store(exported[0]) as kg:
        return paper_vs_graph(kg).to_dict("records")


def test_every_exact_coding_fact_matches(listed):
    coding_kinds = {"code_count_codings", "code_count_participants", "cooccurrence", "participants_list"}
    exact = [r for r in listed if r["confidence"] == "exact" and r["kind"] in coding_kinds]
    assert len(exact) >= 20
    assert [r["id"] for r in exact if not r["match"]] == []


def test_mismatches_carry_a_reason(listed):
    assert all(r["note"] for r in listed if not r["match"])


def test_paper_table_shows_provenance(exported, capsys):
    store, _, _ = exported
    out = " ".join(cli_json(capsys, "paper", "--store", str(store)).split())
    assert "not the authors' data" in out
    assert "model" in out or "cooc-modelstealing-codebreach" in out
