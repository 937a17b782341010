"""Fuzzing the readers (bounded and seeded): the codings CSV, a study folder, REFI-QDA files and zipped study
uploads, each mutated by hypothesis, then read and validated. Every outcome must be a result or an
`MmkgError` subclass; any other exception is a bug. MMKG_FUZZ_EXAMPLES raises the number of examples,
MMKG_FUZZ_SEED=N draws other ones."""
from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import warnings
import zipfile
from pathlib import Path

import pytest
from conftest import MINI_STUDY
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from mmkg.errors import MmkgError
from mmkg.loader import read_and_validate
from mmkg.loader.refi_qda import ArchiveLimits, read_refi_qda

HERE = Path(__file__).resolve().parent
REFI_PROJECT = HERE / "data" / "refi-qda" / "atlasti-8.4-refi-standard-project.qdpx"
EXAMPLES = int(os.environ.get("MMKG_FUZZ_EXAMPLES", "120"))
SEED = os.environ.get("MMKG_FUZZ_SEED")  # explore elsewhere; by default every run draws the same examples
_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=SEED is None, database=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def FUZZ(test):  # noqa: N802 - used like hypothesis' own decorators
    return _SETTINGS(seed(int(SEED))(test) if SEED is not None else test)

# Values that have broken readers before or are likely to: number edge cases, markup, escapes, quotes,
# separators, BOMs, lone surrogates' replacements, long strings.
HOSTILE = st.sampled_from([
    "", " ", "0", "-1", "1.5", "1e308", "1e309", "-1e400", "inf", "-inf", "NaN", "Infinity",
    "99999999999999999999999", "9223372036854775808", "-9223372036854775809", "0x10", "1_000", "٣", "+5",
    "true", "FALSE", "yes", "[/dim]", "[bold]x", "\x1b[31m", "\x1b]0;title\x07", "\u202eevil", "\x00", "\r",
    "\n", '"', '""', ",", ";", "\ufeff", "\ud7ff", "P1", "S1", "interview", "A.3", "consensus",
    "../../etc/passwd", "<x/>", "&amp;", "x" * 5000,
])
CELL = st.one_of(HOSTILE, st.text(max_size=30))


def _check(read) -> None:
    try:
        read()
    except MmkgError:
        pass


def _csv_cell(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


@st.composite
def mutated_csv(draw, original: str) -> bytes:
    """`original` with some cells replaced, rows dropped or duplicated, or raw bytes spliced in."""
    lines = original.splitlines()
    if not lines:
        return draw(st.binary(max_size=40))
    rows = [line.split(",") for line in lines]
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["cell", "cell", "cell", "drop", "repeat", "header", "bytes"]))
        r = draw(st.integers(0, len(rows) - 1))
        if action == "cell" and rows[r]:
            rows[r][draw(st.integers(0, len(rows[r]) - 1))] = _csv_cell(draw(CELL))
        elif action == "drop" and len(rows) > 1:
            rows.pop(r)
        elif action == "repeat":
            rows.insert(r, list(rows[r]))
        elif action == "header" and rows[0]:
            rows[0][draw(st.integers(0, len(rows[0]) - 1))] = draw(CELL).replace(",", "").replace("\n", "")
    data = ("\n".join(",".join(row) for row in rows) + "\n").encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=12)) + data[at:]
    return data


CODINGS_CSV = None


def _codings_csv() -> str:
    """The mini study as a codings table (the `mmkg export codings` format), built once."""
    global CODINGS_CSV
    if CODINGS_CSV is None:
        import pandas as pd

        segments = pd.read_csv(MINI_STUDY / "segments.csv", dtype=str)
        sources = pd.read_csv(MINI_STUDY / "sources.csv", dtype=str)
        codings = pd.read_csv(MINI_STUDY / "codings.csv", dtype=str)
        table = (codings.merge(segments[["segment_id", "source_id", "start", "end"]], on="segment_id")
                 .merge(sources.rename(columns={"kind": "source_kind"})[["source_id", "participant_id", "source_kind"]],
                        on="source_id")
                 .assign(study_id="mini"))
        CODINGS_CSV = table[["study_id", "participant_id", "source_id", "source_kind", "segment_id", "start", "end",
                             "code_id", "codebook", "coder"]].to_csv(index=False, lineterminator="\n")
    return CODINGS_CSV


