"""Crafted input, one case each: a clear error with the right exit code or HTTP status and the one JSON error
shape, never a traceback or a 500, and nothing written. Numbers out of range or not finite, every zip oddity
(uploads and .qdpx), unwritable -o paths, and markup or terminal escapes in every field of a study."""
from __future__ import annotations

import io
import json
import shutil
import tempfile
import warnings
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from conftest import MINI_STUDY
from fastapi.testclient import TestClient
from pydantic import SecretStr
from store_processes import lock_holder, run_cli

import mmkg
from mmkg.config import Settings
from mmkg.server.app import create_app

TOKEN = "crafted-token"
MiB = 1024 * 1024


def codings_table(tmp_path: Path, **cell) -> Path:
    """The mini study as a codings table, with one cell of the first row replaced."""
    segments = pd.read_csv(MINI_STUDY / "segments.csv", dtype=str)
    sources = pd.read_csv(MINI_STUDY / "sources.csv", dtype=str)
    table = (pd.read_csv(MINI_STUDY / "codings.csv", dtype=str)
             .merge(segments[["segment_id", "source_id", "start", "end"]], on="segment_id")
             .merge(sources.rename(columns={"kind": "source_kind"})[["source_id", "participant_id", "source_kind"]],
                    on="source_id").assign(study_id="crafted"))
    for column, value in cell.items():
        table[column] = table[column].astype(object)
        table.loc[0, column] = value
    path = tmp_path / "codings.csv"
    table.to_csv(path, index=False)
    return path


def study_ids(store: Path) -> list[str]:
    with mmkg.open_store(store, read_only=True) as kg:
        return kg.study_ids()


def assert_clean_failure(done, code: int, *fragments: str) -> str:
    message = " ".join(done.stderr.split())
    assert done.returncode == code, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    for fragment in fragments:
        assert fragment in message, message
    return message


# ------------------------------------------------------------------------------------------ numbers

@pytest.mark.slow
@pytest.mark.parametrize("value,reason", [
    ("99999999999999999999999", "is out of range"),
    ("9223372036854775808", "is out of range"),
    ("-9223372036854775809", "is out of range"),
    ("inf", "is not a finite number"),
    ("-Infinity", "is not a finite number"),
    ("NaN", "is not a finite number"),
    ("1e400", "is not a finite number"),
    ("1_000", "is not a whole number"),
    ("٣", "is not a whole number"),
])
def test_offsets_out_of_range_or_not_finite_are_validation_errors(value, reason, founding_store, tmp_path, capsys):
    table = codings_table(tmp_path, start=value)
    done = run_cli("load", table, "--store", founding_store, capsys=capsys)
    assert_clean_failure(done, 2, f"{table}, row 2, column start: '{value}' {reason}", "nothing was written")
    assert study_ids(founding_store) == ["founding"]


@pytest.mark.parametrize("column,value", [("x", "inf"), ("width", "-inf"), ("height", "1e999")])
def test_region_coordinates_must_be_finite(column, value, founding_store, tmp_path, capsys):
    folder = tmp_path / "mini"
    shutil.copytree(MINI_STUDY, folder)
    segments = pd.read_csv(folder / "segments.csv", dtype=str)
    segments.loc[segments["segment_id"] == "S3", column] = value
    segments.to_csv(folder / "segments.csv", index=False)
    done = run_cli("load", folder, "--store", founding_store, capsys=capsys)
    assert_clean_failure(done, 2, f"segments.csv, row 4, column {column}: '{value}' is not a finite number")


def test_an_integer_attribute_out_of_range_is_a_validation_error(founding_store, tmp_path, capsys):
    folder = tmp_path / "mini"
    shutil.copytree(MINI_STUDY, folder)
    meta = json.loads((folder / "study.json").read_text())
    meta["participant_attributes"]["experience_years"] = "int"
    (folder / "study.json").write_text(json.dumps(meta))
    participants = pd.read_csv(folder / "participants.csv", dtype=str)
    participants["experience_years"] = ["7", "99999999999999999999999", None]
    participants.to_csv(folder / "participants.csv", index=False)
    done = run_cli("load", folder, "--store", founding_store, capsys=capsys)
    assert_clean_failure(done, 2, "participants.csv, row 3, column experience_years: '99999999999999999999999' "
                                  "is out of range")


