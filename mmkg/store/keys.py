"""The integer-key fetches of the co-occurrence unit table (`mmkg.analysis.fetch_unit_table`).

They return node keys (LadybugDB's node offsets; `mmkg.store.dialect` rewrites them to Neo4j's ids), since
turning a million uid strings into Python objects cost most of a co-occurrence query; only the codes (a few
hundred) are named by uid.  The codings are those of queries/cooccurrence.cypher, with the filters written for
the parameters given: the generic `($study_id = '' OR …)` form costs the store several times the match itself,
per row.  The study is matched on the few codes and sources rather than on every segment, and the analysis
codings are chosen by the caller from a returned `analysis` column: LadybugDB filters a
million rows on a segment's or a coding's property at about twice the cost of returning that property
(issue 18).  They live in the store package because their keys are the store's own.
"""
from __future__ import annotations

CODING_KEYS = """MATCH (g:Segment)-[c:CODED_AS]->(k:Code) {where}
RETURN offset(id(g)) AS segment, offset(id(k)) AS code{analysis}"""
CODE_KEYS = """MATCH (k:Code) {where}
RETURN offset(id(k)) AS code, k.uid AS code_uid"""
SEGMENT_KEYS = """MATCH (src:Source)-[:HAS_SEGMENT]->(g:Segment) {where}
RETURN offset(id(src)) AS source, offset(id(g)) AS segment"""
# positions from a scan of the segments themselves: read along the join above they cost twice as much
SEGMENT_POSITIONS = """MATCH (g:Segment) {where}
RETURN offset(id(g)) AS segment, g.start_pos AS start, g.end_pos AS `end`, g.x AS x, g.y AS y, g.width AS width,
       g.height AS height"""
SOURCE_KEYS = """MATCH (p:Participant)-[:HAS_SOURCE]->(src:Source) {where}
RETURN p.study_id AS study_id, p.uid AS participant, offset(id(src)) AS source, src.kind AS kind
ORDER BY study_id, p.id, src.id"""


def unit_statements(study_id: str, coders: list[str], positions: bool) -> list[tuple[str, dict]]:
    """The statements (with their parameters) of one unit table: codings, code keys, segments, sources and,
    with `positions` (the segment units), the segments' positions.  `coders`: the coders whose codings count
    ([] = the analysis codings; then the codings carry an `analysis` column to choose them by).
    benchmarks/ time the store's part of them."""
    one_study = study_id not in ("", "*")  # '*' (or ''): every study
    one = {"study_id": study_id} if one_study else {}

    def where(variable: str) -> str:
        return f"WHERE {variable}.study_id = $study_id" if one_study else ""
    coding_filter = " AND ".join((["k.study_id = $study_id"] if one_study else [])
                                 + (["c.coder IN $coders"] if coders else []))
    return [(CODING_KEYS.format(where=f"WHERE {coding_filter}" if coding_filter else "",
                                analysis="" if coders else ", c.analysis AS analysis"),
             {**one, **({"coders": coders} if coders else {})}),
            (CODE_KEYS.format(where=where("k")), one),
            (SEGMENT_KEYS.format(where=where("src")), one),
            (SOURCE_KEYS.format(where=where("p")), one)] + \
        ([(SEGMENT_POSITIONS.format(where=where("g")), one)] if positions else [])


def statements() -> list[str]:
    """Every statement `unit_statements` can return (for the Cypher linter tests)."""
    return sorted({text for study in ("*", "s") for coders in ([], ["c"]) for positions in (False, True)
                   for text, _ in unit_statements(study, coders, positions)})
