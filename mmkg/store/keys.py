"""The integer-key fetches of the co-occurrence unit table (`mmkg.analysis.fetch_unit_table`).

They return node keys (LadybugDB's node offsets; `mmkg.store.dialect` rewrites them to Neo4j's ids), since
turning a million uid strings into Python objects cost most of a co-occurrence query; only the codes (a few
hundred) are named by uid.  The codings are those of queries/cooccurrence.cypher, with the filters written for
the parameters given: the generic `($study_id = '' OR …)` form costs the store several times the match itself,
per row.  The study is matched on the few codes and sources rather than on every segment, and the analysis
codings are chosen by a CASE on the returned value, not in the WHERE: LadybugDB filters a million rows on a
segment's or a coding's property at about twice the cost of returning that property (issue 18).  They live in
the store package because their keys are the store's own.

`passage_statements` are the fetches of one study's analysis codings by the passages the load stored
(`mmkg.schema.PASSAGE_COLUMNS`): the codings come with their passage instead of their segment, and only the
segments of passages whose selections do not all overlap are read with their positions.
`carried_statements` read, for the source and participant units, the codes each source carries
(`mmkg.schema.CARRIED_COLUMN`): one row per source and code instead of one per coding, and for the segment
unit also the code pairs the passages share (`mmkg.schema.PAIR_COLUMNS`): one row per pair of codes.

Each fetch has a second, Neo4j form (`KeyFetch.neo4j_form`) with the same rows: Bolt sends a million one-row
records slowly and the Python driver turns each into objects, so on Neo4j the rows come back as a single record
of one list per column, which the driver's Rust extension unpacks in one go (10^5 codings: co-occurrence 18.9 s
-> 2.3 s).  `Neo4jStore.execute` runs that form, in a read transaction, in place of the row form it is given.
"""
from __future__ import annotations

from dataclasses import dataclass

from mmkg.store.dialect import to_neo4j


@dataclass(frozen=True)
class KeyFetch:
    """One fetch: a MATCH … WHERE part, the returned (expression, name) columns and an optional ORDER BY."""

    match: str
    columns: tuple[tuple[str, str], ...]
    order: str = ""
    packed: bool = False  # one integer column of packed keys, never null (`split_keys`)

    def rows_form(self) -> str:
        """One row per match (what LadybugDB runs; Arrow results make that fast there)."""
        order = f"\nORDER BY {self.order}" if self.order else ""
        return f"{self.match}\nRETURN {self._projection()}{order}"

    def neo4j_form(self) -> str:
        """The same rows as one record with one list per column (named as the columns), in Neo4j's dialect:
        the rows are collected as row lists (which keeps nulls, where `collect` of a value drops them, and
        the order of the ordered WITH), then split into columns."""
        order = f" ORDER BY {self.order}" if self.order else ""
        names = [name for _, name in self.columns]
        split = ", ".join(f"[row IN rows | row[{i}]] AS {name}" for i, name in enumerate(names))
        return to_neo4j(f"{self.match}\nWITH {self._projection()}{order}\nWITH collect([{', '.join(names)}]) AS rows"
                        f"\nRETURN {split}")

    def names(self) -> list[str]:
        """The column names, unquoted."""
        return [name.strip("`") for _, name in self.columns]

    def _projection(self) -> str:
        return ", ".join(f"{expression} AS {name}" for expression, name in self.columns)


def _match(pattern: str, where: str) -> str:
    return f"{pattern} {where}".rstrip()


def _coding_keys(where: str, analysis: bool) -> KeyFetch:
    """One integer per coding, its segment's key times `$width` plus its code's key (`split_keys`): the
    store hands a million rows to pandas at a cost per column, and the analysis flag, a third column, cost
    as much as the two keys.  With `analysis`, codings that are not analysis codings come back as -1."""
    packed = "offset(id(g)) * $width + offset(id(k))"
    return KeyFetch(_match("MATCH (g:Segment)-[c:CODED_AS]->(k:Code)", where),
                    ((f"CASE WHEN c.analysis THEN {packed} ELSE -1 END" if analysis else packed, "coding"),),
                    packed=True)


def key_width(keys) -> int:
    """The `$width` that packs keys below it beside another key: a power of two above every one of `keys`
    (codes for the codings fetch, sources for the segments fetch).  The stores refuse an overflowing product."""
    return 1 << int(max(keys, default=0)).bit_length()


def split_keys(packed, width: int):
    """(high key, low key) of a packed fetch's integers (a numpy int64 array, none negative)."""
    return packed >> (width.bit_length() - 1), packed & (width - 1)


def _code_keys(where: str) -> KeyFetch:
    return KeyFetch(_match("MATCH (k:Code)", where), (("offset(id(k))", "code"), ("k.uid", "code_uid")))


