"""Every Cypher statement mmkg sends to Neo4j passes Neo4j's own linter (npm @neo4j-cypher/language-support).

No Neo4j server runs here, so Neo4j's language support checks what the server would parse and resolve:
the store's schema, load, delete and count statements (`neo4j_store.statements()`, built by the same
functions the store calls), the neo4j-import export's reads, the dialect shim's output, and every named
query as Neo4j receives it.  The linter gets the graph's labels, types and property keys and Neo4j's
built-in function list (shipped with the package), so a LadybugDB-only function is an error here.
"""
from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
from cypher_lint import PACKAGE, ROOT, linter_available, mmkg_schema
from cypher_lint import lint as lint_statements

from mmkg.schema import NODES, RELS
from mmkg.store import neo4j_import, neo4j_store, study_reads
from mmkg.store.dialect import to_neo4j

pytestmark = pytest.mark.slow  # Neo4j's linter needs ~50–150 ms per statement and lints ~150 of them

# Neo4j's `SHOW FUNCTIONS` output as the package ships it (Cypher 5 and 25 built-ins).
FUNCTIONS_MODULE = PACKAGE / "dist/esm/project/language-support/src/tests/testData.js"


@pytest.fixture(scope="module")
def lint_schema() -> dict:
    """mmkg's vocabulary (plus the loader's row keys) and Neo4j's built-in functions."""
    reason = linter_available()
    if reason:
        pytest.skip(reason)
    # the package is pinned by tools/cypher-lint/package-lock.json: a missing file is a broken install, not a skip
    assert FUNCTIONS_MODULE.is_file(), f"{FUNCTIONS_MODULE.relative_to(ROOT)} is missing: the linter changed layout"
    script = (f"import {{ testData }} from {json.dumps(FUNCTIONS_MODULE.as_uri())};"
              "const builtIn = {};"
              "for (const [version, fns] of Object.entries(testData.mockSchema.functions))"
              "  builtIn[version] = Object.fromEntries(Object.entries(fns).filter(([, f]) => f.isBuiltIn));"
              "process.stdout.write(JSON.stringify(builtIn));")
    done = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    functions = json.loads(done.stdout)
    assert "toFloat" in functions["CYPHER 5"] and "to_double" not in functions["CYPHER 5"]
    schema = mmkg_schema()
    schema["propertyKeys"] = sorted({*schema["propertyKeys"], *neo4j_store.INTERNAL_PROPERTIES})
    schema["labels"] = [*schema["labels"], *neo4j_store.INTERNAL_LABELS,
                        *(neo4j_store.staged(n.label) for n in neo4j_store.SMALL_NODES)]
    return {**schema, "functions": functions}


