"""Coded-segment CSV exports of other QDA tools, read through a documented column mapping.

Supported: **Taguette's highlights export** ("Export highlights" → CSV, one row per highlight and
tag).  Its columns are written by `highlights_csv` in taguette/export.py of
https://gitlab.com/remram44/taguette (mirror github.com/remram44/taguette): `id, document, tag,
content`; a highlight without tags has one row with an empty `tag`.  Newer exports add `tag_parent`,
`tag_full_path` and `tag_description`, used when present.  The mapping onto mmkg's tables is
`TAGUETTE_MAPPING` (see docs/linking-studies.md):

| Taguette column | mmkg |
|---|---|
| `id` | segment_id (one highlight = one segment; no offsets are exported) |
| `document` | source_id and title (kind `interview`); one participant per document, flagged `synthetic_participant` |
| `tag` | code_id and label in codebook `taguette`, group `tags` |
| `content` | segment text |
| `tag_parent` (optional) | parent_code_id (a parent without highlights of its own is added as a code) |
| `tag_description` (optional) | code definition |
| — | coder: the `coder` argument (Taguette does not export who highlighted), default `taguette` |

And **Taguette's codebook export** ("Export codebook" → CSV: `tag, description, number of highlights`): the
tags as codes of codebook `taguette` (group `tags`), `description` as their definitions, with no participants,
sources or codings (the count of highlights is Taguette's, not data); the study is named after the file.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from mmkg.errors import LoadError
from mmkg.loader.csv_files import ROW_COLUMN, read_csv_text
from mmkg.tables import COLUMNS, StudyMeta, StudyTables

TAGUETTE_REQUIRED = ("id", "document", "tag", "content")
TAGUETTE_MAPPING = {"id": "segment_id", "document": "source_id", "tag": "code_id", "content": "text",
                    "tag_parent": "parent_code_id", "tag_description": "definition"}
CODEBOOK, GROUP_ID, GROUP_LABEL = "taguette", "tags", "Taguette tags"
DEFAULT_CODER = "taguette"
SYNTHETIC_PARTICIPANT = "synthetic_participant"


TAGUETTE_CODEBOOK_COLUMNS = ("tag", "description", "number of highlights")


def is_taguette_codebook(columns) -> bool:
    """True for a header with Taguette's codebook-export columns."""
    return set(TAGUETTE_CODEBOOK_COLUMNS) <= {c.strip().lower() for c in columns}


def read_taguette_codebook(path: Path, study_id: str | None = None, data: bytes | None = None) -> StudyTables:
    """A codebook-only study from Taguette's codebook CSV: one code per tag, its description as definition."""
    from mmkg.loader.refi_qda import slugify

    name = str(path)
    frame = read_csv_text(Path(path), data)
    frame = frame.rename(columns={c: c.strip().lower() for c in frame.columns if c != ROW_COLUMN})
    if not is_taguette_codebook(frame.columns):
        raise LoadError(f"{name}: not a Taguette codebook export "
                        f"(needs columns {', '.join(TAGUETTE_CODEBOOK_COLUMNS)})")
    empty = frame[frame["tag"].isna()]
    if len(empty):
        raise LoadError(f"{name}, row {empty[ROW_COLUMN].iloc[0]}, column tag: empty, but required")
    repeated = frame[frame["tag"].duplicated()]
    if len(repeated):
        raise LoadError(f"{name}, row {repeated[ROW_COLUMN].iloc[0]}, column tag: tag '{repeated['tag'].iloc[0]}' "
                        "is listed twice")
    codes = pd.DataFrame({"codebook": CODEBOOK, "code_id": frame["tag"], "label": frame["tag"], "group_id": GROUP_ID,
                          "parent_code_id": None, "codable": "true", "definition": frame["description"],
                          ROW_COLUMN: frame[ROW_COLUMN]})
    groups = pd.DataFrame([{"codebook": CODEBOOK, "group_id": GROUP_ID, "label": GROUP_LABEL,
                            "parent_group_id": None}])
    meta = StudyMeta(id=study_id or slugify(Path(path).stem) or "taguette-codebook", title=Path(path).stem,
                     description=f"Codebook loaded from the Taguette codebook export {Path(path).name}",
                     provenance=f"Taguette codebook export ({Path(path).name}); no codings", codebooks=[CODEBOOK],
                     origin=name)

    def shaped(table, rows):
        columns = COLUMNS[table] + ([ROW_COLUMN] if ROW_COLUMN in rows.columns else [])
        rows = rows.reindex(columns=columns).astype(object).reset_index(drop=True)
        return rows.where(rows.notna(), None)

    return StudyTables(meta=meta, groups=shaped("groups", groups), codes=shaped("codes", codes),
                       participants=shaped("participants", pd.DataFrame()), sources=shaped("sources", pd.DataFrame()),
                       segments=shaped("segments", pd.DataFrame()), codings=shaped("codings", pd.DataFrame()),
                       files={"groups": name, "codes": name}, allow_empty=True,
                       warnings=[f"{name}: a Taguette codebook holds no highlights: codes only, no codings"])


def is_taguette_highlights(columns) -> bool:
    """True for a header with Taguette's highlight-export columns."""
    return set(TAGUETTE_REQUIRED) <= {c.strip() for c in columns}


