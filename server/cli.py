"""The `mmkg` command line: a thin layer over `mmkg.api` that parses options and formats output."""
from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Optional

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

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


def open_kg(store: Optional[Path], neo4j: Optional[str], read_only: bool = False) -> Mmkg:
    """Open the graph the CLI options point at."""
    return open_store(store, neo4j_uri=neo4j, read_only=read_only)


class DelayedProgress:
    """A rich progress bar that appears only when the work takes longer than `delay_s` seconds."""

    def __init__(self, description: str, delay_s: float = 1.0):
        self.state = (description, 0, 1)
        self.progress: Progress | None = None
        self.task = None
        self.lock = threading.Lock()
        self.timer = threading.Timer(delay_s, self._show)
        self.timer.daemon = True

    def __enter__(self) -> "DelayedProgress":
        self.timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.timer.cancel()
        with self.lock:
            if self.progress:
                self.progress.stop()

    def _show(self) -> None:
        with self.lock:
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                                     TimeElapsedColumn(), console=err_console, transient=True)
            step, done, total = self.state
            self.task = self.progress.add_task(step, completed=done, total=total)
            self.progress.start()

    def __call__(self, step: str, done: int, total: int) -> None:
        with self.lock:
            self.state = (step, done, total)
            if self.progress is not None:
                self.progress.update(self.task, description=step, completed=done, total=total)


def _cell(value) -> str:
    return "" if pd.isna(value) else (f"{value:.3g}" if isinstance(value, float) else str(value))


def print_frame(frame: pd.DataFrame, title: str | None = None, caption: str | None = None) -> None:
    """Print a DataFrame as a table in the terminal."""
    table = Table(title=title, caption=caption, caption_justify="left")
    for column in frame.columns:
        table.add_column(str(column), overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*map(_cell, row))
    if not console.is_terminal:  # piped or captured: do not fold wide tables into 80 columns
        widths = [max([len(str(c))] + [len(_cell(v)) for v in frame[c].head(200)]) for c in frame.columns]
        console.width = max(console.width, sum(widths) + 3 * len(widths) + 1)
    console.print(table)


def write_frame(frame: pd.DataFrame, output: Optional[Path], fmt: str) -> None:
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
        output.write_text(text, encoding="utf-8")
        err_console.print(f"wrote {len(frame):,} rows to {output}")


@app.command()
def load(source: Optional[Path] = typer.Argument(None, help="A study folder, a codings .csv or a REFI-QDA "
                                                 ".qdpx/.qdc file; omitted: the shipped founding study."),
         study_id: Optional[str] = typer.Option(None, "--study-id", help="Load under this study id."),
         store: Optional[Path] = StoreOption, neo4j: Optional[str] = Neo4jOption) -> None:
    """Validate a study, then write it to the graph in one step (all or nothing)."""
    with open_kg(store, neo4j) as kg, DelayedProgress(f"loading {source or 'the founding study'}") as progress:
        report = kg.load(source, study_id=study_id, progress=progress)
    c = report.counts
    console.print(f"Loaded study '{report.study_id}': {c.get('Participant', 0)} participants, "
                  f"{c.get('Source', 0)} sources, {c.get('Segment', 0):,} segments, {c.get('Code', 0)} codes, "
                  f"{report.codings:,} codings by {c.get('Coder', 0)} coder(s) in {report.seconds:.1f} s")
    if report.provenance:
        console.print(f"[dim]Provenance: {report.provenance}[/dim]")
    for warning in report.warnings:
        err_console.print(f"[yellow]warning:[/yellow] {warning}")


@app.command()
def studies(store: Optional[Path] = StoreOption, neo4j: Optional[str] = Neo4jOption) -> None:
    """List the studies in the graph with their counts and provenance."""
    with open_kg(store, neo4j) as kg:
        frame = kg.studies()
    if frame.empty:
        console.print("No studies yet: run `mmkg load` to load the founding study.")
        return
    print_frame(frame.drop(columns=["provenance"]), title="Studies")
    for row in frame.itertuples():
        if row.provenance:
            console.print(f"[dim]{row.study_id}: {row.provenance}[/dim]")


@export_app.command("codings")
def export_codings(output: Optional[Path] = typer.Option(None, "-o", "--output", help="File to write; '-' or "
                                                         "omitted: standard output."),
                   fmt: str = typer.Option("csv", "--format", help="csv or json."),
                   study: str = typer.Option("", "--study", help="Only this study (default: every study)."),
                   store: Optional[Path] = StoreOption, neo4j: Optional[str] = Neo4jOption) -> None:
    """One row per coding: study, participant, source, segment, code, codebook, coder."""
    with open_kg(store, neo4j) as kg:
        write_frame(kg.export_codings(study), output, fmt)


@export_app.command("codes")
def export_codes(output: Optional[Path] = typer.Option(None, "-o", "--output", help="File to write; '-' or "
                                                       "omitted: standard output."),
                 fmt: str = typer.Option("csv", "--format", help="csv or json."),
                 study: str = typer.Option("", "--study", help="Only this study (default: every study)."),
                 store: Optional[Path] = StoreOption, neo4j: Optional[str] = Neo4jOption) -> None:
    """One row per code: label, parent (group or parent code), codable, codebook."""
    with open_kg(store, neo4j) as kg:
        write_frame(kg.export_codes(study), output, fmt)


# Commands of the other layers register themselves on `app` / `export_app` when imported.
from mmkg.server import cli_paper, cli_queries, cli_serve, cli_studies  # noqa: E402,F401


def main() -> None:
    """Entry point: every `MmkgError` becomes one message on stderr and its exit code, never a traceback."""
    try:
        app()
    except MmkgError as exc:
        err_console.print(f"[bold red]Error:[/bold red] {escape(exc.message)}", highlight=False, soft_wrap=True)
        for detail in exc.details:
            err_console.print(f"  - {detail}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
