"""Writing a study as a REFI-QDA project archive (`.qdpx`) that validates against the REFI-QDA 1.0 schema
(Project-mrt2019.xsd) and that `mmkg.loader.refi_qda` reads back to the same study content.

What becomes what (the reader's mapping, inverted; see docs/refi-qda.md):

* Codebooks and code groups become non-codable codes (`isCodable="false"`): one root code per
  codebook, group codes under it (nested as `parent_group_id` says), study codes under their group
  or parent code.  REFI has one code tree, so this is how groups survive the trip.
* Coders → `Users`; participants → `Cases` (label = name) with their attributes as `Variables`
  (string → Text, int → Integer, float → Float, bool → Boolean); sources → `SourceRef`s of the case.
* interview → `TextSource` with `PlainTextSelection`s (offsets as stored; no plain-text file is
  written, because mmkg keeps segment snippets, not whole transcripts); drawing → `PictureSource`
  with `PictureSelection`s (x, y, x + width, y + height, rounded to integers); other → `PDFSource`
  with `PDFSelection`s (page 1) for regions and a `Representation` holding text-offset selections.
* A segment with neither offsets nor a region becomes `Coding`s on its source (read back as the
  segment `<source guid>#whole`).
* `Project/Description` = study description, then a line `Provenance: …` with the study's provenance
  notice, which the reader restores.  GUIDs are UUID 5 of the study-scoped uids: exporting twice gives
  the same file.
"""
from __future__ import annotations

import io
import uuid
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pandas as pd

from mmkg.tables import StudyTables

NS = "urn:QDA-XML:project:1.0"
GUID_NAMESPACE = uuid.UUID("6f6d6d6b-672d-5265-8649-2d5144412d31")
VARIABLE_TYPES = {"string": ("Text", "TextValue"), "int": ("Integer", "IntegerValue"),
                  "float": ("Float", "FloatValue"), "bool": ("Boolean", "BooleanValue")}
PROVENANCE_PREFIX = "Provenance: "


def guid(study_id: str, *parts) -> str:
    """A stable GUID for one study-scoped thing."""
    return str(uuid.uuid5(GUID_NAMESPACE, "/".join([study_id, *map(str, parts)]))).upper()


def _el(parent, tag: str, **attributes) -> ET.Element:
    attributes = {k: str(v) for k, v in attributes.items() if v is not None}
    element = ET.SubElement(parent, f"{{{NS}}}{tag}", attributes) if parent is not None else \
        ET.Element(f"{{{NS}}}{tag}", attributes)
    return element


def _text_el(parent, name: str, text: str | None) -> None:
    if text:
        _el(parent, name).text = text


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and pd.isna(value))


def project_element(tables: StudyTables, origin: str = "mmkg") -> tuple[ET.Element, list[str]]:
    """The `<Project>` element of a study, and warnings about what could not be carried over."""
    s, meta = tables.meta.id, tables.meta
    warnings: list[str] = []
    project = _el(None, "Project", name=meta.title or s, origin=origin)

    coders = sorted(set(tables.codings["coder"]))
    if coders:
        users = _el(project, "Users")
        for coder in coders:
            _el(users, "User", guid=guid(s, "coder", coder), name=coder)

    codes, groups = tables.codes, tables.groups
    code_guid = {(r.codebook, r.code_id): guid(s, "code", r.codebook, r.code_id) for r in codes.itertuples()}
    if len(codes) or len(groups):
        tree = _el(_el(project, "CodeBook"), "Codes")
        for codebook in meta.codebooks:
            root = _el(tree, "Code", guid=guid(s, "codebook", codebook), name=codebook, isCodable="false")
            book_groups = groups[groups["codebook"] == codebook]
            book_codes = codes[codes["codebook"] == codebook]
            _write_groups(root, s, codebook, None, book_groups, book_codes)

    if tables.participants is not None and len(tables.participants):
        variables = meta.participant_attributes
        if variables:
            variables_el = _el(project, "Variables")
            for name, kind in variables.items():
                _el(variables_el, "Variable", guid=guid(s, "variable", name), name=name,
                    typeOfVariable=VARIABLE_TYPES.get(kind, VARIABLE_TYPES["string"])[0])
        cases = _el(project, "Cases")
        sources_by_participant = tables.sources.groupby("participant_id")["source_id"].apply(list).to_dict()
        for row in tables.participants.to_dict("records"):
            case = _el(cases, "Case", guid=guid(s, "participant", row["participant_id"]),
                       name=row.get("label") or row["participant_id"])
            for name, kind in variables.items():
                value = row.get(name)
                if _present(value) and str(value).strip():
                    value_el = _el(case, "VariableValue")
                    _el(value_el, "VariableRef", targetGUID=guid(s, "variable", name))
                    _text_el(value_el, VARIABLE_TYPES.get(kind, VARIABLE_TYPES["string"])[1], str(value).strip())
            for source_id in sources_by_participant.get(row["participant_id"], []):
                _el(case, "SourceRef", targetGUID=guid(s, "source", source_id))

    if len(tables.sources):
        sources_el = _el(project, "Sources")
        segments_by_source = {k: v for k, v in tables.segments.groupby("source_id")}
        codings_by_segment = {k: v for k, v in tables.codings.groupby("segment_id")}
        for source in tables.sources.itertuples():
            segments = segments_by_source.get(source.source_id, tables.segments.iloc[0:0])
            _write_source(sources_el, s, source, segments, codings_by_segment, code_guid, warnings)

    description = "\n\n".join(filter(None, [meta.description, meta.provenance and PROVENANCE_PREFIX + meta.provenance]))
    _text_el(project, "Description", description)
    return project, warnings


