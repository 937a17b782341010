"""Writing a study as a REFI-QDA project archive (`.qdpx`) that validates against the REFI-QDA 1.0 schema
(Project-mrt2019.xsd) and that `mmkg.loader.refi_qda` reads back: a study imported from REFI-QDA comes back
identical from the REFI-QDA part alone, any study identical through mmkg's member (tests/test_round_trip*.py).

What becomes what (the reader's mapping, inverted; see docs/refi-qda.md):

* A study whose codes are the reader's one codebook `refi` in its one group `codes` is written as that code
  tree, with no wrapper codes.  Otherwise codebooks and code groups become non-codable codes
  (`isCodable="false"`): one root code per codebook, group codes under it (nested as `parent_group_id` says),
  study codes under their group or parent code.  REFI has one code tree, so this is how groups survive.
* Coders → `Users`; participants → `Cases` (label = name) with their attributes as `Variables`
  (string → Text, int → Integer, float → Float, bool → Boolean); sources → `SourceRef`s of the case.  The
  participants the reader makes for a source in no Case are not written: the reader makes them again.
* interview → `TextSource` with `PlainTextSelection`s (offsets as stored) and a plain-text file rebuilt from
  the segments' texts at their offsets (mmkg keeps segment texts, not whole transcripts); drawing →
  `PictureSource` with `PictureSelection`s (x, y, x + width, y + height, rounded to integers); other → an
  `AudioSource`/`VideoSource` when its name is a media file, else a `PDFSource` with `PDFSelection`s (page 1)
  for regions and a `Representation` holding text-offset selections.
* A quote without position (a Taguette highlight) gets a made-up place after the text, marked with
  `MADE_UP_POSITION`, which the reader turns back into a quote without position; a segment with neither
  position nor text becomes `Coding`s on its source (read back as the segment `<source guid>#whole`).
* `Project/Description` = study description, then a line `Provenance: …` with the study's provenance
  notice, which the reader restores.  An id that is a GUID is written as that GUID; other GUIDs are UUID 5
  of the study-scoped uids: exporting twice gives the same file.
* What REFI-QDA cannot express (codebooks, groups, ids, region texts, text sections, preferred labels, the
  concept map) rides in the member `mmkg/study.json`: the study as its study folder plus the SHA-256 of every
  REFI member.  The reader uses it only while those digests match, so any study comes back identical and a
  file another tool changed is read as plain REFI-QDA.
"""
from __future__ import annotations

import hashlib
import io
import json
import mimetypes
import re
import uuid
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path, PurePosixPath

import pandas as pd

from mmkg.loader.refi_qda import (
    CODEBOOK,
    EMBEDDED_FORMAT,
    EMBEDDED_STUDY,
    GROUP_ID,
    GROUP_LABEL,
    MADE_UP_POSITION,
    SYNTHETIC_PARTICIPANT,
)
from mmkg.loader.study_folder import study_folder_files
from mmkg.tables import StudyTables

NS = "urn:QDA-XML:project:1.0"
GUID_NAMESPACE = uuid.UUID("6f6d6d6b-672d-5265-8649-2d5144412d31")
VARIABLE_TYPES = {"string": ("Text", "TextValue"), "int": ("Integer", "IntegerValue"),
                  "float": ("Float", "FloatValue"), "bool": ("Boolean", "BooleanValue")}
PROVENANCE_PREFIX = "Provenance: "


KEPT_GUIDS = {"code", "source", "segment", "participant", "coder", "variable"}  # kinds whose id may be a GUID
GUID_SHAPE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def guid(study_id: str, *parts) -> str:
    """A stable GUID for one study-scoped thing: its id itself when that is a GUID (what the REFI-QDA reader
    keys things on, so an imported project keeps its GUIDs), else a UUID 5 of the study-scoped uid."""
    own = str(parts[-1]).lower() if parts else ""
    if parts[0] == "segment":  # the reader calls the later selections that repeat a GUID `GUID#2`, `#3`, …
        own = re.sub(r"#\d+$", "", own)
    if parts[0] in KEPT_GUIDS and GUID_SHAPE.fullmatch(own):
        return own.upper()
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


