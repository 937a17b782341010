"""The `mmkg` command line: a thin layer over `mmkg.api` that parses options and formats output."""
from __future__ import annotations

import os
import re
import sys
import threading
from pathlib import Path

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from mmkg.api import Mmkg, open_store
from mmkg.errors import MmkgError

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


def open_kg(store: Path | None, neo4j: str | None, read_only: bool = False) -> Mmkg:
    """Open the graph the CLI options point at (`read_only` for commands that only read)."""
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
    return "" if pd.isna(value) else (f"{value:.3g}" if isinstance(value, float) else clean(value))


def print_frame(frame: pd.DataFrame, title: str | None = None, caption: str | None = None) -> None:
    """Print a DataFrame as a table in the terminal; cells, headers, title and caption print as plain text."""
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


def write_frame(frame: pd.DataFrame, output: Path | None, fmt: str) -> None:
    """Write a DataFrame as CSV or JSON to a file, or to standard output for `-`/None."""
    if fmt == "csv":
        text = frame.to_csv(index=False, lineterminator="\n")
    elif fmt == "json":
        text = frame.to_json(orient="records", force_ascii=False, indent=1) + "\n"
    else:
        raise typer.BadParameter(f"unknown format '{fmt}'", param_hint="--format")
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
         store: Path | None = StoreOption, neo4j: str | None = Neo4jOption) -> None:
    """Validate a study, then write it to the graph in one step (all or nothing)."""
    with open_kg(store, neo4j) as kg, DelayedProgress(f"loading {source or 'the founding study'}") as progress:
        report = kg.load(source, study_id=study_id, progress=progress)
    c = report.counts
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
    if frame.empty:
        console.print("No studies yet: run `mmkg load` to load the founding study.")
        return
    print_frame(frame.drop(columns=["provenance"]), title="Studies")
    for row in frame.itertuples():
        if row.provenance:
            show((f"{row.study_id}: {row.provenance}", "dim"))


@export_app.command("codings")
def export_codings(output: Path | None = typer.Option(None, "-o", "--output", help="File to write; '-' or "
                                                         "omitted: standard output."),
                   fmt: str = typer.Option("csv", "--format", help="csv or json."),
                   study: str = typer.Option("", "--study", help="Only this study (default: every study)."),
                   store: Path | None = StoreOption, neo4j: str | None = Neo4jOption) -> None:
    """One row per coding: study, participant, source, segment, code, codebook, coder."""
    with open_kg(store, neo4j, read_only=True) as kg:
        write_frame(kg.export_codings(study), output, fmt)


@export_app.command("codes")
def export_codes(output: Path | None = typer.Option(None, "-o", "--output", help="File to write; '-' or "
                                                       "omitted: standard output."),
                 fmt: str = typer.Option("csv", "--format", help="csv or json."),
                 study: str = typer.Option("", "--study", help="Only this study (default: every study)."),
                 store: Path | None = StoreOption, neo4j: str | None = Neo4jOption) -> None:
    """One row per code: label, parent (group or parent code), codable, codebook."""
    with open_kg(store, neo4j, read_only=True) as kg:
        write_frame(kg.export_codes(study), output, fmt)


# Commands of the other layers register themselves on `app` / `export_app` when imported.
from mmkg.server import cli_paper, cli_queries, cli_serve, cli_studies  # noqa: E402,F401


def main() -> None:
    """Entry point: every `MmkgError` becomes one message on stderr and its exit code, never a traceback."""
    try:
        app()
    except MmkgError as exc:
        show(("Error:", "bold red"), " ", exc.message, err=True, soft_wrap=True)
        for detail in exc.details:
            show(f"  - {detail}", err=True, soft_wrap=True)
        sys.exit(exc.exit_code)
    except BrokenPipeError:  # the reader of our output went away (`| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
    except OSError as exc:  # a file the command was asked to read or write (-o, a folder …)
        where = f"{exc.filename}: " if exc.filename else ""
        show(("Error:", "bold red"), " ", f"{where}{exc.strerror or exc}", err=True, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
