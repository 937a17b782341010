"""Readers that turn study files into validated tables: study folders, codings CSV, REFI-QDA."""
from __future__ import annotations

import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmkg.errors import LoadError

if TYPE_CHECKING:
    from mmkg.loader.validate import ValidStudy
    from mmkg.tables import StudyTables

# The registry loads without pandas (the CLI's help texts name the readers); the validator loads on first use.
_LAZY = {"ValidStudy": "mmkg.loader.validate", "StudyTables": "mmkg.tables"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mmkg.loader' has no attribute '{name}'")


class _Package(types.ModuleType):
    """`mmkg.loader.validate` is the validating function (as it was when this package imported it eagerly):
    importing the submodule of the same name would otherwise rebind the package's attribute to the module."""

    @property
    def validate(self) -> Callable:
        from mmkg.loader.validate import validate

        return validate

    @validate.setter
    def validate(self, _submodule: types.ModuleType) -> None:
        pass


sys.modules[__name__].__class__ = _Package


@dataclass(frozen=True)
class Reader:
    """One study file format a load accepts: its file endings (with what each is), how to read it and, when
    several formats share an ending, how to recognise this one by its first line."""

    name: str
    suffixes: dict[str, str]  # ".qdpx" -> "a REFI-QDA project"
    read: Callable[[Path, str | None], StudyTables]  # (path, study_id or None)
    recognise: Callable[[list[str]], bool] | None = None  # on the CSV header; None: the ending's default
    description: str = ""  # what the format is, for the docs table, e.g. "Taguette's highlights export"
    recognised_by: str = ""  # how `recognise` tells it apart, for the docs table, e.g. "columns tag, content"


READERS: list[Reader] = []
FOLDER_DESCRIPTION = "a study folder"


def register_reader(reader: Reader) -> Reader:
    """Add a format: `read_study`, `mmkg load`, uploads and their messages take it from here."""
    READERS.append(reader)
    return reader


def unregister_reader(name: str) -> None:
    """Remove a registered reader (a test's or a plugin's)."""
    READERS[:] = [r for r in READERS if r.name != name]


def suffixes() -> dict[str, str]:
    """Every file ending a load accepts, with what it is (the first reader's wording for a shared ending)."""
    known: dict[str, str] = {}
    for reader in READERS:
        for suffix, what in reader.suffixes.items():
            known.setdefault(suffix, what)
    return known


def sources_help() -> str:
    """What `mmkg load` (and an upload) accepts, from the registered readers: for help texts."""
    endings = ", ".join(f"{what} ({s})" for s, what in suffixes().items())
    return f"{FOLDER_DESCRIPTION[0].upper()}{FOLDER_DESCRIPTION[1:]} or a file: {endings}"


def docs_table() -> str:
    """The Markdown table of readers in the README (`python -m mmkg.docs` writes it)."""
    rows = ["| reader | file endings | recognised by | what it reads |", "|---|---|---|---|",
            f"| `folder` | (a folder) | `study.json` and its tables | {FOLDER_DESCRIPTION} (docs/study-format.md) |"]
    for reader in READERS:
        endings = ", ".join(f"`{s}`" for s in reader.suffixes)
        how = reader.recognised_by if reader.recognise is not None else "the file ending (the default reader)"
        what = reader.description or ", ".join(reader.suffixes.values())
        rows.append(f"| `{reader.name}` | {endings} | {how} | {what} |")
    return "\n".join(rows)


def reader_for(path: Path) -> Reader:
    """The reader of a file: by its ending, then (a shared ending) by its first line."""
    suffix = path.suffix.lower()
    candidates = [r for r in READERS if suffix in r.suffixes]
    if not candidates:
        expected = ", ".join([FOLDER_DESCRIPTION, *(f"{what} (`{s}`)" for s, what in suffixes().items())])
        raise LoadError(f"{path}: cannot load a '{suffix or 'extensionless'}' file (expected {expected})")
    if len(candidates) > 1:
        header = _csv_header(path)
        for reader in candidates:
            if reader.recognise is not None and reader.recognise(header):
                return reader
    return next(r for r in candidates if r.recognise is None)


def shipped_study_path() -> Path:
    """The founding study folder that ships inside the package."""
    from mmkg import studies

    return Path(studies.__file__).parent / "founding"


def read_study(source: str | Path | None = None, *, study_id: str | None = None) -> StudyTables:
    """Read a study folder or a file of a registered format (`READERS`; None = the shipped study)."""
    path = Path(source) if source is not None else shipped_study_path()
    if path.is_dir():
        tables = _read_folder(path)
        if study_id:
            tables.meta.id = study_id
        return tables
    if not path.exists():
        raise LoadError(f"{path}: no such file or folder")
    return reader_for(path).read(path, study_id)


def _read_codings_table(path: Path, study_id: str | None) -> StudyTables:
    from mmkg.loader.codings_csv import read_codings_table

    return read_codings_table(path, study_id=study_id)


def _read_taguette(path: Path, study_id: str | None) -> StudyTables:
    from mmkg.loader.qda_csv import read_taguette_highlights

    return read_taguette_highlights(path, study_id=study_id)


def _is_taguette(header: list[str]) -> bool:
    from mmkg.loader.qda_csv import is_taguette_highlights

    return is_taguette_highlights(header)


def _read_taguette_codebook(path: Path, study_id: str | None) -> StudyTables:
    from mmkg.loader.qda_csv import read_taguette_codebook

    return read_taguette_codebook(path, study_id=study_id)


def _is_taguette_codebook(header: list[str]) -> bool:
    from mmkg.loader.qda_csv import is_taguette_codebook

    return is_taguette_codebook(header)


def _read_refi(path: Path, study_id: str | None) -> StudyTables:
    from mmkg.loader.refi_qda import read_refi_qda

    tables = read_refi_qda(path, study_id=study_id)
    tables.allow_empty = True  # a codebook-only or blank project is a valid exchange file
    return tables


# Another tool's CSV export is recognised by its header; mmkg's codings table is the default for `.csv`.
register_reader(Reader("taguette", {".csv": "a codings CSV"}, _read_taguette, recognise=_is_taguette,
                       description="Taguette's highlights export: one segment per highlight",
                       recognised_by="its header (Taguette's highlight columns)"))
register_reader(Reader("taguette-codebook", {".csv": "a codings CSV"}, _read_taguette_codebook,
                       recognise=_is_taguette_codebook, description="Taguette's codebook export: codes only",
                       recognised_by="its header (`tag`, `description`, `number of highlights`)"))
register_reader(Reader("codings", {".csv": "a codings CSV"}, _read_codings_table,
                       description="mmkg's codings table: one row per coding (docs/study-format.md)"))
register_reader(Reader("refi-qda", {".qdpx": "a REFI-QDA project", ".qdc": "a REFI-QDA codebook",
                                    ".qde": "a REFI-QDA project document"}, _read_refi,
                       description="a REFI-QDA project or codebook from ATLAS.ti, MAXQDA, NVivo, QDA Miner … "
                                   "(docs/refi-qda.md)"))


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
    from mmkg.loader.validate import validate

    return validate(read_study(source, study_id=study_id))


__all__ = ["read_study", "read_and_validate", "validate", "ValidStudy", "StudyTables", "shipped_study_path", "Reader",
           "READERS", "register_reader", "unregister_reader", "reader_for", "suffixes", "sources_help", "docs_table"]
