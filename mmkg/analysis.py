"""Post-processing steps of named queries: co-occurrence metrics and intercoder agreement.

A named query whose header says `// analysis: NAME` fetches rows with its Cypher statement; the step
`ANALYSES[NAME]` turns them into the result, with the query's `// option:` values.  The arithmetic lives
in pure functions (`unit_table`, `pair_metrics`, `agreement_table`) that the tests check against
independent computations.

**Co-occurrence** (DESIGN.md).  Units:

- `segment` (the default, as ATLAS.ti, MAXQDA and NVivo count): a *passage* — within one source, the
  selections of the chosen codings that overlap, taken together (`mmkg.overlap`: text and media ranges that
  share a part, touching ranges do not; picture and PDF regions that intersect; a coding of a whole source is
  a passage of its own).  Two codes *co-occur* in a passage when a selection carrying one and a selection
  carrying the other are the same or overlap (directly, not only through a third selection);
- `exact`: one selection (codings at the same position of one source are one selection);
- `source`: one interview, drawing or other source; `participant`: all of one participant's material.

For a pair of codes a, b of one study:

- `n_units` N: the units that *can carry both* codes.  A source can carry a code when its kind is one on
  which the code's codebook is applied in the study (by the chosen coders): for the founding study, the
  interview sources for interview codes.  At the segment and exact units, N counts the passages (selections)
  in such sources; at the source unit, such sources with codings; at the participant unit, participants
  with coded material that can carry a and coded material that can carry b.  N depends on the two codes'
  codebooks only, so no codebook, group or code filter changes any metric of a pair;
- `n_a`, `n_b`: units among those N carrying a, b; `n_ab` (the *count*): units where a and b co-occur;
- `c_coefficient` = Jaccard = n_ab / (n_a + n_b − n_ab) (ATLAS.ti's c-coefficient);
- `p_b_given_a` = n_ab / n_a, `p_a_given_b` = n_ab / n_b, `lift` = n_ab·N / (n_a·n_b);
- `fisher_p`: two-sided Fisher's exact test (`scipy.stats.fisher_exact`, vectorised here: equal to ~1e-8
  relative) on the 2×2 table [[n_ab, n_a−n_ab], [n_b−n_ab, N−n_a−n_b+n_ab]] when n_ab ≤ `fisher_max_count`
  (small counts), else NaN;
- `imbalanced`: one code is more than `imbalance_ratio` (default 5) times as frequent as the other (ATLAS.ti:
  "more than 5 times").

The incidence of units and codes is a sparse 0/1 matrix X (units × codes); XᵀX gives every n_ab at once
where units are cliques (every two of their selections overlap, always true of single selections, sources
and participants); the few passages that are not are counted pair by pair of their overlapping selections.

**Agreement** (unit: passage × code presence).  For a codebook, the units are the passages of the compared
coders' selections in the codebook's sources (as above: coders who select slightly different boundaries of the
same words still meet in one passage) crossed with every code of the codebook; a unit is 1 for a coder who
applied the code to a selection in that passage, else 0.  Reported: `both`, `only_a`, `only_b`, `neither`
(coders a and b), `percent_agreement` = (both + neither) / units, `agreement_on_coded` = both /
(both + only_a + only_b) (the paper's "agreed on 989 codes while disagreeing on 136"), Cohen's κ for
coders a and b, and Krippendorff's α (nominal) over every compared coder.  The study's analysis coder
(`consensus`) is not compared unless named.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from scipy.special import gammaln

from mmkg import overlap
from mmkg.code_pairs import code_rows, loose_pairs
from mmkg.errors import NotFoundError, QueryError
from mmkg.metrics import METRICS, metric_names, resolve_metric
from mmkg.models import EVERY_STUDY, GraphReader
from mmkg.store.keys import (
    carried_statements,
    key_width,
    passage_statements,
    split_keys,
    unit_statements,
)
from mmkg.units import UNIT_RULES, UNITS  # noqa: F401  (UNIT_RULES: re-exported for the views)

SEGMENT_UNITS = ("segment", "exact")
PAIR_KEY_COLUMNS = ["study_id", "unit", "codebook_a", "code_a", "label_a", "codebook_b", "code_b", "label_b"]


def pair_columns() -> list[str]:
    """The columns of a pair's row: the pair, its counts, every registered metric (`mmkg.metrics`), the flag."""
    return [*PAIR_KEY_COLUMNS, "n_units", "n_a", "n_b", *METRICS, "imbalanced"]


AGREEMENT_COLUMNS = ["level", "study_id", "codebook", "code_id", "label", "coder_a", "coder_b", "coders",
                     "units", "both", "only_a", "only_b", "neither", "percent_agreement", "agreement_on_coded",
                     "cohen_kappa", "krippendorff_alpha"]


