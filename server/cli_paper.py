"""CLI command `mmkg paper`: the founding paper's figures next to the graph's."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mmkg.server.cli import Neo4jOption, StoreOption, app, open_kg, print_frame, show, write_frame


@app.command()
def paper(fmt: str = typer.Option("table", "--format", help="table, csv or json."),
          output: Optional[Path] = typer.Option(None, "-o", "--output", help="File for csv/json; default stdout."),
          study: str = typer.Option("founding", "--study", help="The study loaded from the founding paper."),
          store: Optional[Path] = StoreOption, neo4j: Optional[str] = Neo4jOption) -> None:
    """Every figure of the founding paper the graph can answer: paper value, graph value, match."""
    from mmkg.paper import paper_vs_graph

    with open_kg(store, neo4j, read_only=True) as kg:
        table = paper_vs_graph(kg, study)
        provenance = kg.query("studies").set_index("study_id").loc[study, "provenance"]
    if fmt != "table":
        write_frame(table, output, fmt)
        return
    shown = table.assign(graph_value=table["graph_value"].astype(str), paper_value=table["paper_value"].astype(str))
    print_frame(shown[["id", "section", "confidence", "comparator", "paper_value", "graph_value", "match"]],
                title="Paper vs graph")
    show(f"{int(table['match'].sum())} of {len(table)} figures match. Mismatches and their reasons:")
    for row in table[~table["match"]].itertuples():
        show(f"  {row.id}: paper {row.comparator} {row.paper_value}, graph {row.graph_value}. {row.note}")
    show((provenance, "dim"))
