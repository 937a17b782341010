"""The named query library: one `.cypher` file per query, described by a comment header.

Header lines start with `//` and come before the statement::

    // name: codings
    // title: Every coding, one row each
    // description: One row per (segment, code, coder) …
    // param: study_id STRING = "founding" | study to export ('' = every study)
    // mode: read

`param` lines give the name, a type (STRING, INTEGER, FLOAT, BOOLEAN), a JSON default that runs on the
shipped study, and a description after `|`.  The registry refuses a file whose declared parameters differ
from the `$parameters` its statement uses.

A query may name a Python post-processing step of `mmkg.analysis` (co-occurrence metrics, agreement …)::

    // analysis: cooccurrence
    // option: min_count INTEGER = 1 | drop pairs seen on fewer units

`option` lines have the `param` syntax but are not `$parameters` of the statement: they go to the
analysis step.  `NamedQuery.parameters` lists both kinds — everything a caller can pass — and
`mmkg.Mmkg.query(name, **params)` runs the statement, then the step.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from mmkg.errors import NotFoundError, QueryError

QUERY_DIR = Path(__file__).parent
PARAM_TYPES = {"STRING": str, "INTEGER": int, "FLOAT": float, "BOOLEAN": bool}
_HEADER = re.compile(r"^//\s*(\w+)\s*:\s*(.*)$")
_PARAM = re.compile(r"^(\w+)\s+(STRING|INTEGER|FLOAT|BOOLEAN)\s*=\s*(.+?)\s*(?:\|\s*(.*))?$")
_USED_PARAM = re.compile(r"\$([A-Za-z_]\w*)")
_STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    default: object
    description: str = ""
    option: bool = False  # True: an option of the analysis step, not a `$parameter` of the statement

    def coerce(self, value: object) -> object:
        """Convert a value given as text (CLI, query string) or JSON to the declared type."""
        target = PARAM_TYPES[self.type]
        if isinstance(value, str) and target is not str:
            text = value.strip().lower()
            try:
                if target is bool:
                    if text not in ("true", "false", "1", "0", "yes", "no"):
                        raise ValueError
                    return text in ("true", "1", "yes")
                return target(float(text)) if target is int and float(text).is_integer() else target(text)
            except ValueError:
                raise QueryError(f"parameter '{self.name}' must be {self.type.lower()}, got '{value}'") from None
        if target is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, target) or (target is int and isinstance(value, bool)):
            raise QueryError(f"parameter '{self.name}' must be {self.type.lower()}, got {value!r}")
        return value


@dataclass(frozen=True)
class NamedQuery:
    name: str
    title: str
    description: str
    mode: str
    parameters: tuple[Parameter, ...]
    cypher: str
    path: Path
    extra: dict = field(default_factory=dict, compare=False)
    analysis: str = ""  # name of the `mmkg.analysis` step that post-processes the statement's rows

    @property
    def cypher_parameters(self) -> tuple[Parameter, ...]:
        """The `$parameters` of the statement (`parameters` also holds the analysis options)."""
        return tuple(p for p in self.parameters if not p.option)

    def split(self, bound: dict) -> tuple[dict, dict]:
        """Bound values split into (statement parameters, analysis options)."""
        names = {p.name for p in self.cypher_parameters}
        return ({k: v for k, v in bound.items() if k in names}, {k: v for k, v in bound.items() if k not in names})

    def bind(self, given: dict | None = None) -> dict:
        """Defaults overlaid with `given`, typed; unknown names are refused."""
        given = dict(given or {})
        known = {p.name: p for p in self.parameters}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise QueryError(f"query '{self.name}' has no parameter(s) {', '.join(unknown)} "
                             f"(it takes: {', '.join(known) or 'none'})")
        return {name: p.coerce(given[name]) if name in given else p.default for name, p in known.items()}


def parse_query_file(path: Path) -> NamedQuery:
    """Parse one `.cypher` file; raises `QueryError` naming the file on a bad header."""
    text = path.read_text(encoding="utf-8")
    header, body_lines, in_header = {}, [], True
    params: list[Parameter] = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = _HEADER.match(line.strip()) if in_header else None
        if match:
            key, value = match.group(1).lower(), match.group(2).strip()
            if key in ("param", "option"):
                p = _PARAM.match(value)
                if not p:
                    raise QueryError(f"{path}:{number}: cannot read parameter line '{value}' "
                                     "(expected: name TYPE = json-default | description)")
                try:
                    default = json.loads(p.group(3))
                except json.JSONDecodeError:
                    raise QueryError(f"{path}:{number}: default of '{p.group(1)}' is not JSON: {p.group(3)}") from None
                param = Parameter(p.group(1), p.group(2), None, p.group(4) or "", option=(key == "option"))
                if any(q.name == param.name for q in params):
                    raise QueryError(f"{path}:{number}: parameter '{param.name}' is declared twice")
                params.append(Parameter(param.name, param.type, param.coerce(default), param.description,
                                        option=param.option))
            else:
                header[key] = (header[key] + " " + value) if key in header else value
            continue
        if line.strip().startswith("//") and in_header:
            continue
        if line.strip():
            in_header = False
        body_lines.append(line)
    cypher = "\n".join(body_lines).strip()
    for key in ("name", "title"):
        if key not in header:
            raise QueryError(f"{path}: header lacks '// {key}: …'")
    if header["name"] != path.stem:
        raise QueryError(f"{path}: header name '{header['name']}' differs from the file name")
    code = _STRING_LITERAL.sub("''", "\n".join(line for line in cypher.splitlines()
                                                if not line.strip().startswith("//")))
    used = set(_USED_PARAM.findall(code))
    declared = {p.name for p in params if not p.option}
    if used != declared:
        missing, unused = sorted(used - declared), sorted(declared - used)
        raise QueryError(f"{path}: declared parameters differ from the statement's: "
                         + "; ".join(filter(None, [missing and f"used but not declared: {', '.join(missing)}",
                                                   unused and f"declared but not used: {', '.join(unused)}"])))
    mode = header.get("mode", "read")
    if mode not in ("read", "write"):
        raise QueryError(f"{path}: mode must be read or write, not '{mode}'")
    analysis = header.get("analysis", "")
    if analysis:
        from mmkg.analysis import ANALYSES

        if analysis not in ANALYSES:
            raise QueryError(f"{path}: unknown analysis step '{analysis}' (known: {', '.join(sorted(ANALYSES))})")
    elif any(p.option for p in params):
        raise QueryError(f"{path}: declares '// option:' lines but names no '// analysis:' step")
    return NamedQuery(name=header["name"], title=header["title"], description=header.get("description", ""),
                      mode=mode, parameters=tuple(params), cypher=cypher, path=path, analysis=analysis,
                      extra={k: v for k, v in header.items()
                             if k not in ("name", "title", "description", "mode", "analysis")})


@lru_cache(maxsize=1)
def registry() -> dict[str, NamedQuery]:
    """Every named query shipped in this folder, by name."""
    return {q.name: q for q in map(parse_query_file, sorted(QUERY_DIR.glob("*.cypher")))}


def get_query(name: str) -> NamedQuery:
    try:
        return registry()[name]
    except KeyError:
        raise NotFoundError(f"no query named '{name}' (known: {', '.join(sorted(registry()))})") from None
