"""Readers that turn study files into validated tables: study folders, codings CSV, REFI-QDA."""
from __future__ import annotations

from pathlib import Path

from mmkg.errors import LoadError
from mmkg.loader.validate import ValidStudy, validate
from mmkg.tables import StudyTables

REFI_SUFFIXES = (".qdpx", ".qde", ".qdc")


def shipped_study_path() -> Path:
    """The founding study folder that ships inside the package."""
    from mmkg import studies

    return Path(studies.__file__).parent / "founding"


def read_study(source: str | Path | None = None, *, study_id: str | None = None) -> StudyTables:
    """Read a study folder, a codings CSV or a REFI-QDA file (None = the shipped study)."""
    path = Path(source) if source is not None else shipped_study_path()
    if path.is_dir():
        tables = _read_folder(path)
        if study_id:
            tables.meta.id = study_id
        return tables
    if not path.exists():
        raise LoadError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        from mmkg.loader.codings_csv import read_codings_table
        from mmkg.loader.qda_csv import is_taguette_highlights, read_taguette_highlights

        if is_taguette_highlights(_csv_header(path)):  # another tool's export; mmkg's codings table is the default
            return read_taguette_highlights(path, study_id=study_id)
        return read_codings_table(path, study_id=study_id)
    if suffix in REFI_SUFFIXES:
        from mmkg.loader.refi_qda import read_refi_qda

        tables = read_refi_qda(path, study_id=study_id)
        tables.allow_empty = True  # a codebook-only or blank project is a valid exchange file
        return tables
    raise LoadError(f"{path}: cannot load a '{suffix or 'extensionless'}' file "
                    "(expected a study folder, a codings .csv, or a REFI-QDA .qdpx/.qde/.qdc)")


def _csv_header(path: Path) -> list[str]:
    """The column names of a CSV's first line ([] when unreadable; the reader then says why)."""
    import csv

    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return next(csv.reader([handle.readline()]), [])
    except (OSError, UnicodeDecodeError):
        return []


def _read_folder(path: Path) -> StudyTables:
    from mmkg.loader.study_folder import read_study_folder

    return read_study_folder(path)


def read_and_validate(source: str | Path | None = None, *, study_id: str | None = None) -> ValidStudy:
    """Read and validate; raises `LoadError`/`ValidationError` naming file, row and column."""
    return validate(read_study(source, study_id=study_id))


__all__ = ["read_study", "read_and_validate", "validate", "ValidStudy", "StudyTables", "shipped_study_path"]
