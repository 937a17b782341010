"""Reading a study folder (`study.json` + CSV files, see docs/study-format.md) into `StudyTables`."""
from __future__ import annotations

import json
from pathlib import Path

from mmkg.errors import LoadError
from mmkg.loader.csv_files import read_csv_text
from mmkg.tables import COLUMNS, StudyMeta, StudyTables, empty_table

META_FILE = "study.json"
META_KEYS = {"id", "title", "description", "citation", "provenance", "codebooks",
             "analysis_coder", "participant_attributes", "allow_empty"}
TABLE_FILES = {name: f"{name}.csv" for name in COLUMNS}
OPTIONAL_TABLES = {"concept_map"}


def read_meta(path: Path, data: bytes | None = None) -> StudyMeta:
    """Read and shape-check `study.json` (its bytes `data` when given, else the file at `path`)."""
    try:
        raw = json.loads((path.read_bytes() if data is None else data).decode("utf-8-sig"))
    except FileNotFoundError:
        raise LoadError(f"{path}: file not found (every study folder needs {META_FILE})") from None
    except UnicodeDecodeError:
        raise LoadError(f"{path}: not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise LoadError(f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    if not isinstance(raw, dict):
        raise LoadError(f"{path}: expected a JSON object")
    unknown = sorted(set(raw) - META_KEYS)
    if unknown:
        raise LoadError(f"{path}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(META_KEYS))})")
    if not isinstance(raw.get("id"), str):
        raise LoadError(f"{path}: key 'id' must be a string")
    codebooks = raw.get("codebooks", [])
    if not isinstance(codebooks, list) or not all(isinstance(c, str) for c in codebooks):
        raise LoadError(f"{path}: key 'codebooks' must be a list of strings")
    attributes = raw.get("participant_attributes", {})
    if not isinstance(attributes, dict):
        raise LoadError(f"{path}: key 'participant_attributes' must be an object of name: type")
    for key in ("title", "description", "citation", "provenance", "analysis_coder"):
        if not isinstance(raw.get(key, ""), str):
            raise LoadError(f"{path}: key '{key}' must be a string")
    if not isinstance(raw.get("allow_empty", False), bool):
        raise LoadError(f"{path}: key 'allow_empty' must be true or false")
    return StudyMeta(id=raw["id"], title=raw.get("title", ""), description=raw.get("description", ""),
                     citation=raw.get("citation", ""), provenance=raw.get("provenance", ""),
                     codebooks=codebooks, analysis_coder=raw.get("analysis_coder", ""),
                     participant_attributes=attributes, origin=str(path.parent))


def read_study_folder(folder: Path, contents: dict[str, bytes] | None = None) -> StudyTables:
    """Read every file of a study folder; validation happens in `mmkg.loader.validate`.  With `contents`
    (file name -> bytes, as `study_folder_files` makes them) the files are those, and `folder` only names them
    in messages (a study folder carried inside another file)."""
    folder = Path(folder)
    if contents is None and not folder.is_dir():
        raise LoadError(f"{folder}: not a folder")
    meta_data = contents.get(META_FILE, None) if contents is not None else None
    if contents is not None and meta_data is None:
        raise LoadError(f"{folder / META_FILE}: file not found (every study folder needs {META_FILE})")
    meta = read_meta(folder / META_FILE, meta_data)
    allow_empty = json.loads((meta_data or (folder / META_FILE).read_bytes()).decode("utf-8-sig")).get(
        "allow_empty", False)
    tables, files = {}, {}
    for name, filename in TABLE_FILES.items():
        path = folder / filename
        files[name] = str(path)
        present = path.exists() if contents is None else filename in contents
        if name in OPTIONAL_TABLES and not present:
            tables[name] = empty_table(name)
            continue
        if contents is not None and not present:
            raise LoadError(f"{path}: file not found")
        tables[name] = read_csv_text(path, None if contents is None else contents[filename])
    return StudyTables(meta=meta, files=files, allow_empty=allow_empty, **tables)


def study_folder_files(tables: StudyTables) -> dict[str, bytes]:
    """The files of a study's study folder (file name -> bytes) that `read_study_folder` reads back to the
    same tables."""
    import csv
    import io

    meta = tables.meta
    study = {"id": meta.id, "title": meta.title, "description": meta.description, "citation": meta.citation,
             "provenance": meta.provenance, "codebooks": list(meta.codebooks),
             "analysis_coder": meta.analysis_coder, "participant_attributes": dict(meta.participant_attributes)}
    if any(len(tables.table(name)) == 0 for name in COLUMNS if name not in OPTIONAL_TABLES):
        study["allow_empty"] = True  # a study an exchange format brought in may lack rows (a codebook only)
    files = {META_FILE: (json.dumps(study, indent=2, ensure_ascii=False) + "\n").encode("utf-8")}
    for name, filename in TABLE_FILES.items():
        frame = tables.table(name)
        columns = COLUMNS[name] + [c for c in frame.columns if c not in COLUMNS[name] and not c.startswith("_")]
        frame = frame.reindex(columns=columns).astype(object)
        text = io.StringIO()
        frame.where(frame.notna(), None).to_csv(text, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        files[filename] = text.getvalue().encode("utf-8")
    return files


def write_study_folder(tables: StudyTables, folder: Path, *, force: bool = False) -> list[Path]:
    """Write a study as a study folder (`study.json` + one CSV per table) that `read_study_folder` reads back
    to the same tables: the lossless export. Refuses a folder that holds anything unless `force` (then only
    the study's own files are replaced). Returns the files written."""
    from mmkg.errors import ExportError

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"{folder}: exists and is not a folder; name a new or empty folder")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise ExportError(f"{folder}: the folder is not empty; name a new or empty folder, or pass --force "
                          "(force=True) to replace the study files in it")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for filename, data in study_folder_files(tables).items():
            (folder / filename).write_bytes(data)
            written.append(folder / filename)
    except OSError as exc:
        raise ExportError(f"{folder}: cannot write the study folder ({exc.strerror or exc})") from None
    return written