@pytest.mark.parametrize("header", [b'\r,participant_id\n', b'","",a\n"\x80",1\n', b'\x00'])
def test_broken_csv_headers_found_by_the_fuzzer_are_load_errors(header, founding_store, tmp_path, capsys):
    table = tmp_path / "codings.csv"
    table.write_bytes(header)
    done = run_cli("load", table, "--store", founding_store, capsys=capsys)
    assert_clean_failure(done, 2, str(table))


# ------------------------------------------------------------------------------------------ zips

def zip_of(members: list[tuple[str, bytes] | tuple[str, bytes, int]], method=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", method, compresslevel=1) as archive:
        warnings.simplefilter("ignore", UserWarning)  # duplicate names are on purpose
        for member in members:
            name, payload, mode = (*member, 0o100644) if len(member) == 2 else member
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            info.compress_type = method
            archive.writestr(info, payload)
    return buffer.getvalue()


def mini_members(prefix: str = "mini/") -> list[tuple[str, bytes]]:
    return [(prefix + p.name, p.read_bytes()) for p in sorted(MINI_STUDY.iterdir())]


ZEROS = b"\0" * (MiB - 1)


def bomb_members(count: int) -> list[tuple[str, bytes]]:
    """Members of 1 MiB of zeros less one byte: each under the per-member ratio check's threshold."""
    return [(f"mini/pad{i}.txt", ZEROS) for i in range(count)]


ZIP_CASES = {
    "file-and-folder-clash": (lambda: mini_members() + [("mini/codes.csv/inner.csv", b"x")], 400, "which is a file"),
    "folder-then-file-clash": (lambda: [("mini/extra/", b"")] + mini_members() + [("mini/extra", b"x")], 400,
                               "also has a folder of that name"),
    "long-name": (lambda: mini_members() + [("mini/" + "n" * 300, b"x")], 400, "more than file systems allow"),
    "very-long-path": (lambda: mini_members() + [("/".join(["d" * 200] * 6), b"x")], 400, "characters long"),
    "symlink": (lambda: mini_members() + [("mini/link", b"/etc/passwd", 0o120777)], 400, "is a symbolic link"),
    "character-device": (lambda: mini_members() + [("mini/tty", b"", 0o20666)], 400, "is a character device"),
    "block-device": (lambda: mini_members() + [("mini/sda", b"", 0o60660)], 400, "is a block device"),
    "fifo": (lambda: mini_members() + [("mini/pipe", b"", 0o10644)], 400, "is a named pipe"),
    "duplicate": (lambda: mini_members() + [("mini/codes.csv", b"codebook\n")], 400, "appears twice"),
    "duplicate-by-case": (lambda: mini_members() + [("mini/CODES.csv", b"codebook\n")], 400, "appears twice"),
    "duplicate-by-separator": (lambda: mini_members() + [("mini\\codes.csv", b"codebook\n")], 400, "appears twice"),
    "duplicate-by-unicode-form": (lambda: [("mini/caf\u00e9.txt", b"1"), ("mini/cafe\u0301.txt", b"2")]
                                  + mini_members(), 400, "appears twice"),
    "control-character-name": (lambda: mini_members() + [("mini/\x1b[31mred", b"x")], 400, "control characters"),
    "zip-slip": (lambda: mini_members() + [("../evil.csv", b"x")], 400, "zip slip"),
    "absolute": (lambda: mini_members() + [("/etc/evil.csv", b"x")], 400, "absolute path"),
    "total-size-ratio": (lambda: mini_members() + bomb_members(400), 413, "times the archive's size"),
    "total-size": (lambda: mini_members() + bomb_members(600), 413, "members add up to more than"),
    "member-count": (lambda: mini_members() + [(f"mini/m{i}", b"") for i in range(1001)], 413, "limit of 1000 members"),
    "not-a-zip": (None, 400, "not a readable zip archive"),
    "no-study": (lambda: [("readme.txt", b"hello")], 400, "holds no study.json"),
    "two-studies": (lambda: mini_members("a/") + mini_members("b/"), 400, "several study folders"),
}


@pytest.fixture
def upload_client(founding_store, tmp_path, monkeypatch):
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))  # uploads unpack here: it must end up empty
    settings = Settings(store=founding_store, upload_token=SecretStr(TOKEN), max_upload_bytes=20 * MiB)
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        client.temporary = temporary
        yield client


