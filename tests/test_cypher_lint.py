"""Every named query passes Neo4j's own linter (`lintCypherQuery`) with every `$parameter` declared."""
from __future__ import annotations

import pytest

from cypher_lint import ERROR, lint, linter_available
from mmkg.queries import registry

pytestmark = pytest.mark.skipif(linter_available() is not None, reason=str(linter_available()))


def test_every_query_file_lints_without_errors_or_warnings():
    queries = list(registry().values())
    results = lint([q.cypher for q in queries], [{p.name: p.default for p in q.cypher_parameters} for q in queries],
                   sources=[q.name for q in queries])
    problems = {q.name: d for q, d in zip(queries, results) if d}
    assert not problems, problems


def test_linter_reports_syntax_errors_undeclared_parameters_and_unknown_labels():
    syntax, undeclared, unknown = lint(["MATCH (n RETURN n", "MATCH (n:Code) WHERE n.id = $id RETURN n",
                                        "MATCH (n:Cod) RETURN n.id"], [{}, {}, {}])
    assert any(d["severity"] == ERROR for d in syntax)
    assert any(d["severity"] == ERROR and "$id" in d["message"] for d in undeclared)
    assert unknown and all(d["severity"] != ERROR for d in unknown) and "Cod" in unknown[0]["message"]
