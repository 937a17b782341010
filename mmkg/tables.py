"""The normalised, in-memory form of one study: what every reader produces and the store writes.

Every reader (study folder, codings CSV, REFI-QDA) returns a `StudyTables`; `mmkg.loader.validate`
checks it, and the store writes it all or nothing.  Column lists below are the contract.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

SOURCE_KINDS = ("interview", "drawing", "other")
TEXT = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' `str` on Arrow's strings: the tables' text columns
MATCH_TYPES = ("exact", "close", "broad", "narrow", "related")
ATTRIBUTE_TYPES = ("string", "int", "float", "bool")

COLUMNS: dict[str, list[str]] = {
    "groups": ["codebook", "group_id", "label", "parent_group_id"],
    "codes": ["codebook", "code_id", "label", "group_id", "parent_code_id", "codable",
              "preferred_label", "definition"],
    "participants": ["participant_id", "label"],
    "sources": ["source_id", "participant_id", "kind", "title"],
    "segments": ["segment_id", "source_id", "start", "end", "x", "y", "width", "height",
                 "synthetic", "text", "text_section"],
    "codings": ["segment_id", "codebook", "code_id", "coder"],
    "concept_map": ["codebook", "code_id", "concept", "match", "note"],
}
REQUIRED_COLUMNS: dict[str, list[str]] = {
    "groups": ["codebook", "group_id", "label"],
    "codes": ["codebook", "code_id", "label", "group_id"],
    "participants": ["participant_id"],
    "sources": ["source_id", "participant_id", "kind"],
    "segments": ["segment_id", "source_id"],
    "codings": ["segment_id", "codebook", "code_id", "coder"],
    "concept_map": ["codebook", "code_id", "concept", "match"],
}


@dataclass
class StudyMeta:
    """Study metadata (`study.json`)."""

    id: str
    title: str = ""
    description: str = ""
    citation: str = ""
    provenance: str = ""
    codebooks: list[str] = field(default_factory=list)
    analysis_coder: str = ""
    participant_attributes: dict[str, str] = field(default_factory=dict)
    origin: str = ""  # the file or folder it was read from, for messages


@dataclass
class StudyTables:
    """One study as DataFrames whose columns follow `COLUMNS` (participants may carry attribute columns).

    Cells are strings or missing (None or NA) after reading; `mmkg.loader.validate.validate` converts types and
    raises `ValidationError` listing every problem with file, row and column.
    `files` maps each table name to the file (or archive member) it came from, for messages.
    `warnings` collects non-fatal remarks of readers (unknown XML elements, missing media …).
    A study folder must have rows in every table; `allow_empty` lifts that for exchange formats.
    `derived_references` names references (`table.column`) that hold by construction because the reader
    built the referenced table from the referencing rows; validation does not look those up again.
    """

    meta: StudyMeta
    groups: pd.DataFrame
    codes: pd.DataFrame
    participants: pd.DataFrame
    sources: pd.DataFrame
    segments: pd.DataFrame
    codings: pd.DataFrame
    concept_map: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=COLUMNS["concept_map"]))
    files: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    allow_empty: bool = False  # True for formats where an empty table is legitimate (a REFI-QDA codebook)
    derived_references: frozenset[str] = frozenset()

    def table(self, name: str) -> pd.DataFrame:
        return getattr(self, name)


def empty_table(name: str) -> pd.DataFrame:
    """An empty DataFrame with the contract's columns for table `name`."""
    return pd.DataFrame({c: pd.Series(dtype="object") for c in COLUMNS[name]})


def release_freed_heap() -> None:
    """Hand the memory the C library's allocator holds free back to the system, after large tables were dropped.

    glibc keeps what Arrow and pandas free in per-thread arenas (~300 MB after reading and validating 10^6
    codings) until asked; a no-op where there is no glibc."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        pass


def categorical(codes: np.ndarray, categories: pd.Index | pd.api.extensions.ExtensionArray) -> pd.Categorical:
    """A Categorical of `categories`, which the caller made distinct (Arrow's dictionaries, factorized ids),
    with codes -1 for missing. pandas would check that they are distinct with a hash table holding a Python
    string per category, and keep it: ~1.4 GB at the peak for the segment ids and offsets of a 10^7-coding
    table, and seconds. `CategoricalDtype._from_fastpath` (pandas 1-3, private) skips that check; without it
    the public constructor checks."""
    from_fastpath = getattr(pd.CategoricalDtype, "_from_fastpath", None)
    if from_fastpath is None:
        return pd.Categorical.from_codes(codes, categories=categories)
    return pd.Categorical.from_codes(codes, dtype=from_fastpath(pd.Index(categories), ordered=False))


def plain_text(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with its Categorical columns (repeated values kept once) as plain `TEXT` columns."""
    return frame.astype({c: TEXT for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)})