@pytest.mark.slow
@FUZZ
@given(data=st.data())
def test_codings_csv_reader_raises_only_mmkg_errors(data):
    payload = data.draw(mutated_csv(_codings_csv()))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "codings.csv"
        path.write_bytes(payload)
        _check(lambda: read_and_validate(path))


@pytest.mark.slow
@FUZZ
@given(data=st.data())
def test_taguette_csv_reader_raises_only_mmkg_errors(data):
    original = "id,document,tag,content,tag_parent\n1,doc a,threat,some text,\n1,doc a,attack,some text,threat\n" \
               "2,doc b,threat,other,\n"
    payload = data.draw(mutated_csv(original))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "highlights.csv"
        path.write_bytes(payload)
        _check(lambda: read_and_validate(path))


META_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), CELL,
                        st.lists(CELL, max_size=3), st.dictionaries(CELL, CELL, max_size=3))


@pytest.mark.slow
@FUZZ
@given(data=st.data())
def test_study_folder_reader_raises_only_mmkg_errors(data):
    names = sorted(p.name for p in MINI_STUDY.iterdir())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "study"
        shutil.copytree(MINI_STUDY, folder)
        for _ in range(data.draw(st.integers(1, 3))):
            name = data.draw(st.sampled_from(names))
            path = folder / name
            action = data.draw(st.sampled_from(["mutate", "mutate", "delete", "bytes"]))
            if action == "delete":
                path.unlink(missing_ok=True)
            elif action == "bytes":
                path.write_bytes(data.draw(st.binary(max_size=200)))
            elif name == "study.json" and path.exists():
                try:
                    meta = json.loads(path.read_text(encoding="utf-8"))
                except ValueError:
                    continue
                meta = meta if isinstance(meta, dict) else {}
                key = data.draw(st.sampled_from(sorted(meta) + ["unknown", "participant_attributes"]))
                meta[key] = data.draw(META_VALUES)
                path.write_text(json.dumps(meta), encoding="utf-8")
            elif path.exists():
                try:
                    text = path.read_text(encoding="utf-8")
                except UnicodeDecodeError:
                    continue
                path.write_bytes(data.draw(mutated_csv(text)))
        _check(lambda: read_and_validate(folder))