def project_element(tables: StudyTables, origin: str = "mmkg",
                    files: dict[str, str] | None = None) -> tuple[ET.Element, list[str]]:
    """The `<Project>` element of a study, and warnings about what could not be carried over; `files` receives
    the plain texts of the sources (archive member name -> text) that the element refers to."""
    s, meta = tables.meta.id, tables.meta
    files = {} if files is None else files
    warnings: list[str] = []
    project = _el(None, "Project", name=meta.title or s, origin=origin)

    coders = sorted(set(tables.codings["coder"]))
    if coders:
        users = _el(project, "Users")
        for coder in coders:
            _el(users, "User", guid=guid(s, "coder", coder), name=coder)

    codes, groups = tables.codes, tables.groups
    code_guid = {(r.codebook, r.code_id): guid(s, "code", r.codebook, r.code_id) for r in codes.itertuples()}
    if len(codes) or (len(groups) and not _one_refi_codebook(tables)):  # <Codes> needs a <Code>
        tree = _el(_el(project, "CodeBook"), "Codes")
        if _one_refi_codebook(tables):  # as the REFI-QDA reader made it: the code tree itself, no wrapper codes
            book_codes = codes[codes["codebook"] == CODEBOOK]
            _write_codes(tree, s, CODEBOOK, book_codes[book_codes["parent_code_id"].isna()], book_codes)
        for codebook in [] if _one_refi_codebook(tables) else meta.codebooks:
            root = _el(tree, "Code", guid=guid(s, "codebook", codebook), name=codebook, isCodable="false")
            book_groups = groups[groups["codebook"] == codebook]
            book_codes = codes[codes["codebook"] == codebook]
            _write_groups(root, s, codebook, None, book_groups, book_codes)

    participants = _written_participants(tables)
    if len(participants):
        flagged = SYNTHETIC_PARTICIPANT in participants and (participants[SYNTHETIC_PARTICIPANT] == "true").any()
        variables = {name: kind for name, kind in meta.participant_attributes.items()
                     if name != SYNTHETIC_PARTICIPANT or flagged}
        if variables:
            variables_el = _el(project, "Variables")
            for name, kind in variables.items():
                _el(variables_el, "Variable", guid=guid(s, "variable", name), name=name,
                    typeOfVariable=VARIABLE_TYPES.get(kind, VARIABLE_TYPES["string"])[0])
        cases = _el(project, "Cases")
        sources_by_participant = tables.sources.groupby("participant_id")["source_id"].apply(list).to_dict()
        for row in participants.to_dict("records"):
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
            _write_source(sources_el, s, source, segments, codings_by_segment, code_guid, warnings, files)

    description = "\n\n".join(filter(None, [meta.description, meta.provenance and PROVENANCE_PREFIX + meta.provenance]))
    _text_el(project, "Description", description)
    return project, warnings


def _one_refi_codebook(tables: StudyTables) -> bool:
    """True when the study's codes are one REFI-QDA code tree as `mmkg.loader.refi_qda` reads it (codebook
    `refi`, its one group `codes`): written back as that tree, with no codebook or group codes around it."""
    groups = tables.groups
    return (list(tables.meta.codebooks) == [CODEBOOK] and len(groups) == 1
            and (groups.iloc[0]["codebook"], groups.iloc[0]["group_id"], groups.iloc[0]["label"]) ==
            (CODEBOOK, GROUP_ID, GROUP_LABEL) and not _present(groups.iloc[0]["parent_group_id"]))


