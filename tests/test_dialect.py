"""The dialect shim (mmkg.store.dialect): one test per LadybugDB↔Neo4j difference, on the embedded store.

Each test shows on real LadybugDB why the difference exists (what LadybugDB accepts or returns) and what
`to_neo4j` sends instead; tests/test_neo4j_statements_lint.py checks the rewritten text with Neo4j's linter.
"""
from __future__ import annotations

import pytest

import mmkg
from mmkg.errors import QueryError
from mmkg.store.dialect import to_neo4j


@pytest.fixture
def ladybug(founding_store):
    with mmkg.open_store(founding_store, read_only=True) as kg:
        yield kg


def one(kg, cypher: str):
    frame = kg.cypher(cypher)
    assert len(frame) == 1, frame
    return frame.iloc[0, 0]


def test_label_is_a_string_in_ladybug_and_a_list_in_neo4j(ladybug):
    cypher = "MATCH (k:Code) RETURN label(k) AS kind LIMIT 1"
    assert one(ladybug, cypher) == "Code"
    assert one(ladybug, "MATCH (k:Code) RETURN labels(k) AS kind LIMIT 1") == "Code"  # not a list here
    assert to_neo4j(cypher) == "MATCH (k:Code) RETURN labels(k)[0] AS kind LIMIT 1"


def test_offset_of_id_is_an_integer_key_in_ladybug_and_neo4js_id(ladybug):
    cypher = "MATCH (k:Code) RETURN offset(id(k)) AS key, k.uid AS uid"
    keys = ladybug.cypher(cypher)
    assert keys["key"].dtype.kind == "i" and keys["key"].is_unique and len(keys) == keys["uid"].nunique() > 1
    assert to_neo4j(cypher) == "MATCH (k:Code) RETURN id(k) AS key, k.uid AS uid"


def test_to_double_is_ladybugs_tofloat(ladybug):
    with pytest.raises(QueryError, match="(?i)tofloat"):
        ladybug.cypher("RETURN toFloat(3) AS x")
    cypher = "MATCH (s:Segment) WHERE s.start_pos IS NOT NULL RETURN to_double(s.start_pos) / 2 AS half LIMIT 1"
    assert isinstance(one(ladybug, cypher), float)
    assert to_neo4j(cypher).count("toFloat(s.start_pos)") == 1 and "to_double" not in to_neo4j(cypher)


def test_sum_of_integers_is_typed_differently_and_to_int64_makes_it_an_integer(ladybug):
    plain = ladybug.cypher("MATCH (p:Participant) RETURN sum(size(p.id)) AS n")
    assert plain["n"].dtype.kind == "f"  # LadybugDB's INT128 sum reaches pandas as float64
    cast = ladybug.cypher("MATCH (p:Participant) RETURN to_int64(sum(size(p.id))) AS n")
    assert cast["n"].dtype.kind == "i" and cast["n"].iloc[0] == plain["n"].iloc[0]
    assert to_neo4j("RETURN to_int64(sum(size(p.id))) AS n") == "RETURN toInteger(sum(size(p.id))) AS n"


def test_string_is_ladybugs_tostring(ladybug):
    with pytest.raises(QueryError, match="(?i)tostring"):
        ladybug.cypher("RETURN toString(3) AS x")
    assert one(ladybug, "MATCH (s:Study) RETURN s.id + ':' + string(size(s.id)) AS x") == "founding:8"
    assert to_neo4j("RETURN s.id + ':' + STRING(size(s.id)) AS x") == "RETURN s.id + ':' + toString(size(s.id)) AS x"


def test_list_indexing_is_one_based_in_ladybug_so_queries_avoid_it(ladybug):
    """Not shimmed (documented): `[10, 20, 30][1]` is 10 here and 20 in Neo4j."""
    assert one(ladybug, "RETURN [10, 20, 30][1] AS x") == 10
    assert to_neo4j("RETURN [10, 20, 30][1] AS x") == "RETURN [10, 20, 30][1] AS x"


def test_literals_quoted_names_and_comments_are_never_rewritten():
    cypher = ("// label(n) in a comment\nMATCH (n:Code) WHERE n.label <> 'label(x)' AND n.id <> \"string(1)\" "
              "RETURN n.`label` AS `to_double(`, n.label AS label /* to_int64( */")
    assert to_neo4j(cypher) == cypher


def test_nested_calls_and_neo4j_cypher_pass_through():
    assert to_neo4j("RETURN label(head(collect(to_double(x))))") == "RETURN labels(head(collect(toFloat(x))))[0]"
    neo4j_cypher = "MATCH (n) RETURN labels(n)[0] AS l, toFloat(n.x) AS f, toLower(n.id) AS i"
    assert to_neo4j(neo4j_cypher) == neo4j_cypher
    with pytest.raises(QueryError, match="unbalanced"):
        to_neo4j("RETURN label(n")



def test_list_sort_orders_a_collected_list_and_becomes_a_collect_subquery(ladybug):
    """`collect()` keeps the rows' order, which is not the same on two loads or two stores."""
    cypher = ("MATCH (p:Participant {id: 'P1'})-[:HAS_ATTRIBUTE]->(a:Attribute) WITH collect(a.name) AS names "
              "RETURN list_sort(names) AS names")
    names = list(one(ladybug, cypher))
    assert names == sorted(names) and len(names) > 3
    assert to_neo4j(cypher).endswith(
        "RETURN COLLECT { UNWIND names AS _mmkg_item RETURN _mmkg_item ORDER BY _mmkg_item } AS names")
    with pytest.raises(QueryError, match="takes a variable"):
        to_neo4j("MATCH (a:Attribute) RETURN list_sort(collect(a.name)) AS names")
