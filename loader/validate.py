"""Validation of a read study: every problem is collected (file, row, column, what) before anything is written."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mmkg.errors import ValidationError
from mmkg.loader.csv_files import ROW_COLUMN
from mmkg.models import ValidStudy
from mmkg.tables import (
    ATTRIBUTE_TYPES,
    COLUMNS,
    MATCH_TYPES,
    REQUIRED_COLUMNS,
    SOURCE_KINDS,
    StudyMeta,
    StudyTables,
    release_freed_heap,
)

STUDY_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
MAX_ROWS_PER_PROBLEM = 10
TRUE_WORDS, FALSE_WORDS = {"true", "1", "yes"}, {"false", "0", "no"}
SYNTHETIC_PARTICIPANT_ATTRIBUTE = "synthetic_participant"


class _Problems:
    """Collects messages of the form `file, row N, column C: what`."""

    def __init__(self, tables: StudyTables):
        self.tables = tables
        self.messages: list[str] = []

    def file(self, table: str) -> str:
        return self.tables.files.get(table, f"{table}.csv")

    def add(self, table: str, message: str) -> None:
        self.messages.append(f"{self.file(table)}: {message}")

    def rows(self, table: str, frame: pd.DataFrame, mask, column: str, describe) -> None:
        """Report each row of `frame[mask]`; `describe(row)` says what is wrong with it."""
        if not mask.any():
            return
        bad = frame[mask]
        for _, row in bad.head(MAX_ROWS_PER_PROBLEM).iterrows():
            self.messages.append(f"{self.file(table)}, {_where(row)}, column {column}: {describe(row)}")
        if len(bad) > MAX_ROWS_PER_PROBLEM:
            self.messages.append(
                f"{self.file(table)}: … and {len(bad) - MAX_ROWS_PER_PROBLEM} more rows with that problem "
                f"in column {column}")


def _where(row) -> str:
    where = row.get("_where")
    if isinstance(where, str) and where:
        return where
    return f"row {row.get(ROW_COLUMN, '?')}"


def _present(series: pd.Series) -> pd.Series:
    return series.notna()


def _check_columns(problems: _Problems, name: str, frame: pd.DataFrame, extra_allowed: bool) -> bool:
    columns = [c for c in frame.columns if c not in (ROW_COLUMN, "_where")]
    missing = [c for c in REQUIRED_COLUMNS[name] if c not in columns]
    if missing:
        problems.add(name, f"missing column(s) {', '.join(missing)} (expected: {', '.join(COLUMNS[name])})")
    unknown = [c for c in columns if c not in COLUMNS[name]]
    if unknown and not extra_allowed:
        problems.add(name, f"unknown column(s) {', '.join(unknown)} (expected: {', '.join(COLUMNS[name])})")
    return not missing


def _complete(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    frame = frame.copy(deep=False)  # columns are replaced, never written in place: the reader's stay as they are
    for column in COLUMNS[name]:
        if column not in frame.columns:
            frame[column] = None
    if ROW_COLUMN not in frame.columns:
        frame[ROW_COLUMN] = range(2, len(frame) + 2)
    return frame


def _parse_bool(problems, name, frame, column, default: bool) -> pd.Series:
    if frame[column].isna().all():
        return pd.Series(default, index=frame.index)
    text = frame[column].astype("string").str.strip().str.lower()
    known = text.isna() | text.isin(TRUE_WORDS | FALSE_WORDS)
    problems.rows(name, frame, ~known, column, lambda r: f"'{r[column]}' is not true or false")
    return text.isin(TRUE_WORDS).where(text.notna(), default).astype(bool)


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_DECIMAL = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")
_NOT_FINITE = re.compile(r"^[+-]?(?:inf|infinity|nan)$", re.IGNORECASE)


def _parse_number(problems, name, frame, column, integer: bool) -> pd.Series:
    """Whole numbers that fit the store's INT64, or finite floats; every other value is reported by row."""
    present = frame[column].notna()
    if not present.any():
        return pd.Series(pd.NA if integer else np.nan, index=frame.index,
                         dtype="Int64" if integer else float)
    series = frame[column]
    categorical = isinstance(series.dtype, pd.CategoricalDtype)
    try:  # the common case, every value well-formed, in Arrow (its int64 cast refuses what does not fit)
        text = pd.Series(series.cat.categories.array) if categorical else series.astype("string")
        arrow = pa.Array.from_pandas(text, type=pa.large_string())
        parsed = pc.cast(pc.utf8_trim_whitespace(arrow), pa.int64() if integer else pa.float64())
        if categorical:  # each distinct value parsed once, then one per row
            codes = series.cat.codes.to_numpy()
            parsed = parsed.take(pa.array(codes, mask=codes < 0))
        if integer or pc.all(pc.fill_null(pc.is_finite(parsed), True)).as_py():
            return pd.Series(parsed.to_pandas(), index=frame.index).astype("Int64" if integer else float)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    parsed = [None if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))
              else _number(str(value), integer) for value in frame[column]]
    bad = pd.Series([isinstance(v, str) for v in parsed], index=frame.index)
    reasons = dict(zip(frame.index, parsed))
    problems.rows(name, frame, bad, column, lambda r: f"'{_shown(r[column])}' {reasons[r.name]}")
    values = [None if isinstance(v, str) else v for v in parsed]
    return pd.Series(values, index=frame.index, dtype="Int64" if integer else float)