def read_taguette_highlights(path: Path, study_id: str | None = None, coder: str = DEFAULT_CODER,
                             data: bytes | None = None) -> StudyTables:
    """A study from Taguette's highlights CSV (see the module docstring for the column mapping)."""
    from mmkg.loader.refi_qda import slugify

    name = str(path)
    frame = read_csv_text(Path(path), data)
    if not is_taguette_highlights(frame.columns):
        raise LoadError(f"{name}: not a Taguette highlights export (needs columns {', '.join(TAGUETTE_REQUIRED)})")
    if len(frame) == 0:
        raise LoadError(f"{name}: has a header but no highlights")
    for column in ("id", "document"):
        empty = frame[frame[column].isna()]
        if len(empty):
            raise LoadError(f"{name}, row {empty[ROW_COLUMN].iloc[0]}, column {column}: empty, but required")
    warnings: list[str] = []

    # one highlight is one segment: its document and content must agree across its rows
    first = frame.drop_duplicates("id")
    by_id = first.set_index("id")
    for column in ("document", "content"):
        clash = frame[frame[column].fillna("") != frame["id"].map(by_id[column]).fillna("")]
        if len(clash):
            row = clash.iloc[0]
            raise LoadError(f"{name}, row {row[ROW_COLUMN]}, column {column}: highlight {row['id']} has a different "
                            f"{column} than on row {by_id.loc[row['id'], ROW_COLUMN]}")

    documents = sorted(first["document"].unique())
    participants = pd.DataFrame({"participant_id": documents, "label": documents,
                                 SYNTHETIC_PARTICIPANT: "true"})
    sources = pd.DataFrame({"source_id": documents, "participant_id": documents, "kind": "interview",
                            "title": documents})
    segments = pd.DataFrame({"segment_id": first["id"], "source_id": first["document"], "text": first["content"],
                             "synthetic": "false", ROW_COLUMN: first[ROW_COLUMN]})

    tagged = frame[frame["tag"].notna()]
    untagged = len(first) - tagged["id"].nunique()
    if untagged:
        warnings.append(f"{name}: {untagged} highlight(s) have no tag; kept as segments without codings")
    codes = tagged.drop_duplicates("tag")
    parents = codes["tag_parent"] if "tag_parent" in frame.columns else pd.Series(None, index=codes.index)
    definitions = codes["tag_description"] if "tag_description" in frame.columns else \
        pd.Series(None, index=codes.index)
    code_rows = pd.DataFrame({"codebook": CODEBOOK, "code_id": codes["tag"], "label": codes["tag"],
                              "group_id": GROUP_ID, "parent_code_id": parents.values, "codable": "true",
                              "definition": definitions.values, ROW_COLUMN: codes[ROW_COLUMN].values})
    missing_parents = sorted(set(code_rows["parent_code_id"].dropna()) - set(code_rows["code_id"]))
    if missing_parents:
        warnings.append(f"{name}: parent tag(s) without highlights added as codes: {', '.join(missing_parents)}")
        code_rows = pd.concat([code_rows, pd.DataFrame({
            "codebook": CODEBOOK, "code_id": missing_parents, "label": missing_parents, "group_id": GROUP_ID,
            "parent_code_id": None, "codable": "true", "definition": None})], ignore_index=True)
    codings = tagged.drop_duplicates(["id", "tag"])
    if len(codings) < len(tagged):
        warnings.append(f"{name}: {len(tagged) - len(codings)} repeated (highlight, tag) row(s) kept once")
    codings = pd.DataFrame({"segment_id": codings["id"], "codebook": CODEBOOK, "code_id": codings["tag"],
                            "coder": coder, ROW_COLUMN: codings[ROW_COLUMN]})
    groups = pd.DataFrame([{"codebook": CODEBOOK, "group_id": GROUP_ID, "label": GROUP_LABEL,
                            "parent_group_id": None}])
    warnings.append(f"{name}: Taguette exports no coder and no cases: coder '{coder}', one participant per "
                    f"document ({SYNTHETIC_PARTICIPANT} = true), segments without offsets")
    meta = StudyMeta(id=study_id or slugify(Path(path).stem) or "taguette-study", title=Path(path).stem,
                     description=f"Loaded from the Taguette highlights export {Path(path).name}",
                     provenance=f"Taguette highlights export ({Path(path).name})", codebooks=[CODEBOOK],
                     participant_attributes={SYNTHETIC_PARTICIPANT: "bool"}, origin=name)

    def shaped(table, frame):
        columns = COLUMNS[table] + ([ROW_COLUMN] if ROW_COLUMN in frame.columns else [])
        frame = frame.reindex(columns=columns).astype(object).reset_index(drop=True)
        return frame.where(frame.notna(), None)

    return StudyTables(meta=meta, groups=shaped("groups", groups), codes=shaped("codes", code_rows),
                       participants=participants.astype(object), sources=shaped("sources", sources),
                       segments=shaped("segments", segments), codings=shaped("codings", codings),
                       files={t: name for t in ("groups", "codes", "participants", "sources", "segments", "codings")},
                       warnings=warnings)
