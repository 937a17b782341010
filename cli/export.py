"""CLI commands that write tables or files out of the graph: `mmkg export codings|codes|rdf|qdpx|study|neo4j-import`."""
from __future__ import annotations

from pathlib import Path

import typer

from mmkg.cli.app import Neo4jOption, StoreOption, export_app, format_option, open_kg, print_warnings, show, write_frame

STUDY_OPTION = typer.Option("*", "--study", help="Only this study ('*', the default: every study; '' = the only "
                            "study in the store).")


TABLE_OUTPUT_OPTION = typer.Option(None, "-o", "--output", help="File to write; '-' or omitted: standard output.")


@export_app.command("codings")
def export_codings(output: Path | None = TABLE_OUTPUT_OPTION,
                   fmt: str = format_option(printable=False),
                   study: str = STUDY_OPTION,
                   store: Path | None = StoreOption, neo4j: str | None = Neo4jOption) -> None:
    """One row per coding: study, participant, source, segment, code, codebook, coder."""
    with open_kg(store, neo4j, read_only=True) as kg:
        write_frame(kg.export_codings(study), output, fmt)


@export_app.command("codes")
def export_codes(output: Path | None = TABLE_OUTPUT_OPTION,
                 fmt: str = format_option(printable=False),
                 study: str = STUDY_OPTION,
                 store: Path | None = StoreOption, neo4j: str | None = Neo4jOption) -> None:
    """One row per code: label, parent (group or parent code), codable, codebook."""
    with open_kg(store, neo4j, read_only=True) as kg:
        write_frame(kg.export_codes(study), output, fmt)


@export_app.command("rdf")
def export_rdf_command(output: Path = typer.Option(..., "-o", "--output", help="File to write."),
                       fmt: str = typer.Option("ttl", "--format", help="ttl (Turtle) or jsonld (JSON-LD)."),
                       study: str = STUDY_OPTION,
                       store: Path | None = StoreOption, neo4j: str | None = Neo4jOption) -> None:
    """The ontology plus instance data as RDF, conforming to ontology/shapes.ttl."""
    from mmkg.export_rdf import export_rdf

    with open_kg(store, neo4j, read_only=True) as kg:
        export_rdf(kg, output, fmt, study)
    show(f"wrote {output}", err=True)


@export_app.command("qdpx")
def export_qdpx_command(study: str = typer.Option("", "--study", help="Study to export ('' = the only study in "
                                                  "the store)."),
                        output: Path = typer.Option(..., "-o", "--output", help=".qdpx file to write."),
                        store: Path | None = StoreOption, neo4j: str | None = Neo4jOption) -> None:
    """A REFI-QDA project (codes, sources, selections, codings, coders, cases) for other QDA tools."""
    with open_kg(store, neo4j, read_only=True) as kg:
        warnings = kg.export_qdpx(study, output)
    show(f"wrote {output}", err=True)
    print_warnings(warnings)


@export_app.command("study")
def export_study_command(output: Path = typer.Option(..., "-o", "--output", help="Folder to write (new or empty)."),
                         study: str = typer.Option("", "--study", help="Study to export ('' = the only study in "
                                                   "the store)."),
                         force: bool = typer.Option(False, "--force", help="Write into a folder that is not empty, "
                                                    "replacing its study files."),
                         store: Path | None = StoreOption, neo4j: str | None = Neo4jOption) -> None:
    """A study folder (study.json + CSVs) that `mmkg load FOLDER` loads back identical: the lossless export."""
    with open_kg(store, neo4j, read_only=True) as kg:
        files = kg.export_study(study, output, force=force)
    show(f"wrote {len(files)} files to {output}", err=True)


@export_app.command("neo4j-import")
def export_neo4j_import_command(
        directory: Path = typer.Argument(..., help="Folder to write the CSV files and import.sh into."),
        store: Path | None = StoreOption, neo4j: str | None = Neo4jOption) -> None:
    """Node and relationship CSVs for `neo4j-admin database import full` (big corpora), plus import.sh."""
    from mmkg.store.neo4j_import import IMPORT_SCRIPT, export_neo4j_import

    with open_kg(store, neo4j, read_only=True) as kg:
        files = export_neo4j_import(kg, directory)
    nodes = sum(f.rows for f in files if f.kind == "nodes")
    rels = sum(f.rows for f in files if f.kind == "relationships")
    show(f"wrote {len(files)} files ({nodes:,} nodes, {rels:,} relationships) to {directory}; "
         f"import into a stopped Neo4j with: sh {directory / IMPORT_SCRIPT}")
