"""The `mmkg` command line's Typer apps, shared options and output helpers, and the `load` and `studies`
commands; the other commands live beside it (`mmkg.cli.main` assembles them)."""
from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from mmkg.errors import MmkgError

if TYPE_CHECKING:  # pandas and the library load when a command needs them: `mmkg --help` starts without them
    import pandas as pd

    from mmkg.api import Mmkg

app = typer.Typer(help="mmkg — a knowledge graph of mental-model codes and threats.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
export_app = typer.Typer(help="Write tables or files out of the graph.", no_args_is_help=True)
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
    import pandas as pd

    return "" if pd.isna(value) else (f"{value:.3g}" if isinstance(value, float) else clean(value))


TERMINAL_ROWS = 200  # a table in the terminal shows this many rows; CSV and JSON output has them all


def print_frame(frame: pd.DataFrame, title: str | None = None, caption: str | None = None) -> None:
    """Print a DataFrame as a table in the terminal (its first `TERMINAL_ROWS` rows, with a note saying how to
    get all of them); cells, headers, title and caption print as plain text."""
    total = len(frame)
    if total > TERMINAL_ROWS:
        frame = frame.head(TERMINAL_ROWS)
        note = f"first {TERMINAL_ROWS:,} of {total:,} rows shown; all of them: --format csv (or json), or -o FILE"
        caption = f"{caption}\n{note}" if caption else note
    table = Table(title=plain(title) if title is not None else None,
                  caption=plain(caption) if caption is not None else None, caption_justify="left")
    for column in frame.columns:
        table.add_column(plain(column), overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*(Text(_cell(value)) for value in row))
    if not console.is_terminal:  # piped or captured: do not fold wide tables into 80 columns
        widths = [max([len(str(c))] + [len(_cell(v)) for v in frame[c].head(200)]) for c in frame.columns]
        console.width = max(console.width, sum(widths) + 3 * len(widths) + 1)
    console.print(table)


# The file formats a table is written in, registered once: `--format` options, their help and their check
# come from here (`table` = printed in the terminal, for the commands that print).
FRAME_WRITERS: dict[str, Callable[[pd.DataFrame], str]] = {
    "csv": lambda frame: frame.to_csv(index=False, lineterminator="\n"),
    "json": lambda frame: frame.to_json(orient="records", force_ascii=False, indent=1) + "\n",
}
TABLE = "table"


def check_format(fmt: str, *, printable: bool = True) -> str:
    """`fmt` when it is a registered output format (or `table` for a command that prints), else a usage error."""
    known = [TABLE, *FRAME_WRITERS] if printable else list(FRAME_WRITERS)
    if fmt not in known:
        raise typer.BadParameter(f"unknown format '{fmt}' (use {', '.join(known)})", param_hint="--format")
    return fmt


def format_option(*, printable: bool = True):
    """The `--format` option of a command that writes a table (`printable`: it can also print one)."""
    known = [TABLE, *FRAME_WRITERS] if printable else list(FRAME_WRITERS)
    return typer.Option(known[0], "--format", help=f"{', '.join(known[:-1])} or {known[-1]}.")


def write_frame(frame: pd.DataFrame, output: Path | None, fmt: str) -> None:
    """Write a DataFrame in a registered format (`FRAME_WRITERS`) to a file, or to standard output for `-`/None."""
    text = FRAME_WRITERS[check_format(fmt, printable=False)](frame)
    if output is None or str(output) == "-":
        sys.stdout.write(text)
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise MmkgError(f"cannot write {output}: {exc.strerror or exc}") from None
        show(f"wrote {len(frame):,} rows to {output}", err=True)


@app.command()
def load(source: Path | None = typer.Argument(None, help="A study folder, a codings .csv or a REFI-QDA "
                                                 ".qdpx/.qdc file; omitted: the shipped founding study."),
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
