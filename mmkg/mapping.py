"""Mapping a study's codes onto the shared ontology (see docs/linking-studies.md).

A study's mapping table has one row per (code, concept): `codebook, code_id, concept, match, note`,
`match` a SKOS match type read as "code skos:<match>Match concept".  It is stored as `MAPS_TO`
relationships.  `suggest_mappings` proposes candidates and never writes; `apply_mapping` validates a
reviewed table and replaces the study's mapping atomically by re-writing the study through the loader
path (read back from the graph → new concept map → validate → `replace_study`, all or nothing).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mmkg.errors import LoadError, ValidationError
from mmkg.tables import MATCH_TYPES

SUGGEST_COLUMNS = ["codebook", "code_id", "label", "concept", "concept_label", "score", "match"]
MAPPING_COLUMNS = ["codebook", "code_id", "concept", "match", "note"]
EXACT_SCORE = 95.0  # a suggestion scoring at least this is proposed as `exact`, others as `close`
STOP_WORDS = frozenset("a about an and for in of on or the to with".split())


@dataclass
class ApplyReport:
    """What `apply_mapping` wrote: mapped rows, and the codes left without a concept."""

    study_id: str
    mappings: int
    unmapped: pd.DataFrame  # codebook, code_id, label, codable
    warnings: list[str] = field(default_factory=list)


def _normalise(text: str | None) -> str:
    """Lower case, camelCase and `_-/:.` split into words, so `ModelStealing` ~ `model stealing`."""
    if not isinstance(text, str):
        return ""
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text)
    words = re.sub(r"[\s_\-/:.;,()\"']+", " ", text).strip().lower().split()
    return " ".join(w for w in words if w not in STOP_WORDS)


def _concept_names() -> pd.DataFrame:
    from mmkg.ontology import concept_tables

    concepts = concept_tables()["concepts"]
    concepts["names"] = [[_normalise(n) for n in [row.label, row.uid] + row.alt_labels.split(";") if n]
                         for row in concepts.itertuples()]
    concepts["definition_norm"] = concepts["definition"].map(_normalise)
    return concepts


def score_pair(label: str, definition: str | None, names: list[str], concept_definition: str) -> float:
    """Similarity 0–100 of a code and a concept with rapidfuzz.

    Texts are lower-cased, split at camelCase and punctuation, and stripped of stop words.  The label
    score is the best `token_sort_ratio` of the code label against the concept's preferred label, uid
    and alternative labels (word order does not matter: "stealing the model" ~ "model stealing").  At 90 or more it is the score; below, a quarter of the score comes
    from `token_set_ratio` of the code's label + definition against the concept's definition.
    """
    from rapidfuzz import fuzz

    code_label = _normalise(label)
    if not code_label:
        return 0.0
    label_score = max((fuzz.token_sort_ratio(code_label, name) for name in names), default=0.0)
    if label_score >= 90:
        return round(float(label_score), 1)
    code_text = f"{code_label} {_normalise(definition)}".strip()
    definition_score = fuzz.token_set_ratio(code_text, concept_definition) if concept_definition else 0.0
    return round(0.75 * label_score + 0.25 * definition_score, 1)


def suggest_mappings(kg, study_id: str, *, top: int = 3, min_score: float = 60.0,
                     include_mapped: bool = False) -> pd.DataFrame:
    """Up to `top` candidate concepts per code, best first (`SUGGEST_COLUMNS`); nothing is written.

    Codes that already have a mapping are skipped unless `include_mapped`.  `match` is a proposal
    (`exact` at a score ≥ 95, else `close`) for a person to review before `apply_mapping`.
    """
    from mmkg.graph_tables import read_study_tables

    tables = read_study_tables(kg, study_id)
    codes = tables.codes
    if not include_mapped and len(tables.concept_map):
        mapped = set(zip(tables.concept_map["codebook"], tables.concept_map["code_id"]))
        codes = codes[[(b, c) not in mapped for b, c in zip(codes["codebook"], codes["code_id"])]]
    concepts = _concept_names()
    rows = []
    for code in codes.itertuples():
        scored = sorted(((score_pair(code.label, code.definition, c.names, c.definition_norm), c.uid, c.label)
                         for c in concepts.itertuples()), key=lambda t: (-t[0], t[1]))
        for score, uid, concept_label in scored[:top]:
            if score < min_score:
                break
            rows.append({"codebook": code.codebook, "code_id": code.code_id, "label": code.label,
                         "concept": uid, "concept_label": concept_label, "score": score,
                         "match": "exact" if score >= EXACT_SCORE else "close"})
    return pd.DataFrame(rows, columns=SUGGEST_COLUMNS)


def read_mapping_file(path: Path) -> pd.DataFrame:
    """A reviewed mapping CSV: needs `codebook, code_id, concept, match`; `note` and other columns optional."""
    from mmkg.loader.csv_files import read_csv_text

    frame = read_csv_text(Path(path))
    missing = [c for c in MAPPING_COLUMNS[:4] if c not in frame.columns]
    if missing:
        raise LoadError(f"{path}: missing column(s) {', '.join(missing)} "
                        f"(a mapping table has: {', '.join(MAPPING_COLUMNS)})")
    if "note" not in frame.columns:
        frame["note"] = None
    return frame


def check_mapping(frame: pd.DataFrame, codes: pd.DataFrame, where: str) -> pd.DataFrame:
    """Validate mapping rows against the study's codes and the ontology.

    Returns the rows to apply (`MAPPING_COLUMNS`, concepts resolved to uids); rows with an empty
    `concept` mean "deliberately unmapped" and are dropped.  Raises `ValidationError` listing every
    bad row (spreadsheet row number, column, what is wrong).
    """
    from mmkg.loader.csv_files import ROW_COLUMN
    from mmkg.ontology import resolve_concept

    known_codes = set(zip(codes["codebook"], codes["code_id"]))
    problems, rows, seen = [], [], {}
    for record in frame.to_dict("records"):
        row = record.get(ROW_COLUMN, "?")
        codebook, code_id, concept = record.get("codebook"), record.get("code_id"), record.get("concept")
        match = (record.get("match") or "").strip().lower()
        if concept is None or not str(concept).strip():
            continue
        if (codebook, code_id) not in known_codes:
            problems.append(f"{where}, row {row}, column code_id: the study has no code '{code_id}' "
                            f"in codebook '{codebook}'")
        uid = resolve_concept(str(concept))
        if uid is None:
            problems.append(f"{where}, row {row}, column concept: '{concept}' is not a concept of the mmkg ontology")
        if match not in MATCH_TYPES:
            problems.append(f"{where}, row {row}, column match: '{record.get('match') or ''}' is not a SKOS match "
                            f"type (allowed: {', '.join(MATCH_TYPES)})")
        key = (codebook, code_id, uid)
        if uid is not None and key in seen:
            problems.append(f"{where}, row {row}: maps code '{code_id}' to '{uid}' again (first on row {seen[key]})")
        seen.setdefault(key, row)
        rows.append({"codebook": codebook, "code_id": code_id, "concept": uid, "match": match,
                     "note": record.get("note")})
    if problems:
        count = len(problems)
        raise ValidationError(f"{where}: {count} problem{'s' if count != 1 else ''} in the mapping table; "
                              "nothing was applied", details=problems)
    return pd.DataFrame(rows, columns=MAPPING_COLUMNS)


def apply_mapping(kg, study_id: str, mapping: pd.DataFrame | Path | str, *, merge: bool = False) -> ApplyReport:
    """Replace the study's code→concept mapping with a reviewed table, atomically.

    `mapping` is a DataFrame or a CSV path (`codebook, code_id, concept, match, note`).  With `merge`,
    codes absent from the table keep their current mappings; otherwise the table is the whole mapping.
    """
    from mmkg.graph_tables import read_study_tables

    where = str(mapping) if not isinstance(mapping, pd.DataFrame) else "mapping table"
    frame = read_mapping_file(Path(mapping)) if not isinstance(mapping, pd.DataFrame) else mapping.copy()
    tables = read_study_tables(kg, study_id)
    new = check_mapping(frame, tables.codes, where)
    if merge and len(tables.concept_map):
        old = tables.concept_map
        replaced = set(zip(new["codebook"], new["code_id"]))
        keep = old[[(b, c) not in replaced for b, c in zip(old["codebook"], old["code_id"])]]
        new = pd.concat([keep[MAPPING_COLUMNS], new], ignore_index=True)
    tables.concept_map = new.astype(object).where(new.notna(), None)
    kg.load_tables(tables)
    return ApplyReport(study_id=study_id, mappings=len(new), unmapped=unmapped_codes(kg, study_id))


def show_mapping(kg, study_id: str) -> pd.DataFrame:
    """The study's mapping with code and concept labels: one row per MAPS_TO."""
    kg.require_study(study_id)
    return kg.cypher(
        "MATCH (k:Code)-[m:MAPS_TO]->(c:Concept) WHERE k.study_id = $s "
        "RETURN k.codebook AS codebook, k.id AS code_id, k.label AS label, c.uid AS concept, "
        "c.label AS concept_label, c.kind AS kind, m.match AS match, m.note AS note "
        "ORDER BY codebook, code_id, concept", {"s": study_id})


def unmapped_codes(kg, study_id: str) -> pd.DataFrame:
    """Codes of the study with no MAPS_TO."""
    return kg.cypher(
        "MATCH (k:Code) WHERE k.study_id = $s AND NOT EXISTS { MATCH (k)-[:MAPS_TO]->(:Concept) } "
        "RETURN k.codebook AS codebook, k.id AS code_id, k.label AS label, k.codable AS codable "
        "ORDER BY codebook, code_id", {"s": study_id})
