"""REFI-QDA import: real exports against an independent census, NVivo UTF-16 offsets, hostile files."""
from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
from refi_census import NS, census  # noqa: F401  (tests/ is on sys.path)

from mmkg.errors import LoadError
from mmkg.loader.refi_qda import ArchiveLimits, read_refi_qda

HERE = Path(__file__).resolve().parent
SHARED = Path(__file__).resolve().parents[2] / "shared" / "external" / "refi-qda"
LOCAL_ATLAS = HERE / "data" / "refi-qda" / "atlasti-8.4-refi-standard-project.qdpx"

# The README of ../shared/external/refi-qda: codes, codable codes, sources, selections, codings.
README_FIGURES = {
    "atlasti-23.2-blank.qdpx": (0, 0, 0, 0, 0),
    "atlasti-23.2-codes-only.qdpx": (3, 3, 0, 0, 0),
    "atlasti-8.4-refi-standard-project.qdpx": (14, 14, 12, 8 + 1 + 4 + 2, 16),
    "nvivo-win-12.6-oltas0517.qdpx": (152, 151, 2, 303, 303),
    "nvivo-mac-15.0-qc-project.qdpx": (262, 262, 2, 0, 0),
    "qc-1.3.2-demo.qdpx": (262, 262, 2, 158, 205),
}

needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared REFI-QDA exports not found at {SHARED}")


def shared_file(name: str) -> Path:
    return SHARED / name


def counts(tables) -> tuple[int, int, int, int, int]:
    return (len(tables.codes), int((tables.codes["codable"] == "true").sum()), len(tables.sources),
            len(tables.segments), len(tables.codings))


# ------------------------------------------------------------------------------------------ real exports

@needs_shared
@pytest.mark.parametrize("name", sorted(README_FIGURES))
def test_real_export_matches_census_and_readme(name):
    path = shared_file(name)
    tables = read_refi_qda(path)
    assert counts(tables) == census(path) == README_FIGURES[name]
    assert set(tables.segments["source_id"]) <= set(tables.sources["source_id"])
    assert set(tables.codings["code_id"]) <= set(tables.codes["code_id"])
    assert tables.segments["segment_id"].is_unique
    assert tables.codes["code_id"].is_unique
    assert (tables.codes["group_id"] == "codes").all()


def test_atlas_84_local_copy_details():
    tables = read_refi_qda(LOCAL_ATLAS)
    assert counts(tables) == README_FIGURES["atlasti-8.4-refi-standard-project.qdpx"] == census(LOCAL_ATLAS)
    codes = tables.codes.set_index("code_id")
    # upper-case GUIDs are normalised; `::` names stay whole; the quoted name survives
    assert "85d17f60-7bb0-481e-b742-b4861dd669df" in codes.index
    assert "Coke::diet Coke" in set(codes["label"]) and '"rushed"' in set(codes["label"])
    assert codes.loc["0f8a1907-7e42-4739-8610-a676b4d1b69f", "definition"] == "thoughts about breakfast foods"
    kinds = tables.sources["kind"].value_counts().to_dict()
    assert kinds == {"interview": 6, "other": 5, "drawing": 1}
    # the PDFSelection and its Representation's text selection share a GUID: both kept, distinct ids
    assert {"95916796-d0a0-4b49-80b0-5a5c8b94ae13", "95916796-d0a0-4b49-80b0-5a5c8b94ae13#2"} <= \
        set(tables.segments["segment_id"])
    segments = tables.segments.set_index("segment_id")
    picture = segments.loc["7532038c-670e-471b-aa89-a1098e9a4e33"]
    assert (picture["x"], picture["y"], picture["width"], picture["height"]) == ("267", "1", "725", "719")
    assert segments.loc["27a5f0c2-e225-4d6a-8297-f4fec794d890", "text"] == "granola"
    video = segments.loc["0ef270ba-47ad-4107-b78f-7697362bca44"]
    assert (video["start"], video["end"]) == ("14706", "17706")
    # the ATLAS.ti pseudo-user codes nothing; the real coder is named
    assert set(tables.codings["coder"]) == {"Friedrich Markgraf"}
    # no Cases: one flagged participant per source
    assert len(tables.participants) == 12 and (tables.participants["synthetic_participant"] == "true").all()
    assert tables.meta.participant_attributes == {"synthetic_participant": "bool"}
    warnings = "\n".join(tables.warnings)
    assert "not found in the archive" in warnings and "2 × Note" in warnings and "16 × Set" in warnings
    assert tables.meta.id == "atlas.ti-standard-project" and tables.meta.codebooks == ["refi"]


