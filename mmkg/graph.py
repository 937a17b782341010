"""Turning validated tables into the node and relationship rows of the property graph (see `mmkg.schema`)."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mmkg import overlap
from mmkg.code_pairs import code_rows, counted_keys, distinct_keys, loose_pairs, unit_pairs
from mmkg.models import GraphRows, ValidStudy
from mmkg.schema import NODE_BY_LABEL, REL_BY_TYPE, STUDY_COUNTS
from mmkg.tables import categorical, plain_text, release_freed_heap


def uid(study_id: str, kind: str, *parts) -> pd.Series | str:
    """Study-scoped unique id, e.g. `founding/code/interview/A.3`. When a part is a Categorical the ids are a
    Categorical too, each distinct id built once (a codings table names a few codes a million times)."""
    series = [p for p in parts if isinstance(p, pd.Series)]
    if not series:
        return "/".join([study_id, kind, *map(str, parts)])
    if any(isinstance(p.dtype, pd.CategoricalDtype) for p in series):
        return _categorical_uid(study_id, kind, parts, series[0].index)
    text = pa.large_string()
    arrays = [pa.Array.from_pandas(p.astype(str), type=text) if isinstance(p, pd.Series) else pa.scalar(str(p), text)
              for p in parts]
    joined = pc.binary_join_element_wise(pa.scalar(f"{study_id}/{kind}", text), *arrays, pa.scalar("/", text))
    return pd.Series(pd.arrays.ArrowExtensionArray(joined), index=series[0].index)


def _categorical_uid(study_id: str, kind: str, parts: tuple, index: pd.Index) -> pd.Series:
    """`uid` of the distinct combinations of the parts' values, one integer code per row."""
    if len(parts) == 1:  # the categories are the distinct values
        part = parts[0]
        built = uid(study_id, kind, pd.Series(part.cat.categories.array))
        row_codes = part.cat.codes.to_numpy()
    else:
        combined = np.zeros(len(index), dtype=np.int64)
        for part in parts:
            if isinstance(part, pd.Series):
                codes, values = pd.factorize(part.cat.codes.to_numpy() if isinstance(part.dtype, pd.CategoricalDtype)
                                             else part.to_numpy(), use_na_sentinel=False)
                combined = pd.factorize(combined * len(values) + codes)[0]
        row_codes, distinct = pd.factorize(combined)
        first_row = np.empty(len(distinct), dtype=np.int64)
        first_row[row_codes[::-1]] = np.arange(len(row_codes))[::-1]
        built = uid(study_id, kind, *(p.iloc[first_row].astype(str).reset_index(drop=True)
                                      if isinstance(p, pd.Series) else p for p in parts))
    # ids joined from parts that hold '/' may coincide: one category each
    id_codes, ids = pd.factorize(pd.Series(built).astype(str))
    codes = np.where(row_codes < 0, -1, id_codes[row_codes]) if len(ids) else row_codes
    return pd.Series(categorical(codes, ids), index=index)


def _repeated(value: str, index: pd.Index) -> pd.Series:
    """One string in every row, stored once."""
    return pd.Series(pd.Categorical.from_codes(np.zeros(len(index), dtype=np.int8), categories=[value]), index=index)


def _nodes(label: str, frame: pd.DataFrame) -> pd.DataFrame:
    columns = NODE_BY_LABEL[label].columns
    return frame[columns].reset_index(drop=True)


def _rels(rel_type: str, frame: pd.DataFrame) -> pd.DataFrame:
    columns = REL_BY_TYPE[rel_type].columns
    return frame[columns].reset_index(drop=True)


def _text(series: pd.Series) -> pd.Series:
    return series.astype(object).where(series.notna(), None)


