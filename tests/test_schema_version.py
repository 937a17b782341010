"""A store records the schema version its graph was written with; a store whose graph lacks what this schema
has (an older mmkg wrote it) or that a newer mmkg wrote is refused with a message that says what to do, and
the read-back of a study (`map apply`, `export qdpx`) carries every property the schema gives a study (generated
from the schema; tests/test_round_trip_schema.py adds a property and sees it survive)."""
from __future__ import annotations

import shutil
from pathlib import Path

import ladybug
import pytest
from typer.testing import CliRunner

import mmkg
from mmkg.cli.main import app as cli
from mmkg.errors import StoreError
from mmkg.graph_tables import read_study_tables
from mmkg.schema import SCHEMA_VERSION
from mmkg.store.embedded import SCHEMA_FILE, current_database_file, read_schema_version

runner = CliRunner()


@pytest.fixture
def store(founding_template, tmp_path) -> Path:
    target = tmp_path / "store"
    shutil.copytree(founding_template, target)
    return target


def drop_property(store: Path, table: str, prop: str) -> None:
    """Make the store's graph what an older schema wrote: the same tables without one property."""
    file, _ = current_database_file(store)
    db = ladybug.Database(str(file))
    conn = ladybug.Connection(db)
    conn.execute(f"ALTER TABLE {table} DROP {prop}")
    conn.close()
    db.close()


def test_a_new_store_records_the_schema_version(tmp_path):
    with mmkg.open_store(tmp_path / "new"):
        pass
    assert read_schema_version(tmp_path / "new") == SCHEMA_VERSION
    assert (tmp_path / "new" / SCHEMA_FILE).read_text() == f"{SCHEMA_VERSION}\n"


def test_a_store_an_older_mmkg_wrote_is_refused_with_what_to_do(store):
    (store / SCHEMA_FILE).unlink()  # written before versions were recorded …
    drop_property(store, "Code", "definition")  # … by a schema without Code.definition
    for read_only in (True, False):
        with pytest.raises(StoreError, match=r"older mmkg .*lacks Code\.definition.*Nothing was changed: load your "
                                             r"studies into a new store"):
            mmkg.open_store(store, read_only=read_only)
    result = runner.invoke(cli, ["studies", "--store", str(store)])
    assert result.exit_code != 0 and isinstance(result.exception, StoreError)
    assert read_schema_version(store) is None  # nothing was written


def test_a_store_a_newer_mmkg_wrote_is_refused(store):
    (store / SCHEMA_FILE).write_text(f"{SCHEMA_VERSION + 1}\n")
    with pytest.raises(StoreError, match=f"newer mmkg \\(schema version {SCHEMA_VERSION + 1}.*upgrade mmkg"):
        mmkg.open_store(store, read_only=True)


def test_a_store_from_before_the_stamp_with_the_whole_schema_gets_the_stamp(store):
    (store / SCHEMA_FILE).unlink()
    with mmkg.open_store(store, read_only=True) as kg:
        assert kg.study_ids() == ["founding"]
    assert read_schema_version(store) is None  # a reader writes nothing
    with mmkg.open_store(store) as kg:
        assert kg.study_ids() == ["founding"]
    assert read_schema_version(store) == SCHEMA_VERSION


def test_every_read_back_property_survives_a_round_trip(founding_template):
    with mmkg.open_store(founding_template, read_only=True) as kg:
        tables = read_study_tables(kg, "founding")
    assert tables.codes["definition"].notna().any() and tables.segments["text"].notna().any()
    assert set(tables.participants.columns) >= {"participant_id", "label"}
