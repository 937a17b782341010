"""The statements that read one study's subgraph back, generated from the schema (`mmkg.schema`): every
property of every study-scoped node and relationship, so a property added to the schema is read back
without a hand-written query. `mmkg.graph_tables` turns the rows into a study's tables."""
from __future__ import annotations

from mmkg import schema
from mmkg.schema import NodeTable, RelTable


def study_node_statement(node: NodeTable) -> str:
    """Every node of one study (`$study_id`) with the label, all its properties; a bulk label's through its
    parent relationship, the way every reader reaches it (see `NodeTable.bulk`)."""
    columns = ", ".join(f"n.{c} AS {c}" for c in node.columns)
    if node.bulk:
        parent = next(r for r in schema.RELS if r.target == node.label)
        match = f"MATCH (:{parent.source})-[:{parent.type}]->(n:{node.label})"
    else:
        match = f"MATCH (n:{node.label})"
    return f"{match} WHERE n.study_id = $study_id RETURN {columns}"


def study_rel_statement(rel: RelTable) -> str:
    """Every relationship of the type leaving one study's nodes: the two uids and all its properties."""
    columns = ", ".join(["a.uid AS `from`", "b.uid AS `to`", *(f"r.{p} AS {p}" for p, _ in rel.properties)])
    return f"MATCH (a:{rel.source})-[r:{rel.type}]->(b:{rel.target}) WHERE a.study_id = $study_id RETURN {columns}"


def study_tables() -> tuple[list[NodeTable], list[RelTable]]:
    """The schema's study-scoped node tables and the relationship tables leaving them (read at call time)."""
    by_label = {n.label: n for n in schema.NODES}
    return ([n for n in schema.NODES if n.study_scoped],
            [r for r in schema.RELS if by_label[r.source].study_scoped])


def statements() -> list[str]:
    """Every read-back statement, for the Cypher linters."""
    nodes, rels = study_tables()
    return [study_node_statement(n) for n in nodes] + [study_rel_statement(r) for r in rels]
