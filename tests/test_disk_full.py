"""A full disk, for real: the store on a small tmpfs, filled up to a few MiB. Loads on both write paths and
uploads must fail with a true message (nothing was written), leave the published version as it was, and
work again once there is space — the server without a restart. Skips where a tmpfs cannot be mounted."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from store_processes import mmkg_cli
from test_store_processes import TIDY, store_files, studies_csv

from mmkg.config import Settings
from mmkg.server.app import create_app
from mmkg.synthetic import synthetic_codings

MiB = 1024 * 1024
TOKEN = "disk-full-token"
# Free space left for the load (the founding store's database file is ~9 MiB): too little to copy it; enough
# to copy it but not to commit; enough to start a rebuild but not to finish its checkpoint.
CASES = [("transaction", 2), ("transaction", 13), ("rebuild", 6), ("rebuild", 16)]


@pytest.fixture
def small_disk(tmp_path):
    """A 96 MiB tmpfs mounted under tmp_path (needs root), unmounted afterwards."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the disk-full tests run where `mount -t tmpfs` is allowed")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()})")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path, leave_bytes: int) -> Path:
    """Write a file that leaves `leave_bytes` free on `disk`."""
    filler = disk / "filler"
    with open(filler, "ab") as handle:
        handle.write(b"\0" * max(0, shutil.disk_usage(disk).free - leave_bytes))
    assert shutil.disk_usage(disk).free <= leave_bytes + MiB
    return filler


def study_file(tmp_path: Path, path: str) -> tuple[Path, int]:
    size = 500 if path == "transaction" else 30_000  # the rebuild path: the study outweighs the store
    study = tmp_path / f"{path}.csv"
    synthetic_codings(size, seed=9, study_id="new").to_csv(study, index=False)
    return study, size


def assert_true_disk_full_message(text: str) -> None:
    message = " ".join(text.split())
    assert "the disk is full" in message and "nothing was written" in message, message
    for false_claim in ("durable", "recovered on restart", "Traceback"):
        assert false_claim not in message, message


@pytest.mark.slow
@pytest.mark.parametrize("path,free_mib", CASES)
def test_a_load_that_fills_the_disk_says_so_and_changes_nothing(path, free_mib, small_disk, founding_template,
                                                               tmp_path):
    store = small_disk / "store"
    shutil.copytree(founding_template, store)
    study, size = study_file(tmp_path, path)
    before = {p.name: p.read_bytes() for p in store.iterdir() if p.is_file()}
    filler = fill(small_disk, free_mib * MiB)

    failed = mmkg_cli("load", study, "--store", store)

    assert failed.returncode == 5, failed.stdout + failed.stderr
    assert_true_disk_full_message(failed.stderr)
    assert {p.name: p.read_bytes() for p in store.iterdir() if p.is_file()} == before
    assert store_files(store) == TIDY, "the unfinished version is gone"
    assert list(studies_csv(store)["study_id"]) == ["founding"], "a read-only open on the full disk works"

    filler.unlink()
    loaded = mmkg_cli("load", study, "--store", store)
    assert loaded.returncode == 0, loaded.stderr
    assert studies_csv(store).set_index("study_id").loc["new", "codings"] == size
    assert store_files(store) == TIDY


@pytest.mark.slow
def test_an_upload_that_fills_the_disk_is_refused_and_the_server_goes_on(small_disk, founding_template, tmp_path,
                                                                       monkeypatch):
    store = small_disk / "store"
    shutil.copytree(founding_template, store)
    study, size = study_file(tmp_path, "rebuild")
    payload = study.read_bytes()
    settings = Settings(store=store, upload_token=SecretStr(TOKEN), max_upload_bytes=len(payload) + 1)
    upload = {"params": {"filename": "new.csv"}, "headers": {"Authorization": f"Bearer {TOKEN}"}}
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        assert [s["study_id"] for s in client.get("/api/studies").json()] == ["founding"]
        filler = fill(small_disk, 16 * MiB)

        refused = client.post("/api/studies", content=payload, **upload)
        assert refused.status_code == 507, refused.text
        error = refused.json()["error"]
        assert error["kind"] == "no_space"
        assert_true_disk_full_message(error["message"])
        assert [s["study_id"] for s in client.get("/api/studies").json()] == ["founding"]
        assert client.get("/api/queries/code_frequencies").status_code == 200

        # the temporary folder full as well: the upload cannot even be received
        temporary = small_disk / "tmp"
        temporary.mkdir()
        monkeypatch.setattr(tempfile, "tempdir", str(temporary))
        fill(small_disk, 0)
        refused = client.post("/api/studies", content=payload, **upload)
        assert refused.status_code == 507 and refused.json()["error"]["kind"] == "no_space", refused.text
        assert "nothing was written" in refused.json()["error"]["message"]
        assert list(temporary.iterdir()) == [], "the upload's private folder is removed"
        monkeypatch.setattr(tempfile, "tempdir", None)

        filler.unlink()
        accepted = client.post("/api/studies", content=payload, **upload)
        assert accepted.status_code == 201, accepted.text
        studies = {s["study_id"]: s for s in client.get("/api/studies").json()}
        assert sorted(studies) == ["founding", "new"] and studies["new"]["codings"] == size
    assert store_files(store) == TIDY
