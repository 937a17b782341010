"""CLI commands for linking a study to the shared ontology: `mmkg map suggest|apply|show`."""
from __future__ import annotations

from pathlib import Path

import typer

from mmkg.cli.app import Neo4jOption, StoreOption, app, open_kg, print_frame, show, write_frame

map_app = typer.Typer(help="Map a study's codes onto the shared ontology (suggest, apply, show).",
                      no_args_is_help=True)
app.add_typer(map_app, name="map")


@map_app.command("suggest")
def map_suggest(study: str = typer.Argument(..., help="Study id."),
                output: Path | None = typer.Option(None, "-o", "--output", help="Write the review table as CSV "
                                                      "here (review it, then `mmkg map apply`)."),
                top: int = typer.Option(3, "--top", help="Candidates per code: the proposal and top-1 marked "
                                        "alternatives (alternative_<i> columns, never applied)."),
                min_score: float | None = typer.Option(None, "--min-score", help="No proposal when the best "
                                                       "candidate scores below this (0–100; default 52 for the string "
                                                       "matcher, 60 for the semantic one)."),
                include_mapped: bool = typer.Option(False, "--include-mapped", help="Also suggest for codes that "
                                                    "already have a mapping."),
                matcher: str = typer.Option("auto", "--matcher", help="string (words only), semantic (words and "
                                            "sentence embeddings; needs mmkg[semantic]) or auto (semantic when "
                                            "installed)."),
                store: Path | None = StoreOption, neo4j: str | None = Neo4jOption) -> None:
    """Propose one ontology concept per code, with marked alternatives and a reason where there is no
    proposal. Applies nothing: the table works as-is with `mmkg map apply`."""
    from mmkg.mapping import suggest

    with open_kg(store, neo4j, read_only=True) as kg:
        suggestions = suggest(kg, study, top=top, min_score=min_score,
                              include_mapped=include_mapped, matcher=matcher)
    table = suggestions.review_table()
    show(suggestions.summary(), err=True)
    if not len(table):
        show("nothing to review: every code of the study already has a mapping (--include-mapped suggests for "
             "them too)" if suggestions.already_mapped else "nothing to review: the study has no codes", err=True)
        return
    if output is not None:
        write_frame(table, output, "csv")
    else:
        shown = ["codebook", "code_id", "label", "concept", "score", "match", "reason"] + \
            [c for c in table.columns if c.startswith("alternative_") and not c.endswith("_label")]
        print_frame(table[shown], title=f"Suggested mapping for {study} (review, then `mmkg map apply`)")


@map_app.command("apply")
def map_apply(study: str = typer.Argument(..., help="Study id."),
              file: Path = typer.Argument(..., help="Reviewed mapping CSV: codebook, code_id, concept, match[, note]."),
              merge: bool = typer.Option(False, "--merge", help="Keep current mappings of codes the file does not "
                                         "mention (default: the file is the study's whole mapping)."),
              store: Path | None = StoreOption, neo4j: str | None = Neo4jOption) -> None:
    """Validate a reviewed mapping table and apply it atomically; report codes left unmapped."""
    from mmkg.mapping import apply_mapping

    with open_kg(store, neo4j) as kg:
        report = apply_mapping(kg, study, file, merge=merge)
    show(f"Applied {report.mappings} mapping(s) to study '{study}'; {len(report.unmapped)} code(s) have no concept.")
    if len(report.unmapped):
        print_frame(report.unmapped, title="Unmapped codes")


@map_app.command("show")
def map_show(study: str = typer.Argument(..., help="Study id."),
             output: Path | None = typer.Option(None, "-o", "--output", help="Write as CSV instead of printing."),
             store: Path | None = StoreOption, neo4j: str | None = Neo4jOption) -> None:
    """The study's code → concept mapping."""
    from mmkg.mapping import show_mapping

    with open_kg(store, neo4j, read_only=True) as kg:
        frame = show_mapping(kg, study)
    if output is not None:
        write_frame(frame, output, "csv")
    else:
        print_frame(frame, title=f"Mapping of {study} onto the ontology")
