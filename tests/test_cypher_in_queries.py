"""Every Cypher statement lives in a query file: no .py file of the package outside the store package (which
generates its DDL, load and count statements from the schema) and queries/ holds one."""
from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the shapes a statement starts or returns with; prose and grammar keywords do not have them
CYPHER = re.compile(r"\b(?:(?:OPTIONAL\s+)?MATCH|MERGE|CREATE)\s*\(|\bUNWIND\s+\$|\bRETURN\s+\w+\.\w+(?:\s+AS\b|\s*,)"
                    r"|\bDETACH\s+DELETE\b|\bCREATE\s+(?:NODE|REL)\s+TABLE\b|\bCREATE\s+(?:CONSTRAINT|INDEX)\b"
                    r"|\bCALL\s+(?:db|apoc|dbms)\.")
EXEMPT = ("mmkg/store/", "queries/")


def package_sources() -> list[Path]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    folders = {ROOT / folder for folder in config["tool"]["setuptools"]["package-dir"].values()}
    files = {f for folder in folders for f in folder.rglob("*.py") if ".venv" not in f.parts}
    return sorted(f for f in files if not f.relative_to(ROOT).as_posix().startswith(EXEMPT))


def strings(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string constant and f-string (placeholders as `{}`) except docstrings."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    parts = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            found.append((node.lineno, "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings | parts:
            found.append((node.lineno, node.value))
    return found


def inline_statements(path: Path, root: Path = ROOT) -> list[str]:
    """`file:line: text` of every string in `path` that holds a Cypher statement, in line order."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = sorted((line, text) for line, text in strings(tree) if CYPHER.search(text))
    return [f"{path.relative_to(root)}:{line}: {text[:80]!r}" for line, text in found]


def test_no_cypher_statement_outside_queries_and_the_store():
    sources = package_sources()
    assert any(f.relative_to(ROOT).as_posix() == "server/views.py" for f in sources)
    assert [s for f in sources for s in inline_statements(f)] == []


def test_the_scan_sees_a_statement_in_every_form(tmp_path):
    """The check fails on the forms the code base used to have: concatenated, triple-quoted, f-strings."""
    sample = tmp_path / "sample.py"
    sample.write_text('A = "MATCH (s:Study) RETURN s.id AS id"\n'
                      'B = ("MATCH (k:Code) WHERE k.study_id = $s "\n     "RETURN k.codebook AS codebook")\n'
                      'C = """\nOPTIONAL MATCH (p)-[:HAS_ATTRIBUTE]->(a:Attribute)\n"""\n'
                      "D = f\"MATCH (a:Concept)-[:{t}]->(b:Concept) RETURN a.uid AS source\"\n"
                      'def f():\n    """Runs MATCH (n) on the graph."""\n    return "a MATCH of words"\n')
    found = inline_statements(sample, tmp_path)
    assert [s.split(":")[1] for s in found] == ["1", "2", "4", "7"]