def _segment_keys(where: str) -> KeyFetch:
    """Each segment's key times `$width` plus its source's key, packed as the codings are; -1 for a segment
    whose source's key is not below `$width` (the width covers the sources fetched, those with a participant:
    such a segment has no source among them)."""
    return KeyFetch(_match("MATCH (src:Source)-[:HAS_SEGMENT]->(g:Segment)", where),
                    (("CASE WHEN offset(id(src)) < $width THEN offset(id(g)) * $width + offset(id(src)) ELSE -1 END",
                      "segment_source"),), packed=True)


def _segment_ranges(where: str) -> KeyFetch:
    """Text and media ranges from a scan of the segments themselves (read along the source join they cost
    more)."""
    return KeyFetch(_match("MATCH (g:Segment)", where),
                    (("offset(id(g))", "segment"), ("g.start_pos", "start"), ("g.end_pos", "`end`")))


def _segment_regions(where: str) -> KeyFetch:
    """Picture and PDF regions: only the segments with an x (a region needs all four values).  Most studies
    have none, and the store skips a column without values almost for free, where returning four empty
    columns for every segment cost as much as the ranges."""
    condition = f"{where} AND g.x IS NOT NULL" if where else "WHERE g.x IS NOT NULL"
    return KeyFetch(_match("MATCH (g:Segment)", condition),
                    (("offset(id(g))", "segment"), ("g.x", "x"), ("g.y", "y"), ("g.width", "width"),
                     ("g.height", "height")))


def _source_keys(where: str) -> KeyFetch:
    return KeyFetch(_match("MATCH (p:Participant)-[:HAS_SOURCE]->(src:Source)", where),
                    (("p.study_id", "study_id"), ("p.uid", "participant"), ("offset(id(src))", "source"),
                     ("src.kind", "kind"), ("src.first_passage", "first_passage"),
                     ("src.analysis_codings", "analysis_codings"), ("src.passages", "passages")),
                    order="study_id, p.id, src.id")


def _carried_codes(where: str) -> KeyFetch:
    """The codes each source carries among the analysis codings (CARRIES, stored at load), with the number of
    the source's passages that carry them (`mmkg.schema.PAIR_COLUMNS`): a few rows per source, so plain
    columns."""
    return KeyFetch(_match("MATCH (src:Source)-[r:CARRIES]->(k:Code)", where),
                    (("offset(id(src))", "source"), ("offset(id(k))", "code"), ("r.passages", "passages")))


def _code_pairs(where: str) -> KeyFetch:
    """The code pairs the study's passages share (COOCCURS_WITH, stored at load), with their number."""
    return KeyFetch(_match("MATCH (a:Code)-[r:COOCCURS_WITH]->(b:Code)", where),
                    (("offset(id(a))", "a"), ("offset(id(b))", "b"), ("r.passages", "passages")))


def _passage_codings(where: str) -> KeyFetch:
    """The analysis codings by their stored passages (`mmkg.schema.PASSAGE_COLUMNS`), one integer each: the
    passage times `$width` plus the code's key for a passage whose selections all overlap; -2 minus the
    segment's key times `$width` plus the code's key for one whose do not (their positions decide); -1 for a
    coding that is not an analysis coding."""
    return KeyFetch(_match("MATCH (g:Segment)-[c:CODED_AS]->(k:Code)", where),
                    (("CASE WHEN c.passage >= 0 THEN c.passage * $width + offset(id(k)) WHEN c.passage = -1 "
                      "THEN -2 - (offset(id(g)) * $width + offset(id(k))) ELSE -1 END", "coding"),), packed=True)


def _loose_segments(study: str) -> KeyFetch:
    """The segments of the passages whose selections do not all overlap, with their passage and range."""
    return KeyFetch(f"MATCH (g:Segment) WHERE g.study_id = {study} AND g.loose_passage IS NOT NULL",
                    (("offset(id(g))", "segment"), ("g.loose_passage", "passage"), ("g.start_pos", "start"),
                     ("g.end_pos", "`end`")))


def _loose_regions(study: str) -> KeyFetch:
    """Their picture and PDF regions (as `_segment_regions`: the store skips the segments without an x almost
    for free when that test comes before the study's)."""
    return KeyFetch(f"MATCH (g:Segment) WHERE g.loose_passage IS NOT NULL AND g.x IS NOT NULL AND g.study_id = {study}",
                    (("offset(id(g))", "segment"), ("g.x", "x"), ("g.y", "y"), ("g.width", "width"),
                     ("g.height", "height")))


