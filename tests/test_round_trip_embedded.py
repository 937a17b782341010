"""mmkg's own member of a `.qdpx` (`mmkg/study.json`: the study as its study folder, with the SHA-256 of the REFI
members it goes with): a study not read from REFI-QDA comes back identical through it; a file whose REFI part
another tool changed is read as plain REFI-QDA with a warning; a tampered or oversized member is a clear error
that names it and loads nothing."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from lxml import etree
from test_round_trip import assert_same, load_into, snapshot, strip_member  # tests/ is on sys.path

import mmkg
from mmkg.errors import LoadError, TooLargeError
from mmkg.graph_tables import read_study_tables
from mmkg.loader.refi_qda import ArchiveLimits, read_refi_qda

DATA = Path(__file__).resolve().parent / "data"
CODINGS_TABLE = DATA / "own_study" / "threat-interviews.csv"
XSD = DATA / "refi-qda" / "Project-mrt2019.xsd"
MEMBER = "mmkg/study.json"


@pytest.fixture(scope="module")
def codings_study(tmp_path_factory):
    """A codings-table study (tests/data/own_study), its snapshot, and its `.qdpx` export."""
    base = tmp_path_factory.mktemp("codings-qdpx")
    with load_into(base / "first", CODINGS_TABLE) as kg:
        study = kg.studies()["study_id"].tolist()[0]
        before = snapshot(kg, study)
        tables = read_study_tables(kg, study)
        kg.export_qdpx(study, base / "study.qdpx")
    return study, before, tables, base / "study.qdpx"


def rewrite(path: Path, target: Path, changes: dict[str, bytes]) -> Path:
    """A copy of the archive with some members' bytes replaced (or added)."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            out.writestr(info.filename, changes.pop(info.filename, source.read(info)))
        for name, data in changes.items():
            out.writestr(name, data)
    return target


def test_a_codings_table_study_through_refi_qda_loads_back_identical(codings_study, tmp_path):
    study, before, tables, exported = codings_study
    assert len(tables.codings) > 10 and list(tables.meta.codebooks) != ["refi"]  # not a REFI-shaped study
    with zipfile.ZipFile(exported) as archive:
        assert etree.XMLSchema(etree.parse(str(XSD))).validate(etree.fromstring(archive.read("project.qde")))
        note = json.loads(archive.read(MEMBER))
        assert set(note["refi_sha256"]) == set(archive.namelist()) - {MEMBER}
    with load_into(tmp_path / "back", exported) as back:
        assert back.studies()["study_id"].tolist() == [study]
        assert_same(before, snapshot(back, study))


def test_the_same_file_loads_under_another_id_when_one_is_given(codings_study, tmp_path):
    _, _, tables, exported = codings_study
    again = read_refi_qda(exported, study_id="other")
    assert again.meta.id == "other" and len(again.codings) == len(tables.codings)


def test_an_export_another_tool_edited_loads_as_plain_refi_qda_with_a_warning(codings_study, tmp_path):
    study, _, tables, exported = codings_study
    with zipfile.ZipFile(exported) as archive:
        xml = archive.read("project.qde")
    root = etree.fromstring(xml)
    root.set("name", "renamed by another tool")
    edited = rewrite(exported, tmp_path / "edited.qdpx", {"project.qde": etree.tostring(root, xml_declaration=True,
                                                                                        encoding="utf-8")})
    read = read_refi_qda(edited)
    warning = next(w for w in read.warnings if MEMBER in w)
    assert str(edited) in warning and "project.qde" in warning and "plain REFI-QDA" in warning
    assert list(read.meta.codebooks) == ["refi"] and read.meta.title == "renamed by another tool"
    # the plain reading keeps the REFI content: every coding, as codes of the one REFI codebook
    assert len(read.codings) == len(tables.codings)
    assert set(read.codes["label"]) >= set(tables.codes["label"])
    with load_into(tmp_path / "back", edited, study_id=study) as back:
        assert read_study_tables(back, study).meta.codebooks == ["refi"]
    added = rewrite(exported, tmp_path / "added.qdpx", {"sources/extra.txt": b"added by hand"})
    assert any("sources/extra.txt" in w for w in read_refi_qda(added).warnings)
    stripped = read_refi_qda(strip_member(exported, MEMBER, tmp_path / "stripped.qdpx"))
    assert not any(MEMBER in w for w in stripped.warnings)  # no member, nothing to warn of


@pytest.mark.parametrize("member, message", [
    (b"{not json", "invalid JSON"),
    (b"\xff\xfe", "UTF-8"),
    (b"[]", "keys format, refi_sha256, study_folder"),
    (json.dumps({"format": "mmkg study folder 99", "refi_sha256": {}, "study_folder": {}}).encode(), "format"),
    (json.dumps({"format": "mmkg study folder 1", "refi_sha256": {"project.qde": "x"},
                 "study_folder": {}}).encode(), "SHA-256"),
    (json.dumps({"format": "mmkg study folder 1", "refi_sha256": {"project.qde": "0" * 64},
                 "study_folder": {"../../etc/passwd": ""}}).encode(), "unknown file"),
])
def test_a_tampered_member_is_a_clear_error_naming_it(codings_study, tmp_path, member, message):
    _, _, _, exported = codings_study
    tampered = rewrite(exported, tmp_path / "tampered.qdpx", {MEMBER: member})
    with pytest.raises(LoadError) as caught:
        read_refi_qda(tampered)
    assert f"{tampered}, member {MEMBER}" in str(caught.value) and message in str(caught.value)


def test_a_tampered_study_inside_a_matching_digest_is_refused_by_validation_and_loads_nothing(codings_study,
                                                                                                tmp_path):
    """The digests only say the REFI part is untouched; the study inside is checked like any study folder."""
    study, _, _, exported = codings_study
    with zipfile.ZipFile(exported) as archive:
        note = json.loads(archive.read(MEMBER))
    note["study_folder"]["codings.csv"] += "nowhere,no-such-code,x,y\n"
    tampered = rewrite(exported, tmp_path / "tampered.qdpx", {MEMBER: json.dumps(note).encode()})
    with mmkg.open_store(tmp_path / "store") as kg:
        with pytest.raises(mmkg.errors.MmkgError) as caught:
            kg.load(tampered, study_id=study)
        assert MEMBER in str(caught.value) and "codings.csv" in str(caught.value)
        assert kg.studies().empty  # nothing loaded


def test_an_oversized_member_is_refused_before_it_is_read(codings_study):
    _, _, _, exported = codings_study
    with zipfile.ZipFile(exported) as archive:
        size = archive.getinfo(MEMBER).file_size
    with pytest.raises(TooLargeError) as caught:
        read_refi_qda(exported, limits=ArchiveLimits(max_embedded_study_bytes=size - 1))
    assert f"member {MEMBER}" in str(caught.value) and str(size) in str(caught.value)
