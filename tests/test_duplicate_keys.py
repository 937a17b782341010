"""`duplicated_rows`, which every duplicate check and the codings-table reader rely on, agrees with pandas'
own `DataFrame.duplicated` on random tables: constant columns, missing values, one to four keys, and keys
whose first column does or does not determine the others; the row codes behind it and behind the unknown-
reference checks are equal exactly when the rows are. Columns are plain strings, objects or Categoricals."""
from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmkg.loader.validate import _row_codes, duplicated_rows

# small alphabets make repeats likely; a joined-string key once confused "\x00" with a missing value and
# ("a\x1fb", "a") with ("a", "b\x1fa")
VALUES = st.one_of(st.none(), st.sampled_from(["a", "b", "ab", " ", "10", "010", "\x00", "a\x1fb", "b\x1fa"]))
COLUMNS = ["k1", "k2", "k3", "k4"]


@st.composite
def tables(draw):
    n_rows = draw(st.integers(0, 40))
    columns = {}
    for name in COLUMNS:
        if draw(st.booleans()):  # a column with one value throughout (possibly missing everywhere)
            columns[name] = [draw(VALUES)] * n_rows
        else:
            columns[name] = draw(st.lists(VALUES, min_size=n_rows, max_size=n_rows))
    # plain strings, Python objects, or Categoricals (the codings-table reader's columns)
    frame = pd.DataFrame(columns, dtype=draw(st.sampled_from(["string", object, "category"])))
    keys = draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=4, unique=True))
    return frame, keys


@st.composite
def determined_tables(draw):
    """Tables whose first key fixes the other keys' values, except where `breaks` says otherwise."""
    frame, keys = draw(tables())
    if len(frame) and draw(st.booleans()):
        first = frame[keys[0]].astype(object).fillna("<missing>")
        for key in keys[1:]:
            frame[key] = frame.groupby(first, sort=False)[key].transform("first")
    return frame, keys


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(tables(), st.booleans())
def test_duplicated_rows_matches_pandas(table, determined_by_first):
    frame, keys = table
    expected = frame.duplicated(subset=keys, keep="first")
    found = duplicated_rows(frame, keys, determined_by_first=determined_by_first)
    assert found.index.equals(frame.index)
    assert found.tolist() == expected.tolist()


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(determined_tables())
def test_duplicated_rows_when_the_first_key_determines_the_rest(table):
    frame, keys = table
    expected = frame.duplicated(subset=keys, keep="first")
    assert duplicated_rows(frame, keys, determined_by_first=True).tolist() == expected.tolist()


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(tables())
def test_row_codes_are_equal_exactly_when_rows_are(table):
    frame, keys = table
    if not len(frame):
        return
    codes = _row_codes([pa.array(frame[key].astype(object), type=pa.large_string()) for key in keys])
    rows = [tuple(frame[key].astype(object).iloc[i] for key in keys) for i in range(len(frame))]
    rows = [tuple(None if pd.isna(value) else value for value in row) for row in rows]
    for i in range(len(rows)):
        for j in range(len(rows)):
            assert (codes[i] == codes[j]) == (rows[i] == rows[j])