def test_atlas_84_validates():
    from mmkg.loader.validate import validate

    valid = validate(read_refi_qda(LOCAL_ATLAS, study_id="atlas84"))
    assert valid.meta.id == "atlas84" and len(valid.codings) == 16


@needs_shared
def test_duplicate_code_names_are_distinct_codes():
    tables = read_refi_qda(shared_file("qc-1.3.2-demo.qdpx"))
    labels = tables.codes["label"].value_counts()
    assert labels["citizenship"] == 3
    assert (labels > 1).sum() == 9
    assert tables.codes["code_id"].is_unique and len(tables.codes) == 262
    # bare plainTextPath resolved under sources/; whole-line selections keep their text
    assert tables.segments["text"].notna().all()
    assert tables.segments["text"].str.endswith("\n").all()


@needs_shared
def test_nvivo_uncodable_top_level_code_is_kept():
    tables = read_refi_qda(shared_file("nvivo-win-12.6-oltas0517.qdpx"))
    codes = tables.codes.set_index("code_id")
    [root_id] = codes.index[codes["label"] == "Attituderoots"]
    assert codes.loc[root_id, "codable"] == "false" and codes.loc[root_id, "parent_code_id"] is None
    children = {root_id}
    while True:
        more = set(codes.index[codes["parent_code_id"].isin(children)]) | children
        if more == children:
            break
        children = more
    assert len(children) - 1 == 84
    assert tables.meta.id == "nvivo-win-12.6-oltas0517"  # project named "Untitled": the file name is used


@needs_shared
def test_nvivo_windows_offsets_are_utf16_code_units():
    path = shared_file("nvivo-win-12.6-oltas0517.qdpx")
    with zipfile.ZipFile(path) as archive:
        root = ET.fromstring(archive.read("project.qde"))
        texts = {n.split("/")[-1][:-4]: archive.read(n).decode("utf-8-sig")
                 for n in archive.namelist() if n.endswith(".txt")}
    raw = {}  # selection guid → (source guid, start, end) as written
    for source in root.iter(f"{NS}TextSource"):
        for sel in source.iter(f"{NS}PlainTextSelection"):
            raw[sel.get("guid")] = (source.get("guid"), int(sel.get("startPosition")), int(sel.get("endPosition")))

    def utf16_line_start(text: str, start: int) -> bool:
        before = text.encode("utf-16-le")[: 2 * start].decode("utf-16-le", errors="replace")
        return start == 0 or before.endswith("\n")

    as_utf16 = sum(utf16_line_start(texts[s], start) for s, start, _ in raw.values())
    as_code_points = sum(start == 0 or texts[s][start - 1] == "\n" for s, start, _ in raw.values())
    assert len(raw) == 303 and as_utf16 == 281 and as_code_points == 16  # README's figures

    tables = read_refi_qda(path)
    segments = tables.segments.set_index("segment_id")
    line_starts = 0
    for guid, (source, start, end) in raw.items():
        row = segments.loc[guid]
        text, begin = texts[source], int(row["start"])
        line_starts += begin == 0 or text[begin - 1] == "\n"
        expected = text.encode("utf-16-le")[2 * start: 2 * end].decode("utf-16-le").replace("\r\n", "\n")
        assert row["text"] == expected
        assert text[begin:int(row["end"])].replace("\r\n", "\n") == expected
    assert line_starts == as_utf16
    assert line_starts / len(raw) > 0.9 and as_code_points / len(raw) < 0.1


@needs_shared
def test_nvivo_mac_without_codings_reads():
    tables = read_refi_qda(shared_file("nvivo-mac-15.0-qc-project.qdpx"))
    assert len(tables.codes) == 262 and len(tables.codings) == 0 and len(tables.participants) == 2


