"""`duplicated_rows`, which every duplicate check and the codings-table reader rely on, agrees with pandas'
own `DataFrame.duplicated` on random tables: constant columns, missing values, one to four keys, and keys
whose first column does or does not determine the others."""
from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from mmkg.loader.validate import duplicated_rows

# small alphabets make repeats likely; "\x00" and "\x1f" are the key encoding's own markers
VALUES = st.one_of(st.none(), st.sampled_from(["a", "b", "ab", " ", "10", "010"]))
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
    frame = pd.DataFrame(columns, dtype="string" if draw(st.booleans()) else object)
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


@settings(max_examples=300, deadline=None)
@given(tables(), st.booleans())
def test_duplicated_rows_matches_pandas(table, determined_by_first):
    frame, keys = table
    expected = frame.duplicated(subset=keys, keep="first")
    found = duplicated_rows(frame, keys, determined_by_first=determined_by_first)
    assert found.index.equals(frame.index)
    assert found.tolist() == expected.tolist()


@settings(max_examples=200, deadline=None)
@given(determined_tables())
def test_duplicated_rows_when_the_first_key_determines_the_rest(table):
    frame, keys = table
    expected = frame.duplicated(subset=keys, keep="first")
    assert duplicated_rows(frame, keys, determined_by_first=True).tolist() == expected.tolist()