def _written_participants(tables: StudyTables) -> pd.DataFrame:
    """The participants written as Cases: all but those the REFI-QDA reader makes itself for a source in no
    Case (flagged `synthetic_participant`, keyed and labelled by their one source), so none is invented."""
    participants = tables.participants
    if participants is None or SYNTHETIC_PARTICIPANT not in participants:
        return participants if participants is not None else pd.DataFrame(columns=["participant_id", "label"])
    sources = tables.sources.set_index("source_id")
    owned = tables.sources.groupby("participant_id")["source_id"].apply(list).to_dict()

    def made_by_reader(row) -> bool:
        if str(row[SYNTHETIC_PARTICIPANT]).lower() != "true" or owned.get(row["participant_id"]) != \
                [row["participant_id"]]:
            return False
        title = sources.loc[row["participant_id"], "title"]
        return row["label"] == (title if _present(title) else row["participant_id"])

    return participants[~participants.apply(made_by_reader, axis=1)] if len(participants) else participants


def _plain_text(source_id: str, segments: pd.DataFrame, warnings: list[str]) -> str | None:
    """The source's plain text, rebuilt from its segments' texts at their offsets (mmkg keeps segment texts, not
    whole transcripts; the rest is spaces), so a re-import reads every segment's text back; None without texts."""
    placed = segments[segments["text"].notna() & segments["start"].notna() & segments["end"].notna()]
    if placed.empty:
        return None
    chars = [" "] * max(_int(end) for end in placed["end"])
    disagree = 0
    for segment in placed.itertuples():
        start, end, text = _int(segment.start), _int(segment.end), str(segment.text)
        if len(text) != end - start and len(text.replace("\n", "\r\n")) == end - start:
            text = text.replace("\n", "\r\n")  # the reader turned the source's CRLF into LF
        if len(text) != end - start:
            disagree += 1
            continue
        for offset, char in enumerate(text, start=start):
            chars[offset] = char
    if disagree:
        warnings.append(f"source {source_id}: {disagree} segment text(s) do not span their offsets; the written "
                        "plain text leaves them out, so they come back with the text at their offsets")
    return "".join(chars)


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


def _media(title: str) -> str | None:
    """"Audio" or "Video" for a source whose name is an audio or video file (the reader keeps both as kind
    `other`, with their selections' milliseconds as offsets); None otherwise."""
    kind = (mimetypes.guess_type(str(title))[0] or "").split("/")[0]
    return {"audio": "Audio", "video": "Video"}.get(kind)


def _int(value) -> int:
    return int(round(float(value)))