def upload(client, payload: bytes, filename: str = "study.zip"):
    return client.post("/api/studies", params={"filename": filename}, content=payload,
                       headers={"Authorization": f"Bearer {TOKEN}"})


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(ZIP_CASES))
def test_every_zip_oddity_in_an_upload_is_refused_clearly_and_leaves_nothing(case, upload_client):
    members, status, fragment = ZIP_CASES[case]
    payload = b"PK\x03\x04 not really a zip" if members is None else zip_of(members())
    response = upload(upload_client, payload)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"kind", "message", "details"} and fragment in error["message"], error
    assert str(upload_client.temporary) not in response.text, "errors name the client's file, not server paths"
    assert list(upload_client.temporary.iterdir()) == [], "the upload's private folder is always removed"
    assert [s["study_id"] for s in upload_client.get("/api/studies").json()] == ["founding"]


@pytest.mark.slow
def test_the_same_study_zipped_plainly_loads(upload_client):
    response = upload(upload_client, zip_of(mini_members() + [("mini/notes/", b""), ("mini/notes/a.txt", b"x")]))
    assert response.status_code == 201, response.text
    assert list(upload_client.temporary.iterdir()) == []


@pytest.mark.slow
def test_a_zip_bomb_is_not_unpacked_while_another_process_writes(upload_client, founding_store):
    """Uploads are unpacked under the store's writer lock: while another process holds it, an upload is
    refused before a byte of it is decompressed."""
    with lock_holder(founding_store) as holder:
        response = upload(upload_client, zip_of(mini_members() + bomb_members(400)))
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["kind"] == "store_busy" and f"process {holder.pid}" in error["message"]
    assert list(upload_client.temporary.iterdir()) == []


QDPX_CASES = {k: v for k, v in ZIP_CASES.items() if k not in ("no-study", "two-studies", "member-count", "total-size")}
QDPX_CASES["total-size-ratio"] = (lambda: mini_members() + bomb_members(1000), 413, "times the archive's size")


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(QDPX_CASES))
def test_every_zip_oddity_in_a_qdpx_is_a_load_error(case, founding_store, tmp_path, capsys):
    members, status, fragment = QDPX_CASES[case]
    project = [("project.qde", b'<Project xmlns="urn:QDA-XML:project:1.0" name="p"/>')]
    payload = b"PK\x03\x04 not really a zip" if members is None else zip_of(project + members())
    path = tmp_path / "crafted.qdpx"
    path.write_bytes(payload)
    done = run_cli("load", path, "--store", founding_store, capsys=capsys)
    assert_clean_failure(done, 2, fragment)


def test_a_qdpx_with_more_members_than_the_limit_is_refused_before_parsing(founding_store, tmp_path, capsys):
    path = tmp_path / "many.qdpx"
    path.write_bytes(zip_of([(f"m{i}", b"") for i in range(10_001)], method=zipfile.ZIP_STORED))
    done = run_cli("load", path, "--store", founding_store, capsys=capsys)
    assert_clean_failure(done, 2, "more than the limit of 10000 members")


# ------------------------------------------------------------------------------------------ -o paths

@pytest.mark.slow
@pytest.mark.parametrize("command,where", [
    (command, where) for command in (["export", "codings"], ["export", "codes"], ["query", "codes", "--format", "csv"],
                                     ["paper", "--format", "json"])
    for where in ("missing-folder", "a-folder", "under-a-file")
] + [(["export", "rdf"], "missing-folder"), (["export", "qdpx", "--study", "founding"], "under-a-file")])
def test_an_unwritable_output_path_is_an_mmkg_error(command, where, founding_store, tmp_path, capsys):
    target = {"missing-folder": tmp_path / "no" / "such" / "out.txt", "a-folder": tmp_path,
              "under-a-file": founding_store / "CURRENT" / "out.txt"}[where]
    done = run_cli(*command, "-o", target, "--store", founding_store, capsys=capsys)
    message = assert_clean_failure(done, 1, "Error:")
    assert str(target) in message or target.name in message, message


# ------------------------------------------------------------------------------------------ terminal output

HOSTILE = "[/dim] [bold red]loud[/bold red] [link=https://example.invalid]x[/link] \x1b]0;pwned\x07 \x1b[2J \x9b31m " \
          "\u202eevil\u202c \x1b[31mred"
SHOWN = ("[/dim]", "[bold red]loud[/bold red]", "[link=https://example.invalid]x[/link]")
UNPRINTABLE = ("\x1b", "\x07", "\x9b", "\u202e", "\u202c")


