"""The ontology's concepts with broader terms, external ids and the study codes mapped to them."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query

from mmkg.api import Mmkg
from mmkg.errors import NotFoundError
from mmkg.server.dependencies import GraphReader, graph_reader
from mmkg.server.models import Concept
from mmkg.server.responses import records

CONCEPT_KINDS = ("pipeline_element", "aml_threat", "security_threat", "aml_defense", "security_defense",
                 "perception")
router = APIRouter(tags=["ontology"])


def read_concepts(kg: Mmkg) -> list[dict]:
    concepts = {row["concept"]: row for row in records(kg.rows("ontology_concepts"))}
    for concept in concepts.values():
        concept["alt_labels"] = [a for a in (concept.get("alt_labels") or "").split(";") if a]
        concept.update(broader=[], external_ids=[], codes=[])
    relations = kg.rows("concept_relations")
    broader = relations[relations["type"] == "BROADER"].sort_values("target", kind="stable")
    for row in records(broader.rename(columns={"source": "concept", "target": "broader"})[["concept", "broader"]]):
        concepts[row["concept"]]["broader"].append(row["broader"])
    for key, statement in (("external_ids", "concept_external_ids"), ("codes", "concept_codes")):
        for row in records(kg.rows(statement)):
            concepts[row.pop("concept")][key].append(row)
    return list(concepts.values())


@router.get("/api/concepts", response_model=list[Concept])
async def concepts(kind: Literal[CONCEPT_KINDS] | None = Query(None, description="only concepts of this kind"),
                   read: GraphReader = Depends(graph_reader)):
    """Ontology concepts with broader terms, external ids (MITRE ATLAS) and the study codes mapped to them."""
    every = await read(read_concepts)
    return [c for c in every if kind is None or c["kind"] == kind]

@router.get("/api/concepts/{concept}", response_model=Concept)
async def one_concept(concept: str, read: GraphReader = Depends(graph_reader)):
    """One ontology concept by uid (e.g. ModelStealing)."""
    every = await read(read_concepts)
    for item in every:
        if item["concept"] == concept:
            return item
    raise NotFoundError(f"no concept '{concept}' in the ontology")
