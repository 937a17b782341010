"""The foundation: loading is validated first, atomic, idempotent, and round-trips through the codings table."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import MINI_STUDY

import mmkg
from mmkg.cli.main import main as cli_main
from mmkg.errors import StoreError
from mmkg.graph import study_graph
from mmkg.loader import read_and_validate
from mmkg.synthetic import synthetic_codings


def run_cli(*args: str, capsys) -> tuple[int, str, str]:
    """Run the real `mmkg` entry point in-process; return (exit code, stdout, stderr)."""
    old_argv = sys.argv
    sys.argv = ["mmkg", *args]
    try:
        cli_main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = old_argv
    out, err = capsys.readouterr()
    return code, out, err


def export(store: Path) -> pd.DataFrame:
    with mmkg.open_store(store) as kg:
        return kg.export_codings()


def store_files(store: Path) -> list[str]:
    """The names in a store folder, the published version's shown as '<current version>'."""
    current = (store / "CURRENT").read_text().strip()
    return sorted("<current version>" if p.name == current else p.name for p in store.iterdir())


def edit_csv(folder: Path, name: str, edit) -> None:
    path = folder / name
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame = edit(frame)
    frame.to_csv(path, index=False)


def append_line(folder: Path, name: str, line: str) -> None:
    with open(folder / name, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def write_bytes(folder: Path, name: str, data: bytes) -> None:
    (folder / name).write_bytes(data)


def codings_row_number(folder: Path, **match) -> int:
    frame = pd.read_csv(folder / "codings.csv", dtype=str, keep_default_na=False)
    mask = pd.Series(True, index=frame.index)
    for key, value in match.items():
        mask &= frame[key] == value
    return int(frame.index[mask][0]) + 2


# (id, how to break the shipped study's folder, fragments the message must contain)
BROKEN_FOLDERS = [
    ("missing-column", lambda f: edit_csv(f, "codings.csv", lambda d: d.drop(columns=["coder"])),
     ["codings.csv", "missing column(s) coder"]),
    ("unknown-column", lambda f: edit_csv(f, "sources.csv", lambda d: d.assign(colour="red")),
     ["sources.csv", "unknown column(s) colour"]),
    ("wrong-type-offset", lambda f: edit_csv(f, "segments.csv", lambda d: d.assign(
        start=d["start"].where(d.index != 700, "twelve"))),
     ["segments.csv, row 702, column start", "'twelve' is not a whole number"]),
    ("wrong-type-attribute", lambda f: edit_csv(f, "participants.csv", lambda d: d.assign(
        experience_years=d["experience_years"].where(d.index != 2, "a lot"))),
     ["participants.csv, row 4, column experience_years", "'a lot' is not a number"]),
    ("duplicate-participant", lambda f: append_line(f, "participants.csv", "P3" + "," * 15),
     ["participants.csv, row 17, column participant_id", "duplicate participant"]),
    ("unknown-code", lambda f: append_line(f, "codings.csv", "P1-D001,interview,Z.99,consensus"),
     ["codings.csv, row 3929, column code_id", "unknown code 'Z.99' in codebook 'interview'"]),
    ("unknown-segment", lambda f: append_line(f, "codings.csv", "P1-NOPE,interview,A.3,consensus"),
     ["codings.csv, row 3929, column segment_id", "unknown segment 'P1-NOPE'"]),
    ("unknown-participant", lambda f: append_line(f, "sources.csv", "P99-interview,P99,interview,ghost"),
     ["sources.csv, row 32, column participant_id", "unknown participant 'P99'"]),
    ("code-in-no-group", lambda f: append_line(f, "codes.csv", "interview,Q.1,floating,,,true,,"),
     ["codes.csv, row 123, column group_id", "code 'Q.1' is in no group"]),
    ("empty-file", lambda f: write_bytes(f, "segments.csv", b""),
     ["segments.csv", "file is empty"]),
    ("header-only", lambda f: write_bytes(f, "codings.csv", b"segment_id,codebook,code_id,coder\n"),
     ["codings.csv", "has a header but no rows"]),
    ("wrong-encoding", lambda f: write_bytes(f, "groups.csv", (f / "groups.csv").read_text().replace(
        "pipeline elements", "Pipeline-Elemente für Größe").encode("latin-1")),
     ["groups.csv", "not valid UTF-8", "line 2"]),
    ("wrong-encoding-after-bom", lambda f: write_bytes(f, "groups.csv", b"\xef\xbb\xbf" + (
        f / "groups.csv").read_text().replace("security threats", "Sicherheitsbedrohungen für Größe").encode(
        "latin-1")),
     ["groups.csv", "not valid UTF-8 (byte 0xfc on line 9)"]),
    ("bad-source-kind", lambda f: edit_csv(f, "sources.csv", lambda d: d.assign(
        kind=d["kind"].where(d.index != 0, "video"))),
     ["sources.csv, row 2, column kind", "'video' is not a source kind"]),
    ("bad-json", lambda f: write_bytes(f, "study.json", b'{"id": "founding",'),
     ["study.json", "invalid JSON"]),
    ("bad-bool", lambda f: edit_csv(f, "codes.csv", lambda d: d.assign(
        codable=d["codable"].where(d.index != 4, "maybe"))),
     ["codes.csv, row 6, column codable", "'maybe' is not true or false"]),
    ("unknown-concept", lambda f: append_line(f, "concept_map.csv", "interview,A.3,Telepathy,exact,"),
     ["concept_map.csv, row 91, column concept", "'Telepathy' is not a concept"]),
]


@pytest.mark.slow
@pytest.mark.parametrize("case_id, breaker, fragments", BROKEN_FOLDERS, ids=[c[0] for c in BROKEN_FOLDERS])
def test_broken_study_is_refused_and_store_unchanged(case_id, breaker, fragments, founding_store,
                                                     shipped_study, tmp_path, capsys):
    folder = tmp_path / "broken"
    shutil.copytree(shipped_study, folder)
    breaker(folder)
    before = export(founding_store)

    code, out, err = run_cli("load", str(folder), "--store", str(founding_store), capsys=capsys)

    assert code != 0
    assert "Traceback" not in err
    message = " ".join(err.split())
    for fragment in fragments:
        assert fragment in message, f"{case_id}: expected {fragment!r} in {message!r}"
    pd.testing.assert_frame_equal(export(founding_store), before)


def test_all_problems_are_reported_at_once(shipped_study, tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(shipped_study, folder)
    append_line(folder, "codings.csv", "P1-D001,interview,Z.99,consensus")
    append_line(folder, "sources.csv", "P99-interview,P99,interview,ghost")
    with pytest.raises(mmkg.MmkgError) as caught:
        read_and_validate(folder)
    assert len(caught.value.details) == 2
    assert "nothing was written" in caught.value.message


@pytest.mark.slow
def test_shipped_study_exports_15_participants_with_both_sources(tmp_path, capsys):
    store, output = tmp_path / "store", tmp_path / "codings.csv"
    code, out, _ = run_cli("load", "--store", str(store), capsys=capsys)
    assert code == 0, out
    assert "not the authors' data" in " ".join(out.split())
    code, _, _ = run_cli("export", "codings", "--store", str(store), "--format", "csv", "-o", str(output),
                         capsys=capsys)
    assert code == 0
    codings = pd.read_csv(output, dtype=str)
    assert list(codings.columns) == ["study_id", "participant_id", "source_id", "source_kind", "segment_id",
                                     "start", "end", "code_id", "codebook", "coder", "code_label", "provenance"]
    assert codings["participant_id"].nunique() == 15
    kinds = codings.groupby("participant_id")["source_kind"].agg(lambda s: frozenset(s))
    assert (kinds == frozenset({"interview", "drawing"})).all()
    assert set(codings["coder"]) == {"coder1", "coder2", "consensus"}


def test_export_codes_lists_every_code(founding_store, shipped_study, tmp_path, capsys):
    output = tmp_path / "codes.csv"
    code, _, _ = run_cli("export", "codes", "--store", str(founding_store), "-o", str(output), capsys=capsys)
    assert code == 0
    codes = pd.read_csv(output, dtype=str, keep_default_na=False)
    shipped = pd.read_csv(shipped_study / "codes.csv", dtype=str, keep_default_na=False)
    assert {"study_id", "code_id", "label", "parent_id", "codable", "codebook"} <= set(codes.columns)
    assert len(codes) == len(shipped)
    merged = codes.merge(shipped, on=["codebook", "code_id"], suffixes=("", "_shipped"))
    expected_parent = merged["parent_code_id"].where(merged["parent_code_id"] != "", merged["group_id_shipped"])
    assert (merged["parent_id"] == expected_parent).all()
    assert (merged["label"] == merged["label_shipped"]).all()


@pytest.mark.slow
def test_loading_twice_gives_the_same_graph(founding_store):
    with mmkg.open_store(founding_store) as kg:
        before = kg.export_codings(), kg.export_codes(), kg.studies()
        kg.load()
        after = kg.export_codings(), kg.export_codes(), kg.studies()
    for old, new in zip(before, after):
        pd.testing.assert_frame_equal(old, new)


@pytest.mark.slow
def test_changed_study_replaces_only_itself(founding_store, tmp_path):
    mini = tmp_path / "mini"
    shutil.copytree(MINI_STUDY, mini)
    with mmkg.open_store(founding_store) as kg:
        kg.load(mini)
        founding_before = kg.export_codings("founding")
        edit_csv(mini, "codings.csv", lambda d: d[d["code_id"] != "C.3"])
        report = kg.load(mini)
        assert report.study_id == "mini"
        pd.testing.assert_frame_equal(kg.export_codings("founding"), founding_before)
        mini_after = kg.export_codings("mini")
        assert "C.3" not in set(mini_after["code_id"])
        assert len(mini_after) == 14


def graph_census(kg: mmkg.Mmkg) -> dict[str, int]:
    """Rows per node label and relationship type outside the study 'big' (ontology included)."""
    from mmkg.schema import NODES, RELS

    census = {}
    for node in NODES:
        where = "WHERE n.study_id <> 'big'" if node.study_scoped else ""
        census[node.label] = int(kg.cypher(f"MATCH (n:{node.label}) {where} RETURN count(n) AS n")["n"].iloc[0])
    for rel in RELS:
        census[rel.type] = int(kg.cypher(f"MATCH (a:{rel.source})-[r:{rel.type}]->() "
                                         "WHERE NOT a.uid STARTS WITH 'big/' AND a.uid <> 'big' "
                                         "RETURN count(r) AS n")["n"].iloc[0])
    return census


@pytest.mark.slow
def test_large_study_replaced_by_a_different_size_beside_another(founding_store, tmp_path):
    """A large study is added to a copy of the database file (its deletes outside one transaction), re-loaded
    and deleted by rebuilding the file; what is written and kept must come out exactly either way."""
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    synthetic_codings(30_000, seed=1, study_id="big").to_csv(first, index=False)
    synthetic_codings(45_000, seed=2, study_id="big").to_csv(second, index=False)
    with mmkg.open_store(founding_store) as kg:
        founding_before, census_before = kg.export_codings("founding"), graph_census(kg)
        frequencies_before = kg.query("code_frequencies", study_id="founding")
        for path, size, rebuilds in ((first, 30_000, False), (second, 45_000, True)):
            assert kg.store._should_rebuild("big") is rebuilds, "the path under test"
            report = kg.load(path)
            assert report.codings == size
            expected = pd.read_csv(path, dtype=str)
            stored = kg.export_codings("big").astype(str)
            assert len(stored) == size
            key = ["segment_id", "code_id"]
            pd.testing.assert_frame_equal(stored.sort_values(key).reset_index(drop=True)[expected.columns],
                                          expected.sort_values(key).reset_index(drop=True))
            studies = kg.studies().set_index("study_id")
            assert studies.loc["big", "participants"] == expected["participant_id"].nunique()
            pd.testing.assert_frame_equal(kg.export_codings("founding"), founding_before)
            assert graph_census(kg) == census_before
            pd.testing.assert_frame_equal(kg.query("code_frequencies", study_id="founding"), frequencies_before)
        kg.delete_study("big")
        assert kg.study_ids() == ["founding"]
        assert graph_census(kg) == census_before
    assert store_files(founding_store) == ["<current version>", "CURRENT", "SCHEMA", "writer.lock"]


@pytest.mark.slow
def test_load_leaves_arrows_default_allocator_as_it_was(founding_store):
    import pyarrow as pa

    before = pa.default_memory_pool().backend_name
    with mmkg.open_store(founding_store) as kg:
        kg.load(MINI_STUDY)
    assert pa.default_memory_pool().backend_name == before


@pytest.mark.slow
def test_codings_table_round_trip(founding_store, tmp_path, capsys):
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    empty_store = tmp_path / "empty"
    assert run_cli("export", "codings", "--store", str(founding_store), "-o", str(first), capsys=capsys)[0] == 0
    code, out, err = run_cli("load", str(first), "--store", str(empty_store), capsys=capsys)
    assert code == 0, err
    assert run_cli("export", "codings", "--store", str(empty_store), "-o", str(second), capsys=capsys)[0] == 0
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.slow
def test_codings_table_rows_that_disagree_about_a_segment_are_refused(founding_store, tmp_path, capsys):
    table = tmp_path / "codings.csv"
    before = export(founding_store)
    codings = before.copy()
    repeated = codings["segment_id"].duplicated(keep="first") & codings["start"].notna()
    row = int(codings.index[repeated][0])
    codings.loc[row, "start"] = codings.loc[row, "start"] + 1
    codings.to_csv(table, index=False)

    code, out, err = run_cli("load", str(table), "--store", str(founding_store), capsys=capsys)

    assert code != 0
    message = " ".join(err.split())
    assert f"{table}, row {row + 2}, column segment_id: duplicate segment" in message, message
    pd.testing.assert_frame_equal(export(founding_store), before)


@pytest.mark.slow
def test_failure_while_writing_rolls_back(founding_store, tmp_path):
    """A write that fails midway (a coding pointing at a segment that is not there) leaves the store as it was."""
    mini = read_and_validate(MINI_STUDY)
    rows = study_graph(mini)
    coded = rows.rels["CODED_AS"]
    rows.rels["CODED_AS"] = pd.concat([coded, coded.head(1).assign(**{"from": "mini/segment/missing"})],
                                      ignore_index=True)
    with mmkg.open_store(founding_store) as kg:
        before = kg.export_codings()
        with pytest.raises(StoreError):
            kg.store.replace_study("mini", rows, None)
        assert kg.study_ids() == ["founding"]
        pd.testing.assert_frame_equal(kg.export_codings(), before)


@pytest.mark.slow
@pytest.mark.parametrize("reload", [False, True], ids=["large change of a copy", "rebuild"])
def test_failure_while_writing_a_large_study_leaves_store_and_folder_as_they_were(founding_store, tmp_path,
                                                                                  reload):
    """A large study is written into a new database file first (a changed copy of the live one, or a rebuilt
    one when it replaces a large study); when that write fails, the live file is kept."""
    big = tmp_path / "big.csv"
    synthetic_codings(40_000, study_id="big").to_csv(big, index=False)
    rows = study_graph(read_and_validate(big))
    coded = rows.rels["CODED_AS"]
    rows.rels["CODED_AS"] = pd.concat([coded, coded.head(1).assign(**{"from": "big/segment/missing"})],
                                      ignore_index=True)
    with mmkg.open_store(founding_store) as kg:
        if reload:
            synthetic_codings(20_000, seed=3, study_id="big").to_csv(tmp_path / "earlier.csv", index=False)
            kg.load(tmp_path / "earlier.csv")
        files_before = sorted(p.name for p in founding_store.iterdir())
        studies, before = kg.study_ids(), kg.export_codings()
        assert kg.store._should_rebuild("big") is reload, "the path under test"
        with pytest.raises(StoreError, match="CODED_AS"):
            kg.store.replace_study("big", rows, None)
        assert kg.study_ids() == studies
        pd.testing.assert_frame_equal(kg.export_codings(), before)
    assert sorted(p.name for p in founding_store.iterdir()) == files_before


@pytest.mark.slow
def test_load_killed_midway_leaves_store_loadable(founding_store, tmp_path):
    """SIGKILL a load of a large study while it writes; the store must still open and hold either what it
    held or all of the new study."""
    big = tmp_path / "big.csv"
    synthetic_codings(200_000, seed=7, study_id="big").to_csv(big, index=False)
    command = [sys.executable, "-c", "from mmkg.cli.main import main; main()", "load", str(big), "--store"]

    scratch = tmp_path / "scratch"
    started = time.monotonic()
    subprocess.run(command + [str(scratch)], check=True, capture_output=True)
    full_duration = time.monotonic() - started

    before = export(founding_store)
    delay = full_duration * 0.75  # the write is the last part of a load
    for _ in range(4):  # on a busy machine the load may finish first: try again, killing sooner
        process = subprocess.Popen(command + [str(founding_store)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        if process.returncode == -signal.SIGKILL:
            break
        with mmkg.open_store(founding_store) as kg:
            kg.delete_study("big")
        delay *= 0.6
    assert process.returncode == -signal.SIGKILL, "every load finished before it could be killed"

    with mmkg.open_store(founding_store) as kg:
        # killed before the commit point: as before; after it (the process had not exited yet): all of it
        assert kg.study_ids() in (["founding"], ["big", "founding"])
        pd.testing.assert_frame_equal(kg.export_codings("founding"), before)
        if "big" in kg.study_ids():
            assert len(kg.export_codings("big")) == 200_000
        kg.load(MINI_STUDY)
        assert "mini" in kg.study_ids()
    assert store_files(founding_store) == ["<current version>", "CURRENT", "SCHEMA", "writer.lock"], \
        "the next load removes a killed load's leftovers"


def test_study_json_declares_attribute_without_column(tmp_path):
    folder = tmp_path / "mini"
    shutil.copytree(MINI_STUDY, folder)
    meta = json.loads((folder / "study.json").read_text())
    meta["participant_attributes"]["shoe_size"] = "int"
    (folder / "study.json").write_text(json.dumps(meta))
    with pytest.raises(mmkg.MmkgError, match="shoe_size"):
        read_and_validate(folder)


@pytest.mark.slow
def test_missing_attribute_values_stay_missing(tmp_path):
    with mmkg.open_store(tmp_path / "store") as kg:
        kg.load(MINI_STUDY)
        rows = kg.cypher("MATCH (p:Participant)-[:HAS_ATTRIBUTE]->(a:Attribute) WHERE p.id = 'P3' "
                         "RETURN a.name AS name, a.value AS value ORDER BY name")
    assert rows.to_dict("records") == [{"name": "company", "value": "B"}]


def test_unknown_source_type_is_a_clear_error(tmp_path, capsys):
    odd = tmp_path / "study.xlsx"
    odd.write_bytes(b"PK")
    code, _, err = run_cli("load", str(odd), "--store", str(tmp_path / "s"), capsys=capsys)
    assert code == 2
    assert "cannot load a '.xlsx' file" in err
