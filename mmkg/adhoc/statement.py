"""Ad-hoc Cypher, checked by construction: parse with mmkg's read-only grammar (`grammar.lark`), refuse
what is not on the allowlist, print the statement back canonically for one store.

The store never sees the client's text. It sees what `_Printer` writes from the parse tree: every name
back-quoted, every string literal moved into a parameter, numbers re-printed, comments and layout gone,
every operation in parentheses. A corner where some tokenizer reads the client's text differently from the
engine therefore cannot reach the engine: the printed text has no comments, no string literals, no bare
words but mmkg's own keywords and allowlisted function names.

    statement = check_read_statement("MATCH (c:Code) RETURN c.label", {}, dialect="ladybug")
    statement.text        # 'MATCH (`c`:`Code`) RETURN `c`.`label` AS `c.label`'
    statement.parameters  # the client's parameters plus the lifted string literals
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from mmkg.errors import QueryRefusedError

Dialect = Literal["ladybug", "neo4j"]
MAX_DEPTH = 200  # parse-tree levels; deeper statements are refused before printing recurses that far
LITERAL_PARAMETER = "mmkg_literal_"
_PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_INLINE_ARGUMENT = re.compile(r"[A-Za-z0-9_]{1,128}\Z")  # table-function arguments LadybugDB wants as literals

# Pure functions over values and graph elements; none reads or writes files, the network or settings.
COMMON_FUNCTIONS = frozenset("""
count sum avg min max collect stdev stdevp percentiledisc percentilecont
abs ceil floor round sqrt sign exp log log10 e pi sin cos tan asin acos atan atan2 degrees radians rand
lower upper tolower toupper trim ltrim rtrim left right substring replace reverse size length split
coalesce range keys id type labels nodes relationships startnode endnode properties
tostring tointeger tofloat toboolean head last tail
""".split())
LADYBUG_FUNCTIONS = COMMON_FUNCTIONS | frozenset("""
label to_double to_int64 to_int32 to_float string lpad rpad repeat concat contains starts_with ends_with
substr initcap levenshtein regexp_matches regexp_replace regexp_extract regexp_full_match
list_concat list_contains list_sort list_reverse list_distinct list_unique list_sum list_product
list_extract list_element list_position list_has_all array_contains rels is_trail is_acyclic ln log2
""".split())
# LadybugDB spellings the Neo4j printer rewrites (the same pairs as mmkg.store.dialect); label(x) becomes
# labels(x)[0].
NEO4J_RENAMED = {"to_double": "toFloat", "to_float": "toFloat", "to_int64": "toInteger",
                 "to_int32": "toInteger", "string": "toString"}
NEO4J_FUNCTIONS = COMMON_FUNCTIONS | frozenset(NEO4J_RENAMED) | frozenset("""
label tostringornull tointegerornull tofloatornull tobooleanornull elementid isempty
""".split())
# Procedures that only describe the schema.
PROCEDURES: dict[str, frozenset[str]] = {
    "ladybug": frozenset({"show_tables", "table_info", "show_connection"}),
    "neo4j": frozenset({"db.labels", "db.relationshiptypes", "db.propertykeys", "db.schema.visualization",
                        "db.schema.nodetypeproperties", "db.schema.reltypeproperties"}),
}
FUNCTIONS: dict[str, frozenset[str]] = {"ladybug": LADYBUG_FUNCTIONS, "neo4j": NEO4J_FUNCTIONS}
# Words that start a statement mmkg refuses; only used to word the refusal (the grammar decides).
REFUSED_WORDS = {
    "CREATE", "MERGE", "SET", "DELETE", "DETACH", "REMOVE", "DROP", "ALTER", "FOREACH", "COPY", "LOAD",
    "EXPORT", "IMPORT", "ATTACH", "USE", "INSTALL", "UNINSTALL", "UPDATE", "BEGIN", "COMMIT",
    "ROLLBACK", "CHECKPOINT", "SHOW", "TERMINATE", "GRANT", "REVOKE", "DENY", "START", "STOP", "EXPLAIN",
    "PROFILE", "FINISH", "INSERT",
}


@dataclass(frozen=True)
class CheckedStatement:
    """A read statement that passed the grammar and the allowlist, printed for one store."""

    text: str
    parameters: dict[str, Any]

    def with_parameters(self, given: dict[str, Any] | None) -> CheckedStatement:
        """The statement with the client's parameters added to the lifted literals (names checked)."""
        for name in given or {}:
            if not isinstance(name, str) or not _PARAMETER_NAME.match(name) or name.startswith(LITERAL_PARAMETER):
                raise QueryRefusedError(f"parameter name {name!r} is not allowed: use letters, digits and _ "
                                        f"(not starting with {LITERAL_PARAMETER})")
        return CheckedStatement(self.text, {**(given or {}), **self.parameters})