# ------------------------------------------------------------------------------------------ pure functions
@dataclass(frozen=True)
class UnitTable:
    """Everything the pair metrics need, for every code of the selected studies at one unit."""

    unit: str
    codes: pd.DataFrame  # one row per code (code_uid, study_id, codebook, ...) in matrix order
    joint: np.ndarray  # codes × codes: units where a and b co-occur; the diagonal: units carrying a
    carried: np.ndarray  # codes × books: units carrying the code among those that can carry the book
    universe: np.ndarray  # books × books: units that can carry both books
    book: np.ndarray  # per code: its book, i.e. its (study, codebook)

    def pairs(self, a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
        """n_units, n_a, n_b, n_ab of the code pairs (a[i], b[i]) (matrix positions)."""
        book_a, book_b = self.book[a], self.book[b]
        return {"n_units": self.universe[book_a, book_b], "n_a": self.carried[a, book_b],
                "n_b": self.carried[b, book_a], "n_ab": self.joint[a, b]}


def unit_table(codings: pd.DataFrame, segments: pd.DataFrame, sources: pd.DataFrame, codes: pd.DataFrame,
               unit: str, proximity: float = 0.0) -> UnitTable:
    """The unit table (module docstring) from fetched tables.

    `codings`: segment, code_uid (the chosen codings); `segments`: source, segment, start, end and x, y, width,
    height (the four may be absent when no segment has a region); `sources`: study_id, participant, source,
    kind; `codes`: code_uid, study_id, codebook (every code of the studies, in the order wanted).  Segment and
    source keys may be uids or integer node keys.
    """
    _check_unit(unit)
    codes = codes.reset_index(drop=True)
    code_of_row = _lookup(codings["code_uid"], codes["code_uid"])
    return _unit_table(code_of_row, codings["segment"], segments, sources, codes, unit, proximity)


def _unit_table(code_of_row: np.ndarray, segment_of_coding: pd.Series, segments: pd.DataFrame,
                sources: pd.DataFrame, codes: pd.DataFrame, unit: str, proximity: float) -> UnitTable:
    """`unit_table` with each coding's code given as its position in `codes` (-1: not among them)."""
    code_of_row = np.asarray(code_of_row, dtype=np.int64)
    position_of_row = _lookup(segment_of_coding, segments["segment"])
    if (position_of_row < 0).any():
        raise QueryError("a coded segment has no source in the graph")
    keep = code_of_row >= 0
    if not keep.all():
        code_of_row, position_of_row = code_of_row[keep], position_of_row[keep]
    if unit in SEGMENT_UNITS:  # the coded segments, renumbered: their selections make the passages
        segment_of_row, position = _renumber(position_of_row, len(segments))
        source_of_segment = _lookup(np.asarray(segments["source"])[position], sources["source"])
        if (source_of_segment < 0).any():
            raise QueryError("a coded segment has no source in the graph")
        found = _passages(segments, position, source_of_segment, segment_of_row, unit, proximity)
        return _passage_unit_table(found, code_of_row, sources, codes, unit)
    source_of_row = _lookup(segments["source"], sources["source"])[position_of_row]
    if (source_of_row < 0).any():
        raise QueryError("a coded segment has no source in the graph")
    return _sources_table(source_of_row, code_of_row, sources, codes, unit)


def _sources_table(source_of_row: np.ndarray, code_of_row: np.ndarray, sources: pd.DataFrame,
                       codes: pd.DataFrame, unit: str) -> UnitTable:
    """The unit table of sources or participants, `source_of_row` each coding's source (a row of `sources`)."""
    n_codes = len(codes)
    by_source = _incidence(source_of_row, code_of_row, len(sources), n_codes)
    coded_sources = np.flatnonzero(np.diff(by_source.indptr))
    participant_units = None
    if unit == "source":
        matrix, unit_source = by_source[coded_sources], coded_sources
    else:
        participant_of_source, participants = pd.factorize(sources["participant"])
        by_participant = _incidence(participant_of_source[_row_of_entry(by_source)], by_source.indices,
                                    len(participants), n_codes)
        unit_of_participant, coded = _renumber(participant_of_source[coded_sources], len(participants))
        matrix, unit_source = by_participant[coded], None
        participant_units = (unit_of_participant, coded_sources)
    joint = _gram(matrix) if n_codes else np.zeros((0, 0), np.int64)
    return _counted_table(unit, codes, sources, matrix, joint, by_source, unit_source, participant_units)


def _passage_unit_table(found: _Passages, code_of_row: np.ndarray, sources: pd.DataFrame, codes: pd.DataFrame,
                        unit: str) -> UnitTable:
    """The unit table of passages (or selections) `found`, `code_of_row` each coding's code."""
    n_codes = len(codes)
    matrix = _incidence(found.passage[found.selection_of_row], code_of_row, len(found.source), n_codes)
    joint = _direct_joint(matrix, found.selection_of_row, code_of_row, found.passage, found.clique, found.pairs,
                          n_codes)
    return _passages_table(matrix, joint, found.source, sources, codes, unit)


def _passages_table(matrix: sp.csr_matrix, joint: np.ndarray, unit_source: np.ndarray,
                            sources: pd.DataFrame, codes: pd.DataFrame, unit: str) -> UnitTable:
    """The unit table of units each within one source (`unit_source`: its row of `sources`)."""
    # sources × codes: which codes each source carries
    by_source = _incidence(unit_source[_row_of_entry(matrix)], matrix.indices, len(sources), len(codes))
    return _counted_table(unit, codes, sources, matrix, joint, by_source, unit_source, None)


def _counted_table(unit: str, codes: pd.DataFrame, sources: pd.DataFrame, matrix: sp.csr_matrix, joint: np.ndarray,
                   by_source: sp.csr_matrix, unit_source: np.ndarray | None,
                   participant_units: tuple[np.ndarray, np.ndarray] | None,
                   unit_weight: np.ndarray | None = None) -> UnitTable:
    """The unit table from the units × codes incidence `matrix`, its `joint` counts and the sources × codes
    incidence: n_a (carried) and N (universe) per book.  `unit_source`: each unit's source (a row of
    `sources`); at the participant unit, `participant_units` instead: (each coded source's unit, those
    sources).  `unit_weight`: the number of units each row of `matrix` stands for (its entries count them),
    where a row is a source standing for its passages (default: one each)."""
    n_codes = len(codes)
    kind_of_source, kind_labels = pd.factorize(sources["kind"].fillna(""))
    studies = pd.Index(pd.unique(pd.concat([sources["study_id"], codes["study_id"]]).astype(str)))
    study_of_source = studies.get_indexer(sources["study_id"].astype(str))
    books, book_of_code = _books(codes)
    n_kinds = len(kind_labels)
    # K: books × kinds — the source kinds on which each book is applied (by the chosen coders)
    source_of_entry = _row_of_entry(by_source)
    applied = np.zeros((len(books), max(n_kinds, 1)), dtype=bool)
    applied[book_of_code[by_source.indices], kind_of_source[source_of_entry]] = True
    book_study = studies.get_indexer(books["study_id"].astype(str))
    if participant_units is not None:
        unit_of_participant, coded_sources = participant_units
        coded_kinds = np.zeros((matrix.shape[0], max(n_kinds, 1)), dtype=bool)
        coded_kinds[unit_of_participant, kind_of_source[coded_sources]] = True
        first_source = np.zeros(matrix.shape[0], dtype=np.int64)
        first_source[unit_of_participant] = coded_sources
        can = (coded_kinds.astype(np.int64) @ applied.T.astype(np.int64)) > 0
        unit_study = study_of_source[first_source]
    else:
        assert unit_source is not None
        can = applied[:, kind_of_source[unit_source]].T if len(unit_source) else np.zeros((0, len(books)), bool)
        unit_study = study_of_source[unit_source]
    can = can & (unit_study[:, None] == book_study[None, :])
    can = can.astype(np.int64)  # units × books, dense: the books are few
    carried = np.asarray(matrix.T @ can, dtype=np.int64).reshape(n_codes, len(books))
    weighted = can if unit_weight is None else can * unit_weight[:, None]
    universe = (weighted.T @ can).reshape(len(books), len(books))
    return UnitTable(unit=unit, codes=codes, joint=joint, carried=carried, universe=universe, book=book_of_code)


@dataclass(frozen=True)
class _Passages:
    selection_of_row: np.ndarray  # per coding row: its selection
    passage: np.ndarray  # per selection: its passage
    clique: np.ndarray  # per passage: every two of its selections overlap
    pairs: tuple[np.ndarray, np.ndarray]  # overlapping selections (i < j) in the passages that are not cliques
    source: np.ndarray  # per passage: its source (row of the sources table)


def _passages(segments, position, source_of_segment, segment_of_row, unit, proximity) -> _Passages:
    """Selections of the coded segments (`position`: their rows in `segments`) and the passages they form."""
    sel = overlap.selections(source_of_segment, np.arange(len(position)), _geometry(segments, position),
                             merge=(unit == "exact"))
    if unit == "segment":
        found = overlap.find_passages(sel, proximity)
        passage, clique, pairs = found.of_selection, found.clique, found.pairs
    else:  # exact: every selection a passage of its own
        passage, clique = np.arange(len(sel), dtype=np.int64), np.ones(len(sel), dtype=bool)
        pairs = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    source = np.zeros(len(clique), dtype=np.int64)
    source[passage] = sel.source
    return _Passages(selection_of_row=sel.of_row[segment_of_row], passage=passage, clique=clique, pairs=pairs,
                     source=source)


def passage_table(codings: pd.DataFrame, segments: pd.DataFrame, sources: pd.DataFrame,
                  proximity: float = 0.0) -> tuple[pd.DataFrame, set]:
    """The segment unit coding by coding: the codings with a `passage` column (an integer), and the set of
    (passage, code_uid, code_uid) pairs that co-occur *directly* in passages whose selections do not all
    overlap one another (in every other passage, every two of its codes co-occur).

    `codings`: segment, code_uid (the chosen codings); `segments`, `sources` as for `unit_table`.
    """
    position_of_row = _lookup(codings["segment"], segments["segment"])
    if (position_of_row < 0).any():
        raise QueryError("a coded segment has no source in the graph")
    segment_of_row, position = pd.factorize(position_of_row)
    position = np.asarray(position, dtype=np.int64)
    source_of_segment = _lookup(segments["source"], sources["source"])[position]
    found = _passages(segments, position, source_of_segment, segment_of_row, "segment", proximity)
    passage_of_row = found.passage[found.selection_of_row]
    first, second = found.pairs
    loose = ~found.clique
    direct = set()
    if loose.any():
        codes_of = pd.Series(codings["code_uid"].to_numpy()).groupby(found.selection_of_row).agg(set)
        for i, j in zip(first, second):
            q = int(found.passage[i])
            if loose[q]:
                direct |= {(q, *sorted((a, b))) for a in codes_of.get(i, ()) for b in codes_of.get(j, ())}
        for i in np.unique(found.selection_of_row[loose[passage_of_row]]):
            q = int(found.passage[i])
            direct |= {(q, *sorted((a, b))) for a in codes_of[i] for b in codes_of[i]}
    return codings.assign(passage=passage_of_row, loose=loose[passage_of_row]), direct


def fetch_passage_table(kg: GraphReader, study_id: str, coder: str = "") -> tuple[pd.DataFrame, set]:
    """`passage_table` of one study's chosen codings, each row with its participant_id and source."""
    codings = kg.rows("cooccurrence", study_id=study_id, coder=normalise_coders(coder))
    segments = kg.query("selections", study_id=study_id)
    sources = kg.query("sources", study_id=study_id)
    table, direct = passage_table(codings, segments, sources)
    source = segments.set_index("segment")["source"]
    table = table.assign(source=table["segment"].map(source))
    table = table.merge(sources[["source", "participant_id"]], on="source", how="left")
    return table, direct


def _lookup(values: pd.Series, keys: pd.Series) -> np.ndarray:
    """Position of every value among `keys` (-1 where absent; the first where a key repeats): integer keys
    through an array indexed by key, strings by Arrow's hash lookup."""
    values, keys = np.asarray(values), np.asarray(keys)
    if len(keys) == 0 or len(values) == 0:  # (an empty column may come without its type)
        return np.full(len(values), -1, dtype=np.int64)
    if values.dtype.kind in "iu" and keys.dtype.kind in "iu":
        values, keys = values.astype(np.int64, copy=False), keys.astype(np.int64, copy=False)
        low = min(int(keys.min()), int(values.min()))
        span = max(int(keys.max()), int(values.max())) - low + 1
        if span <= 4 * (len(keys) + len(values)) + 1024:  # node keys are dense offsets: one array lookup
            table = np.full(span, -1, dtype=np.int64)
            table[keys[::-1] - low] = np.arange(len(keys) - 1, -1, -1, dtype=np.int64)
            return table[values - low]
        unique = ~pd.Index(keys).duplicated(keep="first")
        where = pd.Index(keys[unique]).get_indexer(values)
        return np.where(where >= 0, np.flatnonzero(unique)[where], -1)
    found = pc.index_in(pa.array(values, type=pa.large_string()), value_set=pa.array(keys, type=pa.large_string()))
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _renumber(values: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(number of each value among the distinct values, the distinct values ascending) for integers in
    [0, size): `pd.factorize` in one pass over a table of `size`, without hashing a million rows."""
    present = np.zeros(size, dtype=bool)
    present[values] = True
    return (np.cumsum(present) - 1)[values], np.flatnonzero(present)


def _geometry(segments: pd.DataFrame, rows: np.ndarray | None = None) -> np.ndarray:
    """segments (or those `rows` of them) × (start, end, x, y, width, height) as float64, NaN where missing
    (a region column the frame does not have is missing everywhere: `fetch_codings` of a study without
    regions)."""
    rows = np.arange(len(segments)) if rows is None else rows
    # filled column by column: a transposed view is returned
    geometry = np.full((len(overlap.GEOMETRY), len(rows)), np.nan)
    for i, c in enumerate(overlap.GEOMETRY):
        if c in segments.columns or c in ("start", "end"):
            geometry[i] = pd.to_numeric(segments[c]).to_numpy(dtype=np.float64, na_value=np.nan)[rows]
    return geometry.T


def _books(codes: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    keys = codes["study_id"].astype(str) + "\x00" + codes["codebook"].astype(str)
    book_of_code, labels = pd.factorize(keys)
    books = pd.DataFrame({"study_id": [k.split("\x00")[0] for k in labels]})
    return books, book_of_code.astype(np.int64)


def _incidence(unit_of_row: np.ndarray, code_of_row: np.ndarray, n_units: int, n_codes: int) -> sp.csr_matrix:
    """0/1 units × codes (repeated pairs count once)."""
    pointer, codes = code_rows(unit_of_row, code_of_row, n_units, n_codes)
    return sp.csr_matrix((np.ones(len(codes), dtype=np.int64), codes, pointer), shape=(n_units, n_codes))


def _row_of_entry(matrix: sp.csr_matrix) -> np.ndarray:
    """The row of every stored entry of a CSR matrix (in storage order)."""
    return np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))


DENSE_GRAM_CELLS = 1 << 24  # units × codes up to which a dense XᵀX may be taken (128 MB of float64)


def _gram(matrix: sp.csr_matrix) -> np.ndarray:
    """XᵀX of a units × codes CSR matrix, dense (codes × codes).  A matrix dense enough that sparse products
    cost more than BLAS's dense ones (units by source: most sources carry most codes) is multiplied dense, in
    float64, exact for counts below 2^53; else Xᵀ is made CSR first: scipy multiplies two CSR matrices faster
    than CSC by CSR."""
    n_units, n_codes = matrix.shape
    per_unit = np.diff(matrix.indptr)
    if n_units * n_codes <= DENSE_GRAM_CELLS and 32 * int(per_unit @ per_unit) >= n_units * n_codes * n_codes:
        dense = matrix.toarray().astype(np.float64)
        return np.rint(dense.T @ dense).astype(np.int64)
    return (matrix.T.tocsr() @ matrix).toarray().astype(np.int64)


def _direct_joint(matrix: sp.csr_matrix, selection_of_row: np.ndarray, code_of_row: np.ndarray,
                  passage: np.ndarray, clique: np.ndarray, pairs: tuple[np.ndarray, np.ndarray],
                  n_codes: int) -> np.ndarray:
    """Passages where a and b co-occur directly: XᵀX over the passages whose selections all overlap one
    another (cliques), plus a pair-by-pair count over the others (`_loose_joint`)."""
    if n_codes == 0:
        return np.zeros((0, 0), np.int64)
    if clique.all():
        return _gram(matrix)
    return _gram(matrix[np.flatnonzero(clique)]) + \
        _loose_joint(selection_of_row, code_of_row, passage, clique, pairs, n_codes)


def _loose_joint(selection_of_row: np.ndarray, code_of_row: np.ndarray, passage: np.ndarray, clique: np.ndarray,
                 pairs: tuple[np.ndarray, np.ndarray], n_codes: int) -> np.ndarray:
    """Passages that are not cliques where a and b co-occur directly, codes × codes (`loose_pairs`)."""
    low, high = loose_pairs(selection_of_row, code_of_row, passage, clique, pairs, n_codes)
    upper = np.bincount(low * n_codes + high, minlength=n_codes * n_codes).reshape(n_codes, n_codes)
    return upper + upper.T - np.diag(np.diag(upper))


def pair_metrics(n_units, n_a, n_b, n_ab, *, fisher_max_count: int = 20, imbalance_ratio: float = 5.0) -> dict:
    """The counts and every registered metric (`mmkg.metrics.METRICS`) from the four counts (arrays)."""
    n_units, n_a, n_b, n_ab = (np.asarray(v, dtype=np.int64) for v in (n_units, n_a, n_b, n_ab))
    fisher = np.full(len(n_ab), np.nan)
    # at the segment unit a passage can carry both codes without their selections meeting: where such passages
    # make the fourth cell negative, the counts are no 2×2 table of units and there is no exact test
    small = (n_ab <= fisher_max_count) & (n_units > 0) & (n_units - n_a - n_b + n_ab >= 0)
    fisher[small] = fisher_two_sided(n_ab[small], n_units[small], n_a[small], n_b[small])
    computed = {"n_ab": n_ab, "fisher_p": fisher}
    low, high = np.minimum(n_a, n_b), np.maximum(n_a, n_b)
    return {"n_units": n_units, "n_a": n_a, "n_b": n_b,
            **{c: computed[c] if m.formula is None else m.formula(n_units, n_a, n_b, n_ab) for c, m in METRICS.items()},
            "imbalanced": high > imbalance_ratio * low}


def cooccurrence_table(table: UnitTable, *, mask: np.ndarray | None = None, focus: np.ndarray | None = None,
                       partner: np.ndarray | None = None, min_count: int = 1, fisher_max_count: int = 20,
                       imbalance_ratio: float = 5.0) -> pd.DataFrame:
    """Pair metrics for pairs of codes of one study: columns `a`, `b` (matrix positions) and the metrics.

    `mask` (boolean per code) restricts both codes; without `focus` each unordered pair of masked codes
    appears once (a < b); with `focus`, a is a focus code and b any other masked code (or a `partner` code).
    The restriction only chooses pairs: every metric comes from the whole unit table.
    """
    n_codes = len(table.codes)
    mask = np.ones(n_codes, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if focus is None:
        a, b = np.triu_indices(n_codes, k=1)
        keep = mask[a] & mask[b]
    else:
        others = mask if partner is None else np.asarray(partner, dtype=bool)
        a, b = np.nonzero(np.asarray(focus, dtype=bool)[:, None] & others[None, :])
        keep = a != b
    a, b = a[keep], b[keep]
    study = table.codes["study_id"].to_numpy()
    same = study[a] == study[b]
    a, b = a[same], b[same]
    counts = table.pairs(a, b)
    keep = counts["n_ab"] >= min_count
    if min_count <= 0:
        keep &= (counts["n_a"] > 0) & (counts["n_b"] > 0)
    a, b = a[keep], b[keep]
    metrics = pair_metrics(*(counts[k][keep] for k in ("n_units", "n_a", "n_b", "n_ab")),
                           fisher_max_count=fisher_max_count, imbalance_ratio=imbalance_ratio)
    return pd.DataFrame({"a": a, "b": b, **metrics})


def fisher_two_sided(x, total, n_a, n_b) -> np.ndarray:
    """Two-sided Fisher's exact p of many 2×2 tables at once, as `scipy.stats.fisher_exact` computes it:
    the probability, under the hypergeometric null, of every table no more likely than the observed one.

    x = n_ab, total = N, n_a and n_b the margins.  Each tail is one cdf/sf call; the far tail's edge is
    found by a vectorised bisection on the (unimodal) probability mass function.
    """
    x, total, n_a, n_b = (np.asarray(v, dtype=np.int64) for v in (x, total, n_a, n_b))
    if x.size == 0:
        return np.zeros(0)
    log_gamma = np.log1p(1e-7)  # scipy's relative tolerance for "no more likely"
    constant = _log_pmf_constant(total, n_a, n_b)
    threshold = _log_pmf(x, total, n_a, n_b, constant) + log_gamma
    lowest, highest = np.maximum(0, n_b - (total - n_a)), np.minimum(n_a, n_b)
    mode = ((n_a + 1) * (n_b + 1)) // (total + 2)
    below = x < mode
    # x below the mode: the far tail is [y, highest] where y is the first value above the mode as unlikely
    # as x (pmf falls after the mode); above the mode: [lowest, y] mirrored.
    lo = np.where(below, mode, lowest)
    hi = np.where(below, highest + 1, mode + 1)  # search in [lo, hi); hi = "none found"
    for _ in range(64):
        active = lo < hi
        if not active.any():
            break
        middle = (lo + hi) // 2
        unlikely = _log_pmf(middle, total, n_a, n_b, constant) <= threshold
        # below: find the first unlikely value; above: find the first likely value (tail ends just before)
        go_left = np.where(below, unlikely, ~unlikely)
        hi = np.where(active & go_left, middle, hi)
        lo = np.where(active & ~go_left, middle + 1, lo)
    # tails run away from the mode, where the mass function falls monotonically; each table's two tails only
    near, far = np.empty(x.shape), np.empty(x.shape)
    # below the mode: near tail [lowest, x], far tail [lo, highest]; above it: [x, highest] and [lowest, lo - 1]
    for side, step, near_end, far_start, far_end in ((below, -1, lowest, lo, highest),
                                                      (~below, 1, highest, lo - 1, lowest)):
        margins = total[side], n_a[side], n_b[side], constant[side]
        near[side] = _tail(x[side], near_end[side], step, *margins)
        far[side] = _tail(far_start[side], far_end[side], -step, *margins)
    return np.where(x == mode, 1.0, np.minimum(1.0, near + far))


def _log_pmf_constant(total, n_a, n_b):
    """The part of `_log_pmf` that does not depend on k: log (n_a! (total − n_a)! n_b! (total − n_b)! / total!)."""
    return gammaln(n_a + 1) + gammaln(total - n_a + 1) + gammaln(n_b + 1) + gammaln(total - n_b + 1) - \
        gammaln(total + 1)


def _log_pmf(k, total, n_a, n_b, constant):
    """log P(X = k) for X ~ hypergeometric(total, n_a successes, n_b draws) = C(n_a, k) C(total − n_a, n_b − k)
    / C(total, n_b), through log-gamma with `_log_pmf_constant` computed once per table (scipy's own pmf
    computes exactly, and is orders of magnitude slower for large studies)."""
    k = np.asarray(k, dtype=float)
    return constant - gammaln(k + 1) - gammaln(n_a - k + 1) - gammaln(n_b - k + 1) - \
        gammaln(total - n_a - n_b + k + 1)


def _tail(start, end, step: int, total, n_a, n_b, constant, chunk: int = 32) -> np.ndarray:
    """Sum of the hypergeometric pmf from `start` to `end` (inclusive, walking by `step` away from the mode),
    stopping once the terms no longer change the sum in double precision."""
    start, end = np.asarray(start), np.asarray(end)
    sums = np.zeros(start.shape)
    position = start.copy()
    active = (position - end) * step <= 0
    offsets = np.arange(chunk) * step
    while active.any():
        idx = np.nonzero(active)[0]
        ks = position[idx, None] + offsets[None, :]
        inside = (ks - end[idx, None]) * step <= 0
        pmf = np.exp(_log_pmf(np.where(inside, ks, end[idx, None]), total[idx, None], n_a[idx, None], n_b[idx, None],
                              constant[idx, None]))
        terms = np.where(inside, pmf, 0.0)
        sums[idx] += terms.sum(axis=1)
        position[idx] += chunk * step
        last = terms[:, -1]
        active[idx] = ((position[idx] - end[idx]) * step <= 0) & (last > sums[idx] * 1e-17)
    return sums


def presence_agreement(ratings: np.ndarray) -> dict:
    """Agreement of 0/1 ratings (coders × units, complete): counts for the first two coders, percent
    agreement, Cohen's κ (first two coders) and Krippendorff's α (nominal, every coder)."""
    ratings = np.asarray(ratings, dtype=np.int64)
    m, units = ratings.shape
    x, y = ratings[0], ratings[1]
    both, only_a, only_b = int((x & y).sum()), int((x & ~y & 1).sum()), int((~x & 1 & y).sum())
    neither = units - both - only_a - only_b
    out = {"units": units, "both": both, "only_a": only_a, "only_b": only_b, "neither": neither,
           "percent_agreement": (both + neither) / units if units else math.nan,
           "agreement_on_coded": both / (both + only_a + only_b) if both + only_a + only_b else math.nan}
    if units:
        p_o = (both + neither) / units
        p_e = ((both + only_a) * (both + only_b) + (only_b + neither) * (only_a + neither)) / units ** 2
        out["cohen_kappa"] = (p_o - p_e) / (1 - p_e) if p_e < 1 else math.nan
    else:
        out["cohen_kappa"] = math.nan
    ones = ratings.sum(axis=0)  # per unit: coders who applied the code
    n_values = m * units
    n1, n0 = int(ones.sum()), n_values - int(ones.sum())
    disagreeing = float((ones * (m - ones)).sum()) / (m - 1)  # o_01 of the coincidence matrix
    out["krippendorff_alpha"] = (1 - (n_values - 1) * disagreeing / (n0 * n1)) if n0 and n1 else math.nan
    return out


def agreement_passages(codings: pd.DataFrame, segments: pd.DataFrame) -> np.ndarray:
    """The agreement unit of every coding row: its passage among the rows' selections of the same study and
    codebook (overlapping selections, `mmkg.overlap`), as an integer.

    `codings`: study_id, segment, codebook (the compared coders' rows only); `segments`: source, segment,
    start, end, x, y, width, height.
    """
    if codings.empty:
        return np.zeros(0, dtype=np.int64)
    segment_of_row, labels = pd.factorize(codings["segment"])
    position = _lookup(pd.Series(labels), segments["segment"])
    if (position < 0).any():
        raise QueryError("a coded segment has no source in the graph")
    # selections never join across studies or codebooks: the (study, codebook, source) triple is the "source"
    book = (codings["study_id"].astype(str) + "\x00" + codings["codebook"].astype(str)).to_numpy()
    place = book + "\x00" + segments["source"].to_numpy()[position][segment_of_row]
    place_of_row, _ = pd.factorize(place)
    geometry = _geometry(segments, position)
    # one selection per (place, segment): a segment coded for two codebooks is a selection of each
    key, first = pd.factorize(place_of_row.astype(np.int64) * len(labels) + segment_of_row)
    first = np.asarray(first, dtype=np.int64)
    segment = first % len(labels)
    sel = overlap.selections(first // len(labels), segment, overlap.take_rows(geometry, segment), merge=False)
    passage = overlap.passages(sel, overlap.overlapping_pairs(sel))
    return passage[sel.of_row[key]]


def agreement_table(codings: pd.DataFrame, codes: pd.DataFrame, coders: list[str]) -> pd.DataFrame:
    """Per codebook and per code agreement (module docstring).

    `codings`: columns study_id, unit (the agreement unit: `agreement_passages`), codebook, code_uid, coder
    (the compared coders' codings).  `codes`: columns code_uid, study_id, codebook, code_id, label (every
    code of the codebooks).  `coders`: the compared coders; κ uses the first two.
    """
    rows = []
    for (study_id, codebook), book_codes in codes.groupby(["study_id", "codebook"], sort=True):
        mine = codings[(codings["study_id"] == study_id) & (codings["codebook"] == codebook)
                       & codings["coder"].isin(coders)]
        units = pd.Index(mine["unit"].unique())
        book_codes = book_codes.sort_values("code_id")
        code_pos = pd.Index(book_codes["code_uid"])
        ratings = np.zeros((len(coders), len(units), len(code_pos)), dtype=np.int64)
        for k, coder in enumerate(coders):
            part = mine[mine["coder"] == coder]
            ratings[k, units.get_indexer(part["unit"]), code_pos.get_indexer(part["code_uid"])] = 1
        common = {"study_id": study_id, "codebook": codebook, "coder_a": coders[0], "coder_b": coders[1],
                  "coders": ",".join(coders)}
        rows.append({"level": "codebook", **common, "code_id": "", "label": "",
                     **presence_agreement(ratings.reshape(len(coders), -1))})
        for j, code in enumerate(book_codes.itertuples()):
            rows.append({"level": "code", **common, "code_id": code.code_id, "label": code.label,
                         **presence_agreement(ratings[:, :, j])})
    return pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)


# ------------------------------------------------------------------------------------- helpers on the store
def _codes(kg, study_id: str) -> pd.DataFrame:
    codes = kg.query("code_index", study_id=study_id)
    if codes.empty and study_id != EVERY_STUDY:
        kg.require_study(study_id)
    return codes


def _restrict(codes: pd.DataFrame, codebook: str, group: str) -> pd.DataFrame:
    if codebook:
        known = sorted(codes["codebook"].unique())
        if codebook not in known:
            raise NotFoundError(f"no codebook '{codebook}' (codebooks: {', '.join(known) or 'none'})")
        codes = codes[codes["codebook"] == codebook]
    if group:
        wanted = group.lower()
        in_group = codes.apply(lambda r: wanted in {str(r["group_id"]).lower(), str(r["group_label"]).lower()}
                               or wanted in {str(g).lower() for g in (r["ancestor_groups"] or [])}, axis=1)
        if not in_group.any():
            raise NotFoundError(f"no code group '{group}'" + (f" in codebook '{codebook}'" if codebook else ""))
        codes = codes[in_group]
    return codes


def resolve_codes(codes: pd.DataFrame, text: str, what: str = "code") -> pd.Series:
    """Mask of the codes `text` names: `interview:A.3`, `A.3` (a bare id found in several codebooks means
    the study's first-declared codebook) or a label such as `model stealing` (case-insensitive)."""
    text = text.strip()
    wanted = text.lower()
    key = (codes["codebook"] + ":" + codes["code_id"]).str.lower()
    mask = key == wanted
    if not mask.any():
        mask = codes["code_id"].str.lower() == wanted
        if mask.sum() > 1:
            first = codes[mask].apply(lambda r: _codebook_rank(r), axis=1)
            mask = mask & (codes.apply(lambda r: _codebook_rank(r), axis=1) == first.min())
    if not mask.any():
        mask = (codes["label"].fillna("").str.lower() == wanted) | \
               (codes["preferred_label"].fillna("").str.lower() == wanted)
    if not mask.any():
        from rapidfuzz import process

        names = sorted(set(codes["label"].dropna()) | set(codes["codebook"] + ":" + codes["code_id"]))
        near = [m[0] for m in process.extract(text, names, limit=3)] if names else []
        raise NotFoundError(f"no {what} '{text}'" + (f" (did you mean: {', '.join(near)}?)" if near else ""))
    return mask


def _codebook_rank(row) -> int:
    order = str(row.get("study_codebooks") or "").split(";")
    return order.index(row["codebook"]) if row["codebook"] in order else len(order)


def _check_unit(unit: str) -> None:
    if unit not in UNITS:
        raise QueryError(f"parameter 'unit' must be one of {', '.join(UNITS)}, got '{unit}'")


def _check_nonnegative(options: dict, *names: str) -> None:
    for name in names:
        if options.get(name, 0) < 0:
            raise QueryError(f"parameter '{name}' must not be negative, got {options[name]}")


def normalise_coders(coder: str) -> str:
    """'a, b' → 'a,b' (the statements match coders by their comma-separated list)."""
    return ",".join(c.strip() for c in str(coder).split(",") if c.strip())


def fetch_unit_table(kg: GraphReader, study_id: str, unit: str, coder: str = "", proximity: float = 0.0,
                     codes: pd.DataFrame | None = None, *, stored: bool = True) -> UnitTable:
    """The unit table of every code of the study (or of every study) for the chosen coder(s).  One study's
    analysis codings (at proximity 0) are counted from what the load stored, where the study has it: by source
    or participant from the codes each source carries (`mmkg.graph.carried_codes`), by segment from the code
    pairs its passages share (`mmkg.graph.passage_pairs`); a study loaded before those, from its stored passages
    (`mmkg.graph.analysis_passages`) (`stored=False`: from the segments, as for every other choice)."""
    if stored and unit in STORED_UNITS and not proximity and not normalise_coders(coder) \
            and study_id not in ("", EVERY_STUDY):
        table = _stored_carried_table(kg, study_id, codes, unit) if unit != "segment" else \
            _stored_pair_table(kg, study_id, codes)
        if table is None:
            table = _stored_passage_table(kg, study_id, codes, unit)
        if table is not None:
            return table
    fetched = fetch_codings(kg, study_id, unit, coder, proximity, codes)
    return _unit_table(*fetched, unit, proximity)


STORED_UNITS = ("segment", "source", "participant")  # the units `fetch_unit_table` counts from what loads store


def _stored_carried(kg: GraphReader, study_id: str, codes: pd.DataFrame | None, pairs: bool, stored: str):
    """What the unit tables from the codes each source carries read: (the sources, the codes in the unit table's
    order, the code keys, the carried codes, each one's row of `codes` (-1: not among them) and of the sources,
    the code pairs when asked); None when the sources' `stored` column is null (a study loaded by an mmkg
    before it)."""
    (codes_cypher, params), (carried_cypher, _), (sources_cypher, _), *pairs_fetch = \
        carried_statements(study_id, pairs)
    sources = kg.cypher(sources_cypher, params)
    if not len(sources) or pd.to_numeric(sources[stored]).isna().any():
        return None
    codes = _sorted_codes(kg, study_id, codes)
    code_keys = kg.cypher(codes_cypher, params)
    carried = kg.cypher(carried_cypher, params)
    code_of_carried = _code_of_key(carried["code"].to_numpy(dtype=np.int64), code_keys, codes)
    source_of_carried = _lookup(carried["source"], sources["source"])
    if (source_of_carried < 0).any():
        raise QueryError("a source that carries a code has no participant in the graph")
    code_pairs = kg.cypher(pairs_fetch[0][0], params) if pairs else None
    return sources, codes, code_keys, carried, code_of_carried, source_of_carried, code_pairs


def _stored_carried_table(kg: GraphReader, study_id: str, codes: pd.DataFrame | None,
                          unit: str) -> UnitTable | None:
    """The unit table of the study's analysis codings by source or participant from the codes its sources carry
    (CARRIES); None when the study has none stored (loaded by an mmkg before them)."""
    found = _stored_carried(kg, study_id, codes, False, "analysis_codings")
    if found is None:
        return None
    sources, codes, _, _, code_of_row, source_of_row, _ = found
    keep = code_of_row >= 0  # (codes not among `codes` count nowhere, as in `_unit_table`)
    return _sources_table(source_of_row[keep], code_of_row[keep], sources, codes, unit)


def _stored_pair_table(kg: GraphReader, study_id: str, codes: pd.DataFrame | None) -> UnitTable | None:
    """The segment unit table of the study's analysis codings from the code pairs its passages share
    (COOCCURS_WITH) and the codes its sources' passages carry (CARRIES.passages); None when the study has none
    stored (loaded by an mmkg before them) or a code it carries is not among `codes` (then its passages are
    others)."""
    found = _stored_carried(kg, study_id, codes, True, "passages")
    if found is None:
        return None
    sources, codes, code_keys, carried, code_of_carried, source_of_carried, pairs = found
    if (code_of_carried < 0).any():
        return None
    n_codes = len(codes)
    # sources × codes: the number of each source's passages that carry the code
    by_source = sp.csr_matrix((carried["passages"].to_numpy(dtype=np.int64), (source_of_carried, code_of_carried)),
                              shape=(len(sources), n_codes))
    a = _code_of_key(pairs["a"].to_numpy(dtype=np.int64), code_keys, codes)
    b = _code_of_key(pairs["b"].to_numpy(dtype=np.int64), code_keys, codes)
    if (a < 0).any() or (b < 0).any() or (a == b).any():
        raise QueryError("a stored code pair names a code the study's sources do not carry")
    joint = np.zeros((n_codes, n_codes), dtype=np.int64)
    joint[a, b] = joint[b, a] = pairs["passages"].to_numpy(dtype=np.int64)
    joint[np.diag_indices(n_codes)] = np.asarray(by_source.sum(axis=0)).ravel()
    return _counted_table("segment", codes, sources, by_source, joint, by_source, np.arange(len(sources)), None,
                          unit_weight=pd.to_numeric(sources["passages"]).to_numpy(dtype=np.int64))


def _stored_passage_table(kg: GraphReader, study_id: str, codes: pd.DataFrame | None,
                          unit: str) -> UnitTable | None:
    """The unit table of the study's analysis codings from its stored passages; None when the study has none
    stored (loaded by an mmkg before them) or a coding's code is not among `codes`."""
    (codes_cypher, params), (codings_cypher, codings_params), (sources_cypher, _), (loose_cypher, _), \
        *regions_fetch = passage_statements(study_id, regions=unit == "segment")
    sources = kg.cypher(sources_cypher, params)
    first_passage = pd.to_numeric(sources["first_passage"])
    if not len(sources) or first_passage.isna().any():
        return None
    codes = _sorted_codes(kg, study_id, codes)
    code_keys, packed, width = _packed_codings(kg, (codes_cypher, params), (codings_cypher, codings_params))
    clique_rows = packed >= 0
    passage_of_row, clique_code_key = split_keys(packed if clique_rows.all() else packed[clique_rows], width)
    loose_segment_key, loose_code_key = split_keys(-2 - packed[packed <= -2], width)
    code_of_clique_row = _code_of_key(clique_code_key, code_keys, codes)
    code_of_loose_row = _code_of_key(loose_code_key, code_keys, codes)
    if (code_of_clique_row < 0).any() or (code_of_loose_row < 0).any():
        return None
    loose = kg.cypher(loose_cypher, params)
    loose_passage = loose["passage"].to_numpy(dtype=np.int64)
    n_passages = max(int(passage_of_row.max(initial=-1)), int(loose_passage.max(initial=-1))) + 1
    # every passage's source: each source's passages are numbered on from its first_passage
    first = first_passage.to_numpy(dtype=np.int64)
    has = np.flatnonzero(first >= 0)
    has = has[np.argsort(first[has], kind="stable")]
    per_source = np.diff(np.append(first[has], n_passages))
    if (per_source < 0).any():  # (numbers the study's codings do not reach: not what a load writes)
        return None
    source_of_passage = np.repeat(has, per_source)
    if unit != "segment":  # each coding's source is its passage's
        segment_passage = _lookup(loose_segment_key, loose["segment"])
        if (segment_passage < 0).any():
            raise QueryError("a coded segment of a passage has no position in the graph")
        source_of_row = source_of_passage[np.concatenate([passage_of_row, loose_passage[segment_passage]])]
        return _sources_table(source_of_row, np.concatenate([code_of_clique_row, code_of_loose_row]), sources,
                                  codes, unit)
    # the overlapping selections of the passages whose selections do not all overlap, from their positions
    # (each passage's segments grouped as a source's would be: they overlap none outside it)
    segments = pd.DataFrame({"source": loose_passage, "segment": loose["segment"].to_numpy(dtype=np.int64), **{
        c: pd.to_numeric(loose[c]).to_numpy(dtype=np.float64, na_value=np.nan) for c in ("start", "end")}})
    [(regions_cypher, _)] = regions_fetch
    regions = kg.cypher(regions_cypher, params)
    if len(regions):
        at = _lookup(regions["segment"], segments["segment"])
        for c in ("x", "y", "width", "height"):
            segments[c] = np.nan
            segments.loc[at[at >= 0], c] = pd.to_numeric(regions[c]).to_numpy(dtype=np.float64)[at >= 0]
    position_of_row = _lookup(loose_segment_key, segments["segment"])
    if (position_of_row < 0).any():
        raise QueryError("a coded segment of a passage has no position in the graph")
    segment_of_row, position = _renumber(position_of_row, len(segments))
    found = _passages(segments, position, loose_passage[position], segment_of_row, "segment", 0.0)
    # the cliques' incidence and XᵀX; the others' incidence in the same rows (their stored passages) and their
    # pair-by-pair count
    n_codes = len(codes)
    cliques = _incidence(passage_of_row, code_of_clique_row, n_passages, n_codes)
    others = _incidence(found.source[found.passage[found.selection_of_row]], code_of_loose_row, n_passages, n_codes)
    joint = _gram(cliques) if n_codes else np.zeros((0, 0), np.int64)
    if len(found.clique) and n_codes:
        joint = joint + _loose_joint(found.selection_of_row, code_of_loose_row, found.passage, found.clique,
                                     found.pairs, n_codes)
    return _passages_table(cliques + others, joint, source_of_passage, sources, codes, "segment")


def fetch_codings(kg: GraphReader, study_id: str, unit: str, coder: str = "", proximity: float = 0.0,
                  codes: pd.DataFrame | None = None
                  ) -> tuple[np.ndarray, pd.Series, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """What a unit table is counted from: each chosen coding's code (its position in the returned `codes`,
    -1: none of them) and segment, the segments, the sources and the codes (sorted)."""
    _check_unit(unit)
    if proximity < 0:
        raise QueryError(f"parameter 'proximity' must not be negative, got {proximity}")
    if proximity and unit != "segment":
        raise QueryError("parameter 'proximity' applies to the segment unit only")
    codes = _sorted_codes(kg, study_id, codes)
    coders = [c for c in normalise_coders(coder).split(",") if c]
    (codes_cypher, params), (codings_cypher, codings_params), (sources_cypher, _), (segments_cypher, _), \
        *positions = unit_statements(study_id, coders, positions=unit in SEGMENT_UNITS)
    code_keys, packed, width = _packed_codings(kg, (codes_cypher, params), (codings_cypher, codings_params))
    segment_of_row, key_of_code = split_keys(_non_negative(packed), width)  # -1: not an analysis coding
    code_of_row = _code_of_key(key_of_code, code_keys, codes)
    sources = kg.cypher(sources_cypher, params)
    width = key_width(sources["source"].to_numpy())
    packed = kg.cypher(segments_cypher, {**params, "width": width})["segment_source"].to_numpy(dtype=np.int64)
    segment_key, source_key = split_keys(_non_negative(packed), width)  # -1: its source is none of `sources`
    segments = pd.DataFrame({"source": source_key, "segment": segment_key}, copy=False)
    if positions:
        (regions_cypher, _), (ranges_cypher, _) = positions
        ranges = kg.cypher(ranges_cypher, params)
        row = _lookup(segments["segment"], ranges["segment"])
        if (row < 0).any():
            raise QueryError("a segment of a source has no position in the graph")
        columns = {c: pd.to_numeric(ranges[c]).to_numpy(dtype=np.float64, na_value=np.nan)[row]
                   for c in ("start", "end")}
        regions = kg.cypher(regions_cypher, params)
        at = _lookup(regions["segment"], segments["segment"])
        for c in ("x", "y", "width", "height") if len(regions) else ():  # (none: `_geometry` reads NaN)
            columns[c] = np.full(len(segments), np.nan)
            columns[c][at[at >= 0]] = pd.to_numeric(regions[c]).to_numpy(dtype=np.float64, na_value=np.nan)[at >= 0]
        segments = segments.assign(**columns)
    return code_of_row, pd.Series(segment_of_row, name="segment"), segments, sources, codes


def _sorted_codes(kg: GraphReader, study_id: str, codes: pd.DataFrame | None) -> pd.DataFrame:
    """`codes` (default: the study's code index) in the unit table's order."""
    codes = _codes(kg, study_id) if codes is None else codes
    return codes.sort_values(["study_id", "codebook", "code_id"]).reset_index(drop=True)


def _packed_codings(kg: GraphReader, code_statement: tuple[str, dict], codings_statement: tuple[str, dict]
                    ) -> tuple[pd.DataFrame, np.ndarray, int]:
    """(the code keys, the codings fetch's packed integers, the width they were packed with): the codings are
    packed beside the largest code key, so the code keys come first (no codes: no
    codings)."""
    code_keys = kg.cypher(*code_statement)
    if not len(code_keys):
        return code_keys, np.zeros(0, dtype=np.int64), 1
    width = key_width(code_keys["code"].to_numpy())
    cypher, params = codings_statement
    return code_keys, kg.cypher(cypher, {**params, "width": width}).iloc[:, 0].to_numpy(dtype=np.int64), width


def _code_of_key(keys: np.ndarray, code_keys: pd.DataFrame, codes: pd.DataFrame) -> np.ndarray:
    """Each code key's row in `codes` (-1: a key not among `code_keys`, or its code not among `codes`)."""
    position_of_key = _lookup(code_keys["code_uid"], codes["code_uid"])
    return np.append(position_of_key, -1)[_lookup(keys, code_keys["code"])]  # (-1 reads the appended -1)


def _non_negative(values: np.ndarray) -> np.ndarray:
    """`values` without its negative entries (the array itself when there are none: no copy)."""
    return values[values >= 0] if (values < 0).any() else values


def concept_unit_table(code_of_row: np.ndarray, segment_of_coding: pd.Series, segments: pd.DataFrame,
                       sources: pd.DataFrame, codes: pd.DataFrame, links: pd.DataFrame, unit: str,
                       pooled: bool = False) -> UnitTable:
    """The unit table of concepts: every coding counts for each concept its code maps to, then the one counter
    (`_unit_table`, as for codes) counts units of concepts.  `links`: code_uid, concept, label, kind (the
    mappings that count); `pooled`: the units of every study are counted together (study '*').  Concepts of
    one study form one book: N is the units in sources of a kind that carries mapped codings."""
    study_of_code = codes["study_id"].astype(str)
    code_of_link = _lookup(links["code_uid"], codes["code_uid"])
    links = links.assign(study_id="*" if pooled else study_of_code.to_numpy()[code_of_link])[code_of_link >= 0]
    code_of_link = code_of_link[code_of_link >= 0]
    concepts = (links.drop_duplicates(["study_id", "concept"]).sort_values(["study_id", "concept"])
                .reset_index(drop=True)[["study_id", "concept", "label", "kind"]].assign(codebook=""))
    key = concepts["study_id"] + "\x00" + concepts["concept"]
    concept_of_link = _lookup(links["study_id"] + "\x00" + links["concept"], key)
    # each coding row becomes one row per concept of its code (codes without a counted mapping drop out)
    order = np.argsort(code_of_link, kind="stable")
    per_code = np.bincount(code_of_link, minlength=len(codes))
    first = np.cumsum(per_code) - per_code
    mapped = code_of_row >= 0
    rows = np.flatnonzero(mapped)
    repeats = per_code[code_of_row[rows]]
    row = np.repeat(rows, repeats)
    within = np.arange(int(repeats.sum())) - np.repeat(np.cumsum(repeats) - repeats, repeats)
    concept_of_row = concept_of_link[order][first[code_of_row[row]] + within]
    if pooled:
        sources = sources.assign(study_id="*")
    return _unit_table(concept_of_row.astype(np.int64), segment_of_coding.iloc[row].reset_index(drop=True),
                       segments, sources, concepts, unit, 0.0)


def _pair_frame(table: UnitTable, pairs: pd.DataFrame) -> pd.DataFrame:
    codes = table.codes
    a, b = pairs["a"].to_numpy(), pairs["b"].to_numpy()

    def of(column: str, which: np.ndarray) -> pd.Series:  # the codes' labels, only for the pairs returned
        return codes[column].take(which).reset_index(drop=True)
    out = pd.DataFrame({"study_id": of("study_id", a), "unit": table.unit,
                        "codebook_a": of("codebook", a), "code_a": of("code_id", a), "label_a": of("label", a),
                        "codebook_b": of("codebook", b), "code_b": of("code_id", b), "label_b": of("label", b)})
    for column in pair_columns()[len(PAIR_KEY_COLUMNS):]:
        out[column] = pairs[column].to_numpy()
    return out


# ------------------------------------------------------------------------------------------- the steps
def _cooccurrence(kg, named, params: dict, options: dict) -> pd.DataFrame:
    _check_unit(options["unit"])
    _check_nonnegative(options, "min_count", "fisher_max_count", "imbalance_ratio", "proximity")
    everything = _codes(kg, params["study_id"])
    table = fetch_unit_table(kg, params["study_id"], options["unit"], params["coder"], options["proximity"],
                             codes=everything)
    codes = table.codes
    chosen = _restrict(codes, options["codebook"], options["group"])
    mask = codes["code_uid"].isin(chosen["code_uid"]).to_numpy()
    focus = resolve_codes(chosen, options["code_a"], "code_a") if options["code_a"] else None
    partner = resolve_codes(chosen, options["code_b"], "code_b") if options["code_b"] else None
    if focus is None and partner is not None:
        focus, partner = partner, None

    def as_mask(m):
        return None if m is None else codes["code_uid"].isin(chosen.loc[m, "code_uid"]).to_numpy()

    pairs = cooccurrence_table(table, mask=mask, focus=as_mask(focus), partner=as_mask(partner),
                               min_count=options["min_count"], fisher_max_count=options["fisher_max_count"],
                               imbalance_ratio=options["imbalance_ratio"])
    return _pair_frame(table, pairs.iloc[_strongest_first(table.codes, pairs)])


def _strongest_first(codes: pd.DataFrame, pairs: pd.DataFrame) -> np.ndarray:
    """The order of `pairs` by n_ab, then c-coefficient (both descending, a missing one last), then codebook
    and code id of a, then of b — sorted on integers: each code's rank among the codes' (codebook, code id)."""
    keys = (codes["codebook"].astype(str) + "\x00" + codes["code_id"].astype(str)).to_numpy()
    rank = pd.factorize(keys, sort=True)[0]  # ('\x00' sorts below every character: codebook first)
    a, b = pairs["a"].to_numpy(), pairs["b"].to_numpy()
    strength = -pairs["c_coefficient"].to_numpy(dtype=np.float64)
    strength[np.isnan(strength)] = np.inf
    return np.lexsort((rank[b], rank[a], strength, -pairs["n_ab"].to_numpy()))


def _neighbourhood(kg, named, params: dict, options: dict) -> pd.DataFrame:
    _check_unit(options["unit"])
    _check_nonnegative(options, "min_count", "limit", "proximity")
    metric = resolve_metric(options["rank_by"])
    if metric is None:
        raise QueryError(f"parameter 'rank_by' must be one of {', '.join(metric_names())}, "
                         f"got '{options['rank_by']}'")
    everything = _codes(kg, params["study_id"])
    # '' only when the study has no codings to choose its most frequent code from (`mmkg.api.STUDY_DEFAULTS`)
    focus_codes = everything[resolve_codes(everything, options["code"])] if options["code"] else everything.iloc[:0]
    neighbours = _restrict(everything, options["codebook"], "")
    table = fetch_unit_table(kg, params["study_id"], options["unit"], params["coder"], options["proximity"],
                             codes=everything)
    uid = table.codes["code_uid"]
    pairs = cooccurrence_table(table, focus=uid.isin(focus_codes["code_uid"]).to_numpy(),
                               partner=uid.isin(neighbours["code_uid"]).to_numpy(),
                               min_count=max(options["min_count"], 1))
    out = _pair_frame(table, pairs)
    out = out.sort_values([metric.column, "n_ab", "codebook_b", "code_b"],
                          ascending=[metric.ascending, False, True, True], ignore_index=True, na_position="last")
    return out.head(options["limit"]) if options["limit"] else out


def _shared_goal_pairs(kg, named, params: dict, options: dict) -> pd.DataFrame:
    units = UNITS if options["unit"] in ("", "all") else (options["unit"],)
    for unit in units:
        _check_unit(unit)
    pairs = kg.rows(named.name, **params)
    columns = ["study_id", "goal", "concept_a", "concept_b", "unit", "codebook_a", "code_a", "label_a",
               "codebook_b", "code_b", "label_b", "n_units", "n_a", "n_b", "n_ab", "c_coefficient"]
    if pairs.empty:
        return pd.DataFrame(columns=columns)
    frames = []
    for unit in units:
        table = fetch_unit_table(kg, params["study_id"], unit, options["coder"])
        position = pd.Index(table.codes["code_uid"])
        counts = table.pairs(position.get_indexer(pairs["code_uid_a"]), position.get_indexer(pairs["code_uid_b"]))
        frame = pairs.assign(unit=unit, **{k: v for k, v in counts.items()})
        jaccard = METRICS["c_coefficient"].formula  # the one definition (mmkg.metrics)
        frame["c_coefficient"] = np.asarray(jaccard(*(frame[c].to_numpy(dtype=np.int64)  # type: ignore[misc]
                                                      for c in ("n_units", "n_a", "n_b", "n_ab"))), dtype=float)
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    out["_unit_order"] = out["unit"].map({u: i for i, u in enumerate(UNITS)})
    out = out.sort_values(["study_id", "concept_a", "concept_b", "codebook_a", "code_a", "codebook_b", "code_b",
                           "_unit_order"], ignore_index=True)
    return out[columns]


def _agreement(kg, named, params: dict, options: dict) -> pd.DataFrame:
    if options["level"] not in ("all", "codebook", "code"):
        raise QueryError(f"parameter 'level' must be all, codebook or code, got '{options['level']}'")
    codings = kg.rows(named.name, **params)
    studies = kg.query("studies")
    if params["study_id"] != EVERY_STUDY:
        kg.require_study(params["study_id"])
        studies = studies[studies["study_id"] == params["study_id"]]
    codes = _codes(kg, params["study_id"])
    if options["codebook"]:
        codes = _restrict(codes, options["codebook"], "")
    segments = kg.query("selections", study_id=params["study_id"])
    frames = []
    for study in studies.itertuples():
        mine = codings[codings["study_id"] == study.study_id]
        coders = _compared_coders(sorted(mine["coder"].unique()), study.analysis_coder or "", options)
        if coders is None:
            continue
        mine = mine[mine["coder"].isin(coders)]
        mine = mine.assign(unit=agreement_passages(mine, segments))
        frames.append(agreement_table(mine, codes[codes["study_id"] == study.study_id], coders))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=AGREEMENT_COLUMNS)
    if options["level"] != "all":
        out = out[out["level"] == options["level"]].reset_index(drop=True)
    return out


def _compared_coders(present: list[str], analysis_coder: str, options: dict) -> list[str] | None:
    chosen = [c.strip() for c in options["coders"].split(",") if c.strip()] if options["coders"] else \
        [c for c in present if c != analysis_coder]
    for name in ("coder_a", "coder_b"):
        if options[name]:
            chosen = [options[name]] + [c for c in chosen if c != options[name]] if name == "coder_a" else \
                chosen[:1] + [options[name]] + [c for c in chosen[1:] if c != options[name]]
    unknown = [c for c in chosen if c not in present]
    if unknown and (options["coders"] or options["coder_a"] or options["coder_b"]):
        raise NotFoundError(f"no coder(s) {', '.join(unknown)} (coders: {', '.join(present) or 'none'})")
    if len(chosen) < 2:
        if options["coders"] or options["coder_a"] or options["coder_b"]:
            raise QueryError(f"agreement needs two coders; got {', '.join(chosen) or 'none'}")
        return None
    return chosen


def _segment_passages(kg, named, params: dict, options: dict) -> pd.DataFrame:
    """The `segments` rows with `passage`: the passage (overlapping selections of one source, `mmkg.overlap`)
    each row belongs to among the rows returned, named by its source and first position — for a pair of codes,
    one passage per co-occurrence, however many selections the tool wrote for it."""
    from mmkg.overlap import overlapping_pairs, passages, selections

    frame = kg.rows(named.name, **params)
    if frame.empty:
        return frame.assign(passage=pd.Series(dtype=object))
    source = pd.factorize(frame["source_id"])[0]
    segment = pd.factorize(frame["segment_id"])[0]
    geometry = frame[["start", "end", "x", "y", "width", "height"]].apply(pd.to_numeric, errors="coerce")
    chosen = selections(source, segment, geometry.to_numpy(dtype=np.float64))
    labels = passages(chosen, overlapping_pairs(chosen))[chosen.of_row]
    first = pd.DataFrame({"label": labels, "source_id": frame["source_id"], "segment_id": frame["segment_id"],
                          "start": geometry["start"], "x": geometry["x"], "y": geometry["y"]})
    names = {}
    for label, rows in first.groupby("label", sort=False):
        position = rows["start"].min() if rows["start"].notna().any() else rows["x"].min()
        where = f"{position:g}" if pd.notna(position) else rows["segment_id"].min()
        names[label] = f"{rows['source_id'].iloc[0]}@{where}"
    return frame.assign(passage=[names[label] for label in labels])


CONCEPT_PAIR_COLUMNS = ["study_id", "unit", "concept_a", "label_a", "kind_a", "concept_b", "label_b", "kind_b"]


def _concept_cooccurrence(kg, named, params: dict, options: dict) -> pd.DataFrame:
    """Concept pairs counted like code pairs: the codes' codings stand for the concepts they map to."""
    _check_unit(options["unit"])
    _check_nonnegative(options, "min_count")
    links = kg.rows(named.name, **params)
    fetched = fetch_codings(kg, params["study_id"], options["unit"])
    table = concept_unit_table(*fetched, links, options["unit"], pooled=options["pooled"])
    pairs = cooccurrence_table(table, min_count=max(options["min_count"], 1))
    concepts = table.codes
    a, b = concepts.loc[pairs["a"]].reset_index(drop=True), concepts.loc[pairs["b"]].reset_index(drop=True)
    out = pd.DataFrame({"study_id": a["study_id"], "unit": options["unit"],
                        "concept_a": a["concept"], "label_a": a["label"], "kind_a": a["kind"],
                        "concept_b": b["concept"], "label_b": b["label"], "kind_b": b["kind"]},
                       columns=CONCEPT_PAIR_COLUMNS)
    for column in pair_columns()[len(PAIR_KEY_COLUMNS):]:
        out[column] = pairs[column].to_numpy()
    return out.sort_values(["study_id", "n_ab", "concept_a", "concept_b"], ascending=[True, False, True, True],
                           ignore_index=True)


ANALYSES: dict[str, Callable] = {
    "concept_cooccurrence": _concept_cooccurrence,
    "segments": _segment_passages,
    "cooccurrence": _cooccurrence,
    "neighbourhood": _neighbourhood,
    "shared_goal_pairs": _shared_goal_pairs,
    "agreement": _agreement,
}


def run_analysis(kg, named, params: dict, options: dict) -> pd.DataFrame:
    """Run the statement of `named` and its analysis step; returns the result frame."""
    return ANALYSES[named.analysis](kg, named, params, options)
