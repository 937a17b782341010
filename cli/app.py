"""The `mmkg` command line's Typer apps, shared options and output helpers, and the `load` and `studies`
commands; the other commands live beside it (`mmkg.cli.main` assembles them)."""
from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from mmkg.errors import MmkgError

if TYPE_CHECKING:  # pandas, the library, rich's tables and progress bars load when a command needs them:
    import pandas as pd  # `mmkg --help` starts without them
    from rich.progress import Progress

    from mmkg.api import Mmkg

# typer internals this relies on, as in the typer versions it was checked with; any other typer keeps its own
# coercion (`_coerce_text_plainly` does nothing)
PLAIN_TEXT_TYPER_VERSIONS = ("0.29.",)
RuntimeParam = None
if typer.__version__.startswith(PLAIN_TEXT_TYPER_VERSIONS):
    try:
        from typer._coercion import RuntimeParam
    except ImportError:
        pass


if RuntimeParam is not None:
    @dataclass(frozen=True)
    class _PlainText(RuntimeParam):
        """The coercion of a text option or a flag: the value as given (text, or the flag's True/False)."""

        def _coerce_value(self, value, param, ctx):
            if self.annotation is str and not isinstance(value, str):
                return os.fsdecode(value) if isinstance(value, bytes) else str(value)
            return value


def _coerce_text_plainly(params) -> list:
    """Give the text options and flags among `params` a plain coercion, and return them.  Typer 0.29 builds a
    pydantic TypeAdapter for every option it parses, importing pydantic (and importlib.metadata) — ~0.2 s CPU,
    half of `mmkg queries` — to pass a string or a flag through unchanged.  Other types (paths, numbers, lists,
    choices) keep typer's coercion; a typer without these internals is left as it is."""
    for param in params if RuntimeParam is not None else []:
        descriptor = getattr(param, "type_descriptor", None)
        if (descriptor is None or getattr(param, "_runtime_param", False) is not None
                or descriptor.parameter_info.parser is not None or descriptor.file_annotation is not None):
            continue
        if descriptor.annotation is str or (descriptor.annotation is bool and getattr(param, "is_flag", False)):
            param._runtime_param = _PlainText(parameter_info=descriptor.parameter_info,
                                              annotation=descriptor.annotation)
    return params


class _Commands(TyperGroup):
    """A typer command group whose own options and its commands' options go through `_coerce_text_plainly`."""

    def get_params(self, ctx):
        return _coerce_text_plainly(super().get_params(ctx))

    def get_command(self, ctx, cmd_name):
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _coerce_text_plainly(command.get_params(ctx))  # its options, --help among them (made on first use)
        return command