def _number(text: str, integer: bool) -> int | float | str | None:
    """The number `text` holds, or a string saying why it holds none the store can keep."""
    text = text.strip()
    if not text:
        return None
    if _NOT_FINITE.match(text):
        return "is not a finite number"
    if not _DECIMAL.match(text):
        return "is not a whole number" if integer else "is not a number"
    value = float(text)
    if not np.isfinite(value):
        return "is not a finite number"
    if not integer:
        return value
    try:
        whole = int(text)  # exact, whatever its size
    except ValueError:
        if not value.is_integer():
            return "is not a whole number"
        whole = int(value)
    if not INT64_MIN <= whole <= INT64_MAX:
        return f"is out of range (whole numbers from {INT64_MIN} to {INT64_MAX})"
    return whole


def _shown(value, limit: int = 60) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _required_values(problems, name, frame, columns) -> None:
    for column in columns:
        series = frame[column]
        if isinstance(series.dtype, pd.CategoricalDtype):  # each distinct value looked at once
            blank_value = pc.utf8_is_space(_text_array(pd.Series(series.cat.categories.array))).to_numpy(
                zero_copy_only=False)
            codes = series.cat.codes.to_numpy()
            blank = (codes < 0) | np.append(blank_value, False)[codes]
        else:
            text = _text_array(series)
            blank = pc.or_kleene(pc.is_null(text), pc.utf8_is_space(text)).to_numpy(zero_copy_only=False)
        problems.rows(name, frame, blank, column, lambda r: "empty, but required")


def _duplicates(problems, name, frame, keys, what) -> None:
    usable = frame[keys].notna().all(axis=1)
    dup = usable & duplicated_rows(frame, keys)
    label = ", ".join(keys)
    problems.rows(name, frame, dup, keys[-1],
                  lambda r: f"duplicate {what} ({label} = {', '.join(str(r[k]) for k in keys)})")


def _text_array(series: pd.Series) -> pa.Array:
    """A column as one contiguous Arrow string array (missing values null)."""
    array = pa.Array.from_pandas(series.astype("string"), type=pa.large_string())
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _constant(column: pa.Array) -> bool:
    if column.null_count:
        return column.null_count == len(column)
    return len(column) == 0 or pc.all(pc.equal(column, column[0])).as_py()


def _value_codes(column: pa.Array) -> tuple[np.ndarray, int]:
    """Integer codes of a column's values (missing is a value of its own) and how many distinct values."""
    encoded = pc.dictionary_encode(column, null_encoding="encode")
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), len(encoded.dictionary)


