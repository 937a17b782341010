"""Studies, their participants and their codes."""
from __future__ import annotations

from fastapi import APIRouter, Depends

from mmkg.api import Mmkg
from mmkg.errors import NotFoundError
from mmkg.server.dependencies import GraphReader, graph_reader
from mmkg.server.models import CodeWithConcepts, Participant, Study
from mmkg.server.responses import records

router = APIRouter(tags=["studies"])


def _attribute_value(row: dict) -> str | float | bool | None:
    if row["type"] == "bool":
        return None if row["value"] is None else str(row["value"]).lower() in ("true", "1", "yes")
    if row["type"] in ("float", "int", "integer", "number"):
        return row["value_num"]
    return row["value"]


def read_participants(kg: Mmkg, study_id: str) -> list[dict]:
    kg.require_study(study_id)
    people: dict[str, dict] = {}
    for row in records(kg.rows("participant_attributes", study_id=study_id)):
        person = people.setdefault(row["participant_id"], {"participant_id": row["participant_id"],
                                                           "label": row["label"], "attributes": {}})
        if row["name"] is not None:
            person["attributes"][row["name"]] = _attribute_value(row)
    return list(people.values())


def read_codes(kg: Mmkg, study_id: str) -> list[dict]:
    kg.require_study(study_id)
    codes = records(kg.query("codes", study_id=study_id))
    links: dict[tuple, list] = {}
    mapping = kg.rows("code_concepts", study_id=study_id)[["codebook", "code_id", "concept", "concept_label", "kind",
                                                           "match"]]
    for row in records(mapping.rename(columns={"concept_label": "label"})):
        links.setdefault((row.pop("codebook"), row.pop("code_id")), []).append(row)
    for code in codes:
        code["concepts"] = links.get((code["codebook"], code["code_id"]), [])
    return codes


@router.get("/api/studies", response_model=list[Study])
async def list_studies(read: GraphReader = Depends(graph_reader)):
    """Every study in the graph with its counts and provenance."""
    return await read(lambda kg: records(kg.studies()))

@router.get("/api/studies/{study_id}", response_model=Study)
async def one_study(study_id: str, read: GraphReader = Depends(graph_reader)):
    """One study with its counts and provenance."""
    studies = await read(lambda kg: records(kg.studies()))
    for study in studies:
        if study["study_id"] == study_id:
            return study
    raise NotFoundError(f"no study '{study_id}' in the store "
                        f"(studies: {', '.join(s['study_id'] for s in studies) or 'none'})")

@router.get("/api/studies/{study_id}/participants", response_model=list[Participant])
async def participants(study_id: str, read: GraphReader = Depends(graph_reader)):
    """The study's participants with their attributes."""
    return await read(lambda kg: read_participants(kg, study_id))

@router.get("/api/studies/{study_id}/codes", response_model=list[CodeWithConcepts])
async def codes(study_id: str, read: GraphReader = Depends(graph_reader)):
    """The study's codes (both codebooks) with the ontology concepts each maps to."""
    return await read(lambda kg: read_codes(kg, study_id))
