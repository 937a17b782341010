"""The one dialect shim between LadybugDB's Cypher and Neo4j's.

The files in `queries/` are written in the subset both stores run unchanged.  Where LadybugDB has no
spelling Neo4j also accepts, a query uses LadybugDB's and `to_neo4j()` rewrites it before Neo4j sees it.
The differences handled (each has a test on the embedded side in tests/test_dialect.py):

1. `label(n)` — LadybugDB returns a node's or relationship's one label as a string (its `labels(n)`
   returns the same string, not a list); Neo4j has only `labels(n)`, a list.  Rewritten to `labels(n)[0]`.
2. `to_double(x)` — LadybugDB has no `toFloat`; Neo4j has no `to_double`.  Rewritten to `toFloat(x)`.
   (`x * 1.0` works on both and needs no shim.)
3. `to_int64(x)` — LadybugDB's result typing: `sum()` over integers is an INT128 that reaches pandas
   as float64, so a query that must return an integer count writes `to_int64(sum(x))`; Neo4j's `sum()`
   is already an integer and its cast is `toInteger`.  Rewritten to `toInteger(x)`.  Use it on integral
   values only: LadybugDB rounds 3.7 to 4 where Neo4j truncates to 3.
4. `string(x)` — LadybugDB has no `toString`; Neo4j has no `string()`.  Rewritten to `toString(x)`.
5. `list_sort(v)` — `collect()` gathers in whatever order the rows come, which differs between two loads
   of the same study and between the stores; a query that returns a list sorts it with LadybugDB's
   `list_sort`.  Neo4j has no list sort function (without APOC): rewritten to the COLLECT subquery
   `COLLECT { UNWIND v AS _mmkg_item RETURN _mmkg_item ORDER BY _mmkg_item }`.  The argument must be a
   variable (e.g. `WITH collect(x) AS xs … RETURN list_sort(xs)`): inside the subquery an aggregate would
   aggregate something else.  Strings sort by code point on both stores (they differ only between
   characters above U+FFFF and those in U+E000–U+FFFF).
6. `offset(id(n))` — an integer key of a node, unique within its label and stable while a version is open: in
   LadybugDB the node's offset in its table (`id(n)` is a table-and-offset pair there); Neo4j has no `offset`
   and its `id(n)` is already an integer.  Rewritten to `id(n)`.  The analysis steps fetch these instead of
   uid strings; never store or show them.

Not shimmed, so queries avoid them (both stores differ and no rewrite is safe): list indexing (`list[1]`
is the first element in LadybugDB, the second in Neo4j — use `min`/`max`/`collect` or `UNWIND`),
`substring` (1-based in LadybugDB), `head`/`last`/`split`/`reduce`/list comprehensions/`CALL { }`
(absent from LadybugDB), and `'text' + null` (a LadybugDB type error).  String literals, quoted
names and comments are never rewritten.
"""
from __future__ import annotations

import re

from mmkg.cypher_text import TOKEN as _TOKEN
from mmkg.errors import QueryError

# LadybugDB function name (lower case) -> Neo4j function name.
RENAMED_FUNCTIONS = {"to_double": "toFloat", "to_int64": "toInteger", "string": "toString"}
# LadybugDB function -> Neo4j expression template around the argument text.
WRAPPED_FUNCTIONS = {"label": "labels({arg})[0]", "offset": "{arg}",
                     "list_sort": "COLLECT {{ UNWIND {arg} AS _mmkg_item RETURN _mmkg_item ORDER BY _mmkg_item }}"}
# Wrapped functions whose argument must be a plain variable name.
VARIABLE_ARGUMENT = {"list_sort"}
_VARIABLE = re.compile(r"\s*[A-Za-z_]\w*\s*")



def to_neo4j(cypher: str) -> str:
    """`cypher` with LadybugDB-only functions replaced by Neo4j's (unchanged when there are none)."""
    out: list[str] = []
    position = 0
    for match in _TOKEN.finditer(cypher):
        if match.start() < position:  # inside an argument already rewritten
            continue
        out.append(cypher[position:match.start()])
        position = match.end()
        if match.group("skip") or match.group("parameter"):
            out.append(match.group(0))
            continue
        name = match.group("name")
        key = name.lower()
        if key in RENAMED_FUNCTIONS:
            out.append(RENAMED_FUNCTIONS[key] + "(")
        elif key in WRAPPED_FUNCTIONS:
            end = _closing_paren(cypher, match.end())
            argument = to_neo4j(cypher[match.end():end])
            if key in VARIABLE_ARGUMENT and not _VARIABLE.fullmatch(argument):
                raise QueryError(f"{name}() takes a variable in mmkg's queries (e.g. WITH collect(x) AS xs … "
                                 f"{name}(xs)), not '{argument.strip()}'")
            argument = argument.strip() if key in VARIABLE_ARGUMENT else argument
            out.append(WRAPPED_FUNCTIONS[key].format(arg=argument))
            position = end + 1
        else:
            out.append(match.group("call"))
    out.append(cypher[position:])
    return "".join(out)


def _closing_paren(text: str, start: int) -> int:
    """Index of the `)` that closes the call whose argument list starts at `start`."""
    depth = 1
    index = start
    while index < len(text):
        skipped = _TOKEN.match(text, index)
        if skipped and skipped.group("skip"):
            index = skipped.end()
            continue
        char = text[index]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    raise QueryError(f"unbalanced parentheses in the query: {text[:200]!r}")