def check_read_statement(cypher: str, parameters: dict[str, Any] | None, *, dialect: Dialect) -> CheckedStatement:
    """Parse `cypher`, refuse anything but a read query of the allowed subset (`QueryRefusedError`, with the
    line and column), and return it printed canonically for `dialect` with its parameters."""
    import lark

    try:
        tree = _parser().parse(cypher)
    except lark.exceptions.UnexpectedInput as exc:
        raise QueryRefusedError(_describe_parse_error(cypher, exc)) from None
    except (RecursionError, MemoryError):
        raise QueryRefusedError("the statement is nested too deeply") from None
    printer = _Printer(cypher, dialect)
    try:
        text = printer.statement(tree)
    except RecursionError:
        raise QueryRefusedError("the statement is nested too deeply") from None
    return CheckedStatement(text=text, parameters=dict(printer.literals)).with_parameters(parameters)


_parser_instance = None


def _parser():
    """The LALR parser of `grammar.lark`, built on first use (about a second) or loaded by `load_parser`."""
    global _parser_instance
    if _parser_instance is None:
        import lark

        grammar = resources.files("mmkg.adhoc").joinpath("grammar.lark").read_text(encoding="utf-8")
        _parser_instance = lark.Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True,
                                     maybe_placeholders=True)
    return _parser_instance


def parser_bytes() -> bytes:
    """The built parser, serialized for `load_parser` in a worker (loading takes a fifth of building)."""
    import io

    buffer = io.BytesIO()
    _parser().save(buffer)
    return buffer.getvalue()


def load_parser(data: bytes) -> None:
    """Use a parser serialized by `parser_bytes` (from the server process, which built it)."""
    import io

    import lark

    global _parser_instance
    _parser_instance = lark.Lark.load(io.BytesIO(data))


def _describe_parse_error(cypher: str, exc) -> str:
    import lark

    where = f"line {exc.line}, column {exc.column}"
    token = getattr(exc, "token", None)
    word = str(token) if token is not None else cypher[exc.pos_in_stream:exc.pos_in_stream + 20].split(" ")[0]
    upper = word.upper()
    if upper in REFUSED_WORDS or (upper == "CALL" and "=" in cypher):
        return (f"{where}: {upper} is not allowed in ad-hoc Cypher; only read queries "
                "(MATCH, OPTIONAL MATCH, WITH, UNWIND, CALL of a schema procedure, RETURN) run here")
    if isinstance(exc, lark.exceptions.UnexpectedEOF) or (token is not None and token.type == "$END"):
        return f"{where}: the statement ends early; it must end with RETURN …"
    if isinstance(exc, lark.exceptions.UnexpectedCharacters):
        return f"{where}: unexpected character {cypher[exc.pos_in_stream]!r} (outside the allowed Cypher subset)"
    return f"{where}: unexpected {word[:40]!r} (outside the allowed read-only Cypher subset)"


def _quote(name: str) -> str:
    return f"`{name}`"


