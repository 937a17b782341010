"""Reading a codings table (the `mmkg export codings` format) as a whole study."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from mmkg.errors import LoadError
from mmkg.loader.csv_files import ROW_COLUMN, read_csv_text
from mmkg.loader.validate import duplicated_rows
from mmkg.tables import StudyMeta, StudyTables, plain_text, release_freed_heap

CODINGS_TABLE_COLUMNS = ["study_id", "participant_id", "source_id", "source_kind", "segment_id",
                         "start", "end", "code_id", "codebook", "coder"]
OPTIONAL_COLUMNS = ["code_label", "provenance"]  # as `mmkg export codings` writes them


def read_codings_table(path: Path, study_id: str | None = None, data: bytes | None = None) -> StudyTables:
    """Build a study from one row per coding; participants, sources, segments and codes come from the rows."""
    name = str(path)
    frame = read_csv_text(Path(path), data, categorical=True)  # each column repeats a few values
    missing = [c for c in CODINGS_TABLE_COLUMNS if c not in frame.columns]
    if missing:
        raise LoadError(f"{name}: missing column(s) {', '.join(missing)} "
                        f"(a codings table has: {', '.join(CODINGS_TABLE_COLUMNS)})")
    if len(frame) == 0:
        raise LoadError(f"{name}: has a header but no rows")
    study_ids = frame["study_id"].dropna().unique()
    if study_id is None:
        if len(study_ids) != 1:
            found = ", ".join(map(str, study_ids[:5])) or "none"
            raise LoadError(f"{name}, column study_id: expected one study id in every row, found {found}; "
                            "split the file or pass --study-id")
        study_id = str(study_ids[0])
    coders = set(frame["coder"].dropna().unique())
    codebooks = sorted(frame["codebook"].dropna().unique().tolist())
    notices = frame["provenance"].dropna().unique() if "provenance" in frame.columns else []
    if len(notices) > 1:
        raise LoadError(f"{name}, column provenance: expected one provenance notice for the study, "
                        f"found {len(notices)}")
    meta = StudyMeta(id=study_id, title=study_id, codebooks=codebooks, origin=name,
                     provenance=str(notices[0]) if len(notices) else "",
                     analysis_coder="consensus" if "consensus" in coders else "",
                     description=f"Loaded from the codings table {Path(path).name}")

    # rows that disagree about a segment's source, offsets, participant or kind stay apart, so the
    # validator reports them as duplicates
    segments_of_rows = frame[~duplicated_rows(frame, ["segment_id", "source_id", "start", "end", "participant_id",
                                                       "source_kind"], determined_by_first=True)]
    segments = segments_of_rows[["segment_id", "source_id", "start", "end", "participant_id", "source_kind",
                                 ROW_COLUMN]]
    sources = segments[~duplicated_rows(segments, ["source_id", "participant_id", "source_kind"])]
    participants = sources[~duplicated_rows(sources, ["participant_id"])][["participant_id", ROW_COLUMN]]
    # participants, sources and codes come from distinct rows (few): plain text columns
    participants = plain_text(participants.reset_index(drop=True))
    participants.insert(1, "label", participants["participant_id"])
    sources = plain_text(sources[["source_id", "participant_id", "source_kind", ROW_COLUMN]].rename(
        columns={"source_kind": "kind"}).reset_index(drop=True))
    sources.insert(3, "title", None)
    segments = segments[["segment_id", "source_id", "start", "end", ROW_COLUMN]].reset_index(drop=True)
    codes = plain_text(frame[~duplicated_rows(frame, ["codebook", "code_id"])][
        ["codebook", "code_id", ROW_COLUMN, *(["code_label"] if "code_label" in frame.columns else [])]])
    labels = codes["code_label"] if "code_label" in frame.columns else codes["code_id"]
    codes = codes[["codebook", "code_id", ROW_COLUMN]].assign(label=labels.fillna(codes["code_id"]))
    codes = codes.assign(group_id=codes["codebook"], parent_code_id=None, codable="true").reset_index(drop=True)
    groups = pd.DataFrame({"codebook": codebooks, "group_id": codebooks, "label": codebooks,
                           "parent_group_id": None})
    codings = frame[["segment_id", "codebook", "code_id", "coder", ROW_COLUMN]]  # categorical columns
    files = {table: name for table in ("groups", "codes", "participants", "sources", "segments", "codings")}
    del frame, segments_of_rows
    release_freed_heap()  # the reader's buffers and the columns no table kept
    return StudyTables(meta=meta, groups=groups, codes=codes, participants=participants, sources=sources,
                       segments=segments, codings=codings, files=files,
                       derived_references=frozenset({"codings.segment_id", "codings.code_id", "segments.source_id"}))