def _zip(members: list[tuple[str, bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        warnings.simplefilter("ignore", UserWarning)  # duplicate names are on purpose
        for name, payload, mode in members:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            archive.writestr(info, payload)
    return buffer.getvalue()


def _project_members() -> list[tuple[str, bytes, int]]:
    with zipfile.ZipFile(REFI_PROJECT) as archive:
        return [(i.filename, archive.read(i), i.external_attr >> 16) for i in archive.infolist()]


MEMBER_NAMES = st.one_of(st.sampled_from([
    "project.qde", "Project.qde", "PROJECT.QDE", "sources/", "sources", "Sources/a.txt", "sources/A.TXT",
    "a/b/c.txt", "a", "a/", "./project.qde", "sources\\x.txt", "/abs", "../up", "x" * 300, "é.txt",
    "e\u0301.txt", "nul\x00.txt", "tab\t.txt",
]), st.text(min_size=1, max_size=20))
MODES = st.sampled_from([0, 0o100644, 0o40755, 0o120777, 0o20644, 0o60644, 0o10644, 0o140644])


@st.composite
def mutated_project(draw) -> bytes:
    """The small ATLAS.ti project with members renamed, added, re-typed, its XML attributes replaced, or
    bytes of the archive itself flipped."""
    members = _project_members()
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["attr", "attr", "attr", "member", "rename", "mode", "text"]))
        index = draw(st.integers(0, len(members) - 1))
        name, payload, mode = members[index]
        if action == "attr" and name.lower().endswith(".qde"):
            text = payload.decode("utf-8", "replace")
            quote = [i for i, c in enumerate(text) if c == '"']
            if len(quote) >= 2:
                k = draw(st.integers(0, len(quote) // 2 - 1)) * 2
                value = draw(CELL).replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
                text = text[:quote[k] + 1] + value + text[quote[k + 1]:]
            members[index] = (name, text.encode("utf-8", "surrogatepass"), mode)
        elif action == "member":
            members.append((draw(MEMBER_NAMES), draw(st.binary(max_size=64)), draw(MODES)))
        elif action == "rename":
            members[index] = (draw(MEMBER_NAMES), payload, mode)
        elif action == "mode":
            members[index] = (name, payload, draw(MODES))
        elif action == "text":
            members.append((f"sources/{draw(st.text(min_size=1, max_size=8))}.txt", draw(st.binary(max_size=64)), 0))
    try:
        data = _zip(members)
    except (ValueError, UnicodeEncodeError):
        data = _zip(members[:1])
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1:]
    return data


@pytest.mark.slow
@FUZZ
@given(payload=mutated_project(), suffix=st.sampled_from([".qdpx", ".qde", ".qdc"]))
def test_refi_qda_reader_raises_only_mmkg_errors(payload, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"project{suffix}"
        path.write_bytes(payload)
        _check(lambda: read_and_validate(path))


@FUZZ
@given(document=st.one_of(st.binary(max_size=300),
                          st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
                          st.sampled_from([b"<?xml version='1.0' encoding='latin-1'?><Project/>",
                                           b"<?xml version='1.0' encoding='nonsense'?><Project/>",
                                           b'<Project xmlns="urn:QDA-XML:project:1.0" name="[/dim]"/>',
                                           b'<CodeBook xmlns="urn:QDA-XML:codebook:1.0"><Codes><Code guid="x"/></Codes></CodeBook>',  # noqa: E501 - data kept on one line
                                           b"\xff\xfe<\x00P\x00/\x00>\x00", b"<a>" * 300])))
def test_refi_qda_xml_documents_raise_only_mmkg_errors(document):
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in (".qde", ".qdc"):
            path = Path(tmp) / f"doc{suffix}"
            path.write_bytes(document)
            _check(lambda: read_refi_qda(path, limits=ArchiveLimits()))


@pytest.mark.slow
@FUZZ
@given(data=st.data())
def test_zipped_study_uploads_raise_only_mmkg_errors(data):
    """The upload path: a zipped study folder, with names, modes and bytes mutated, unpacked then read."""
    from mmkg.server.routers.uploads import _unpack

    members = [(f"mini/{p.name}", p.read_bytes(), 0o100644) for p in sorted(MINI_STUDY.iterdir())]
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.integers(0, len(members) - 1))
        name, payload, mode = members[index]
        action = data.draw(st.sampled_from(["member", "rename", "mode", "csv"]))
        if action == "member":
            members.append((data.draw(MEMBER_NAMES), data.draw(st.binary(max_size=64)), data.draw(MODES)))
        elif action == "rename":
            members[index] = (data.draw(MEMBER_NAMES), payload, mode)
        elif action == "mode":
            members[index] = (name, payload, data.draw(MODES))
        elif name.endswith(".csv"):
            members[index] = (name, data.draw(mutated_csv(payload.decode("utf-8", "replace"))), mode)
    try:
        archive = _zip(members)
    except (ValueError, UnicodeEncodeError):  # names zipfile cannot write
        archive = _zip(members[:1])
    with tempfile.TemporaryDirectory() as tmp:
        upload = Path(tmp) / "upload.zip"
        upload.write_bytes(archive)
        workdir = Path(tmp) / "work"
        workdir.mkdir()
        _check(lambda: read_and_validate(_unpack(upload, workdir)))