def _write_groups(parent, s, codebook, parent_group, groups, codes) -> None:
    level = groups[groups["parent_group_id"].isna()] if parent_group is None else \
        groups[groups["parent_group_id"] == parent_group]
    for group in level.itertuples():
        element = _el(parent, "Code", guid=guid(s, "group", codebook, group.group_id), name=group.label,
                      isCodable="false")
        _write_codes(element, s, codebook, codes[(codes["group_id"] == group.group_id)
                                                 & codes["parent_code_id"].isna()], codes)
        _write_groups(element, s, codebook, group.group_id, groups, codes)


def _write_codes(parent, s, codebook, level, codes) -> None:
    for code in level.itertuples():
        element = _el(parent, "Code", guid=guid(s, "code", codebook, code.code_id), name=code.label,
                      isCodable="true" if str(code.codable).lower() in ("true", "1") else "false")
        _text_el(element, "Description", code.definition if _present(code.definition) else None)
        _write_codes(element, s, codebook, codes[codes["parent_code_id"] == code.code_id], codes)


def _codings(element, s, segment_id, codings_by_segment, code_guid) -> None:
    for coding in codings_by_segment.get(segment_id, pd.DataFrame()).itertuples():
        coding_el = _el(element, "Coding", guid=guid(s, "coding", segment_id, coding.codebook, coding.code_id,
                                                     coding.coder),
                        creatingUser=guid(s, "coder", coding.coder))
        _el(coding_el, "CodeRef", targetGUID=code_guid[(coding.codebook, coding.code_id)])


def _int(value) -> int:
    return int(round(float(value)))


def _write_source(parent, s, source, segments, codings_by_segment, code_guid, warnings) -> None:
    source_guid = guid(s, "source", source.source_id)
    title = source.title if _present(source.title) else source.source_id
    has_offsets = segments["start"].notna() & segments["end"].notna()
    has_region = segments[["x", "y", "width", "height"]].notna().all(axis=1)
    whole = segments[~has_offsets & ~has_region]
    if source.kind == "interview":
        element = _el(parent, "TextSource", guid=source_guid, name=title)
        offset_container, region_kind = element, None
    elif source.kind == "drawing":
        element = _el(parent, "PictureSource", guid=source_guid, name=title,
                      path=f"internal://{source_guid}.png")
        offset_container, region_kind = None, "PictureSelection"
    else:
        element = _el(parent, "PDFSource", guid=source_guid, name=title, path=f"internal://{source_guid}.pdf")
        offset_container, region_kind = None, "PDFSelection"
    for segment in segments[has_region & ~has_offsets].itertuples() if region_kind else []:
        if any(float(v) != int(float(v)) for v in (segment.x, segment.y, segment.width, segment.height)):
            warnings.append(f"segment {segment.segment_id}: region rounded to whole pixels (REFI-QDA uses integers)")
        x, y = _int(segment.x), _int(segment.y)
        region = {"firstX": x, "firstY": y, "secondX": x + _int(segment.width), "secondY": y + _int(segment.height)}
        if region_kind == "PDFSelection":
            region = {"page": 1, **region}
        selection = _el(element, region_kind, guid=guid(s, "segment", segment.segment_id), **region)
        _codings(selection, s, segment.segment_id, codings_by_segment, code_guid)
    offset_segments = segments[has_offsets]
    if len(offset_segments) and offset_container is None:
        if source.kind == "drawing":
            warnings.append(f"source {source.source_id}: {len(offset_segments)} offset segment(s) in a drawing "
                            "were written into its TextDescription")
            offset_container = _el(element, "TextDescription", guid=guid(s, "text", source.source_id))
        else:
            offset_container = _el(element, "Representation", guid=guid(s, "text", source.source_id))
        # a TextDescription must precede the PictureSelections: move it to the front
        element.remove(offset_container)
        element.insert(0 if source.kind == "drawing" else len(element), offset_container)
    for segment in offset_segments.itertuples():
        selection = _el(offset_container, "PlainTextSelection", guid=guid(s, "segment", segment.segment_id),
                        startPosition=_int(segment.start), endPosition=_int(segment.end))
        _codings(selection, s, segment.segment_id, codings_by_segment, code_guid)
    if len(whole) > 1:
        warnings.append(f"source {source.source_id}: {len(whole)} segments without position are written as codings "
                        "of the whole source and come back as one segment")
    for segment in whole.itertuples():
        _codings(element, s, segment.segment_id, codings_by_segment, code_guid)


def qdpx_bytes(tables: StudyTables, origin: str = "mmkg") -> tuple[bytes, list[str]]:
    """The `.qdpx` archive (zip with `project.qde`) as bytes, and export warnings."""
    project, warnings = project_element(tables, origin)
    ET.register_namespace("", NS)
    xml = ET.tostring(project, encoding="utf-8", xml_declaration=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("project.qde", xml)
    return buffer.getvalue(), warnings


def write_qdpx(tables: StudyTables, output: Path | str, origin: str = "mmkg") -> list[str]:
    """Write a study's tables as a REFI-QDA project to `output`; returns export warnings."""
    data, warnings = qdpx_bytes(tables, origin=origin)
    Path(output).write_bytes(data)
    return warnings
