"""CLI command `mmkg paper`: every figure of the founding paper next to the graph's answer."""
from __future__ import annotations

from pathlib import Path

import typer

from mmkg.cli.app import Neo4jOption, StoreOption, app, format_option, open_kg, print_frame, show, write_frame


@app.command()
def paper(fmt: str = format_option(),
          output: Path | None = typer.Option(None, "-o", "--output", help="File for csv/json; default stdout."),
          study: str | None = typer.Option(None, "--study", show_default=False, help="The study that holds the "
                                           "founding paper's data (default: the shipped founding study's id, "
                                           "'founding', which `mmkg load` with no file loads)."),
          store: Path | None = StoreOption, neo4j: str | None = Neo4jOption) -> None:
    """Every figure of the founding paper: paper value, graph value, match — or why the graph cannot answer it."""
    from mmkg.paper import founding_study_id, paper_vs_graph

    study = study or founding_study_id()
    with open_kg(store, neo4j, read_only=True) as kg:
        table = paper_vs_graph(kg, study)
        provenance = kg.query("studies").set_index("study_id").loc[study, "provenance"]
    if fmt != "table":
        write_frame(table, output, fmt)
        return
    shown = table.assign(graph_value=table["graph_value"].astype(str), paper_value=table["paper_value"].astype(str))
    print_frame(shown[["id", "section", "confidence", "comparator", "paper_value", "graph_value", "status"]],
                title="Paper vs graph")
    counts = table["status"].value_counts()
    show(f"{len(table)} facts: {counts.get('match', 0)} match, {counts.get('mismatch', 0)} do not, "
         f"{counts.get('not answerable', 0)} the graph cannot answer. Mismatches and their reasons:")
    for row in table[table["status"] == "mismatch"].itertuples():
        show(f"  {row.id}: paper {row.comparator} {row.paper_value}, graph {row.graph_value}. {row.note}")
    show("Not answerable:")
    for row in table[table["status"] == "not answerable"].itertuples():
        show(f"  {row.id}: {row.note}")
    show((provenance, "dim"))