# ------------------------------------------------------------------------------------------ built projects

def project_xml(body: str, origin: str = "test-tool 1.0", name: str = "Built study") -> str:
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<Project xmlns="urn:QDA-XML:project:1.0" '
            f'name="{name}" origin="{origin}">{body}</Project>')


def write_qdpx(path: Path, members: dict[str, bytes | str], compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data.encode() if isinstance(data, str) else data)
    return path


CASES_PROJECT = """
<Users><User guid="{AAAAAAAA-0000-0000-0000-000000000001}" name="ann"/>
       <User guid="aaaaaaaa-0000-0000-0000-000000000002"/></Users>
<CodeBook><Codes>
  <Code guid="C0000000-0000-0000-0000-000000000001" name="threats" isCodable="false">
    <Description>all threats</Description>
    <Code guid="C0000000-0000-0000-0000-000000000002" name="theft" isCodable="true"/>
  </Code>
  <Code guid="C0000000-0000-0000-0000-000000000003" name="theft" isCodable="true"/>
</Codes></CodeBook>
<Variables>
  <Variable guid="V0000000-0000-0000-0000-000000000001" name="age" typeOfVariable="Integer"/>
  <Variable guid="V0000000-0000-0000-0000-000000000002" name="label" typeOfVariable="Text"/>
</Variables>
<Cases>
  <Case guid="E0000000-0000-0000-0000-000000000001" name="Alice">
    <VariableValue><VariableRef targetGUID="V0000000-0000-0000-0000-000000000001"/><IntegerValue>34</IntegerValue></VariableValue>
    <VariableValue><VariableRef targetGUID="V0000000-0000-0000-0000-000000000002"/><TextValue>x</TextValue></VariableValue>
    <SourceRef targetGUID="50000000-0000-0000-0000-000000000001"/>
  </Case>
  <Case guid="E0000000-0000-0000-0000-000000000002"><SourceRef targetGUID="50000000-0000-0000-0000-000000000002"/></Case>
</Cases>
<Sources>
  <TextSource guid="50000000-0000-0000-0000-000000000001" name="interview 1" plainTextPath="internal://one.txt">
    <PlainTextSelection guid="51000000-0000-0000-0000-000000000001" startPosition="6" endPosition="11">
      <Coding guid="52000000-0000-0000-0000-000000000001" creatingUser="AAAAAAAA-0000-0000-0000-000000000001">
        <CodeRef targetGUID="c0000000-0000-0000-0000-000000000002"/></Coding>
      <Coding guid="52000000-0000-0000-0000-000000000002" creatingUser="aaaaaaaa-0000-0000-0000-000000000002">
        <CodeRef targetGUID="C0000000-0000-0000-0000-000000000003"/></Coding>
    </PlainTextSelection>
    <Coding guid="52000000-0000-0000-0000-000000000003" creatingUser="AAAAAAAA-0000-0000-0000-000000000001">
      <CodeRef targetGUID="C0000000-0000-0000-0000-000000000003"/></Coding>
  </TextSource>
  <TextSource guid="50000000-0000-0000-0000-000000000002" plainTextPath="two.txt">
    <PlainTextSelection guid="51000000-0000-0000-0000-000000000002" startPosition="0" endPosition="3"/>
  </TextSource>
  <PictureSource guid="50000000-0000-0000-0000-000000000003" name="drawing 1" path="internal://d.png">
    <PictureSelection guid="51000000-0000-0000-0000-000000000003" firstX="50" firstY="40" secondX="10" secondY="20">
      <Coding guid="52000000-0000-0000-0000-000000000004" creatingUser="AAAAAAAA-0000-0000-0000-000000000001">
        <CodeRef targetGUID="C0000000-0000-0000-0000-000000000002"/></Coding>
    </PictureSelection>
  </PictureSource>
</Sources>
<Extension xmlns="urn:example:vendor"><Secret/></Extension>
"""  # noqa: E501 - XML kept as a tool writes it