def lint(statements: dict[str, str], schema: dict) -> dict[str, list[dict]]:
    """Diagnostics per statement name (every `$parameter` declared), in two linter processes at once."""
    names = list(statements)
    halves = [half for half in (names[: len(names) // 2], names[len(names) // 2:]) if half]
    with ThreadPoolExecutor(len(halves)) as pool:
        results = pool.map(lambda half: lint_statements([statements[n] for n in half], schema=schema), halves)
        return {name: found for half, diagnostics in zip(halves, results) for name, found in zip(half, diagnostics)}


BAD = {"ladybug function": "MATCH (n:Code) RETURN to_double(n.id) AS x",
       "ladybug label": "MATCH (n:Code) RETURN label(n) AS x",
       "syntax": "UNWIND $rows AS row MERGE (n:Code {uid: row.uid} SET n.id = row.id"}


@pytest.fixture(scope="module")
def linted(lint_schema) -> tuple[dict[str, str], dict[str, list[dict]]]:
    """Every statement of this file, linted in one go (the linter starts slowly)."""
    from mmkg.queries import every_query  # the named queries and the library's internal statements

    statements = {**store_statements(), **export_statements(),
                  **{f"query {name}": to_neo4j(q.cypher) for name, q in every_query().items()},
                  **{f"bad {name}": text for name, text in BAD.items()},
                  **{f"shimmed {name}": to_neo4j(text) for name, text in BAD.items() if name != "syntax"}}
    return statements, lint(statements, lint_schema)


def _problems(diagnostics: dict[str, list[dict]], statements: dict[str, str], severities=(1, 2)) -> list[str]:
    return [f"{name}: {d['message']} (line {d['line']}, column {d['character']}) in: {statements[name]}"
            for name, found in diagnostics.items() for d in found if d["severity"] in severities]


def store_statements() -> dict[str, str]:
    from mmkg.store import keys

    return {**{f"store[{i}]": text for i, text in enumerate(neo4j_store.statements())},
            **{f"keys[{i}]": to_neo4j(text) for i, text in enumerate(keys.statements())},
            **{f"keys neo4j[{i}]": text for i, text in enumerate(keys.neo4j_statements())}}


def export_statements() -> dict[str, str]:
    reads = {f"export nodes {n.label}": neo4j_import.node_query(n) for n in NODES}
    reads.update({f"export rels {r.type}": neo4j_import.rel_query(r) for r in RELS})
    reads.update({f"export study read-back {i}": text for i, text in enumerate(study_reads.statements())})
    return {name: to_neo4j(text) for name, text in reads.items()}


def _subset(linted, prefix: str) -> tuple[dict[str, str], dict[str, list[dict]]]:
    statements, found = linted
    names = [name for name in statements if name.startswith(prefix)]
    return {n: statements[n] for n in names}, {n: found[n] for n in names}


def test_the_store_sends_only_statements_neo4j_accepts_without_a_warning(linted):
    statements, found = _subset(linted, "store")
    export, export_found = _subset(linted, "export")
    assert len(statements) > 4 * len(NODES)  # schema, merge, delete and count statements per label
    problems = _problems(found, statements) + _problems(export_found, export)
    assert not problems, "\n".join(problems)


def test_every_label_and_type_has_its_write_statement():
    """Each label and relationship type is written by exactly one kind of statement the linter checks."""
    sent = neo4j_store.statements()
    for node in NODES:
        if node.bulk:
            assert f"(n:{node.label} {{" in neo4j_store.stage_bulk_statement()
            assert not any(f"FOR (n:{node.label}) REQUIRE" in s for s in sent)
        else:
            writer = (neo4j_store.stage_nodes_statement(node) if node.study_scoped
                      else neo4j_store.merge_nodes_statement(node))
            assert writer in sent
            assert any(f"FOR (n:{node.label}) REQUIRE n.uid IS UNIQUE" in s for s in sent)
    bulk_rels = {neo4j_store.BULK_PARENT.type, neo4j_store.BULK_CHILD.type}
    for rel in RELS:
        writers = [neo4j_store.stage_rels_statement(rel) in sent and rel in neo4j_store.SMALL_RELS,
                   rel.type in bulk_rels and f"[:{rel.type}]" in neo4j_store.stage_bulk_statement()
                   or f"[r:{rel.type} " in neo4j_store.stage_bulk_statement(),
                   rel in neo4j_store.CONCEPT_LINKS and neo4j_store.link_concepts_statement(rel) in sent,
                   rel in neo4j_store.ONTOLOGY_RELS and neo4j_store.merge_rels_statement(rel) in sent]
        assert sum(writers) == 1, (rel.type, writers)


def test_every_named_query_as_neo4j_receives_it_has_no_error(linted):
    queries, found = _subset(linted, "query")
    assert queries, "no named queries found"
    problems = _problems(found, queries, severities=(1,))
    assert not problems, "\n".join(problems)


def test_the_linter_catches_ladybug_only_functions_and_broken_syntax(linted):
    """The checks above can fail: unshimmed LadybugDB functions and a malformed statement are errors."""
    _, bad = _subset(linted, "bad")
    assert len(bad) == len(BAD) and all(any(d["severity"] == 1 for d in found) for found in bad.values()), bad
    shimmed, shimmed_found = _subset(linted, "shimmed")
    assert len(shimmed) == 2 and not _problems(shimmed_found, shimmed)


def test_the_integer_key_fetches_lint_without_errors(linted):
    """`mmkg.store.keys` (co-occurrence's integer-key fetches): no error; the one warning allowed is Neo4j 5's
    deprecation of `id()`, which they use on purpose (integer keys; `elementId` is a string)."""
    statements, found = _subset(linted, "keys")
    assert len(statements) >= 16  # the row forms and their Neo4j forms
    problems = [p for p in _problems(found, statements) if "id" not in p.split(" in: ")[0].split(": ", 1)[1]
                or "deprecated" not in p.lower()]
    assert not problems, "\n".join(problems)
