"""CLI commands for the named query library: `mmkg queries` lists it, `mmkg query NAME -p key=value …` runs one."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    import pandas as pd

from mmkg.cli.app import (
    Neo4jOption,
    StoreOption,
    app,
    check_format,
    format_option,
    open_kg,
    print_frame,
    print_rows,
    show,
    write_frame,
)


@app.command("queries")
def list_queries(fmt: str = format_option()) -> None:
    """List the named queries: name, title and parameters (type = default)."""
    from mmkg.queries import registry

    columns = ["name", "title", "parameters", "description"]
    rows = [(q.name, q.title, ", ".join(f"{p.name} {p.type.lower()} = {p.default!r}" for p in q.parameters),
             q.description) for q in registry(with_library=False).values()]
    if fmt == "table":  # read from the files' headers alone: no pandas, no library (issue 18: start-up)
        print_rows(columns[:-1], [row[:-1] for row in rows], title="Named queries",
                   caption="Run one with: mmkg query NAME -p key=value …  (details: mmkg query NAME --help-query)")
    else:
        import pandas as pd

        write_frame(pd.DataFrame(rows, columns=columns), None, check_format(fmt))


@app.command("query")
def run_query(name: str = typer.Argument(..., help="Query name (see `mmkg queries`)."),
              param: list[str] = typer.Option([], "-p", "--param", help="key=value, repeatable; types and "
                                              "defaults as in `mmkg queries`."),
              fmt: str = format_option(),
              output: Path | None = typer.Option(None, "-o", "--output", help="File to write (csv/json); "
                                                    "'-' or omitted: standard output."),
              help_query: bool = typer.Option(False, "--help-query", help="Describe the query and its "
                                              "parameters instead of running it."),
              store: Path | None = StoreOption, neo4j: str | None = Neo4jOption) -> None:
    """Run a named query with parameters; print a table or write CSV/JSON."""
    from mmkg.queries import get_query

    named = get_query(name)
    fmt = check_format(fmt)
    if help_query:
        _describe(named)
        return
    params = named.bind(_parse_params(param))
    with open_kg(store, neo4j, read_only=True) as kg:
        frame = kg.query(name, **params)
        provenance = _provenance(kg, frame, params) if fmt == "table" else []
    if fmt == "json":
        write_frame(frame, output, "json")
        return
    frame = frame.apply(lambda column: column.map(_flat) if column.dtype == object else column)
    if fmt != "table" or output is not None:  # every registered file format (mmkg.formats)
        write_frame(frame, output, "csv" if fmt == "table" else fmt)
        return
    print_frame(frame, title=f"{named.title} ({len(frame):,} rows)",
                caption=", ".join(f"{k} = {v!r}" for k, v in params.items()) or None)
    for study_id, line in provenance:
        show((f"{study_id}: {line}", "dim"))


def _parse_params(items: list[str]) -> dict[str, str]:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"'{item}' is not key=value", param_hint="-p")
        params[key.strip()] = value
    return params


def _flat(value):
    """Lists become 'a; b' in tables and CSV (JSON keeps them as arrays)."""
    if isinstance(value, (list, tuple)):
        return "; ".join(map(str, value))
    return value


def _provenance(kg, frame: pd.DataFrame, params: dict) -> list[tuple[str, str]]:
    """(study_id, provenance) of the studies a result draws on, for the ones that carry a notice."""
    studies = kg.studies()
    if "study_id" in frame.columns:
        involved = set(frame["study_id"].dropna())
    elif params.get("study_id"):
        involved = {params["study_id"]}
    else:
        involved = set(studies["study_id"])
    return [(row.study_id, row.provenance) for row in studies.itertuples()
            if row.study_id in involved and row.provenance]


def _describe(named) -> None:
    show((named.name, "bold"), f" — {named.title}")
    show(named.description)
    import pandas as pd

    frame = pd.DataFrame([{"parameter": p.name, "type": p.type.lower(), "default": repr(p.default),
                           "kind": "analysis option" if p.option else "$parameter", "description": p.description}
                          for p in named.parameters], columns=["parameter", "type", "default", "kind", "description"])
    print_frame(frame, title="Parameters")
