"""The named query library: one `.cypher` file per query, described by a comment header.

Header lines start with `//` and come before the statement::

    // name: codings
    // title: Every coding, one row each
    // description: One row per (segment, code, coder) …
    // param: study_id STRING = "" | study ('' = the only study in the store, * = every study)
    // mode: read
    // order: study_id, participant_id, source_id

`param` lines give the name, a type (STRING, INTEGER, FLOAT, BOOLEAN), a JSON default that runs on the
shipped study, and a description after `|`.  The registry refuses a file whose declared parameters differ
from the `$parameters` its statement uses.

A query may name a Python post-processing step of `mmkg.analysis` (co-occurrence metrics, agreement …)::

    // analysis: cooccurrence
    // option: min_count INTEGER = 1 | drop pairs seen on fewer units

`option` lines have the `param` syntax but are not `$parameters` of the statement: they go to the
analysis step; `{metrics}` in a description stands for the registered metrics' names (`mmkg.metrics`), `{units}`
for the co-occurrence units (`mmkg.units`).
`NamedQuery.parameters` lists both kinds — everything a caller can pass — and
`mmkg.Mmkg.query(name, **params)` runs the statement, then the step.

`order` names the leading columns of the statement's `ORDER BY` whose values are compared in natural order
(P2 before P10, A.9 before A.10): Cypher compares text by code point on both stores, so `Mmkg.query`
re-sorts the rows by these columns, stably, keeping the statement's order within equal values.

A query may run another file's statement instead of its own (`// statement: cooccurrence`, no body), so
one statement is written once.  Files marked `// internal: true` (in `internal/`) are the statements the
library itself runs (`mmkg.Mmkg.rows`): linted like every other, but not endpoints, not commands and not
listed.  Folders named in `MMKG_QUERY_PATH` (separated by `os.pathsep`) add a user's own named queries.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from mmkg.cypher_text import parameters as statement_parameters
from mmkg.errors import NotFoundError, QueryError
from mmkg.units import units_help

QUERY_DIR = Path(__file__).parent
INTERNAL_DIR = QUERY_DIR / "internal"
QUERY_PATH_VARIABLE = "MMKG_QUERY_PATH"
PARAM_TYPES = {"STRING": str, "INTEGER": int, "FLOAT": float, "BOOLEAN": bool}
_HEADER = re.compile(r"^//\s*(\w+)\s*:\s*(.*)$")
_PARAM = re.compile(r"^(\w+)\s+(STRING|INTEGER|FLOAT|BOOLEAN)\s*=\s*(.+?)\s*(?:\|\s*(.*))?$")


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
    internal: bool = False  # run by the library itself; not an endpoint, command or listed query
    statement_of: str = ""  # the query whose statement this one runs ('' = its own body)
    natural_order: tuple[str, ...] = ()  # leading ORDER BY columns compared in natural order (`// order:`)

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


def parse_query_file(path: Path, *, with_library: bool = True) -> NamedQuery:
    """Parse one `.cypher` file; raises `QueryError` naming the file on a bad header.  `with_library=False`
    reads the file alone, without importing the library (numpy, pandas): the analysis step's name is not
    checked and `{metrics}` is left as written (what `mmkg queries` lists needs neither)."""
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
                described = (p.group(4) or "").replace("{units}", units_help())
                if with_library and "{metrics}" in described:
                    from mmkg.metrics import metric_names

                    described = described.replace("{metrics}", ", ".join(metric_names()))
                param = Parameter(p.group(1), p.group(2), None, described, option=(key == "option"))
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
    statement_of = header.get("statement", "")
    if statement_of and cypher:
        raise QueryError(f"{path}: has a statement of its own and '// statement: {statement_of}'; keep one")
    if not statement_of:
        check_parameters(path, cypher, params)
    mode = header.get("mode", "read")
    if mode not in ("read", "write"):
        raise QueryError(f"{path}: mode must be read or write, not '{mode}'")
    internal = header.get("internal", "false").lower()
    if internal not in ("true", "false"):
        raise QueryError(f"{path}: internal must be true or false, not '{internal}'")
    analysis = header.get("analysis", "")
    if analysis:
        if with_library:
            from mmkg.analysis import ANALYSES

            if analysis not in ANALYSES:
                raise QueryError(f"{path}: unknown analysis step '{analysis}' "
                                 f"(known: {', '.join(sorted(ANALYSES))})")
    elif any(p.option for p in params):
        raise QueryError(f"{path}: declares '// option:' lines but names no '// analysis:' step")
    order = tuple(column.strip() for column in header.get("order", "").split(",") if column.strip())
    if any(not re.fullmatch(r"\w+", column) for column in order):
        raise QueryError(f"{path}: '// order:' takes result column names separated by commas, not "
                         f"'{header['order']}'")
    known = ("name", "title", "description", "mode", "analysis", "internal", "statement", "order")
    return NamedQuery(name=header["name"], title=header["title"], description=header.get("description", ""),
                      mode=mode, parameters=tuple(params), cypher=cypher, path=path, analysis=analysis,
                      internal=internal == "true", statement_of=statement_of, natural_order=order,
                      extra={k: v for k, v in header.items() if k not in known})


def check_parameters(path: Path, cypher: str, params: list[Parameter] | tuple[Parameter, ...]) -> None:
    """Refuse a statement whose `$parameters` differ from the declared ones."""
    used = statement_parameters(cypher)
    declared = {p.name for p in params if not p.option}
    if used != declared:
        missing, unused = sorted(used - declared), sorted(declared - used)
        raise QueryError(f"{path}: declared parameters differ from the statement's: "
                         + "; ".join(filter(None, [missing and f"used but not declared: {', '.join(missing)}",
                                                   unused and f"declared but not used: {', '.join(unused)}"])))


def query_folders() -> list[Path]:
    """The package's folder, its internal statements, then the folders of `MMKG_QUERY_PATH`."""
    extra = [Path(f).expanduser() for f in os.environ.get(QUERY_PATH_VARIABLE, "").split(os.pathsep) if f.strip()]
    for folder in extra:
        if not folder.is_dir():
            raise QueryError(f"{QUERY_PATH_VARIABLE}: {folder} is not a folder")
    return [QUERY_DIR, INTERNAL_DIR, *extra]


