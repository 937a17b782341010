"""Every named query and internal statement passes Neo4j's own linter (`lintCypherQuery`) with every
`$parameter` declared."""
from __future__ import annotations

import pytest
from cypher_lint import ERROR, lint, linter_available

from mmkg.queries import every_query, registry

pytestmark = [pytest.mark.skipif(linter_available() is not None, reason=str(linter_available())),
              pytest.mark.slow]  # each run starts Node.js processes that load the linter: 10 s and more
NEGATIVE = {"syntax": ("MATCH (n RETURN n", {}), "undeclared": ("MATCH (n:Code) WHERE n.id = $id RETURN n", {}),
            "unknown_label": ("MATCH (n:Cod) RETURN n.id", {})}


@pytest.fixture(scope="module")
def diagnostics() -> dict[str, list[dict]]:
    """One linter run over every query file: named queries and the library's internal statements (linting is
    slow: ~1 s a statement)."""
    queries = list(every_query().values())
    statements = [q.cypher for q in queries]
    parameters = [{p.name: p.default for p in q.cypher_parameters} for q in queries]
    names = [q.name for q in queries]
    return dict(zip(names, lint(statements, parameters, sources=names)))


@pytest.fixture(scope="module")
def negative_controls() -> dict[str, list[dict]]:
    """The linter's diagnostics of three statements it must flag."""
    statements = [s for s, _ in NEGATIVE.values()]
    return dict(zip(NEGATIVE, lint(statements, [p for _, p in NEGATIVE.values()], sources=list(NEGATIVE))))


def test_every_query_file_lints_without_errors_or_warnings(diagnostics):
    problems = {name: d for name, d in diagnostics.items() if d}
    assert len(diagnostics) >= 12
    assert any(q.internal for q in every_query().values()) and set(registry()) < set(diagnostics)
    assert not problems, problems


def test_linter_reports_syntax_errors_undeclared_parameters_and_unknown_labels(negative_controls):
    assert any(d["severity"] == ERROR for d in negative_controls["syntax"])
    assert any(d["severity"] == ERROR and "$id" in d["message"] for d in negative_controls["undeclared"])
    unknown = negative_controls["unknown_label"]
    assert unknown and all(d["severity"] != ERROR for d in unknown) and "Cod" in unknown[0]["message"]
