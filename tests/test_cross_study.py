"""A second, small study authored as a REFI-QDA file, mapped onto the ontology, compared with the founding study."""
from __future__ import annotations

import zipfile
from xml.sax.saxutils import quoteattr

import pandas as pd
import pytest

import mmkg
from mmkg.loader import shipped_study_path
from mmkg.mapping import apply_mapping, suggest_mappings

COUNTED = ("exact", "close", "broad")
# code GUID → (name, concept it should map to); two uncodable categories hold them
CODES = {
    "c0000000-0000-4000-8000-000000000001": ("stealing the model", "ModelStealing"),
    "c0000000-0000-4000-8000-000000000002": ("data leak", "DataBreach"),
    "c0000000-0000-4000-8000-000000000003": ("poisoning the training data", "Poisoning"),
    "c0000000-0000-4000-8000-000000000004": ("denial of service", "DenialOfService"),
}
# participant → its interview: text and selections (start, end, code GUIDs)
INTERVIEWS = {
    "Ana": ("They could steal our model and take the service down. Also the data may leak.",
            [(0, 25, ["c0000000-0000-4000-8000-000000000001", "c0000000-0000-4000-8000-000000000004"]),
             (57, 77, ["c0000000-0000-4000-8000-000000000002"])]),
    "Ben": ("Competitors copying the model worries me, and poisoned labels too.",
            [(0, 31, ["c0000000-0000-4000-8000-000000000001"]), (48, 66, ["c0000000-0000-4000-8000-000000000003"])]),
    "Cy": ("A leak of training data that someone poisoned.",
           [(0, 46, ["c0000000-0000-4000-8000-000000000002", "c0000000-0000-4000-8000-000000000003"])]),
}


def second_study_qdpx(path) -> None:
    """Write the small study as a REFI-QDA project: one coder, cases with a variable, inline texts."""
    user = "a0000000-0000-4000-8000-000000000001"
    codes = "".join(f'<Code guid="{guid}" name={quoteattr(name)} isCodable="true"/>'
                    for guid, (name, _) in CODES.items())
    cases, sources, number = [], [], 0
    for index, (person, (text, selections)) in enumerate(INTERVIEWS.items(), start=1):
        source = f"50000000-0000-4000-8000-00000000000{index}"
        cases.append(f'<Case guid="e0000000-0000-4000-8000-00000000000{index}" name="{person}">'
                     f'<VariableValue><VariableRef targetGUID="f0000000-0000-4000-8000-000000000001"/>'
                     f'<TextValue>{"engineer" if index < 3 else "manager"}</TextValue></VariableValue>'
                     f'<SourceRef targetGUID="{source}"/></Case>')
        parts = []
        for start, end, code_guids in selections:
            number += 1
            codings = "".join(f'<Coding guid="d0000000-0000-4000-8000-{number:06d}{i:06d}" creatingUser="{user}">'
                              f'<CodeRef targetGUID="{guid}"/></Coding>' for i, guid in enumerate(code_guids))
            parts.append(f'<PlainTextSelection guid="b0000000-0000-4000-8000-{number:012d}" '
                         f'startPosition="{start}" endPosition="{end}">{codings}</PlainTextSelection>')
        sources.append(f'<TextSource guid="{source}" name="Interview {person}">'
                       f'<PlainTextContent>{text}</PlainTextContent>{"".join(parts)}</TextSource>')
    xml = (f'<?xml version="1.0" encoding="utf-8"?><Project xmlns="urn:QDA-XML:project:1.0" name="Second study" '
           f'origin="hand-written test project"><Users><User guid="{user}" name="lea"/></Users>'
           f'<CodeBook><Codes><Code guid="c0000000-0000-4000-8000-0000000000aa" name="Threats" isCodable="false">'
           f'{codes}</Code></Codes></CodeBook>'
           f'<Variables><Variable guid="f0000000-0000-4000-8000-000000000001" name="role" typeOfVariable="Text"/>'
           f'</Variables><Cases>{"".join(cases)}</Cases><Sources>{"".join(sources)}</Sources></Project>')
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("project.qde", xml)


def second_study_expected() -> pd.DataFrame:
    """Codings, segments, participants per concept, counted from the spec above."""
    rows = [(person, f"{person}-{i}", CODES[guid][1]) for person, (_, selections) in INTERVIEWS.items()
            for i, (_, _, guids) in enumerate(selections) for guid in guids]
    frame = pd.DataFrame(rows, columns=["participant", "segment", "concept"])
    return frame.groupby("concept").agg(codings=("segment", "size"), segments=("segment", "nunique"),
                                        participants=("participant", "nunique"))