@lru_cache(maxsize=2)
def every_query(with_library: bool = True) -> dict[str, NamedQuery]:
    """Every query file, public and internal, by name; `// statement:` references resolved
    (`with_library`: as in `parse_query_file`)."""
    found: dict[str, NamedQuery] = {}
    for folder in query_folders():
        for path in sorted(folder.glob("*.cypher")):
            query = parse_query_file(path, with_library=with_library)
            if query.name in found:
                raise QueryError(f"{path}: a query named '{query.name}' exists already ({found[query.name].path})")
            if query.internal != (folder == INTERNAL_DIR):
                raise QueryError(f"{path}: '// internal: true' marks the files of {INTERNAL_DIR} and only those")
            found[query.name] = query
    for name, query in found.items():
        if query.statement_of:
            target = found.get(query.statement_of)
            if target is None or target.statement_of:
                raise QueryError(f"{query.path}: '// statement: {query.statement_of}' names no query with a "
                                 "statement of its own")
            check_parameters(query.path, target.cypher, query.parameters)
            found[name] = replace(query, cypher=target.cypher)
    return found


@lru_cache(maxsize=2)
def registry(with_library: bool = True) -> dict[str, NamedQuery]:
    """The named queries (endpoints, commands, the listed library) by name; internal statements excluded
    (`with_library`: as in `parse_query_file`)."""
    return {name: q for name, q in every_query(with_library).items() if not q.internal}


def _reads_nothing_of_the_library(query: NamedQuery) -> bool:
    """Whether `query` parses the same without the library: no analysis step, no `{metrics}` described."""
    return not query.analysis and not any("{metrics}" in p.description for p in query.parameters)


def get_query(name: str) -> NamedQuery:
    """A named query. One without an analysis step comes from the files alone, so running it (e.g. the
    `studies` a load asks for) does not import the analysis library and scipy (~26 MB, ~0.3 s); another
    file's unknown analysis step is then reported when that query is looked up."""
    plain = registry(with_library=False).get(name)
    if plain is not None and _reads_nothing_of_the_library(plain):
        return plain
    try:
        return registry()[name]
    except KeyError:
        raise NotFoundError(f"no query named '{name}' (known: {', '.join(sorted(registry()))})") from None


def get_statement(name: str) -> NamedQuery:
    """A named query or an internal statement (what `mmkg.Mmkg.rows` runs); see `get_query`."""
    plain = every_query(with_library=False).get(name)
    if plain is not None and _reads_nothing_of_the_library(plain):
        return plain
    try:
        return every_query()[name]
    except KeyError:
        raise NotFoundError(f"no query or internal statement named '{name}'") from None