def _fetches(study_id: str, coders: list[str], positions: bool, width: int = 1) -> list[tuple[KeyFetch, dict]]:
    one_study = study_id not in ("", "*")  # '*' (or ''): every study
    one = {"study_id": study_id} if one_study else {}

    def where(variable: str) -> str:
        return f"WHERE {variable}.study_id = $study_id" if one_study else ""
    coding_filter = " AND ".join((["k.study_id = $study_id"] if one_study else [])
                                 + (["c.coder IN $coders"] if coders else []))
    return [(_code_keys(where("k")), one),
            (_coding_keys(f"WHERE {coding_filter}" if coding_filter else "", analysis=not coders),
             {**one, **({"coders": coders} if coders else {}), "width": width}),
            (_source_keys(where("p")), one),
            (_segment_keys(where("src")), {**one, "width": width})] + \
        ([(_segment_regions(where("g")), one), (_segment_ranges(where("g")), one)] if positions else [])


def _passage_fetches(study_id: str, regions: bool) -> list[tuple[KeyFetch, dict]]:
    one = {"study_id": study_id}
    return [(_code_keys("WHERE k.study_id = $study_id"), one),
            (_passage_codings("WHERE k.study_id = $study_id"), {**one, "width": 1}),
            (_source_keys("WHERE p.study_id = $study_id"), one),
            (_loose_segments("$study_id"), one)] + ([(_loose_regions("$study_id"), one)] if regions else [])


def _carried_fetches(study_id: str, pairs: bool) -> list[tuple[KeyFetch, dict]]:
    one = {"study_id": study_id}
    return [(_code_keys("WHERE k.study_id = $study_id"), one),
            (_carried_codes("WHERE k.study_id = $study_id"), one),
            (_source_keys("WHERE p.study_id = $study_id"), one)] + \
        ([(_code_pairs("WHERE a.study_id = $study_id"), one)] if pairs else [])


def carried_statements(study_id: str, pairs: bool = False) -> list[tuple[str, dict]]:
    """The statements of one study's unit table from the codes its sources carry (the analysis codings at
    proximity 0): code keys, carried codes (with the passages that carry them), sources (with their
    `analysis_codings` and `passages`) and, with `pairs` (the segment unit), the code pairs its passages
    share."""
    return [(fetch.rows_form(), params) for fetch, params in _carried_fetches(study_id, pairs)]


def passage_statements(study_id: str, regions: bool = True) -> list[tuple[str, dict]]:
    """The statements of one study's unit table from its stored passages (the analysis codings at proximity 0):
    code keys, codings (packed; `width` as for `unit_statements`), sources (with their `first_passage`), the
    segments of the passages whose selections do not all overlap with their ranges and, with `regions` (the
    segment unit), their regions."""
    return [(fetch.rows_form(), params) for fetch, params in _passage_fetches(study_id, regions)]


def unit_statements(study_id: str, coders: list[str], positions: bool, width: int = 1) -> list[tuple[str, dict]]:
    """The statements (with their parameters) of one unit table: code keys, codings, sources, segments and,
    with `positions` (the segment units), the segments' regions and ranges.  The codings and the segments
    come packed (`split_keys`); `width` is the caller's to set per statement (`key_width` of the code keys,
    of the source keys).  `coders`: the coders whose codings count ([] = the analysis codings,
    chosen in the store).  benchmarks/ time the store's part of them."""
    return [(fetch.rows_form(), params) for fetch, params in _fetches(study_id, coders, positions, width)]


def _every_fetch() -> list[KeyFetch]:
    return [fetch for study in ("*", "s") for coders in ([], ["c"]) for positions in (False, True)
            for fetch, _ in _fetches(study, coders, positions)] + \
        [fetch for fetch, _ in _passage_fetches("s", True) + _carried_fetches("s", pairs=True)]


_NEO4J_FORMS = {fetch.rows_form(): (fetch.neo4j_form(), fetch.names()) for fetch in _every_fetch()}
_PACKED = frozenset(fetch.rows_form() for fetch in _every_fetch() if fetch.packed)


def is_packed(statement: str) -> bool:
    """Whether a statement `unit_statements` (or its kin) returned is a fetch of one packed integer column: the
    embedded store hands those over through Arrow (a million integers in about two thirds of the time)."""
    return statement in _PACKED


def neo4j_form(statement: str) -> tuple[str, list[str]] | None:
    """The Neo4j form of a statement `unit_statements` returned (one record, one list per column) and its
    column names; None for any other statement."""
    return _NEO4J_FORMS.get(statement)


def statements() -> list[str]:
    """Every statement `unit_statements` can return (for the Cypher linter tests)."""
    return sorted(_NEO4J_FORMS)


def neo4j_statements() -> list[str]:
    """Every Neo4j form (for the Cypher linter tests; already in Neo4j's dialect)."""
    return sorted({text for text, _ in _NEO4J_FORMS.values()})