def _write_source(parent, s, source, segments, codings_by_segment, code_guid, warnings, files) -> None:
    source_guid = guid(s, "source", source.source_id)
    title = source.title if _present(source.title) else source.source_id
    has_offsets = segments["start"].notna() & segments["end"].notna()
    has_region = segments[["x", "y", "width", "height"]].notna().all(axis=1)
    whole = segments[~has_offsets & ~has_region]
    text = _plain_text(source.source_id, segments, warnings)
    # a quote without position (a Taguette highlight) gets a made-up place after the text, marked as such
    unplaced = whole[whole["text"].notna()] if source.kind == "interview" else whole.iloc[0:0]
    whole, made_up = whole.drop(unplaced.index), {}
    for segment in unplaced.itertuples():
        text = f"{text}\n\n" if text else ""
        made_up[segment.segment_id] = (len(text), len(text) + len(str(segment.text)))
        text += str(segment.text)
    text_path = None
    if text is not None:
        member = f"sources/{source_guid}.txt"
        files[member], text_path = text, f"internal://{source_guid}.txt"
    if source.kind == "interview":
        element = _el(parent, "TextSource", guid=source_guid, name=title, plainTextPath=text_path)
        offset_container, region_kind = element, None
    elif source.kind == "drawing":
        element = _el(parent, "PictureSource", guid=source_guid, name=title,
                      path=f"internal://{source_guid}.png")
        offset_container, region_kind = None, "PictureSelection"
    elif _media(title) and not (has_region & ~has_offsets).any():  # an audio or video file, by its name
        media = _media(title)
        element = _el(parent, f"{media}Source", guid=source_guid, name=title,
                      path=f"internal://{source_guid}{PurePosixPath(title).suffix}")
        for segment in segments[has_offsets].itertuples():  # milliseconds, as the reader keeps them
            selection = _el(element, f"{media}Selection", guid=guid(s, "segment", segment.segment_id),
                            begin=_int(segment.start), end=_int(segment.end))
            _codings(selection, s, segment.segment_id, codings_by_segment, code_guid)
        for segment in whole.itertuples():
            _codings(element, s, segment.segment_id, codings_by_segment, code_guid)
        return
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
        if region_kind == "PDFSelection" and _present(segment.text):
            _text_el(_el(selection, "Representation", guid=guid(s, "region text", segment.segment_id)),
                     "PlainTextContent", str(segment.text))
        _codings(selection, s, segment.segment_id, codings_by_segment, code_guid)
    offset_segments = segments[has_offsets]
    if len(offset_segments) and offset_container is None:
        if source.kind == "drawing":
            warnings.append(f"source {source.source_id}: {len(offset_segments)} offset segment(s) in a drawing "
                            "were written into its TextDescription")
            offset_container = _el(element, "TextDescription", guid=guid(s, "text", source.source_id),
                                   plainTextPath=text_path)
        else:
            offset_container = _el(element, "Representation", guid=guid(s, "text", source.source_id),
                                   plainTextPath=text_path)
        # a TextDescription must precede the PictureSelections: move it to the front
        element.remove(offset_container)
        element.insert(0 if source.kind == "drawing" else len(element), offset_container)
    for segment in offset_segments.itertuples():
        selection = _el(offset_container, "PlainTextSelection", guid=guid(s, "segment", segment.segment_id),
                        startPosition=_int(segment.start), endPosition=_int(segment.end))
        _codings(selection, s, segment.segment_id, codings_by_segment, code_guid)
    for segment in unplaced.itertuples():
        start, end = made_up[segment.segment_id]
        selection = _el(offset_container, "PlainTextSelection", guid=guid(s, "segment", segment.segment_id),
                        startPosition=start, endPosition=end)
        _text_el(selection, "Description", MADE_UP_POSITION)
        _codings(selection, s, segment.segment_id, codings_by_segment, code_guid)
    if len(whole) > 1:
        warnings.append(f"source {source.source_id}: {len(whole)} segments without position are written as codings "
                        "of the whole source and come back as one segment")
    for segment in whole.itertuples():
        _codings(element, s, segment.segment_id, codings_by_segment, code_guid)


def embedded_study(tables: StudyTables, refi_members: dict[str, bytes]) -> bytes:
    """The `mmkg/study.json` member: the study as its study folder (what REFI-QDA cannot express: codebooks,
    groups, ids, preferred labels, region texts, text sections, the concept map …) and the SHA-256 of every REFI
    member it accompanies, so a reader uses it only while the REFI part is as mmkg wrote it."""
    note = {"format": EMBEDDED_FORMAT,
            "refi_sha256": {member: hashlib.sha256(data).hexdigest() for member, data in sorted(refi_members.items())},
            "study_folder": {name: data.decode("utf-8") for name, data in study_folder_files(tables).items()}}
    return json.dumps(note, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def qdpx_bytes(tables: StudyTables, origin: str = "mmkg") -> tuple[bytes, list[str]]:
    """The `.qdpx` archive (zip with `project.qde`, the sources' plain texts and `mmkg/study.json`) as bytes,
    and export warnings."""
    files: dict[str, str] = {}
    project, warnings = project_element(tables, origin, files)
    ET.register_namespace("", NS)
    members = {"project.qde": ET.tostring(project, encoding="utf-8", xml_declaration=True)}
    members.update((member, text.encode("utf-8")) for member, text in sorted(files.items()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
        archive.writestr(EMBEDDED_STUDY, embedded_study(tables, members))
    return buffer.getvalue(), warnings


def write_qdpx(tables: StudyTables, output: Path | str, origin: str = "mmkg") -> list[str]:
    """Write a study's tables as a REFI-QDA project to `output`; returns export warnings."""
    data, warnings = qdpx_bytes(tables, origin=origin)
    Path(output).write_bytes(data)
    return warnings
