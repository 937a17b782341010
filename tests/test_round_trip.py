"""Every export format is a round trip: a study exported and loaded back (into a new store, under the same id) has
every table of its read-back and every named query's rows equal. Checked on the founding study and on every
REFI-QDA file in ../shared/external/refi-qda, each also against the source file's own content (its CSVs, its XML
and its plain texts, read here without mmkg's readers), so the check does not trust the code it tests."""
from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from lxml import etree
from typer.testing import CliRunner

import mmkg
from mmkg.cli.main import app as cli
from mmkg.errors import ExportError, MmkgError, NotFoundError
from mmkg.graph_tables import read_study_tables
from mmkg.loader import shipped_study_path
from mmkg.queries import registry
from mmkg.tables import COLUMNS

runner = CliRunner()
NS = {"q": "urn:QDA-XML:project:1.0"}
REFI_FILES = ["atlasti-23.2-blank.qdpx", "atlasti-23.2-codes-only.qdpx", "atlasti-8.4-refi-standard-project.qdpx",
              "nvivo-mac-15.0-qc-project.qdpx", "nvivo-win-12.6-oltas0517.qdpx", "qc-1.3.2-demo.qdpx"]


def _sorted(frame: pd.DataFrame) -> list[tuple]:
    cells = frame.astype(object).where(frame.notna(), None)
    return sorted(tuple("" if v is None else str(v) for v in row) for row in cells.itertuples(index=False))


def snapshot(kg: mmkg.Mmkg, study_id: str) -> dict[str, object]:
    """Everything a user sees of a study: its tables as read back, its metadata, every named query's rows."""
    tables = read_study_tables(kg, study_id)
    seen: dict[str, object] = {name: _sorted(tables.table(name)) for name in COLUMNS}
    seen["participant columns"] = sorted(tables.participants.columns)
    meta = vars(tables.meta).copy()
    seen["meta"] = meta
    for name, query in sorted(registry().items()):
        params = {"study_id": study_id} if any(p.name == "study_id" for p in query.parameters) else {}
        try:
            rows = kg.query(name, **params)
            seen[f"query {name}"] = (list(rows.columns), _sorted(rows))
        except MmkgError as exc:  # a query this study cannot answer must fail the same way after the trip
            seen[f"query {name}"] = (type(exc).__name__, str(exc))
    return seen


def assert_same(before: dict, after: dict) -> None:
    assert before.keys() == after.keys()
    different = [key for key in before if before[key] != after[key]]
    assert different == [], {key: (str(before[key])[:300], str(after[key])[:300]) for key in different[:3]}


def load_into(path: Path, source, study_id: str | None = None) -> mmkg.Mmkg:
    kg = mmkg.open_store(path)
    kg.load(source, study_id=study_id)
    return kg


@pytest.fixture(scope="module")
def founding(tmp_path_factory):
    kg = load_into(tmp_path_factory.mktemp("founding"), None)
    yield kg, snapshot(kg, "founding")
    kg.close()


def refi_path(shared: Path, name: str) -> Path:
    return shared / "external" / "refi-qda" / name


# -- study folder ----------------------------------------------------------------------------------------

def read_csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_the_study_folder_of_the_founding_study_loads_back_identical(founding, tmp_path):
    kg, before = founding
    folder = tmp_path / "export"
    files = kg.export_study("founding", folder)
    assert sorted(f.name for f in files) == sorted(["study.json", *(f"{t}.csv" for t in COLUMNS)])
    with load_into(tmp_path / "back", folder) as back:
        assert_same(before, snapshot(back, "founding"))


