"""The API's response models (what OpenAPI documents for each route)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Study(BaseModel):
    model_config = ConfigDict(extra="allow")
    study_id: str
    title: str | None = None
    provenance: str | None = Field(None, description="where the study's data come from (shown with every result)")


class Participant(BaseModel):
    participant_id: str
    label: str | None = None
    attributes: dict[str, str | float | bool | None] = Field(
        default_factory=dict, description="participant attributes (Table 1 / case variables), typed")


class ConceptLink(BaseModel):
    concept: str
    label: str | None = None
    kind: str | None = None
    match: str | None = Field(None, description="SKOS match of code to concept: exact, close, broad, narrow, related")


class CodeWithConcepts(BaseModel):
    model_config = ConfigDict(extra="allow")
    study_id: str
    codebook: str
    code_id: str
    label: str | None = None
    concepts: list[ConceptLink] = Field(default_factory=list, description="ontology concepts the code maps to")


class ExternalLink(BaseModel):
    scheme: str | None = None
    external_id: str | None = None
    name: str | None = None
    url: str | None = None
    match: str | None = None


class MappedCode(BaseModel):
    study_id: str
    codebook: str
    code_id: str
    label: str | None = None
    match: str | None = None


class Concept(BaseModel):
    concept: str = Field(description="the concept's uid (local name in the mmkg ontology)")
    iri: str | None = None
    label: str | None = None
    kind: str | None = None
    definition: str | None = None
    alt_labels: list[str] = Field(default_factory=list)
    broader: list[str] = Field(default_factory=list)
    external_ids: list[ExternalLink] = Field(default_factory=list, description="e.g. MITRE ATLAS techniques")
    codes: list[MappedCode] = Field(default_factory=list, description="study codes that map to the concept")


class QueryParameterInfo(BaseModel):
    name: str
    type: Literal["STRING", "INTEGER", "FLOAT", "BOOLEAN"]
    default: Any = None
    description: str = ""


class QueryInfo(BaseModel):
    name: str
    title: str
    description: str
    parameters: list[QueryParameterInfo]
    path: str = Field(description="where to run it: GET with the parameters as query string")


class QueryResult(BaseModel):
    query: str
    parameters: dict[str, Any]
    provenance: dict[str, str] = Field(description="study id → where its data come from, for the studies in the rows")
    columns: list[str]
    rows: list[dict[str, Any]]


class LoadResult(BaseModel):
    study_id: str
    counts: dict[str, int]
    seconds: float
    warnings: list[str]
    provenance: str
    replaced_codings: int | None = None  # the replaced version's codings (200); None: a new study (201)