app = typer.Typer(help="mmkg — a knowledge graph of mental-model codes and threats.", cls=_Commands,
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
export_app = typer.Typer(help="Write tables or files out of the graph.", cls=_Commands, no_args_is_help=True)
app.add_typer(export_app, name="export")

console = Console()
err_console = Console(stderr=True)

StoreOption = typer.Option(None, "--store", envvar="MMKG_STORE", help="Folder of the embedded store "
                           "(default: MMKG_STORE or the user's data directory).", show_default=False)
Neo4jOption = typer.Option(None, "--neo4j", envvar="NEO4J_URI", help="Use the Neo4j server at this URI "
                           "(bolt://… or neo4j://…); credentials from NEO4J_USER/NEO4J_PASSWORD/NEO4J_DATABASE.",
                           show_default=False)


VERBOSE = {"on": False}  # set by `mmkg --verbose …`


@app.callback()
def options(verbose: bool = typer.Option(False, "--verbose", "-v", help="Say which store each command opens.")
            ) -> None:
    """mmkg — a knowledge graph of mental-model codes and threats."""
    VERBOSE["on"] = verbose


def store_description(store: Path | None, neo4j: str | None) -> str:
    """Which store the CLI options point at: the Neo4j URI, or the embedded store's folder."""
    from mmkg.config import Neo4jSettings, Settings

    uri = neo4j or Neo4jSettings().uri
    if uri:
        return f"the Neo4j server at {uri}"
    return f"the embedded store {(Path(store) if store is not None else Settings().store).expanduser().resolve()}"


def open_kg(store: Path | None, neo4j: str | None, read_only: bool = False) -> Mmkg:
    """Open the graph the CLI options point at (`read_only` for commands that only read); with `--verbose`,
    say which one on stderr first."""
    from mmkg.api import open_store

    if VERBOSE["on"]:
        show(f"Using {store_description(store, neo4j)}", err=True, soft_wrap=True)
    return open_store(store, neo4j_uri=neo4j, read_only=read_only)


# C0 and C1 control characters (every terminal escape sequence starts with one) and bidirectional
# overrides/isolates, which reorder what the terminal shows.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_LINE_BREAKS = re.compile("[\t\n\r\x0b\x0c\x85\u2028\u2029]+")


def clean(value: object) -> str:
    """Text that may come from a study, a file or the store, made safe to print: tabs and line breaks become
    one space, other control characters and bidi overrides are removed."""
    return _UNPRINTABLE.sub("", _LINE_BREAKS.sub(" ", str(value)))


def plain(value: object, style: str = "") -> Text:
    """`clean(value)` as rich Text, which rich never reads as markup."""
    return Text(clean(value), style=style)


def show(*parts: object | tuple[object, str], err: bool = False, soft_wrap: bool = False) -> None:
    """Print one message made of parts, each text or (text, style); every part is `clean`ed and none is read
    as markup, so user-supplied strings print as they are."""
    text = Text.assemble(*[(clean(p[0]), p[1]) if isinstance(p, tuple) else clean(p) for p in parts])
    (err_console if err else console).print(text, highlight=False, soft_wrap=soft_wrap)


class DelayedProgress:
    """A rich progress bar that appears only when the work takes longer than `delay_s` seconds."""

    def __init__(self, description: str, delay_s: float = 1.0):
        self.state = (clean(description), 0, 1)
        self.progress: Progress | None = None
        self.task = None
        self.lock = threading.Lock()
        self.timer = threading.Timer(delay_s, self._show)
        self.timer.daemon = True

    def __enter__(self) -> DelayedProgress:
        self.timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.timer.cancel()
        with self.lock:
            if self.progress:
                self.progress.stop()

    def _show(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with self.lock:
            self.progress = Progress(TextColumn("{task.description}", markup=False), BarColumn(),
                                     TextColumn("{task.completed}/{task.total}"),
                                     TimeElapsedColumn(), console=err_console, transient=True)
            step, done, total = self.state
            self.task = self.progress.add_task(step, completed=done, total=total)
            self.progress.start()

    def __call__(self, step: str, done: int, total: int) -> None:
        with self.lock:
            step = clean(step)
            self.state = (step, done, total)
            if self.progress is not None:
                self.progress.update(self.task, description=step, completed=done, total=total)


def _cell(value) -> str:
    if isinstance(value, (list, tuple)):
        return "; ".join(map(_cell, value))
    if isinstance(value, str):  # text needs no missing-value check, so `mmkg queries` prints without pandas
        return clean(value)
    import pandas as pd

    return "" if pd.isna(value) else (f"{value:.3g}" if isinstance(value, float) else clean(value))


TERMINAL_ROWS = 200  # a table in the terminal shows this many rows; CSV and JSON output has them all


def print_frame(frame: pd.DataFrame, title: str | None = None, caption: str | None = None) -> None:
    """Print a DataFrame as a table in the terminal (its first `TERMINAL_ROWS` rows, with a note saying how to
    get all of them); cells, headers, title and caption print as plain text."""
    numeric = [frame[column].dtype.kind in "iufb" for column in frame.columns]
    print_rows(list(frame.columns), list(frame.head(TERMINAL_ROWS).itertuples(index=False)), title, caption,
               total=len(frame), numeric=numeric)


def print_rows(columns: list[str], rows: list[tuple], title: str | None = None, caption: str | None = None,
               total: int | None = None, numeric: list[bool] | None = None) -> None:
    """`print_frame` for rows already in hand (`total`: how many the whole result has; `numeric`: which columns
    hold numbers, read from the values when not given), without pandas.  The table fits the terminal
    (`table_width`): text cells wrap between words, numbers are never wrapped, a word too long for its column
    ends in '…', and columns that find no room are left out — the caption then says so and how to get it all."""
    from numbers import Number

    from rich.table import Table

    total = len(rows) if total is None else total
    rows = rows[:TERMINAL_ROWS]
    notes = []
    if total > len(rows):
        notes.append(f"first {len(rows):,} of {total:,} rows shown")
    if numeric is None:
        numeric = [bool(rows) and all(isinstance(row[i], Number) for row in rows) for i in range(len(columns))]
    cells = {column: [_cell(row[i]) for row in rows] for i, column in enumerate(columns)}
    is_number = dict(zip(columns, numeric, strict=True))
    width = table_width()
    widths = _column_widths(cells, is_number, width)
    shown = [c for c in columns if c in widths]
    if len(shown) < len(columns):
        hidden = [clean(c) for c in columns if c not in widths]
        notes.append(f"{len(hidden)} column{'s' if len(hidden) > 1 else ''} not shown ({', '.join(hidden)})")
    if any(widths[c] < _natural_width(c, cells[c]) for c in shown):
        notes.append("cells wrapped to fit")
    lines = [] if caption is None else [caption]
    if notes:
        lines.append("; ".join(notes) + ". Everything: --format csv (or json), or -o FILE")
    table = Table(title=plain(title) if title is not None else None,
                  caption=Text("\n").join(plain(line) for line in lines) if lines else None, caption_justify="left")
    for column in shown:
        table.add_column(plain(column), width=widths[column], overflow="ellipsis", no_wrap=is_number[column],
                         justify="right" if is_number[column] else "left")
    for i in range(len(rows)):
        table.add_row(*(Text(cells[column][i]) for column in shown))
    needed = width or _table_total(widths.values())
    # a console never prints wider than its own width (80 when piped): a wider table gets a console of its own
    (console if needed <= console.width else Console(width=needed)).print(table, width=needed)


MIN_TEXT_WIDTH = 8  # a text column narrower than this is not worth showing
MAX_WORD_WIDTH = 30  # a text column never needs to be wider than this to keep its words whole; longer end in '…'


def table_width() -> int | None:
    """The width a table must fit: COLUMNS when it is set, else the terminal's; None when the output is piped
    or captured without COLUMNS (then the table is as wide as its cells)."""
    import os

    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return console.width if console.is_terminal else None


def _natural_width(column, values: list[str]) -> int:
    from rich.cells import cell_len

    return max([cell_len(clean(column))] + [cell_len(v) for v in values])


def _word_width(column, values: list[str]) -> int:
    from rich.cells import cell_len

    words = [w for text in [clean(column), *values] for w in text.split()]
    return max([1] + [cell_len(w) for w in words])


def _table_total(widths) -> int:
    widths = list(widths)
    return sum(widths) + 3 * len(widths) + 1  # a space either side of every cell, the vertical lines


def _column_widths(cells: dict[str, list[str]], numeric: dict[str, bool], width: int | None) -> dict[str, int]:
    """Each shown column's width: its natural width when everything fits; else numbers keep theirs, text
    columns get at least their longest word (up to `MAX_WORD_WIDTH`) and share what is left evenly, up to
    what each needs; columns from the right are left out while even that does not fit."""
    natural = {c: _natural_width(c, v) for c, v in cells.items()}
    if width is None or _table_total(natural.values()) <= width:
        return natural
    least = {c: natural[c] if numeric[c] else min(natural[c], max(MIN_TEXT_WIDTH, min(_word_width(c, v),
                                                                                   MAX_WORD_WIDTH)))
             for c, v in cells.items()}
    columns = list(cells)
    while len(columns) > 1 and _table_total(least[c] for c in columns) > width:
        columns.pop()
    widths = {c: least[c] for c in columns}
    spare = width - _table_total(widths.values())
    want = {c: natural[c] - widths[c] for c in columns}
    while spare > 0 and any(want.values()):
        needy = [c for c in columns if want[c] > 0]
        share = max(1, spare // len(needy))
        for c in needy:
            step = min(share, want[c], spare)
            widths[c] += step
            want[c] -= step
            spare -= step
            if spare == 0:
                break
    return widths


def live_help(info, text: Callable[[], str]):
    """A Typer option or argument whose help is `text()` when the command line is built, so a help that names
    what a registry holds (readers, formats) shows what is registered then, not at import."""
    class LiveHelp(type(info)):  # type: ignore[misc]
        @property
        def help(self) -> str:
            return text()

        @help.setter
        def help(self, _value) -> None:
            pass

    info.__class__ = LiveHelp
    return info


def check_format(fmt: str, *, printable: bool = True) -> str:
    """`fmt` when it is a registered output format (`mmkg.formats`; or `table` for a command that prints),
    else a usage error."""
    from mmkg.formats import format_names

    known = format_names(printable=printable)
    if fmt not in known:
        raise typer.BadParameter(f"unknown format '{fmt}' (use {', '.join(known)})", param_hint="--format")
    return fmt


def _or_list(names: list[str]) -> str:
    return f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else "".join(names)


def format_option(*, printable: bool = True):
    """The `--format` option of a command that writes a table (`printable`: it can also print one); its help
    names the formats registered in `mmkg.formats`."""
    from mmkg.formats import TERMINAL_TABLE, format_names

    default = TERMINAL_TABLE if printable else "csv"
    return live_help(typer.Option(default, "--format"),
                     lambda: _or_list(format_names(printable=printable)) + ".")


def write_frame(frame: pd.DataFrame, output: Path | None, fmt: str) -> None:
    """Write a DataFrame in a registered format (`mmkg.formats`) to a file, or to standard output for `-`/None."""
    from mmkg.formats import OUTPUT_FORMATS

    text = OUTPUT_FORMATS[check_format(fmt, printable=False)].write(frame)
    if output is None or str(output) == "-":
        sys.stdout.write(text)
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise MmkgError(f"cannot write {output}: {exc.strerror or exc}") from None
        show(f"wrote {len(frame):,} rows to {output}", err=True)


SOURCE_ARGUMENT = live_help(typer.Argument(None), lambda: _sources_help() + "; omitted: the shipped founding study.")


@app.command()
def load(source: Path | None = SOURCE_ARGUMENT,
         study_id: str | None = typer.Option(None, "--study-id", help="Load under this study id."),
         replace: bool = typer.Option(False, "--replace", help="Replace a study of the same id (without it, "
                                      "loading an id the store holds is refused and nothing is written)."),
         store: Path | None = StoreOption, neo4j: str | None = Neo4jOption) -> None:
    """Validate a study, then write it to the graph in one step (all or nothing)."""
    with open_kg(store, neo4j) as kg, DelayedProgress(f"loading {source or 'the founding study'}") as progress:
        report = kg.load(source, study_id=study_id, progress=progress, replace=replace)
    c = report.counts
    if report.replaced_codings is not None:
        show(f"Replaced study '{report.study_id}' (was {report.replaced_codings:,} codings)")
    show(f"Loaded study '{report.study_id}': {c.get('Participant', 0)} participants, "
         f"{c.get('Source', 0)} sources, {c.get('Segment', 0):,} segments, {c.get('Code', 0)} codes, "
         f"{report.codings:,} codings by {c.get('Coder', 0)} coder(s) in {report.seconds:.1f} s")
    if report.provenance:
        show((f"Provenance: {report.provenance}", "dim"))
    print_warnings(report.warnings)


def _sources_help() -> str:
    from mmkg.loader import sources_help

    return sources_help()


def print_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        show(("warning:", "yellow"), " ", warning, err=True)


@app.command()
def studies(store: Path | None = StoreOption, neo4j: str | None = Neo4jOption) -> None:
    """List the studies in the graph with their counts and provenance."""
    with open_kg(store, neo4j, read_only=True) as kg:
        frame = kg.studies()
    show((f"Store: {store_description(store, neo4j)}", "dim"), err=True, soft_wrap=True)
    if frame.empty:
        console.print("No studies yet: run `mmkg load` to load the founding study.")
        return
    print_frame(frame.drop(columns=["provenance"]), title="Studies")
    for row in frame.itertuples():
        if row.provenance:
            show((f"{row.study_id}: {row.provenance}", "dim"))
