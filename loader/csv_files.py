"""Reading CSV files into string DataFrames with errors that name the file and the place."""
from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from mmkg.errors import LoadError
from mmkg.tables import TEXT, categorical, release_freed_heap

ROW_COLUMN = "_row"  # spreadsheet row number (header = row 1), kept for messages


def read_csv_text(path: Path, data: bytes | None = None, *, categorical: bool = False) -> pd.DataFrame:
    """Read a UTF-8 CSV (BOM allowed) into a DataFrame of strings, empty cells missing (NA).

    Adds a `_row` column with the spreadsheet row number of each record (header is row 1).
    Raises `LoadError` naming the file for missing, empty, non-UTF-8 or malformed files.
    The cells stay in Arrow's buffers, read from the file in blocks: no copy of the file in memory, no Python
    string per cell. With `categorical` every column is a pandas Categorical (each distinct value once, a
    small integer per cell), read block by block, so only one block's strings are held at a time: for tables
    whose columns repeat a few values (a codings table: ~a third of the memory of plain string columns).
    """
    name = str(path)
    try:
        head = data[:_first_line_end(data)] if data is not None else _first_line(Path(path))
    except FileNotFoundError:
        raise LoadError(f"{name}: file not found") from None
    except OSError as exc:
        raise LoadError(f"{name}: cannot read file ({exc.strerror})") from None
    header_line = head[3:] if head.startswith(codecs.BOM_UTF8) else head
    if not header_line.strip():  # a blank first line: look at the whole file, which then says why
        data = _whole(name, path, data)
    body = (data[3:] if data.startswith(codecs.BOM_UTF8) else data) if data is not None else None
    if body is not None and not header_line.strip() and not body.strip():
        raise LoadError(f"{name}: file is empty (expected a header row)")
    try:
        header = next(csv.reader([_decode(name, lambda: _body(name, path, data), header_line)]), [])
    except csv.Error as exc:  # e.g. a bare carriage return inside the header
        raise LoadError(f"{name}, row 1: malformed header row ({exc})") from None
    blank = [i + 1 for i, col in enumerate(header) if not col.strip()]
    if blank:
        raise LoadError(f"{name}: header has an empty column name at position {blank[0]}")
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        raise LoadError(f"{name}: header repeats column(s) {', '.join(duplicated)}")
    try:
        # every column as text; empty cells become missing values right in the parser
        source = io.BytesIO(data) if data is not None else Path(path)
        text_cells = pa_csv.ConvertOptions(default_column_type=pa.large_string(), null_values=[""],
                                           strings_can_be_null=True)
        if categorical:
            frame = _read_categorical(source, text_cells)
        else:
            table = pa_csv.read_csv(source, convert_options=text_cells)
            frame = table.to_pandas(types_mapper={pa.large_string(): TEXT}.get)  # Arrow's strings, no copy
            del table
    except UnicodeDecodeError:  # in a header that spans lines (a quoted name with a line break)
        _decode(name, lambda: _body(name, path, data), None)  # raises, naming the line
        raise
    except pa.ArrowInvalid as exc:
        if "empty csv file" in str(exc).lower():
            raise LoadError(f"{name}: has no columns (expected a header row of column names)") from None
        if "invalid utf8" in str(exc).lower():
            _decode(name, lambda: _body(name, path, data), None)  # raises, naming the line
        raise LoadError(f"{name}: malformed CSV ({exc})") from None
    except OSError as exc:
        raise LoadError(f"{name}: cannot read file ({exc.strerror or exc})") from None
    frame.columns = [c.strip() for c in frame.columns]
    frame[ROW_COLUMN] = np.arange(2, len(frame) + 2, dtype=np.int32 if len(frame) < 2**31 - 2 else np.int64)
    return frame


CATEGORICAL_BLOCK_BYTES = 4 << 20  # of the file, parsed at a time by `_read_categorical`


def _read_categorical(source, text_cells: pa_csv.ConvertOptions) -> pd.DataFrame:
    """Every column as a Categorical, dictionary-encoding each block of the file as soon as it is parsed."""
    reader = pa_csv.open_csv(source, convert_options=text_cells,
                             read_options=pa_csv.ReadOptions(block_size=CATEGORICAL_BLOCK_BYTES))
    names = reader.schema.names
    encoded: list[list[pa.Array]] = [[] for _ in names]
    for number, batch in enumerate(reader):
        for parts, column in zip(encoded, batch.columns):
            parts.append(pc.dictionary_encode(column))
        del batch
        if number % 8 == 7:
            release_freed_heap()  # the last blocks' strings
    dictionary_type = pa.dictionary(pa.int32(), pa.large_string())
    columns = {}
    for name, parts in zip(names, encoded):
        unified = pa.chunked_array(parts, type=dictionary_type).unify_dictionaries()
        parts.clear()
        values = unified.chunk(0).dictionary if unified.num_chunks else pa.array([], pa.large_string())
        # the distinct values stay Arrow strings (pyarrow's own conversion makes a Python string of each)
        categories = pd.Index(pa.table({"v": values}).to_pandas(types_mapper={pa.large_string(): TEXT}.get)["v"])
        codes = pa.chunked_array([chunk.indices for chunk in unified.chunks], type=pa.int32())
        del unified
        columns[name] = categorical(codes.fill_null(-1).to_numpy(), categories)
        del codes
        release_freed_heap()  # the hash tables of unifying and of checking the categories
    return pd.DataFrame(columns)


def _first_line_end(data: bytes) -> int:
    end = data.find(b"\n")
    return len(data) if end < 0 else end


def _first_line(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.readline().rstrip(b"\n")


def _whole(name: str, path: Path, data: bytes | None) -> bytes:
    if data is not None:
        return data
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise LoadError(f"{name}: cannot read file ({exc.strerror})") from None


def _body(name: str, path: Path, data: bytes | None) -> bytes:
    """The file's bytes after any BOM (read again from the file only to name the line of a bad byte)."""
    whole = _whole(name, path, data)
    return whole[3:] if whole.startswith(codecs.BOM_UTF8) else whole


def _decode(name: str, body, part: bytes | None) -> str:
    """`part` (a slice of the file's body, after any BOM; None: the whole body) as text, or `LoadError` naming
    the line of the first bad byte. `body()` gives the body, asked for only when it is needed."""
    if part is not None:
        try:
            return part.decode("utf-8")
        except UnicodeDecodeError:
            pass
    whole = body()
    try:
        whole.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = whole[: exc.start].count(b"\n") + 1
        raise LoadError(f"{name}: not valid UTF-8 (byte 0x{whole[exc.start]:02x} on line {line}); "
                        "save the file as UTF-8") from None
    raise AssertionError("a slice of valid UTF-8 failed to decode")