def _series_codes(series: pd.Series) -> tuple[np.ndarray, int]:
    """`_value_codes` of a column; a Categorical's from its codes, without looking at its strings."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes, uniques = pd.factorize(series.cat.codes.to_numpy(), use_na_sentinel=False)
        return codes.astype(np.int64, copy=False), len(uniques)
    return _value_codes(_text_array(series))


def _row_codes(columns: list[pa.Array]) -> np.ndarray:
    """One integer per row, equal for two rows exactly when all `columns` are (missing counts as a value)."""
    return _combined_codes([_value_codes(column) for column in columns])


def _combined_codes(coded: list[tuple[np.ndarray, int]]) -> np.ndarray:
    """One integer per row from each column's (`_value_codes`), equal for two rows exactly when all columns' are."""
    combined, distinct = coded[0]
    for codes, values in coded[1:]:
        if distinct * values >= 2**62:
            combined, uniques = pd.factorize(combined)
            distinct = len(uniques)
        combined, distinct = combined * values + codes, distinct * values
    return combined


def duplicated_rows(frame: pd.DataFrame, keys: list[str], *, determined_by_first: bool = False) -> pd.Series:
    """True for every row whose `keys` repeat an earlier row's; a missing part counts as a value.

    Columns holding one value throughout are skipped. With `determined_by_first` (a segment id that should fix
    its source and offsets), only the first key is hashed and the others are compared with the values of its
    first row; all keys are hashed when they differ."""
    if determined_by_first:
        duplicated = _duplicated_if_determined(frame, keys)
        if duplicated is not None:
            return duplicated
    coded = []
    for key in keys:
        series = frame[key]
        if isinstance(series.dtype, pd.CategoricalDtype):
            codes, distinct = _series_codes(series)
            if distinct > 1:
                coded.append((codes, distinct))
        else:
            column = _text_array(series)
            if not _constant(column):
                coded.append(_value_codes(column))
    if not coded:
        return pd.Series(np.arange(len(frame)) > 0, index=frame.index)
    return pd.Series(_combined_codes(coded), index=frame.index).duplicated(keep="first")


def _duplicated_if_determined(frame: pd.DataFrame, keys: list[str]) -> pd.Series | None:
    """`duplicated_rows` by the first key alone, or None when some row disagrees with its first row."""
    codes, distinct = _series_codes(frame[keys[0]])
    # dictionary codes count up in order of first appearance, so a row is a first one iff its code is new
    first = codes > np.maximum.accumulate(np.concatenate([[-1], codes[:-1]]))
    if int(first.sum()) != distinct:
        return None
    first_row_of_each = np.flatnonzero(first)[codes]
    for key in keys[1:]:
        series = frame[key]
        if isinstance(series.dtype, pd.CategoricalDtype):  # equal codes: equal values (missing is -1)
            key_codes = series.cat.codes.to_numpy()
            if not np.array_equal(key_codes, key_codes[first_row_of_each]):
                return None
            continue
        values = _text_array(series)
        firsts = values.take(pa.array(first_row_of_each))
        same = pc.or_(pc.fill_null(pc.equal(values, firsts), False), pc.and_(pc.is_null(values), pc.is_null(firsts)))
        if not pc.all(same).as_py():
            return None
    return pd.Series(~first, index=frame.index)


def _dangling(problems, name, frame, keys, target: pd.DataFrame, target_keys, what, column) -> None:
    if f"{name}.{column}" in problems.tables.derived_references:
        return  # the reader built `target` from these very rows
    usable = frame[keys].notna().all(axis=1)
    target = target[target_keys].dropna()
    codes = _row_codes([pa.concat_arrays([_text_array(frame[key]), _text_array(target[target_key])])
                        for key, target_key in zip(keys, target_keys)])
    bad = usable & ~pd.Series(codes[:len(frame)], index=frame.index).isin(codes[len(frame):])
    problems.rows(name, frame, bad, column, lambda r: f"unknown {what} '{r[column]}'"
                  + (f" in codebook '{r['codebook']}'" if "codebook" in keys and column != "codebook" else ""))


def _cycles(problems, name, frame, key_cols, parent_col, what) -> None:
    parent = {}
    for _, row in frame.iterrows():
        if pd.notna(row[parent_col]):
            parent[tuple(row[k] for k in key_cols)] = tuple(row[k] for k in key_cols[:-1]) + (row[parent_col],)
    reported = set()
    for start in parent:
        seen, node = [], start
        while node in parent and node not in seen:
            seen.append(node)
            node = parent[node]
        if node in seen and node not in reported:
            cycle = seen[seen.index(node):]
            reported.update(cycle)
            problems.add(name, f"{what} hierarchy has a cycle: {' → '.join(c[-1] for c in cycle)} → {node[-1]}")


def validate(tables: StudyTables) -> ValidStudy:
    """Check a read study and return typed tables, or raise `ValidationError` listing every problem."""
    problems = _Problems(tables)
    meta = tables.meta
    if not STUDY_ID_PATTERN.match(meta.id or ""):
        problems.messages.append(
            f"{meta.origin or 'study'}: study id '{meta.id}' must be 1–100 letters, digits, '_', '.' or '-'")
    if not meta.codebooks:
        problems.messages.append(f"{meta.origin or 'study'}: no codebooks declared")
    for attr, kind in meta.participant_attributes.items():
        if kind not in ATTRIBUTE_TYPES:
            problems.messages.append(
                f"{meta.origin or 'study'}: participant attribute '{attr}' has unknown type '{kind}' "
                f"(allowed: {', '.join(ATTRIBUTE_TYPES)})")

    shaped = {}
    for name in COLUMNS:
        frame = tables.table(name)
        ok = _check_columns(problems, name, frame, extra_allowed=(name == "participants"))
        if name != "concept_map" and ok and len(frame) == 0 and not tables.allow_empty:
            problems.add(name, "has a header but no rows")
        shaped[name] = _complete(frame, name) if ok else None
    if any(f is None for f in shaped.values()):
        raise _failure(meta, problems)

    groups, codes, participants = shaped["groups"], shaped["codes"], shaped["participants"]
    sources, segments, codings, concept_map = (shaped["sources"], shaped["segments"], shaped["codings"],
                                               shaped["concept_map"])
    codebooks = set(meta.codebooks)

    # groups
    _required_values(problems, "groups", groups, ["codebook", "group_id", "label"])
    for name, frame in (("groups", groups), ("codes", codes), ("codings", codings), ("concept_map", concept_map)):
        problems.rows(name, frame, frame["codebook"].notna() & ~frame["codebook"].isin(codebooks), "codebook",
                      lambda r: f"codebook '{r['codebook']}' is not declared in study.json "
                                f"(declared: {', '.join(sorted(codebooks))})")
    _duplicates(problems, "groups", groups, ["codebook", "group_id"], "group")
    parented = groups[groups["parent_group_id"].notna()]
    _dangling(problems, "groups", parented, ["codebook", "parent_group_id"], groups, ["codebook", "group_id"],
              "parent group", "parent_group_id")
    _cycles(problems, "groups", groups, ["codebook", "group_id"], "parent_group_id", "group")

    # codes
    _required_values(problems, "codes", codes, ["codebook", "code_id", "label"])
    problems.rows("codes", codes, codes["group_id"].isna(), "group_id",
                  lambda r: f"code '{r['code_id']}' is in no group")
    _duplicates(problems, "codes", codes, ["codebook", "code_id"], "code")
    _dangling(problems, "codes", codes, ["codebook", "group_id"], groups, ["codebook", "group_id"],
              "group", "group_id")
    with_parent = codes[codes["parent_code_id"].notna()]
    _dangling(problems, "codes", with_parent, ["codebook", "parent_code_id"], codes, ["codebook", "code_id"],
              "parent code", "parent_code_id")
    _cycles(problems, "codes", codes, ["codebook", "code_id"], "parent_code_id", "code")
    codes["codable"] = _parse_bool(problems, "codes", codes, "codable", default=True)

    # participants and their attributes
    _required_values(problems, "participants", participants, ["participant_id"])
    _duplicates(problems, "participants", participants, ["participant_id"], "participant")
    attribute_columns = [c for c in participants.columns if c not in COLUMNS["participants"]
                         and c not in (ROW_COLUMN, "_where")]
    undeclared_typed = set(meta.participant_attributes) - set(attribute_columns)
    if undeclared_typed:
        problems.add("participants", f"study.json declares attribute(s) {', '.join(sorted(undeclared_typed))} "
                                     "that have no column")
    attributes = []
    for column in attribute_columns:
        kind = meta.participant_attributes.get(column, "string")
        values = participants[column]
        numbers = pd.Series(np.nan, index=participants.index)
        if kind in ("int", "float"):
            numbers = _parse_number(problems, "participants", participants, column, integer=(kind == "int"))
            numbers = numbers.astype(float)
        elif kind == "bool":
            parsed = _parse_bool(problems, "participants", participants, column, default=False)
            values = values.where(values.isna(), parsed.map({True: "true", False: "false"}))
        present = values.notna()
        attributes.append(pd.DataFrame({
            "participant_id": participants.loc[present, "participant_id"], "name": column,
            "value": values[present].astype(str).str.strip(), "value_num": numbers[present], "type": kind}))
    attributes = (pd.concat(attributes, ignore_index=True) if attributes else
                  pd.DataFrame(columns=["participant_id", "name", "value", "value_num", "type"]))
    synthetic_ids = set(attributes.loc[(attributes["name"] == SYNTHETIC_PARTICIPANT_ATTRIBUTE)
                                       & (attributes["value"].str.lower() == "true"), "participant_id"])
    participants_out = pd.DataFrame({
        "participant_id": participants["participant_id"],
        "label": participants["label"].fillna(participants["participant_id"]),
        "synthetic": participants["participant_id"].isin(synthetic_ids)})

    # sources
    _required_values(problems, "sources", sources, ["source_id", "participant_id", "kind"])
    _duplicates(problems, "sources", sources, ["source_id"], "source")
    _dangling(problems, "sources", sources, ["participant_id"], participants, ["participant_id"],
              "participant", "participant_id")
    problems.rows("sources", sources, sources["kind"].notna() & ~sources["kind"].isin(SOURCE_KINDS), "kind",
                  lambda r: f"'{r['kind']}' is not a source kind (allowed: {', '.join(SOURCE_KINDS)})")

    # segments
    _required_values(problems, "segments", segments, ["segment_id", "source_id"])
    _duplicates(problems, "segments", segments, ["segment_id"], "segment")
    _dangling(problems, "segments", segments, ["source_id"], sources, ["source_id"], "source", "source_id")
    for column in ("start", "end"):
        segments[column] = _parse_number(problems, "segments", segments, column, integer=True)
    for column in ("x", "y", "width", "height"):
        segments[column] = _parse_number(problems, "segments", segments, column, integer=False)
    negative = (segments["start"].fillna(0) < 0) | (segments["end"].fillna(0) < 0)
    problems.rows("segments", segments, negative, "start", lambda r: "offsets must not be negative")
    backwards = (segments["start"].notna() & segments["end"].notna()
                 & (segments["end"].fillna(0) < segments["start"].fillna(0)))
    problems.rows("segments", segments, backwards, "end",
                  lambda r: f"end {r['end']} lies before start {r['start']}")
    segments["synthetic"] = _parse_bool(problems, "segments", segments, "synthetic", default=False)

    # codings
    _required_values(problems, "codings", codings, ["segment_id", "codebook", "code_id", "coder"])
    _duplicates(problems, "codings", codings, ["segment_id", "codebook", "code_id", "coder"], "coding")
    _dangling(problems, "codings", codings, ["segment_id"], segments, ["segment_id"], "segment", "segment_id")
    _dangling(problems, "codings", codings, ["codebook", "code_id"], codes, ["codebook", "code_id"],
              "code", "code_id")

    # concept map
    if len(concept_map):
        from mmkg.ontology import resolve_concept

        _required_values(problems, "concept_map", concept_map, ["codebook", "code_id", "concept", "match"])
        _duplicates(problems, "concept_map", concept_map, ["codebook", "code_id", "concept"], "mapping")
        _dangling(problems, "concept_map", concept_map, ["codebook", "code_id"], codes, ["codebook", "code_id"],
                  "code", "code_id")
        problems.rows("concept_map", concept_map,
                      concept_map["match"].notna() & ~concept_map["match"].isin(MATCH_TYPES), "match",
                      lambda r: f"'{r['match']}' is not a SKOS match type (allowed: {', '.join(MATCH_TYPES)})")
        resolved = concept_map["concept"].map(lambda c: resolve_concept(c) if isinstance(c, str) else None)
        problems.rows("concept_map", concept_map, concept_map["concept"].notna() & resolved.isna(), "concept",
                      lambda r: f"'{r['concept']}' is not a concept of the mmkg ontology")
        concept_map["concept"] = resolved

    if problems.messages:
        raise _failure(meta, problems)

    warnings = list(tables.warnings)
    not_codable = codings.merge(codes.loc[~codes["codable"], ["codebook", "code_id"]], on=["codebook", "code_id"]) \
        if not codes["codable"].all() else ()
    if len(not_codable):
        warnings.append(f"{len(not_codable)} codings apply codes marked not codable")
    keep = lambda frame, name: frame[COLUMNS[name]].reset_index(drop=True)  # noqa: E731
    release_freed_heap()  # the checks' temporary columns
    return ValidStudy(meta=meta, groups=keep(groups, "groups"), codes=keep(codes, "codes"),
                      participants=participants_out.reset_index(drop=True), attributes=attributes,
                      sources=keep(sources, "sources"), segments=keep(segments, "segments"),
                      codings=keep(codings, "codings"), concept_map=keep(concept_map, "concept_map"),
                      warnings=warnings)


def _failure(meta: StudyMeta, problems: _Problems) -> ValidationError:
    count = len(problems.messages)
    return ValidationError(
        f"study '{meta.id}' ({meta.origin or 'input'}) is not valid: {count} problem{'s' if count != 1 else ''}; "
        "nothing was written", details=problems.messages)
