"""The schema (`mmkg.schema`) as each store's DDL: LadybugDB tables, Neo4j constraints and indexes."""
from __future__ import annotations

from mmkg.schema import NODES, RELS


def ladybug_ddl() -> list[str]:
    """`CREATE NODE/REL TABLE IF NOT EXISTS` statements for LadybugDB."""
    statements = []
    for node in NODES:
        props = ", ".join(["uid STRING"] + [f"{name} {kind}" for name, kind in node.properties])
        statements.append(f"CREATE NODE TABLE IF NOT EXISTS {node.label}({props}, PRIMARY KEY(uid))")
    for rel in RELS:
        props = "".join(f", {name} {kind}" for name, kind in rel.properties)
        statements.append(f"CREATE REL TABLE IF NOT EXISTS {rel.type}(FROM {rel.source} TO {rel.target}{props})")
    return statements


def neo4j_schema() -> list[str]:
    """Idempotent Neo4j 5 constraints and indexes: a uniqueness constraint on every `uid` but a bulk label's."""
    statements = []
    for node in NODES:
        if node.bulk:
            continue
        statements.append(
            f"CREATE CONSTRAINT {node.label.lower()}_uid IF NOT EXISTS "
            f"FOR (n:{node.label}) REQUIRE n.uid IS UNIQUE")
        for prop in node.indexed:
            statements.append(
                f"CREATE INDEX {node.label.lower()}_{prop} IF NOT EXISTS FOR (n:{node.label}) ON (n.{prop})")
    return statements