class _Printer:
    """Prints a parse tree of `grammar.lark` as canonical Cypher for one dialect, checking the allowlist."""

    def __init__(self, source: str, dialect: Dialect):
        self.source, self.dialect = source, dialect
        self.literals: dict[str, str] = {}
        self.depth = 0

    # --- helpers -------------------------------------------------------------------------------------
    def __call__(self, node) -> str:
        if node is None:
            return ""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QueryRefusedError(f"the statement is nested more than {MAX_DEPTH} levels deep")
        try:
            return getattr(self, "_" + node.data)(node)
        finally:
            self.depth -= 1

    @staticmethod
    def parts(node) -> list:
        """Children that are rules or meaningful tokens (keywords dropped; None placeholders kept)."""
        from lark import Token

        return [c for c in node.children if not (isinstance(c, Token) and c.type.isupper() and c.type not in (
            "INTEGER", "FLOAT", "STRING", "IDENTIFIER", "QUOTED_NAME"))]

    def name(self, node) -> str:
        token = node.children[0]
        text = str(token)[1:-1] if token.type == "QUOTED_NAME" else str(token)
        return text

    def quoted(self, node) -> str:
        return _quote(self.name(node))

    def refuse(self, node, message: str):
        meta = getattr(node, "meta", None)
        where = f"line {meta.line}, column {meta.column}: " if meta is not None and not meta.empty else ""
        raise QueryRefusedError(where + message)

    # --- statement and clauses -----------------------------------------------------------------------
    def statement(self, tree) -> str:
        out = []
        for child in tree.children:
            if child is None:
                continue
            out.append(self(child))
        return " ".join(out)

    def _union(self, node) -> str:
        return "UNION ALL" if any(str(c).upper() == "ALL" for c in node.children if c is not None) else "UNION"

    def _query(self, node) -> str:
        return " ".join(self(c) for c in node.children)

    def _match_clause(self, node) -> str:
        keyword = "OPTIONAL MATCH" if _pick(node, "optional").children else "MATCH"
        return " ".join(p for p in (keyword, self(_pick(node, "pattern_list")), self(_pick(node, "where"))) if p)

    def _where(self, node) -> str:
        return "WHERE " + self(node.children[-1])

    def _unwind_clause(self, node) -> str:
        _, expr, _, name = node.children
        return f"UNWIND {self(expr)} AS {self.quoted(name)}"

    def _with_clause(self, node) -> str:
        projection = self._projection(_pick(node, "projection"), final=False)
        return " ".join(p for p in ("WITH", projection, self(_pick(node, "where"))) if p)

    def _return_clause(self, node) -> str:
        return "RETURN " + self._projection(node.children[-1], final=True)

    def _call_clause(self, node) -> str:
        procedure, arguments, yields = (_pick(node, n) for n in ("procedure_name", "arguments", "yield_items"))
        name = ".".join(self.name(n) for n in procedure.children).lower()
        if name not in PROCEDURES[self.dialect]:
            self.refuse(procedure, f"procedure {name!r} is not allowed in ad-hoc Cypher (allowed: "
                                   f"{', '.join(sorted(PROCEDURES[self.dialect]))})")
        printed_arguments = []
        for argument in (arguments.children if arguments is not None else []):
            if argument.data != "string" or not _INLINE_ARGUMENT.match(_string_value(argument.children[0])):
                self.refuse(argument, f"{name} takes table names only (letters, digits and _ in quotes)")
            printed_arguments.append("'" + _string_value(argument.children[0]) + "'")
        text = f"CALL {name}({', '.join(printed_arguments)})"
        return text + (" " + self(yields) if yields is not None else "")

    def _yield_items(self, node) -> str:
        items = [c for c in self.parts(node) if c.data == "yield_item"]
        where = [c for c in self.parts(node) if c.data == "where"]
        return "YIELD " + ", ".join(self(i) for i in items) + ("" if not where else " " + self(where[0]))

    def _yield_item(self, node) -> str:
        names = [c for c in self.parts(node)]
        return self.quoted(names[0]) + (f" AS {self.quoted(names[1])}" if len(names) > 1 else "")

    def _projection(self, node, *, final: bool) -> str:
        distinct, items, order, skip, limit = _padded(node.children, 5, optional_from=2)
        out = ("DISTINCT " if distinct.children else "") + self._projection_items(items, final)
        for part in (order, skip, limit):
            if part is not None:
                out += " " + self(part)
        return out

    def _projection_items(self, node, final: bool) -> str:
        printed = []
        for item in node.children:
            if item.data == "star":
                printed.append("*")
                continue
            expr, alias = item.children[0], (item.children[-1] if len(item.children) > 1 else None)
            if alias is not None and not (hasattr(alias, "data") and alias.data == "name"):
                alias = None
            text = self(expr)
            if alias is not None:
                text += f" AS {self.quoted(alias)}"
            elif final:  # name the column as the client wrote it, as Neo4j does
                text += f" AS {_quote(self._source_text(expr))}"
            elif expr.data != "variable":
                self.refuse(expr, "an expression in WITH needs an alias (WITH … AS name)")
            printed.append(text)
        return ", ".join(printed)

    def _source_text(self, node) -> str:
        meta = node.meta
        text = self.source[meta.start_pos:meta.end_pos] if not meta.empty else "expr"
        text = "".join(c if c.isprintable() and c != "`" else " " for c in text)
        return " ".join(text.split())[:200] or "expr"

    def _order_by(self, node) -> str:
        return "ORDER BY " + ", ".join(self(c) for c in self.parts(node))

    def _sort_item(self, node) -> str:
        expr, direction = _padded(node.children, 2, optional_from=1)
        if direction is None:
            return self(expr)
        word = str(direction.children[0]).upper()
        return self(expr) + (" DESC" if word.startswith("DESC") else " ASC")

    def _skip(self, node) -> str:
        return "SKIP " + self(node.children[-1])

    def _limit(self, node) -> str:
        return "LIMIT " + self(node.children[-1])

    # --- patterns ------------------------------------------------------------------------------------
    def _pattern_list(self, node) -> str:
        return ", ".join(self(c) for c in node.children)

    def _pattern_part(self, node) -> str:
        children = list(node.children)
        prefix = ""
        if children and children[0].data == "name":
            prefix = self.quoted(children.pop(0)) + " = "
        return prefix + "".join(self(c) for c in children)

    def _node_pattern(self, node) -> str:
        name, labels, properties = node.children
        inner = (self.quoted(name) if name is not None else "") + self(labels)
        if properties is not None:
            inner += (" " if inner else "") + self(properties)
        return f"({inner})"

    def _label_expression(self, node) -> str:
        return ":" + "|".join(self.quoted(n) for n in node.children if n is not None)

    def _properties(self, node) -> str:
        return self(node.children[0])

    def _relationship_pattern(self, node) -> str:
        children = [c for c in node.children]
        left = any(getattr(c, "data", None) == "left_arrow" for c in children)
        right = any(getattr(c, "data", None) == "right_arrow" for c in children)
        if left and right:
            self.refuse(node, "a relationship pattern cannot point both ways (<-[]->)")
        detail = next((c for c in children if getattr(c, "data", None) == "relationship_detail"), None)
        middle = self(detail) if detail is not None else ""
        return ("<-" if left else "-") + middle + ("->" if right else "-")

    def _relationship_detail(self, node) -> str:
        name, types, length, properties = node.children
        inner = (self.quoted(name) if name is not None else "") + self(types) + self(length)
        if properties is not None:
            inner += " " + self(properties)
        return f"[{inner}]"

    def _relationship_types(self, node) -> str:
        return ":" + "|".join(self.quoted(n) for n in node.children if n is not None)

    def _length_range(self, node) -> str:
        low, dots, high = node.children
        text = "*"
        if low is not None:
            text += str(int(low))
        if dots is not None:
            text += ".." + (str(int(high)) if high is not None else "")
        return text

    # --- expressions ---------------------------------------------------------------------------------
    def _binary(self, node, operator: str) -> str:
        left, right = (c for c in node.children if not _is_keyword(c))
        return f"({self(left)} {operator} {self(right)})"

    def _or_op(self, node) -> str:
        return self._binary(node, "OR")

    def _xor_op(self, node) -> str:
        return self._binary(node, "XOR")

    def _and_op(self, node) -> str:
        return self._binary(node, "AND")

    def _not_op(self, node) -> str:
        return f"(NOT {self(node.children[-1])})"

    def _compare(self, node) -> str:
        operands = node.children[0::2]
        operators = ["<>" if str(o.children[0]) == "!=" else str(o.children[0]) for o in node.children[1::2]]
        printed = [self(o) for o in operands]
        pairs = [f"({printed[i]} {op} {printed[i + 1]})" for i, op in enumerate(operators)]
        return pairs[0] if len(pairs) == 1 else "(" + " AND ".join(pairs) + ")"

    def _arithmetic(self, node) -> str:
        if len(node.children) == 2:  # power: left ^ right
            left, right = node.children
            return f"({self(left)} ^ {self(right)})"
        left, operator, right = node.children
        return f"({self(left)} {operator.children[0]} {self(right)})"

    def _signed(self, node) -> str:
        sign, value = node.children
        return f"(-{self(value)})" if str(sign.children[0]) == "-" else self(value)

    def _predicate(self, node, operator: str) -> str:
        return self._binary(node, operator)

    def _starts_with(self, node) -> str:
        return self._binary(node, "STARTS WITH")

    def _ends_with(self, node) -> str:
        return self._binary(node, "ENDS WITH")

    def _contains(self, node) -> str:
        return self._binary(node, "CONTAINS")

    def _in_list(self, node) -> str:
        return self._binary(node, "IN")

    def _regex_match(self, node) -> str:
        return self._binary(node, "=~")

    def _is_null(self, node) -> str:
        return f"({self(node.children[0])} IS NULL)"

    def _is_not_null(self, node) -> str:
        return f"({self(node.children[0])} IS NOT NULL)"

    def _property(self, node) -> str:
        value, name = node.children
        return f"{self(value)}.{self.quoted(name)}"

    def _index(self, node) -> str:
        value, index = node.children
        return f"{self(value)}[{self(index)}]"

    def _slice(self, node) -> str:
        value, low, _, high = node.children
        return f"{self(value)}[{self(low)}..{self(high)}]"

    def _variable(self, node) -> str:
        return self.quoted(node.children[0])

    def _parenthesized(self, node) -> str:
        return f"({self(node.children[0])})"

    def _subquery(self, node) -> str:
        parts = [c for c in node.children if not _is_keyword(c) and c is not None]
        return "MATCH " + " ".join(self(p) for p in parts)

    def _exists_subquery(self, node) -> str:
        return "EXISTS { " + self(node.children[-1]) + " }"

    def _count_subquery(self, node) -> str:
        return "COUNT { " + self(node.children[-1]) + " }"

    def _function_call(self, node) -> str:
        name_node, distinct, arguments = node.children
        name = self.name(name_node).lower()
        if name not in FUNCTIONS[self.dialect]:
            self.refuse(name_node, f"function {name!r} is not allowed in ad-hoc Cypher "
                                   "(the allowed functions are listed in docs/security.md)")
        star = arguments is not None and arguments.children and getattr(arguments.children[0], "data", "") == "star"
        if star:
            if name != "count":
                self.refuse(name_node, f"{name}(*) is not a function; only count(*) takes *")
            return "count(*)"
        printed = [self(a) for a in (arguments.children if arguments is not None else [])]
        prefix = "DISTINCT " if distinct.children else ""
        if self.dialect == "neo4j":
            if name == "label":
                return f"labels({', '.join(printed)})[0]"
            name = NEO4J_RENAMED.get(name, name)
        return f"{name}({prefix}{', '.join(printed)})"

    def _arguments(self, node) -> str:
        return ", ".join(self(c) for c in node.children)

    def _case_expression(self, node) -> str:
        subject, *rest = [c for c in node.children if not _is_keyword(c)]
        alternatives = [c for c in rest if c is not None and c.data == "case_alternative"]
        default = next((c for c in rest if c is not None and c.data != "case_alternative"), None)
        text = "CASE" + (f" {self(subject)}" if subject is not None else "")
        for alternative in alternatives:
            when, then = [c for c in alternative.children if not _is_keyword(c)]
            text += f" WHEN {self(when)} THEN {self(then)}"
        if default is not None:
            text += f" ELSE {self(default)}"
        return text + " END"

    def _list_literal(self, node) -> str:
        arguments = node.children[0]
        if arguments is not None and arguments.children and getattr(arguments.children[0], "data", "") == "star":
            self.refuse(node, "* is not a list element")
        return "[" + (self(arguments) if arguments is not None else "") + "]"

    def _map_literal(self, node) -> str:
        return "{" + ", ".join(self(c) for c in node.children if c is not None) + "}"

    def _map_entry(self, node) -> str:
        name, value = node.children
        return f"{self.quoted(name)}: {self(value)}"

    def _parameter(self, node) -> str:
        target = node.children[0]
        name = str(target) if not hasattr(target, "data") else self.name(target)
        if not _PARAMETER_NAME.match(name) or name.startswith(LITERAL_PARAMETER):
            self.refuse(node, f"parameter ${name} is not allowed: parameter names are letters, digits and _")
        return f"${name}"

    def _integer(self, node) -> str:
        return str(int(node.children[0]))

    def _float(self, node) -> str:
        value = float(node.children[0])
        if not math.isfinite(value):
            self.refuse(node, f"number {str(node.children[0])[:40]} is out of range")
        return repr(value)

    def _string(self, node) -> str:
        name = f"{LITERAL_PARAMETER}{len(self.literals)}"
        self.literals[name] = _string_value(node.children[0])
        return f"${name}"

    def _true(self, node) -> str:
        return "TRUE"

    def _false(self, node) -> str:
        return "FALSE"

    def _null(self, node) -> str:
        return "NULL"

    def _name(self, node) -> str:
        return self.quoted(node)