def founding_expected() -> pd.DataFrame:
    """The same counts for the founding study, from its CSV files (consensus codings, counted match types)."""
    folder = shipped_study_path()
    codings = pd.read_csv(folder / "codings.csv").query("coder == 'consensus'")
    concept_map = pd.read_csv(folder / "concept_map.csv").query("match in @COUNTED")
    segments = pd.read_csv(folder / "segments.csv").merge(pd.read_csv(folder / "sources.csv"), on="source_id")
    joined = codings.merge(concept_map, on=["codebook", "code_id"]).merge(segments, on="segment_id")
    return joined.groupby("concept").agg(codings=("segment_id", "size"), segments=("segment_id", "nunique"),
                                         participants=("participant_id", "nunique"))


@pytest.fixture
def linked(founding_store, tmp_path):
    """The founding store plus the second study, loaded and mapped from reviewed suggestions."""
    path = tmp_path / "second.qdpx"
    second_study_qdpx(path)
    kg = mmkg.open_store(founding_store)
    report = kg.load(path, study_id="second")
    assert report.counts["CODED_AS"] == sum(len(g) for _, s in INTERVIEWS.values() for *_, g in s)
    yield kg
    kg.close()


@pytest.mark.slow
def test_suggestions_find_the_concepts_and_mapping_applies(linked):
    kg = linked
    suggested = suggest_mappings(kg, "second", top=1)
    best = dict(zip(suggested["label"], suggested["concept"]))
    assert best == {name: concept for name, concept in CODES.values()}
    assert "Threats" not in best  # uncodable categories are offered no concept (score below the default cut of 60)
    report = apply_mapping(kg, "second", suggested)
    assert report.mappings == 4 and report.unmapped["label"].tolist() == ["Threats"]


@pytest.mark.slow
def test_concept_frequencies_side_by_side(linked):
    kg = linked
    apply_mapping(kg, "second", suggest_mappings(kg, "second", top=1))
    frame = kg.query("concept_frequencies")
    wide = frame.pivot(index="concept", columns="study_id", values="participants")
    shared = wide.dropna().index.tolist()
    assert sorted(shared) == sorted(c for _, c in CODES.values())
    founding, second = founding_expected(), second_study_expected()
    for study_id, expected in (("founding", founding), ("second", second)):
        got = frame[frame["study_id"] == study_id].set_index("concept")[["codings", "segments", "participants"]]
        got = got[got["codings"] > 0]
        pd.testing.assert_frame_equal(got.loc[sorted(got.index)].astype(int),
                                      expected.loc[sorted(got.index)].astype(int), check_names=False)
        assert set(got.index) == set(expected.index)
    # the paper's figure: model stealing mentioned by 4 participants of the founding study (reconstruction)
    assert wide.loc["ModelStealing", "founding"] == founding.loc["ModelStealing", "participants"]


@pytest.mark.slow
def test_studies_mentioning_and_pooled_cooccurrence(linked):
    kg = linked
    apply_mapping(kg, "second", suggest_mappings(kg, "second", top=1))
    mentioning = kg.query("studies_mentioning", concept="model stealing")
    assert sorted(mentioning["study_id"]) == ["founding", "second"]
    assert mentioning.set_index("study_id").loc["second", "participants"] == 2
    assert "reconstruction" in mentioning.set_index("study_id").loc["founding", "provenance"]

    per_study = kg.query("concept_cooccurrence", unit="segment")
    pooled = kg.query("concept_cooccurrence", unit="segment", pooled=True)
    pair = ("DataBreach", "Poisoning")

    def n_ab(frame, study):
        hit = frame[(frame["study_id"] == study) & (frame["concept_a"] == pair[0]) & (frame["concept_b"] == pair[1])]
        return int(hit["n_ab"].sum())

    assert n_ab(per_study, "second") == 1  # Cy's one selection carries both
    assert n_ab(pooled, "*") == n_ab(per_study, "founding") + n_ab(per_study, "second")
    participants = kg.query("concept_cooccurrence", unit="participant", study_id="second")
    row = participants[(participants["concept_a"] == "DataBreach") & (participants["concept_b"] == "ModelStealing")]
    assert row[["n_a", "n_b", "n_ab", "n_units"]].values.tolist() == [[2, 2, 1, 3]]
