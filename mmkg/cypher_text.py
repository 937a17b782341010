"""The one Cypher tokenizer of the project: what is text (string literals, quoted names, comments), what is
a function call and what is a `$parameter`.  The dialect shim rewrites calls outside text; the query
registry reads the parameters a statement uses.  (The exploratory-Cypher checker in `mmkg.adhoc` parses
the whole statement with its grammar instead.)"""
from __future__ import annotations

import re

TOKEN = re.compile(r"""
    (?P<skip>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`[^`]*`|//[^\n]*|/\*.*?\*/)  # literals, names, comments
  | (?P<call>(?<![\w.$])(?P<name>[A-Za-z_]\w*)\s*\()                        # a function call
  | \$(?P<parameter>[A-Za-z_]\w*)                                            # a parameter
""", re.VERBOSE | re.DOTALL)


def parameters(cypher: str) -> set[str]:
    """The names of the `$parameters` a statement uses (not those inside literals, quoted names or comments)."""
    return {m.group("parameter") for m in TOKEN.finditer(cypher) if m.group("parameter")}