def test_the_founding_study_folder_holds_what_the_shipped_folder_holds(founding_template, tmp_path):
    """Oracle: the shipped study's own files, compared cell by cell (rows in any order, empty = missing)."""
    with mmkg.open_store(founding_template, read_only=True) as kg:
        kg.export_study("", tmp_path / "export")
    shipped = Path(shipped_study_path())
    meta = json.loads((shipped / "study.json").read_text(encoding="utf-8"))
    exported = json.loads((tmp_path / "export" / "study.json").read_text(encoding="utf-8"))
    for key, value in meta.items():
        assert exported[key] == value, key
    for table in COLUMNS:
        def rows(path):
            return sorted(tuple(sorted((k, v) for k, v in row.items() if v not in ("", None))) for row in
                          read_csv_rows(path))
        original, written = rows(shipped / f"{table}.csv"), rows(tmp_path / "export" / f"{table}.csv")
        if table == "codes":  # a preferred label equal to the label says nothing more than the label
            original = [tuple(c for c in row if not (c[0] == "preferred_label" and ("label", c[1]) in row))
                        for row in original]
            original.sort()
        assert written == original, table


def test_the_cli_writes_a_study_folder_and_refuses_a_folder_that_is_not_empty(founding_store, tmp_path):
    target = tmp_path / "out"
    result = runner.invoke(cli, ["export", "study", "--store", str(founding_store), "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert (target / "study.json").is_file() and (target / "segments.csv").is_file()
    again = runner.invoke(cli, ["export", "study", "--store", str(founding_store), "-o", str(target)])
    assert again.exit_code != 0 and isinstance(again.exception, ExportError)
    assert "not empty" in str(again.exception) and "--force" in str(again.exception)
    forced = runner.invoke(cli, ["export", "study", "--store", str(founding_store), "-o", str(target), "--force"])
    assert forced.exit_code == 0, forced.output
    file = tmp_path / "a-file"
    file.write_text("x")
    refused = runner.invoke(cli, ["export", "study", "--store", str(founding_store), "-o", str(file)])
    assert isinstance(refused.exception, ExportError) and "not a folder" in str(refused.exception)
    assert file.read_text() == "x"
    under_a_file = runner.invoke(cli, ["export", "study", "--store", str(founding_store), "-o", str(file / "x")])
    assert isinstance(under_a_file.exception, ExportError) and "cannot write" in str(under_a_file.exception)
    missing = runner.invoke(cli, ["export", "study", "--store", str(founding_store), "-o", str(tmp_path / "m"),
                                  "--study", "nonesuch"])
    assert isinstance(missing.exception, NotFoundError) and "founding" in str(missing.exception)
    assert not (tmp_path / "m").exists()  # nothing written for a study that is not there


@pytest.mark.slow  # a new store per file (the ontology loads each time)
@pytest.mark.parametrize("name", REFI_FILES)
def test_the_study_folder_of_a_refi_qda_import_loads_back_identical(shared_dir, tmp_path, name):
    with load_into(tmp_path / "first", refi_path(shared_dir, name), study_id="rt") as kg:
        before = snapshot(kg, "rt")
        kg.export_study("rt", tmp_path / "export")
    with load_into(tmp_path / "back", tmp_path / "export") as back:
        assert_same(before, snapshot(back, "rt"))


# -- REFI-QDA --------------------------------------------------------------------------------------------

def project_xml(path: Path) -> tuple[etree._Element, zipfile.ZipFile]:
    archive = zipfile.ZipFile(path)
    qde = next(n for n in archive.namelist() if n.lower().endswith(".qde") and "/" not in n)
    return etree.fromstring(archive.read(qde)), archive


def guid(value: str | None) -> str:
    return (value or "").strip("{}").lower()


def code_tree(root) -> set[tuple]:
    """(guid, name, parent guid, codable, description) of every code, read with lxml."""
    found = set()
    for code in root.iterfind(".//q:CodeBook//q:Code", NS):
        parent = code.getparent()
        description = code.find("q:Description", NS)
        found.add((guid(code.get("guid")), code.get("name"),
                   guid(parent.get("guid")) if parent.tag.endswith("}Code") else "",
                   (code.get("isCodable") or "true").lower() in ("true", "1"),
                   (description.text or "").strip() if description is not None else ""))
    return found


def source_texts(root, archive: zipfile.ZipFile) -> dict[str, str]:
    """Plain text of every TextSource (by guid) found in the archive."""
    members = {n.lower(): n for n in archive.namelist()}
    texts = {}
    for source in root.iterfind(".//q:Sources/q:TextSource", NS):
        path = (source.get("plainTextPath") or "").split("://")[-1].lstrip("/")
        member = members.get(f"sources/{path}".lower()) or members.get(path.lower())
        if member:
            data = archive.read(member)
            texts[guid(source.get("guid"))] = data.decode("utf-16") if data[:2] in (b"\xff\xfe", b"\xfe\xff") \
                else data.decode("utf-8-sig")
    return texts


def selections(root, archive, utf16: bool) -> set[tuple]:
    """(source guid, selection guid, text at its offsets, offsets unless utf16) of every text selection of a
    TextSource whose text the archive holds, and (source guid, selection guid) of the others."""
    texts = source_texts(root, archive)
    found = set()
    for source in root.iterfind(".//q:Sources/*", NS):
        text = texts.get(guid(source.get("guid")))
        for selection in source.iterfind(".//q:PlainTextSelection", NS):
            if text is None or source.tag.split("}")[1] != "TextSource":
                found.add((guid(source.get("guid")), guid(selection.get("guid"))))
                continue
            start, end = int(selection.get("startPosition")), int(selection.get("endPosition"))
            if utf16:  # NVivo counts UTF-16 code units
                units = text.encode("utf-16-le")
                passage = units[2 * start:2 * end].decode("utf-16-le")
            else:
                passage = text[start:end]
            found.add((guid(source.get("guid")), guid(selection.get("guid")), passage.replace("\r\n", "\n"),
                       None if utf16 else (start, end)))
    return found


def codings_of(root) -> set[tuple]:
    users = {guid(u.get("guid")): u.get("name") for u in root.iterfind(".//q:Users/q:User", NS)}
    found = set()
    for coding in root.iterfind(".//q:Sources//q:Coding", NS):
        owner = coding.getparent()
        ref = coding.find("q:CodeRef", NS)
        found.add((guid(owner.get("guid")), guid(ref.get("targetGUID")), users.get(guid(coding.get("creatingUser")))))
    return found


def cases(root) -> set[tuple]:
    return {(guid(c.get("guid")), c.get("name"), frozenset(guid(r.get("targetGUID"))
                                                           for r in c.iterfind("q:SourceRef", NS)))
            for c in root.iterfind(".//q:Cases/q:Case", NS)}


@pytest.fixture(scope="module")
def refi_trips(tmp_path_factory):
    """name -> (snapshot of the import, snapshot of export → import, original file, exported file, snapshot of
    export → import of the REFI-QDA part alone, without mmkg's member)."""
    shared = Path(__file__).resolve().parents[1].parent / "shared"
    if not (shared / "external" / "refi-qda").is_dir():
        pytest.skip(f"{shared} is absent: this test needs the project's shared material")
    trips = {}
    base = tmp_path_factory.mktemp("refi-trips")
    with mmkg.open_store(base / "first") as kg, mmkg.open_store(base / "back") as back, \
            mmkg.open_store(base / "plain") as plain:
        for number, name in enumerate(REFI_FILES):
            study = f"rt{number}"
            kg.load(refi_path(shared, name), study_id=study)
            exported = base / f"{name}.qdpx"
            kg.export_qdpx(study, exported)
            back.load(exported, study_id=study)
            plain.load(strip_member(exported, "mmkg/study.json", base / f"{name}.plain.qdpx"), study_id=study)
        for number, name in enumerate(REFI_FILES):  # snapshots once every study is in: `studies` lists them all
            study = f"rt{number}"
            trips[name] = (snapshot(kg, study), snapshot(back, study), refi_path(shared, name),
                           base / f"{name}.qdpx", snapshot(plain, study))
    return trips


@pytest.mark.slow  # the module fixture loads, exports and imports all six files
@pytest.mark.parametrize("name", REFI_FILES)
def test_a_refi_qda_project_exported_and_imported_again_is_the_same_study(refi_trips, name):
    before, after, _, _, _ = refi_trips[name]
    assert_same(before, after)


@pytest.mark.slow  # the module fixture loads, exports and imports all six files
@pytest.mark.parametrize("name", REFI_FILES)
def test_the_exported_project_has_the_codes_sources_texts_and_cases_of_the_original(refi_trips, name):
    """Oracle: the original file's XML and plain texts, read with lxml and zipfile."""
    _, _, original, exported, _ = refi_trips[name]
    first, first_archive = project_xml(original)
    again, again_archive = project_xml(exported)
    nvivo = "nvivo" in (first.get("origin") or "").lower()
    xsd = etree.XMLSchema(etree.parse(str(Path(__file__).resolve().parent / "data" / "refi-qda" /
                                          "Project-mrt2019.xsd")))
    assert xsd.validate(again), [str(e) for e in xsd.error_log][:5]  # a valid REFI-QDA 1.0 project
    assert code_tree(again) == code_tree(first)  # no wrapper codes, the same GUIDs, names and nesting
    # a source without a name is called after its file (docs/refi-qda.md)
    source_names = lambda root: {(guid(s.get("guid")), s.tag.split("}")[1],  # noqa: E731
                                  s.get("name") or (s.get("plainTextPath") or s.get("path")).split("/")[-1])
                                 for s in root.iterfind(".//q:Sources/*", NS)}
    assert source_names(again) == source_names(first)
    pairs = lambda found: {s[:2] for s in found}  # noqa: E731
    assert pairs(selections(again, again_archive, utf16=False)) == pairs(selections(first, first_archive, nvivo))
    original_texts = {s[:3] for s in selections(first, first_archive, utf16=nvivo) if len(s) == 4}
    exported_texts = {s[:3] for s in selections(again, again_archive, utf16=False) if len(s) == 4}
    assert exported_texts >= original_texts  # every selection's text comes back
    if not nvivo:
        assert {s for s in selections(again, again_archive, utf16=False) if len(s) == 4} >= \
            {s for s in selections(first, first_archive, utf16=False) if len(s) == 4}
    assert codings_of(again) >= {c for c in codings_of(first) if c[2] is not None}
    named = lambda found: {(g, name if name else None, refs) for g, name, refs in found}  # noqa: E731
    assert {(g, refs) for g, _, refs in cases(again)} == {(g, refs) for g, _, refs in cases(first)}  # none invented
    assert {c for c in named(cases(first)) if c[1]} <= named(cases(again))
    variables = lambda root: {v.get("name") for v in root.iterfind(".//q:Variables/q:Variable", NS)}  # noqa: E731
    assert variables(again) <= variables(first)


def strip_member(path: Path, member: str, target: Path) -> Path:
    """A copy of the archive without one member (what a tool that drops mmkg's member would save)."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            if info.filename != member:
                out.writestr(info, source.read(info))
    return target


@pytest.mark.slow  # the module fixture loads, exports and imports all six files
@pytest.mark.parametrize("name", REFI_FILES)
def test_a_refi_qda_export_without_mmkgs_member_is_the_same_study_too(refi_trips, name):
    """The plain REFI-QDA reading (what is left when another tool drops `mmkg/study.json`) is an identity for
    a study read from REFI-QDA: the identity does not rest on mmkg's own member."""
    before, _, _, exported, plain = refi_trips[name]
    assert "mmkg/study.json" in zipfile.ZipFile(exported).namelist()
    assert "mmkg/study.json" not in zipfile.ZipFile(exported.with_suffix(".plain.qdpx")).namelist()
    assert_same(before, plain)


@pytest.mark.slow
def test_the_founding_study_through_refi_qda_loads_back_identical(founding, tmp_path):
    """founding → .qdpx (valid REFI-QDA 1.0) → import: every read-back table, the metadata and every named
    query's rows are those of the founding study (codebooks, groups, ids, region texts … ride in mmkg's member)."""
    kg, before = founding
    output = tmp_path / "founding.qdpx"
    kg.export_qdpx("founding", output)
    root, _ = project_xml(output)
    xsd = etree.XMLSchema(etree.parse(str(Path(__file__).resolve().parent / "data" / "refi-qda" /
                                          "Project-mrt2019.xsd")))
    assert xsd.validate(root), [str(e) for e in xsd.error_log][:5]
    with load_into(tmp_path / "back", output) as back:  # no study id given: the file's own
        assert back.studies()["study_id"].tolist() == ["founding"]
        assert_same(before, snapshot(back, "founding"))


# -- Taguette --------------------------------------------------------------------------------------------

def taguette_highlights(kg: mmkg.Mmkg, path: Path) -> Path:
    """A Taguette highlights export (`id, document, tag, content`, one row per highlight and tag) made of the
    founding study's interview quotes: many highlights, several tags on one highlight."""
    rows = kg.cypher("MATCH (src:Source)-[:HAS_SEGMENT]->(seg:Segment)-[r:CODED_AS]->(k:Code) "
                     "WHERE seg.study_id = 'founding' AND r.analysis "
                     "RETURN seg.id AS id, src.id AS document, k.label AS tag, "
                     "coalesce(seg.text, 'quote ' + seg.id) AS content")
    rows = rows.drop_duplicates(["id", "tag"]).sort_values(["id", "tag"])
    rows.to_csv(path, index=False)
    return path


def taguette_truth(path: Path) -> tuple[int, set[frozenset]]:
    """From the file itself: how many highlights, and which pairs of tags share one."""
    tags: dict[str, set[str]] = {}
    for row in read_csv_rows(path):
        tags.setdefault(row["id"], set()).add(row["tag"])
    pairs = {frozenset((a, b)) for found in tags.values() for a in found for b in found if a < b}
    return len(tags), pairs


def tag_pairs(tables) -> set[frozenset]:
    labels = dict(zip(tables.codes["code_id"], tables.codes["label"]))
    tags: dict[str, set[str]] = {}
    for row in tables.codings.itertuples():
        tags.setdefault(row.segment_id, set()).add(labels[row.code_id])
    return {frozenset((a, b)) for found in tags.values() for a in found for b in found if a < b}


@pytest.mark.slow
def test_a_taguette_study_keeps_one_segment_per_highlight_through_refi_qda(founding, tmp_path):
    kg, _ = founding
    csv_path = taguette_highlights(kg, tmp_path / "highlights.csv")
    highlights, pairs = taguette_truth(csv_path)
    assert highlights > 100 and len(pairs) > 10  # a real test: many highlights, many shared ones
    with load_into(tmp_path / "first", csv_path, study_id="tag") as first:
        before = read_study_tables(first, "tag")
        first.export_qdpx("tag", tmp_path / "tag.qdpx")
        cooccurring = len(first.query("cooccurrence", study_id="tag"))
    with load_into(tmp_path / "back", tmp_path / "tag.qdpx", study_id="tag") as back:
        after = read_study_tables(back, "tag")
        assert len(back.query("cooccurrence", study_id="tag")) == cooccurring
    assert len(before.segments) == len(after.segments) == highlights
    assert tag_pairs(before) == tag_pairs(after) == pairs
    assert after.segments["start"].isna().all() and after.segments["text"].notna().all()  # no made-up positions
    assert sorted(after.segments["text"]) == sorted(before.segments["text"])


# -- codings table ---------------------------------------------------------------------------------------

def test_the_codings_table_loads_back_with_labels_and_the_provenance_notice(founding_template, tmp_path):
    """The codings table is a fixed point (export → load → export is the same table) and keeps what the
    shipped files say of labels and provenance; groups, definitions and texts need the study folder."""
    with mmkg.open_store(founding_template, read_only=True) as kg:
        table = kg.export_codings("founding")
    path = tmp_path / "codings.csv"
    table.to_csv(path, index=False)
    with load_into(tmp_path / "back", path) as back:
        again = back.export_codings("founding")
        pd.testing.assert_frame_equal(again, table)
        shipped = Path(shipped_study_path())
        labels = {(row["codebook"], row["code_id"]): row["label"] for row in read_csv_rows(shipped / "codes.csv")}
        read_back = read_study_tables(back, "founding").codes
        coded = {(r.codebook, r.code_id): r.label for r in read_back.itertuples()}
        assert coded and all(labels[key] == label for key, label in coded.items())
        notice = json.loads((shipped / "study.json").read_text(encoding="utf-8"))["provenance"]
        assert "not the authors' data" in notice
        assert back.studies()["provenance"].tolist() == [notice]
