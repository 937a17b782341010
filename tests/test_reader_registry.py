"""Study formats are registered once (`mmkg.loader.READERS`): the ending picks the reader, a shared ending is
settled by the file's first line, and a new format is one registration — loads and messages follow."""
from __future__ import annotations

import csv

import pytest

import mmkg
from mmkg.errors import LoadError
from mmkg.loader import reader_for, suffixes
from mmkg.server.routers.uploads import upload_suffixes


def test_the_ending_and_then_the_header_pick_the_reader(tmp_path):
    taguette = tmp_path / "highlights.csv"
    with taguette.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["id", "document", "tag", "content"], ["1", "doc", "tag", "text"]])
    codings = tmp_path / "codings.csv"
    codings.write_text("study_id,participant_id,source_id\n", encoding="utf-8")
    assert reader_for(taguette).name == "taguette" and reader_for(codings).name == "codings"
    assert reader_for(tmp_path / "x.QDPX").name == reader_for(tmp_path / "x.qdc").name == "refi-qda"
    with pytest.raises(LoadError, match=r"cannot load a '\.xlsx' file \(expected a study folder, .*`\.qde`"):
        reader_for(tmp_path / "book.xlsx")
    assert set(upload_suffixes()) == {".zip", *suffixes()}


def test_a_registered_reader_loads_its_format(tsv_reader, founding_template, tmp_path):
    with mmkg.open_store(founding_template, read_only=True) as kg:
        exported = kg.export_codings("founding")
    tsv = tmp_path / "codings.tsv"
    exported.to_csv(tsv, sep="\t", index=False)
    assert reader_for(tsv) is tsv_reader and ".tsv" in suffixes()
    with mmkg.open_store(tmp_path / "store") as kg:
        report = kg.load(tsv, study_id="from-tsv")
        back = kg.export_codings("from-tsv")
    assert report.codings == len(exported) == len(back)
    with pytest.raises(LoadError, match=r"a tab-separated codings table \(`\.tsv`\)"):
        reader_for(tmp_path / "book.xlsx")