def study_graph(study: ValidStudy) -> GraphRows:
    """Node and relationship rows for one validated study."""
    s = study.meta.id
    rows = GraphRows()
    rows.nodes["Study"] = pd.DataFrame([{
        "uid": s, "id": s, "title": study.meta.title, "description": study.meta.description,
        "citation": study.meta.citation, "provenance": study.meta.provenance,
        "codebooks": ";".join(study.meta.codebooks), "analysis_coder": study.meta.analysis_coder,
        "origin": study.meta.origin, "study_id": s}])

    p = study.participants
    participant_uid = uid(s, "participant", p["participant_id"])
    rows.nodes["Participant"] = _nodes("Participant", p.assign(
        uid=participant_uid, study_id=s, id=p["participant_id"], label=_text(p["label"])))
    rows.rels["HAS_PARTICIPANT"] = pd.DataFrame({"from": s, "to": participant_uid})

    a = study.attributes
    attribute_uid = uid(s, "attribute", a["participant_id"], a["name"])
    rows.nodes["Attribute"] = _nodes("Attribute", a.assign(
        uid=attribute_uid, study_id=s, value_num=a["value_num"].astype(float)))
    rows.rels["HAS_ATTRIBUTE"] = pd.DataFrame({"from": uid(s, "participant", a["participant_id"]),
                                               "to": attribute_uid})

    src, seg, k = study.sources, study.segments, study.codings
    analysis = (k["coder"] == study.meta.analysis_coder) if study.meta.analysis_coder else \
        pd.Series(True, index=k.index)
    analysis_rows = analysis.to_numpy(dtype=bool)
    segment_of_coding = _positions(k["segment_id"], seg["segment_id"])
    source_of_segment = _positions(seg["source_id"], src["source_id"])
    passage, loose_passage, passages_of_source = analysis_passages(src, seg, k, analysis_rows, segment_of_coding,
                                                                   source_of_segment)
    source_uid = uid(s, "source", src["source_id"])
    coded_code = uid(s, "code", k["codebook"], k["code_id"])
    code_of_coding, code_names = _factorized(coded_code[analysis_rows])
    segment_of_analysis_coding = segment_of_coding[analysis_rows]
    source_of_coding = source_of_segment[segment_of_analysis_coding]
    passage_code, pair_key, pair_count = passage_pairs(
        seg, passage.to_numpy(dtype=np.int64, na_value=-1)[analysis_rows], segment_of_analysis_coding,
        loose_passage, code_of_coding, len(code_names), int(passages_of_source.sum()))
    del segment_of_analysis_coding
    width = max(len(code_names), 1)
    source_of_passage = np.repeat(np.arange(len(src)), passages_of_source)
    source_code_of_passage = source_of_passage[passage_code // width]  # (in place: millions of passages)
    source_code_of_passage *= width
    source_code_of_passage += passage_code % width
    del passage_code, source_of_passage
    rows.rels["CARRIES"], analysis_codings = carried_codes(source_uid, source_of_coding, code_of_coding, code_names,
                                                           source_code_of_passage)
    del source_code_of_passage, code_of_coding, source_of_coding
    release_freed_heap()  # the pairs' arrays, before the rows are built
    rows.rels["COOCCURS_WITH"] = pd.DataFrame({"from": code_names.take(pair_key // width),
                                               "to": code_names.take(pair_key % width), "passages": pair_count})
    first_passage = np.where(passages_of_source > 0, np.cumsum(passages_of_source) - passages_of_source, -1)
    rows.nodes["Source"] = _nodes("Source", src.assign(uid=source_uid, study_id=s, id=src["source_id"],
                                                        title=_text(src["title"]), first_passage=first_passage,
                                                        analysis_codings=analysis_codings,
                                                        passages=passages_of_source))
    rows.rels["HAS_SOURCE"] = pd.DataFrame({"from": uid(s, "participant", src["participant_id"]), "to": source_uid})

    segment_uid = uid(s, "segment", seg["segment_id"])
    rows.nodes["Segment"] = _nodes("Segment", seg.assign(
        uid=segment_uid, study_id=_repeated(s, seg.index), id=seg["segment_id"], start_pos=seg["start"],
        end_pos=seg["end"],
        text=_text(seg["text"]), text_section=_text(seg["text_section"]), loose_passage=loose_passage))
    rows.rels["HAS_SEGMENT"] = pd.DataFrame({"from": uid(s, "source", seg["source_id"]), "to": segment_uid})

    c = study.codes
    code_uid = uid(s, "code", c["codebook"], c["code_id"])
    rows.nodes["Code"] = _nodes("Code", c.assign(
        uid=code_uid, study_id=s, id=c["code_id"], label=_text(c["label"]),
        preferred_label=_text(c["preferred_label"].fillna(c["label"])), definition=_text(c["definition"])))
    rows.rels["IN_GROUP"] = pd.DataFrame({"from": code_uid, "to": uid(s, "group", c["codebook"], c["group_id"])})
    child = c[c["parent_code_id"].notna()]
    rows.rels["SUBCODE_OF"] = pd.DataFrame({"from": uid(s, "code", child["codebook"], child["code_id"]),
                                            "to": uid(s, "code", child["codebook"], child["parent_code_id"])})

    g = study.groups
    group_uid = uid(s, "group", g["codebook"], g["group_id"])
    rows.nodes["CodeGroup"] = _nodes("CodeGroup", g.assign(uid=group_uid, study_id=s, id=g["group_id"]))
    sub = g[g["parent_group_id"].notna()]
    rows.rels["SUBGROUP_OF"] = pd.DataFrame({"from": uid(s, "group", sub["codebook"], sub["group_id"]),
                                             "to": uid(s, "group", sub["codebook"], sub["parent_group_id"])})

    coders = sorted(k["coder"].unique())
    rows.nodes["Coder"] = pd.DataFrame({"uid": [uid(s, "coder", x) for x in coders], "study_id": s, "id": coders})
    rows.rels["HAS_CODER"] = pd.DataFrame({"from": s, "to": rows.nodes["Coder"]["uid"]})
    segment_ids = k["segment_id"]
    if isinstance(segment_uid, pd.Series) and isinstance(segment_uid.dtype, pd.CategoricalDtype) \
            and segment_ids.dtype == seg["segment_id"].dtype:
        # the segments' own categories (a codings table's segments come from its rows): their ids, once
        coded_segment = pd.Series(pd.Categorical.from_codes(segment_ids.cat.codes, dtype=segment_uid.dtype),
                                  index=k.index)
    else:
        coded_segment = uid(s, "segment", segment_ids)
    rows.rels["CODED_AS"] = pd.DataFrame({"from": coded_segment, "to": coded_code,
                                          "coder": k["coder"], "analysis": analysis.astype(bool),
                                          "passage": passage})

    m = study.concept_map
    rows.rels["MAPS_TO"] = pd.DataFrame({"from": uid(s, "code", m["codebook"], m["code_id"]), "to": m["concept"],
                                         "match": m["match"], "note": _text(m["note"])})
    for name, table in STUDY_COUNTS.items():  # the study's metadata: `studies` reads these, never recounts
        rows.nodes["Study"][name] = len(rows.nodes.get(table, rows.rels.get(table, ())))
    for name, frame in rows.nodes.items():
        rows.nodes[name] = _nodes(name, frame)
    for name, frame in rows.rels.items():
        rows.rels[name] = _rels(name, frame)
    return rows


def _positions(values: pd.Series, keys: pd.Series) -> np.ndarray:
    """Row of every value among `keys` (distinct; -1 where absent): Categoricals of one dtype by their codes,
    another Categorical by its categories once."""
    if isinstance(values.dtype, pd.CategoricalDtype) and values.dtype == keys.dtype:
        row_of_code = np.full(len(values.cat.categories) + 1, -1, dtype=np.int64)  # (code -1 reads the last)
        row_of_code[keys.cat.codes.to_numpy()] = np.arange(len(keys))
        return row_of_code[values.cat.codes.to_numpy()]
    index = pd.Index(keys.astype(str) if isinstance(keys.dtype, pd.CategoricalDtype) else keys)
    if isinstance(values.dtype, pd.CategoricalDtype):
        of_category = index.get_indexer(values.cat.categories.astype(index.dtype))
        codes = values.cat.codes.to_numpy()
        return np.where(codes >= 0, np.append(of_category, -1)[codes], -1)
    return index.get_indexer(values)


PASSAGE_CHUNK = 1 << 20  # coded segments whose passages are found at once (sources kept whole): bounds the memory


def analysis_passages(sources: pd.DataFrame, segments: pd.DataFrame, codings: pd.DataFrame, analysis: np.ndarray,
                      segment_of_coding: np.ndarray, source_of_segment: np.ndarray
                      ) -> tuple[pd.Series, pd.Series, np.ndarray]:
    """The passages of the analysis codings at proximity 0 (`mmkg.overlap`) as `mmkg.schema.PASSAGE_COLUMNS`
    stores them: per coding, its passage's number when every two of the passage's selections overlap (-1 when
    not, null for a coding that is not an analysis coding); per segment, its passage's number when they do not
    (else null); per source, the number of its passages.  Passages are numbered from 0 in the order of the
    sources' rows, so each source's follow on from the one before (`Source.first_passage`).  `analysis`: per
    coding, whether it is an analysis coding; `segment_of_coding`: each coding's row of `segments`;
    `source_of_segment`: each segment's row of `sources`."""
    coded = segment_of_coding[analysis]
    present = np.zeros(len(segments), dtype=bool)
    present[coded] = True
    position = np.flatnonzero(present)  # the segments with an analysis coding
    source_of_segment = source_of_segment[position]
    order = np.argsort(source_of_segment, kind="stable")  # source by source, passages found a few at a time
    bounds = np.searchsorted(source_of_segment[order], np.arange(len(sources) + 1))
    passage_of_segment = np.empty(len(position), dtype=np.int64)  # stored numbers
    in_clique = np.empty(len(position), dtype=bool)
    per_source = np.zeros(len(sources), dtype=np.int64)
    numbered, first_source = 0, 0
    while first_source < len(sources):
        last = max(first_source + 1, int(np.searchsorted(bounds, bounds[first_source] + PASSAGE_CHUNK, "right")) - 1)
        last = min(last, len(sources))
        rows = order[bounds[first_source]:bounds[last]]
        first_source = last
        if not len(rows):
            continue
        geometry = np.full((len(overlap.GEOMETRY), len(rows)), np.nan)  # column by column: transposed below
        for i, column in enumerate(overlap.GEOMETRY):
            geometry[i] = segments[column].take(position[rows]).to_numpy(dtype=np.float64, na_value=np.nan)
        selections = overlap.selections(source_of_segment[rows], np.arange(len(rows)), geometry.T, merge=False)
        found = overlap.find_passages(selections, 0.0)
        passage = found.of_selection[selections.of_row]
        source_of_passage = np.zeros(len(found), dtype=np.int64)
        source_of_passage[passage] = source_of_segment[rows]
        stored = np.empty(len(found), dtype=np.int64)  # by source, then as found
        stored[np.lexsort((np.arange(len(found)), source_of_passage))] = numbered + np.arange(len(found))
        passage_of_segment[rows], in_clique[rows] = stored[passage], found.clique[passage]
        per_source += np.bincount(source_of_passage, minlength=len(sources))
        numbered += len(found)
    loose = np.zeros(len(segments), dtype=bool)
    loose[position[~in_clique]] = True
    loose_passage = np.zeros(len(segments), dtype=np.int64)
    loose_passage[position[~in_clique]] = passage_of_segment[~in_clique]
    of_coding = np.searchsorted(position, coded)  # each analysis coding's segment among `position`
    passage = np.zeros(len(codings), dtype=np.int64)
    passage[analysis] = np.where(in_clique[of_coding], passage_of_segment[of_coding], -1)
    return (pd.Series(pd.arrays.IntegerArray(passage, ~analysis), index=codings.index),
            pd.Series(pd.arrays.IntegerArray(loose_passage, ~loose), index=segments.index), per_source)


def _factorized(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """(each value's number, the distinct values): a Categorical by its codes."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy(dtype=np.int64), pd.Index(values.cat.categories)
    codes, names = pd.factorize(values)
    return codes.astype(np.int64), pd.Index(names)


def carried_codes(source_uid: pd.Series, source_of_coding: np.ndarray, code_of_coding: np.ndarray,
                  code_names: pd.Index, source_code_of_passage: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """The CARRIES rows of the analysis codings (`mmkg.schema.CARRIED_COLUMN`, `PAIR_COLUMNS`) — each source
    and each code its codings name, with their number and the number of the source's passages carrying the
    code — and each source's number of codings; the codings given by their source (a row of `source_uid`) and
    code (a position in `code_names`), the passages' codes by `source_code_of_passage`: source times the codes'
    width plus code, one entry per passage and code."""
    width = max(len(code_names), 1)
    keys = source_of_coding.astype(np.int64)
    keys *= width
    keys += code_of_coding
    pair, count = counted_keys(keys, len(source_uid) * width)
    del keys
    in_passages, passages = counted_keys(source_code_of_passage, len(source_uid) * width)
    if not np.array_equal(pair, in_passages):  # every coding is in a passage that carries its code
        raise AssertionError("the passages' codes are not the codings' codes")
    source, code = np.divmod(pair, width)
    carried = pd.DataFrame({"from": pd.Series(source_uid).take(source).to_numpy(),
                            "to": code_names.take(code).to_numpy(), "codings": count, "passages": passages})
    return carried, np.bincount(source_of_coding, minlength=len(source_uid))


def passage_pairs(segments: pd.DataFrame, passage: np.ndarray, segment_of_coding: np.ndarray,
                  loose_passage: pd.Series, code_of_coding: np.ndarray, n_codes: int, n_passages: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The codes of the analysis codings' passages and the code pairs they share (`mmkg.schema.PAIR_COLUMNS`):
    the distinct (passage, code) keys, passage times the codes' width plus code, ascending; every two codes
    a < b that co-occur directly in a passage (as in `mmkg.analysis`: in a passage whose selections do not all
    overlap, on two overlapping selections), as a times the width plus b, with the number of their passages.
    The analysis codings given by their stored passage (`analysis_passages`; -1: one whose selections do not
    all overlap), segment (a row of `segments`) and code; `loose_passage`: per segment, such a passage."""
    width = max(n_codes, 1)
    clique = passage >= 0
    pointer, codes = code_rows(passage[clique], code_of_coding[clique], n_passages, n_codes)
    # the passages whose selections do not all overlap, found again among their own segments (each passage's
    # segments grouped as a source's would be: they overlap none outside it)
    of_segment = loose_passage.to_numpy(dtype=np.int64, na_value=-1)
    loose_segments = np.flatnonzero(of_segment >= 0)
    geometry = np.full((len(overlap.GEOMETRY), len(loose_segments)), np.nan)
    for i, column in enumerate(overlap.GEOMETRY):
        geometry[i] = segments[column].take(loose_segments).to_numpy(dtype=np.float64, na_value=np.nan)
    selections = overlap.selections(of_segment[loose_segments], np.arange(len(loose_segments)), geometry.T,
                                    merge=False)
    found = overlap.find_passages(selections, 0.0)
    loose_rows = ~clique
    selection_of_row = selections.of_row[np.searchsorted(loose_segments, segment_of_coding[loose_rows])]
    loose_keys = distinct_keys(of_segment[segment_of_coding[loose_rows]] * width + code_of_coding[loose_rows],
                               n_passages * width)
    low, high = loose_pairs(selection_of_row, code_of_coding[loose_rows], found.of_selection, found.clique,
                            found.pairs, n_codes)
    chunks = itertools.chain([low[low < high] * width + high[low < high]],
                             (a * width + b for a, b in unit_pairs(pointer, codes)))  # a few million at a time
    counted = [counted_keys(keys, width * width) for keys in chunks]
    pair_key, pair_count = counted_keys(np.concatenate([k for k, _ in counted]), width * width,
                                        weights=np.concatenate([c for _, c in counted]))
    clique_keys = np.repeat(np.arange(n_passages, dtype=np.int64), np.diff(pointer))  # (in place: millions)
    clique_keys *= width
    clique_keys += codes
    del pointer, codes
    passage_code = np.concatenate([clique_keys, loose_keys])
    del clique_keys
    passage_code.sort(kind="stable")  # (two runs: timsort merges them)
    return passage_code, pair_key, pair_count


def plain_columns(rows: GraphRows) -> GraphRows:
    """`rows` with every Categorical column (`study_graph` keeps repeated values once) as plain strings, for a
    store that writes values one by one (Neo4j)."""
    plain = GraphRows()
    for source, target in ((rows.nodes, plain.nodes), (rows.rels, plain.rels)):
        for name, frame in source.items():
            target[name] = plain_text(frame)
    return plain


def ontology_graph() -> GraphRows:
    """Concept nodes and their relationships from the shipped ontology."""
    from mmkg.ontology import concept_tables

    tables = concept_tables()
    rows = GraphRows()
    concepts = tables["concepts"]
    rows.nodes["Concept"] = _nodes("Concept", concepts)
    ext = tables["external_ids"]
    ext_uid = ext["scheme"].str.replace(" ", "_") + ":" + ext["external_id"]
    rows.nodes["ExternalId"] = _nodes("ExternalId", ext.assign(uid=ext_uid).drop_duplicates("uid"))
    rows.rels["EXTERNAL_MATCH"] = pd.DataFrame({"from": ext["concept"], "to": ext_uid, "match": ext["match"]})
    relations = tables["relations"]
    for rel_type in ("BROADER", "CONTROLS", "AFFECTS", "SHARES_GOAL_WITH", "MITIGATES"):
        part = relations[relations["type"] == rel_type]
        frame = pd.DataFrame({"from": part["source"], "to": part["target"]})
        if rel_type == "SHARES_GOAL_WITH":
            frame["goal"] = part["goal"].replace("", np.nan).astype(object).where(part["goal"].notna(), None)
        rows.rels[rel_type] = _rels(rel_type, frame)
    return rows