def hostile_study(tmp_path: Path) -> Path:
    """The mini study with markup and terminal escapes in every free-text field and in its ids."""
    folder = tmp_path / "hostile"
    shutil.copytree(MINI_STUDY, folder)
    meta = json.loads((folder / "study.json").read_text())
    for key in ("title", "description", "citation", "provenance"):
        meta[key] = f"{key}: {HOSTILE}"
    (folder / "study.json").write_text(json.dumps(meta))

    def edit(name: str, **columns) -> None:
        frame = pd.read_csv(folder / name, dtype=str)
        for column, value in columns.items():
            frame[column] = [f"{value} {i} {HOSTILE}" for i in range(len(frame))]
        frame.to_csv(folder / name, index=False)

    edit("groups.csv", label="group")
    edit("codes.csv", label="code", definition="definition", preferred_label="preferred")
    edit("participants.csv", label="participant", company="company")
    edit("sources.csv", title="source")
    edit("segments.csv", text="text", text_section="section")
    return folder


def assert_shown_plainly(done) -> None:
    assert done.returncode == 0, done.stderr
    for stream in (done.stdout, done.stderr):
        for character in UNPRINTABLE:
            assert character not in stream, (repr(character), stream[:500])
        assert "Traceback" not in stream


@pytest.mark.slow
def test_markup_and_escapes_in_every_study_field_print_as_plain_text(founding_store, tmp_path, capsys):
    folder = hostile_study(tmp_path)
    loaded = run_cli("load", folder, "--store", founding_store, capsys=capsys)
    assert_shown_plainly(loaded)
    assert "provenance: [/dim] [bold red]loud[/bold red]" in " ".join(loaded.stdout.split())

    assert_shown_plainly(run_cli("map", "show", "mini", "--store", founding_store, capsys=capsys))
    for command in (["studies"], ["query", "studies"], ["query", "codes", "-p", "study_id=mini"],
                    ["query", "participants", "-p", "study_id=mini"],
                    ["query", "code_frequencies", "-p", "study_id=mini"],
                    ["query", "codings", "-p", "study_id=mini"]):
        done = run_cli(*command, "--store", founding_store, capsys=capsys)
        assert_shown_plainly(done)
        shown = "".join(done.stdout.split())
        for markup in SHOWN:
            assert "".join(markup.split()) in shown, (command, done.stdout[:800])

    exported = run_cli("export", "codes", "--study", "mini", "--store", founding_store, capsys=capsys)
    assert exported.returncode == 0 and "\x1b]0;pwned\x07" in exported.stdout, \
        "CSV output is data: it keeps the study's text byte for byte"


def test_escapes_in_an_error_message_print_as_plain_text(founding_store, tmp_path, capsys):
    table = codings_table(tmp_path, start="\x1b]0;pwned\x07[/dim]")
    done = run_cli("load", table, "--store", founding_store, capsys=capsys)
    assert_clean_failure(done, 2, "[/dim]' is not a whole number")
    assert not any(character in done.stderr for character in UNPRINTABLE)


@pytest.mark.parametrize("attribute,value,reason", [
    ("startPosition", "99999999999999999999999", "is out of range"),
    ("startPosition", "inf", "is not a finite number"),
    ("endPosition", "12.5", "is not a whole number"),
    ("firstX", "1e400", "is not a finite number"),
    ("firstX", "NaN", "is not a finite number"),
])
def test_refi_qda_positions_out_of_range_or_not_numbers_are_validation_errors(attribute, value, reason,
                                                                               founding_store, tmp_path, capsys):
    import re

    source = Path(__file__).resolve().parent / "data" / "refi-qda" / "atlasti-8.4-refi-standard-project.qdpx"
    with zipfile.ZipFile(source) as archive:
        members = [(i.filename, archive.read(i)) for i in archive.infolist()]
    qde = members[0][1].decode("utf-8")
    crafted, replaced = re.subn(rf'{attribute}="\d+"', f'{attribute}="{value}"', qde, count=1)
    assert replaced == 1
    path = tmp_path / "crafted.qdpx"
    path.write_bytes(zip_of([(members[0][0], crafted.encode("utf-8"))] + members[1:]))
    done = run_cli("load", path, "--store", founding_store, capsys=capsys)
    element = "PlainTextSelection" if "Position" in attribute else "PictureSelection"
    assert_clean_failure(done, 2, f"<{element} guid=", f"'{value}' {reason}", "nothing was written")
    assert study_ids(founding_store) == ["founding"]
