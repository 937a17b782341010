"""Neo4j's own Cypher linter (`lintCypherQuery` of npm @neo4j-cypher/language-support) from Python.

    from cypher_lint import lint, linter_available
    lint(["MATCH (k:Code) WHERE k.id = $id RETURN k"], [{"id": ""}])  # -> [[diagnostic, …]]

The node script lives in `tools/cypher-lint/` (`npm ci --prefix tools/cypher-lint` installs the pinned
package).  Every statement is linted against mmkg's schema (labels, relationship types, property keys from
`mmkg.schema`) with the given parameters declared; a diagnostic is a dict with severity (1 = error,
2 = warning), message, line and character.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "cypher-lint"
SCRIPT = TOOL / "lint.mjs"
PACKAGE = TOOL / "node_modules" / "@neo4j-cypher" / "language-support"
ERROR, WARNING = 1, 2


def linter_available() -> str | None:
    """None when the linter can run, else the reason it cannot."""
    if shutil.which("node") is None:
        return "node is not installed (the Cypher linter runs on Node.js)"
    if not PACKAGE.is_dir():
        return f"@neo4j-cypher/language-support is not installed: run `npm ci --prefix {TOOL.relative_to(ROOT)}`"
    return None


def mmkg_schema() -> dict:
    """Labels, relationship types and property keys of mmkg's graph, in the linter's DbSchema shape."""
    from mmkg.schema import NODES, RELS

    keys = {"uid"} | {name for n in NODES for name, _ in n.properties}
    keys |= {name for r in RELS for name, _ in r.properties}
    return {"labels": [n.label for n in NODES], "relationshipTypes": [r.type for r in RELS],
            "propertyKeys": sorted(keys)}


def lint(statements: list[str], parameters: list[dict] | None = None, *, schema: dict | None = None,
         sources: list[str] | None = None) -> list[list[dict]]:
    """Diagnostics per statement.  Parameters default to every `$name` of the statement (as null)."""
    reason = linter_available()
    if reason:
        raise RuntimeError(reason)
    if parameters is None:
        parameters = [{name: None for name in re.findall(r"\$([A-Za-z_]\w*)", s)} for s in statements]
    schema = mmkg_schema() if schema is None else schema
    items = [{"query": q, "parameters": p, "source": (sources or [None] * len(statements))[i] or i}
             for i, (q, p) in enumerate(zip(statements, parameters))]
    # Linting takes about a second per statement: spread the statements over one node process per core.
    workers = max(1, min(len(items), os.cpu_count() or 1))
    chunks = [items[i::workers] for i in range(workers)]
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda chunk: _run(chunk, schema), chunks))
    by_source = {}
    for chunk, result in zip(chunks, results):
        for item, diagnostics in zip(chunk, result):
            by_source[id(item)] = diagnostics
    return [by_source[id(item)] for item in items]


def _run(items: list[dict], schema: dict) -> list[list[dict]]:
    done = subprocess.run(["node", str(SCRIPT)], input=json.dumps({"schema": schema, "statements": items}),
                          capture_output=True, text=True, cwd=TOOL, timeout=300)
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise RuntimeError(f"the Cypher linter failed (exit {done.returncode}): {done.stderr.strip()[:2000]}")
    return [result["diagnostics"] for result in json.loads(done.stdout)]