def test_cases_variables_users_and_text(tmp_path):
    path = write_qdpx(tmp_path / "built.qdpx", {
        "project.qde": project_xml(CASES_PROJECT),
        "sources/ONE.TXT": "Hello world\r\nbye".encode("utf-8-sig"),
        "Sources/two.txt": "abc\n",
    })
    tables = read_refi_qda(path)
    participants = tables.participants.set_index("participant_id")
    assert participants.loc["e0000000-0000-0000-0000-000000000001", "label"] == "Alice"
    assert participants.loc["e0000000-0000-0000-0000-000000000001", "age"] == "34"
    assert participants.loc["e0000000-0000-0000-0000-000000000001", "label_2"] == "x"  # clashing name renamed
    assert participants.loc["e0000000-0000-0000-0000-000000000002", "label"] == "Case 2"  # nameless case
    assert tables.meta.participant_attributes["age"] == "int"
    # the picture is in no case: its own participant, flagged
    assert participants.loc["50000000-0000-0000-0000-000000000003", "synthetic_participant"] == "true"
    assert participants.loc["e0000000-0000-0000-0000-000000000001", "synthetic_participant"] == "false"
    sources = tables.sources.set_index("source_id")
    assert sources.loc["50000000-0000-0000-0000-000000000001", "participant_id"] == \
        "e0000000-0000-0000-0000-000000000001"
    assert sources.loc["50000000-0000-0000-0000-000000000002", "title"] == "two.txt"
    assert sources.loc["50000000-0000-0000-0000-000000000003", "kind"] == "drawing"
    segments = tables.segments.set_index("segment_id")
    assert segments.loc["51000000-0000-0000-0000-000000000001", "text"] == "world"
    assert segments.loc["51000000-0000-0000-0000-000000000002", "text"] == "abc"
    region = segments.loc["51000000-0000-0000-0000-000000000003", ["x", "y", "width", "height"]].tolist()
    assert region == ["10", "20", "40", "20"]
    assert "50000000-0000-0000-0000-000000000001#whole" in segments.index
    codings = set(map(tuple, tables.codings[["segment_id", "code_id", "coder"]].values.tolist()))
    assert ("51000000-0000-0000-0000-000000000001", "c0000000-0000-0000-0000-000000000002", "ann") in codings
    assert ("51000000-0000-0000-0000-000000000001", "c0000000-0000-0000-0000-000000000003",
            "aaaaaaaa-0000-0000-0000-000000000002") in codings  # nameless user: its GUID
    codes = tables.codes.set_index("code_id")
    assert codes.loc["c0000000-0000-0000-0000-000000000002", "parent_code_id"] == \
        "c0000000-0000-0000-0000-000000000001"
    assert codes.loc["c0000000-0000-0000-0000-000000000001", "codable"] == "false"
    assert "{urn:example:vendor}Extension" in "\n".join(tables.warnings)


def test_utf16_offsets_only_for_nvivo(tmp_path):
    text = "😀😀 ab\r\ncd"
    body = ('<Sources><TextSource guid="50000000-0000-0000-0000-000000000001" plainTextPath="internal://t.txt">'
            '<PlainTextSelection guid="51000000-0000-0000-0000-000000000001" startPosition="{s}" endPosition="{e}"/>'
            '</TextSource></Sources>')
    # "cd" starts at code point 7 and at UTF-16 code unit 9 (each emoji is two units)
    nvivo = write_qdpx(tmp_path / "n.qdpx", {"project.qde": project_xml(body.format(s=9, e=11),
                                                                         origin="NVivo for Windows 12.6"),
                                             "Sources/t.txt": text.encode("utf-8-sig")})
    other = write_qdpx(tmp_path / "o.qdpx", {"project.qde": project_xml(body.format(s=7, e=9)),
                                             "sources/t.txt": text})
    for path in (nvivo, other):
        row = read_refi_qda(path).segments.iloc[0]
        assert (row["text"], row["start"], row["end"]) == ("cd", "7", "9")


