"""The one registry of output formats a result table is written in: the CLI's `--format` options (with their
help and their check), the HTTP `format` parameter of every named query (its OpenAPI enum and media type) and
the formats table of the README all come from `OUTPUT_FORMATS`; adding one is one `register_output_format` call.

`json` is special in one place only: over HTTP a query's JSON body is the `QueryResult` envelope (columns,
parameters, provenance) rather than the bare records the writer gives the CLI.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class OutputFormat:
    """One file format of a result table: its name (`--format NAME`), what it is, how to write it."""

    name: str
    description: str  # for help texts and the docs table, e.g. "comma-separated values, one header row"
    media_type: str  # the HTTP Content-Type, e.g. "text/csv; charset=utf-8"
    suffix: str  # the file ending a download gets, e.g. ".csv"
    write: Callable[[pd.DataFrame], str]


OUTPUT_FORMATS: dict[str, OutputFormat] = {}


def register_output_format(output_format: OutputFormat) -> OutputFormat:
    """Add a format to every `--format` option, the HTTP `format` enum and the docs; refuses a taken name."""
    if output_format.name in OUTPUT_FORMATS or output_format.name == TERMINAL_TABLE:
        raise ValueError(f"output format '{output_format.name}' is taken already")
    OUTPUT_FORMATS[output_format.name] = output_format
    return output_format


def unregister_output_format(name: str) -> None:
    """Remove a registered format (a test's or a plugin's)."""
    OUTPUT_FORMATS.pop(name, None)


TERMINAL_TABLE = "table"  # not a file format: the CLI commands that print offer it as their default


def format_names(*, printable: bool = False) -> list[str]:
    """The names `--format` accepts (`printable`: the terminal table first, for the commands that print)."""
    return [TERMINAL_TABLE, *OUTPUT_FORMATS] if printable else list(OUTPUT_FORMATS)


def docs_table() -> str:
    """The Markdown table of output formats in the README (`python -m mmkg.docs` writes it)."""
    rows = ["| `--format` | what it writes | HTTP `format=` media type |", "|---|---|---|",
            f"| `{TERMINAL_TABLE}` | a table in the terminal (the CLI's default where a command prints) | — |"]
    rows += [f"| `{f.name}` | {f.description} | `{f.media_type.split(';')[0]}` |" for f in OUTPUT_FORMATS.values()]
    return "\n".join(rows)


def _csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, lineterminator="\n")


def _json(frame: pd.DataFrame) -> str:
    return frame.to_json(orient="records", force_ascii=False, indent=1) + "\n"


register_output_format(OutputFormat("csv", "comma-separated values with one header row", "text/csv; charset=utf-8",
                                    ".csv", _csv))
register_output_format(OutputFormat("json", "an array of records (over HTTP: the query result with its columns, "
                                            "parameters and provenance)", "application/json", ".json", _json))
