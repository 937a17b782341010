"""Frames as response bodies: JSON-ready records, the `QueryResult` body and the provenance of a result (other
output formats: `mmkg.formats`)."""
from __future__ import annotations

import json
from typing import Any

import pandas as pd

from mmkg.api import Mmkg
from mmkg.server.version_memo import provenance as kept_provenance


def clean(value: Any) -> Any:
    """A JSON-ready Python value (NaN → None, numpy scalars → Python)."""
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value.item() if hasattr(value, "item") else value


def records(frame: pd.DataFrame) -> list[dict]:
    return [{k: clean(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _frame_json(frame: pd.DataFrame) -> str:
    return frame.to_json(orient="records", date_format="iso", default_handler=str, force_ascii=False)


def result_provenance(kg: Mmkg, params: dict, frame: pd.DataFrame) -> dict[str, str]:
    """Provenance lines of the studies a result speaks about (its study_id column, else its parameter)."""
    studies = kept_provenance(kg)
    if "study_id" in frame.columns:
        wanted = {str(study) for study in frame["study_id"].dropna().unique()}  # (a few studies in many rows)
    elif params.get("study_id"):
        wanted = {params["study_id"]}
    else:
        wanted = set(studies)
    return {study: studies[study] for study in sorted(wanted) if studies.get(study)}


def query_json(name: str, params: dict, frame: pd.DataFrame, provenance: dict[str, str]) -> bytes:
    """The `QueryResult` body, built without a per-row Python round trip."""
    head = json.dumps({"query": name, "parameters": params, "provenance": provenance,
                       "columns": [str(c) for c in frame.columns]}, default=str, ensure_ascii=False)
    return (head[:-1] + ', "rows": ' + _frame_json(frame) + "}").encode("utf-8")