def test_missing_text_file_is_a_warning(tmp_path):
    body = ('<Sources><TextSource guid="50000000-0000-0000-0000-000000000001" plainTextPath="internal://gone.txt">'
            '<PlainTextSelection guid="51000000-0000-0000-0000-000000000001" startPosition="1" endPosition="4"/>'
            '</TextSource></Sources>')
    tables = read_refi_qda(write_qdpx(tmp_path / "m.qdpx", {"project.qde": project_xml(body)}))
    row = tables.segments.iloc[0]
    assert row["text"] is None and (row["start"], row["end"]) == ("1", "4")
    assert any("internal://gone.txt" in w for w in tables.warnings)


def test_bare_qde_and_codebook(tmp_path):
    qde = tmp_path / "p.qde"
    qde.write_text(project_xml(CASES_PROJECT), encoding="utf-8")
    tables = read_refi_qda(qde, study_id="bare")
    assert tables.meta.id == "bare" and len(tables.codes) == 3 and len(tables.segments) == 4
    assert any("not found" in w for w in tables.warnings)
    qdc = tmp_path / "book.qdc"
    qdc.write_text('<?xml version="1.0" encoding="utf-8"?><CodeBook xmlns="urn:QDA-XML:codebook:1.0" origin="x">'
                   '<Codes><Code guid="{C0000000-0000-0000-0000-00000000000A}" name="a" isCodable="true">'
                   '<Code guid="C0000000-0000-0000-0000-00000000000B" name="b" isCodable="false"/></Code></Codes>'
                   '</CodeBook>', encoding="utf-8")
    book = read_refi_qda(qdc)
    assert book.codes[["code_id", "parent_code_id", "codable"]].values.tolist() == [
        ["c0000000-0000-0000-0000-00000000000a", None, "true"],
        ["c0000000-0000-0000-0000-00000000000b", "c0000000-0000-0000-0000-00000000000a", "false"]]
    assert book.meta.id == "book" and len(book.sources) == 0


# ------------------------------------------------------------------------------------------ hostile input

VALID_QDE = project_xml("<Users/>")
DTD_HEADER = '<?xml version="1.0"?>\n'