def _is_keyword(child) -> bool:
    from lark import Token

    return isinstance(child, Token) and child.type not in ("INTEGER", "FLOAT", "STRING", "IDENTIFIER", "QUOTED_NAME")


def _pick(node, rule: str):
    """The child rule called `rule`, or None."""
    return next((c for c in node.children if getattr(c, "data", None) == rule), None)


def _padded(children: list, size: int, optional_from: int) -> list:
    """`children` as `size` slots: optional trailing parts (order, skip, limit …) matched by rule name."""
    fixed = list(children[:optional_from])
    rest = [c for c in children[optional_from:] if c is not None]
    return fixed + _slot(rest, size - optional_from)


def _slot(rest: list, count: int) -> list:
    order = ["order_by", "skip", "limit"] if count == 3 else ["direction"]
    by_name = {getattr(c, "data", None): c for c in rest}
    return [by_name.get(name) for name in order]


_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "0": "\0"}


def _string_value(token) -> str:
    """The value of a Cypher string literal (quotes removed, backslash escapes decoded)."""
    body = str(token)[1:-1]
    out: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char != "\\":
            out.append(char)
            index += 1
            continue
        escape = body[index + 1]
        if escape in "uU":
            width = 4 if escape == "u" else 8
            digits = body[index + 2:index + 2 + width]
            if len(digits) == width and all(c in "0123456789abcdefABCDEF" for c in digits):
                code = int(digits, 16)
                if code <= 0x10FFFF:
                    out.append(chr(code))
                    index += 2 + width
                    continue
            raise QueryRefusedError(f"invalid \\{escape} escape in string literal {str(token)[:40]}")
        out.append(_ESCAPES.get(escape, "\\" + escape))
        index += 2
    return "".join(out)
