"""Reading CSV files into string DataFrames with errors that name the file and the place."""
from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from mmkg.errors import LoadError

ROW_COLUMN = "_row"  # spreadsheet row number (header = row 1), kept for messages


def read_csv_text(path: Path, data: bytes | None = None) -> pd.DataFrame:
    """Read a UTF-8 CSV (BOM allowed) into a DataFrame of strings, empty cells missing (NA).

    Adds a `_row` column with the spreadsheet row number of each record (header is row 1).
    Raises `LoadError` naming the file for missing, empty, non-UTF-8 or malformed files.
    """
    name = str(path)
    if data is None:
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise LoadError(f"{name}: file not found") from None
        except OSError as exc:
            raise LoadError(f"{name}: cannot read file ({exc.strerror})") from None
    body = data[3:] if data.startswith(codecs.BOM_UTF8) else data
    end_of_header = body.find(b"\n")
    header_line = body if end_of_header < 0 else body[:end_of_header]
    if not header_line.strip() and not body.strip():
        raise LoadError(f"{name}: file is empty (expected a header row)")
    try:
        header = next(csv.reader([_decode(name, body, header_line)]), [])
    except csv.Error as exc:  # e.g. a bare carriage return inside the header
        raise LoadError(f"{name}, row 1: malformed header row ({exc})") from None
    blank = [i + 1 for i, col in enumerate(header) if not col.strip()]
    if blank:
        raise LoadError(f"{name}: header has an empty column name at position {blank[0]}")
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        raise LoadError(f"{name}: header repeats column(s) {', '.join(duplicated)}")
    try:
        # empty cells become missing values right in the parser: no second pass over the frame
        frame = pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False, na_values=[""], engine="pyarrow")
    except UnicodeDecodeError:  # in a header that spans lines (a quoted name with a line break)
        _decode(name, body, body)  # raises, naming the line
        raise
    except pd.errors.EmptyDataError:
        raise LoadError(f"{name}: has no columns (expected a header row of column names)") from None
    except (pd.errors.ParserError, pa.ArrowInvalid) as exc:
        if "invalid utf8" in str(exc).lower():
            _decode(name, body, body)  # raises, naming the line
        raise LoadError(f"{name}: malformed CSV ({exc})") from None
    frame.columns = [c.strip() for c in frame.columns]
    frame[ROW_COLUMN] = np.arange(2, len(frame) + 2)
    return frame


def _decode(name: str, body: bytes, part: bytes) -> str:
    """`part` (a slice of the file's `body`, after any BOM) as text, or `LoadError` naming the line of the
    first bad byte."""
    try:
        return part.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        raise LoadError(f"{name}: not valid UTF-8 (byte 0x{body[exc.start]:02x} on line {line}); "
                        "save the file as UTF-8") from None
    raise AssertionError("a slice of valid UTF-8 failed to decode")