def hostile_cases(tmp: Path):
    """(description, path, limits, words the message must contain)."""
    small = ArchiveLimits(max_members=5, max_total_uncompressed=10_000)
    cases = []

    def add(what, path, needle, limits=None):
        cases.append((what, path, limits or ArchiveLimits(), needle))

    add("zip bomb by ratio",
        write_qdpx(tmp / "bomb.qdpx", {"project.qde": VALID_QDE, "sources/z.txt": b"\0" * (4 * 2**20)}),
        "compression ratio")
    add("too many members",
        write_qdpx(tmp / "many.qdpx", {"project.qde": VALID_QDE, **{f"sources/{i}.txt": "x" for i in range(6)}}),
        "members", small)
    add("too large uncompressed",
        write_qdpx(tmp / "big.qdpx", {"project.qde": VALID_QDE, "sources/a.txt": "y" * 20_000}),
        "uncompressed", small)
    add("zip slip", write_qdpx(tmp / "slip.qdpx", {"project.qde": VALID_QDE, "../evil.txt": "x"}), "..")
    add("absolute path", write_qdpx(tmp / "abs.qdpx", {"project.qde": VALID_QDE, "/etc/evil": "x"}), "absolute")
    add("drive path", write_qdpx(tmp / "drive.qdpx", {"project.qde": VALID_QDE, "C:/evil": "x"}), "absolute")
    add("DTD",
        write_qdpx(tmp / "dtd.qdpx",
                   {"project.qde": DTD_HEADER + '<!DOCTYPE Project []>' + VALID_QDE.split("\n", 1)[1]}),
        "DTD")
    add("external entity", write_qdpx(tmp / "xxe.qdpx", {"project.qde": DTD_HEADER +
        '<!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]><Project xmlns="urn:QDA-XML:project:1.0" name="&x;"/>'}),
        "DTD")
    laughs = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    add("billion laughs", write_qdpx(tmp / "laughs.qdpx", {"project.qde": DTD_HEADER +
        f'<!DOCTYPE p [<!ENTITY l0 "lol">{laughs}]><Project xmlns="urn:QDA-XML:project:1.0" name="&l9;"/>'}), "DTD")
    add("huge attribute", write_qdpx(tmp / "attr.qdpx", {"project.qde": project_xml("", name="a" * (2**20 + 1))},
                                        zipfile.ZIP_STORED),
        "attribute name")
    add("invalid UTF-8",
        write_qdpx(tmp / "utf8.qdpx", {"project.qde": VALID_QDE.encode().replace(b"Built", b"Bu\xffilt")}),
        "UTF-8")
    (tmp / "notzip.qdpx").write_text("this is not a zip")
    add("not a zip", tmp / "notzip.qdpx", "zip")
    add("no .qde", write_qdpx(tmp / "noqde.qdpx", {"sources/a.txt": "x"}), ".qde")
    add(".qde only in a folder", write_qdpx(tmp / "nested.qdpx", {"inner/project.qde": VALID_QDE}), "inner/project.qde")
    add("two .qde", write_qdpx(tmp / "two.qdpx", {"project.qde": VALID_QDE, "Other.qde": VALID_QDE}), "2 .qde")
    add("wrong namespace",
        write_qdpx(tmp / "ns.qdpx", {"project.qde": VALID_QDE.replace("project:1.0", "project:9.9")}),
        "urn:QDA-XML:project:9.9")
    add("no namespace", write_qdpx(tmp / "nons.qdpx", {"project.qde": '<Project name="x"/>'}), "no namespace")
    add("malformed XML", write_qdpx(tmp / "broken.qdpx", {"project.qde": VALID_QDE[:-5]}), "not well-formed")
    add("empty .qde", write_qdpx(tmp / "empty.qdpx", {"project.qde": ""}), "empty")
    deep = "<Codes>" + '<Code guid="c" name="n" isCodable="true">' * 300 + "</Code>" * 300 + "</Codes>"
    add("deep nesting", write_qdpx(tmp / "deep.qdpx", {"project.qde": project_xml(f"<CodeBook>{deep}</CodeBook>")}),
        "nest deeper")
    dtd_qde = tmp / "bare.qde"
    dtd_qde.write_text(DTD_HEADER + '<!DOCTYPE Project SYSTEM "http://example.com/x.dtd"><Project/>')
    add("bare .qde with external DTD", dtd_qde, "DTD")
    twice = '<Code guid="C1" name="a" isCodable="true"/><Code guid="c1" name="b" isCodable="true"/>'
    add("code GUID twice", write_qdpx(tmp / "dupcode.qdpx", {"project.qde": project_xml(
        f"<CodeBook><Codes>{twice}</Codes></CodeBook>")}), "share guid")
    return cases


def test_at_least_twelve_hostile_files(tmp_path):
    assert len(hostile_cases(tmp_path)) >= 12


@pytest.mark.parametrize("index", range(22))
def test_hostile_file_raises_load_error(tmp_path, index):
    what, path, limits, needle = hostile_cases(tmp_path)[index]
    before = sorted(p.name for p in tmp_path.parent.rglob("*"))
    with pytest.raises(LoadError) as caught:
        read_refi_qda(path, limits=limits)
    message = str(caught.value)
    assert str(path) in message, f"{what}: message does not name the file: {message}"
    assert needle in message, f"{what}: message lacks {needle!r}: {message}"
    assert sorted(p.name for p in tmp_path.parent.rglob("*")) == before, f"{what}: something was written"


def test_hostile_case_count_matches_parametrisation(tmp_path):
    assert len(hostile_cases(tmp_path)) == 22


def test_member_names_its_member(tmp_path):
    path = write_qdpx(tmp_path / "dtd.qdpx", {"Project.qde": DTD_HEADER + "<!DOCTYPE x []><Project/>"})
    with pytest.raises(LoadError, match=r"member Project\.qde"):
        read_refi_qda(path)


def test_corrupt_member_is_refused(tmp_path):
    """A member whose bytes do not match its CRC is refused with the member named."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("project.qde", VALID_QDE)
    data = bytearray(buffer.getvalue())
    # corrupt one byte of the stored data: the CRC check must refuse it
    offset = data.index(b"<Project")
    data[offset + 1] ^= 0x20
    path = tmp_path / "crc.qdpx"
    path.write_bytes(bytes(data))
    with pytest.raises(LoadError, match="member project.qde: cannot be decompressed"):
        read_refi_qda(path)
