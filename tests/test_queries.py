"""The named query library on the shipped study: registry rules, every query through the CLI, the paper's
Section 4.1.1 and agreement figures, and recomputations of the analyses from the study's CSV files."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import mmkg
from mmkg.cli.main import app
from mmkg.errors import NotFoundError, QueryError
from mmkg.queries import every_query, get_query, get_statement, parse_query_file, registry

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "studies" / "founding"
SHIPPED_FACTS = ROOT / "studies" / "founding_spec" / "paper-facts.json"
BOOK = {"I": "interview", "D": "drawing"}
runner = CliRunner()


@pytest.fixture(scope="module")
def kg(founding_template):
    with mmkg.open_store(founding_template, read_only=True) as graph:
        yield graph


@pytest.fixture(scope="module")
def csv_study() -> dict[str, pd.DataFrame]:
    """The shipped study's consensus codings joined to sources and participants, read with plain pandas."""
    read = lambda name: pd.read_csv(STUDY / name, dtype=str, keep_default_na=False)  # noqa: E731
    codings, segments, sources = read("codings.csv"), read("segments.csv"), read("sources.csv")
    c = codings.merge(segments[["segment_id", "source_id"]], on="segment_id").merge(
        sources[["source_id", "participant_id", "kind"]], on="source_id")
    return {"all": c, "consensus": c[c["coder"] == "consensus"], "concept_map": read("concept_map.csv"),
            "participants": read("participants.csv"), "codes": read("codes.csv")}


# ------------------------------------------------------------------------------------------------ registry
def test_library_has_at_least_twelve_documented_queries():
    queries = registry()
    assert len(queries) >= 12
    for q in queries.values():
        assert q.title and q.description, q.name
        assert all(p.description for p in q.parameters), q.name


def test_registry_refuses_undeclared_and_unused_parameters(tmp_path):
    bad = tmp_path / "bad.cypher"
    bad.write_text("// name: bad\n// title: t\n// param: a STRING = \"\" | x\nMATCH (n) WHERE n.x = $b RETURN n\n")
    with pytest.raises(QueryError, match="used but not declared: b; declared but not used: a"):
        parse_query_file(bad)


def test_options_are_parameters_but_not_statement_parameters(tmp_path):
    q = get_query("cooccurrence")
    names = [p.name for p in q.parameters]
    assert {"study_id", "unit", "coder", "min_count", "code_a"} <= set(names)
    assert {p.name for p in q.cypher_parameters} == {"study_id", "coder"}
    statement, options = q.split(q.bind({"min_count": "3", "unit": "participant"}))
    assert statement == {"study_id": "", "coder": ""}
    assert options["min_count"] == 3 and options["unit"] == "participant"
    orphan = tmp_path / "orphan.cypher"
    orphan.write_text("// name: orphan\n// title: t\n// option: k INTEGER = 1 | x\nRETURN 1\n")
    with pytest.raises(QueryError, match="names no '// analysis:' step"):
        parse_query_file(orphan)
    unknown = tmp_path / "unknown.cypher"
    unknown.write_text("// name: unknown\n// title: t\n// analysis: nonsense\nRETURN 1\n")
    with pytest.raises(QueryError, match="unknown analysis step 'nonsense'"):
        parse_query_file(unknown)


def test_internal_statements_run_but_are_no_named_queries(kg, founding_template):
    internal = {name: q for name, q in every_query().items() if q.internal}
    assert {"study_ids", "code_concepts", "participant_attributes", "study_coders"} <= set(internal)
    assert not set(internal) & set(registry())
    for name, q in internal.items():
        assert q.path.parent.name == "internal" and q.mode == "read", name
        assert not kg.rows(name).empty, f"{name} returned no rows on the shipped study"
    assert kg.rows("study_ids")["id"].tolist() == ["founding"]
    with pytest.raises(NotFoundError, match="no query named 'study_ids'"):
        kg.query("study_ids")
    refused = runner.invoke(app, ["query", "code_concepts", "--store", str(founding_template)])
    assert isinstance(refused.exception, NotFoundError) and "no query named 'code_concepts'" in str(refused.exception)
    listing = runner.invoke(app, ["queries", "--format", "json"])
    assert not {q["name"] for q in json.loads(listing.stdout)} & set(internal)


def test_one_statement_is_written_once():
    bodies = [q.cypher for q in every_query().values() if not q.statement_of]
    assert len(bodies) == len(set(bodies))
    assert get_query("code_neighbourhood").statement_of == "cooccurrence"
    assert get_query("code_neighbourhood").cypher == get_query("cooccurrence").cypher
    assert get_statement("code_concepts").internal


def test_a_statement_reference_and_a_body_of_its_own_are_refused(tmp_path):
    both = tmp_path / "both.cypher"
    both.write_text("// name: both\n// title: t\n// statement: cooccurrence\nRETURN 1\n")
    with pytest.raises(QueryError, match="has a statement of its own and '// statement: cooccurrence'"):
        parse_query_file(both)
    marked = tmp_path / "marked.cypher"
    marked.write_text("// name: marked\n// title: t\n// internal: maybe\nRETURN 1\n")
    with pytest.raises(QueryError, match="internal must be true or false"):
        parse_query_file(marked)


@pytest.fixture
def own_queries(tmp_path, monkeypatch):
    """A user's folder of named queries on MMKG_QUERY_PATH (the registry re-read before and after)."""
    folder = tmp_path / "my-queries"
    folder.mkdir()
    monkeypatch.setenv("MMKG_QUERY_PATH", str(folder))
    every_query.cache_clear(), registry.cache_clear()
    yield folder
    monkeypatch.delenv("MMKG_QUERY_PATH")
    every_query.cache_clear(), registry.cache_clear()


def test_a_users_query_folder_adds_named_queries(own_queries, founding_template):
    (own_queries / "big_codebooks.cypher").write_text(
        "// name: big_codebooks\n// title: Codes per codebook\n// description: How many codes each codebook has.\n"
        "// param: study_id STRING = \"founding\" | study\n// mode: read\n"
        "MATCH (k:Code) WHERE k.study_id = $study_id RETURN k.codebook AS codebook, count(*) AS codes "
        "ORDER BY codebook;\n")
    listing = runner.invoke(app, ["queries", "--format", "json"])
    assert "big_codebooks" in {q["name"] for q in json.loads(listing.stdout)}
    result = runner.invoke(app, ["query", "big_codebooks", "--store", str(founding_template), "--format", "json"])
    assert result.exit_code == 0, result.output
    codes = pd.read_csv(STUDY / "codes.csv", dtype=str)
    assert {r["codebook"]: r["codes"] for r in json.loads(result.stdout)} == codes["codebook"].value_counts().to_dict()


def test_a_users_query_cannot_shadow_a_shipped_one(own_queries):
    (own_queries / "codes.cypher").write_text("// name: codes\n// title: mine\nRETURN 1 AS one\n")
    with pytest.raises(QueryError, match="a query named 'codes' exists already"):
        registry()


def test_a_query_that_says_read_cannot_write(own_queries, founding_store):
    (own_queries / "sneaky.cypher").write_text("// name: sneaky\n// title: t\n// mode: read\n"
                                               "CREATE (c:Coder {uid: 'x', id: 'x', study_id: 'founding'}) "
                                               "RETURN 1 AS one\n")
    with mmkg.open_store(founding_store) as graph, pytest.raises(QueryError):
        graph.query("sneaky")


@pytest.mark.slow
def test_every_query_runs_with_its_defaults_through_the_cli(founding_template):
    for name in registry():
        result = runner.invoke(app, ["query", name, "--store", str(founding_template), "--format", "json"])
        assert result.exit_code == 0, (name, result.output)
        rows = json.loads(result.stdout)
        assert rows, f"{name} returned no rows on the shipped study"


def test_cli_lists_queries_and_prints_tables_with_provenance(founding_template):
    listing = runner.invoke(app, ["queries", "--format", "json"])
    assert listing.exit_code == 0
    assert {"cooccurrence", "agreement", "threat_map"} <= {q["name"] for q in json.loads(listing.stdout)}
    table = runner.invoke(app, ["query", "threat_map", "--store", str(founding_template)])
    assert table.exit_code == 0, table.output
    assert "not the authors' data" in table.stdout and "model stealing" in table.stdout


def test_cli_writes_csv_files_and_reports_bad_parameters(founding_template, tmp_path):
    out = tmp_path / "pairs.csv"
    done = runner.invoke(app, ["query", "cooccurrence", "-p", "unit=participant", "-p", "min_count=3",
                               "--format", "csv", "-o", str(out), "--store", str(founding_template)])
    assert done.exit_code == 0, done.output
    frame = pd.read_csv(out)
    assert len(frame) and (frame["n_ab"] >= 3).all() and set(frame["unit"]) == {"participant"}
    with pytest.raises(QueryError, match="unit"), mmkg.open_store(founding_template, read_only=True) as kg:
        kg.query("cooccurrence", unit="paragraph")
    bad = runner.invoke(app, ["query", "cooccurrence", "-p", "min_count=many", "--store", str(founding_template)])
    assert bad.exit_code != 0


# ------------------------------------------------------------------------------------- the paper's figures
def _facts() -> list[dict]:
    facts = json.loads(SHIPPED_FACTS.read_text(encoding="utf-8"))
    return facts


def _key(code: str) -> str:
    prefix, code_id = code.split(":", 1)
    return f"{BOOK[prefix]}:{code_id}"


def _check_cooccurrence_fact(kg, fact: dict) -> None:
    unit = {"codings": "segment", "participants": "participant"}[fact["unit"]]
    positive = [c for c in fact["codes"] if c not in fact["negated_codes"]]
    a, b = _key(fact["codes"][0]), _key(fact["codes"][1])
    pair = kg.query("cooccurrence", unit=unit, code_a=a, code_b=b, min_count=0)
    n_ab = int(pair["n_ab"].iloc[0]) if len(pair) else 0
    if not fact["negated_codes"]:
        assert n_ab == fact["value"], fact["id"]
    else:  # "a but not b": n_a - n_ab
        assert len(positive) == 1 and positive[0] == fact["codes"][0]
        n_a = int(kg.query("code_frequencies", codebook=a.split(":")[0])
                  .query("code_id == @a.split(':')[1]")["participants"].iloc[0])
        assert n_a - n_ab == fact["value"], fact["id"]


def _pairwise_cooccurrence_facts(facts):
    """Two-code co-occurrence facts counted by the `cooccurrence` query: in passages (unit codings) or in
    participants; those the project reads within one passage (fact_revisions.json: scope segment) but counts in
    participants are checked by tests/test_paper.py instead."""
    revised = json.loads((SHIPPED_FACTS.parent / "fact_revisions.json").read_text(encoding="utf-8"))["revised"]
    facts = [{**f, **revised.get(f["id"], {}).get("set", {})} for f in facts]
    return [f for f in facts if f["kind"] == "cooccurrence" and f["value"] is not None and len(f["codes"]) == 2
            and f.get("scope") != "segment"]


def test_section_4_1_1_cooccurrences_on_the_shipped_facts(kg):
    facts = _pairwise_cooccurrence_facts(_facts())
    assert len(facts) >= 8
    for fact in facts:
        _check_cooccurrence_fact(kg, fact)


def test_cooccurrence_facts_of_the_shared_paper(kg, shared_dir):
    facts = json.loads((shared_dir / "paper" / "paper-facts.json").read_text(encoding="utf-8"))
    for fact in _pairwise_cooccurrence_facts(facts):
        _check_cooccurrence_fact(kg, fact)


def test_model_stealing_and_code_breach_occur_together_six_times_via_cli(founding_template):
    done = runner.invoke(app, ["query", "cooccurrence", "-p", "unit=segment", "-p", "code_a=A.3", "-p",
                               "code_b=code breach", "--format", "json", "--store", str(founding_template)])
    assert done.exit_code == 0, done.output
    [row] = json.loads(done.stdout)
    assert (row["label_a"], row["label_b"], row["n_ab"], row["n_b"]) == ("model stealing", "code breach", 6, 7)


def test_shared_goal_pairs_give_the_section_4_1_1_table(kg):
    table = kg.query("shared_goal_pairs", unit="segment")
    got = {(r.code_a, r.code_b): r.n_ab for r in table.itertuples() if r.codebook_a == "interview"}
    assert got[("A.3", "C.4")] == 6 and got[("A.5", "C.3")] == 2 and got[("A.6", "C.6")] == 1
    assert set(kg.query("shared_goal_pairs")["unit"]) == {"segment", "exact", "source", "participant"}


def test_agreement_matches_the_papers_counts(kg):
    facts = {f["id"]: f["value"] for f in _facts() if f["kind"] == "agreement"}
    books = kg.query("agreement", level="codebook").set_index("codebook")
    assert books.loc["interview", "both"] == facts["agree-interview-agreed"]
    assert books.loc["interview", "only_a"] + books.loc["interview", "only_b"] == facts["agree-interview-disagreed"]
    assert books.loc["drawing", "both"] + books.loc["drawing", "only_a"] + books.loc["drawing", "only_b"] \
        == facts["agree-drawing-total"]
    assert (books["cohen_kappa"] > facts["agree-kappa-threshold"]).all()


@pytest.mark.slow
def test_agreement_per_code_against_scikit_learn(kg, csv_study):
    """Units: passages of the two coders' overlapping selections (tests/overlap_reference.py) × code."""
    from overlap_reference import passage_ids
    from sklearn.metrics import cohen_kappa_score

    rows = kg.query("agreement", level="code", codebook="drawing")
    every = csv_study["all"]
    c = every[(every["codebook"] == "drawing") & every["coder"].isin(["coder1", "coder2"])]
    segments = pd.read_csv(STUDY / "segments.csv", dtype=str, keep_default_na=False).set_index("segment_id")
    ids = sorted(set(c["segment_id"]))
    def where(i):
        if not segments.loc[i, "x"]:
            return {"kind": "whole", "geometry": (i,)}
        return {"kind": "region", "geometry": tuple(int(segments.loc[i, k]) for k in ("x", "y", "width", "height"))}

    selections = [{"source": segments.loc[i, "source_id"], "codes": set(), "source_kind": "", **where(i)} for i in ids]
    passage = dict(zip(ids, passage_ids(selections)))
    units = sorted(set(passage.values()))
    c = c.assign(passage=c["segment_id"].map(passage))
    for code in ("A.1", "E.4", "D.3"):
        vectors = [[int(((c["passage"] == u) & (c["code_id"] == code) & (c["coder"] == coder)).any())
                    for u in units] for coder in ("coder1", "coder2")]
        got = rows.set_index("code_id").loc[code]
        assert got["units"] == len(units)
        assert got["cohen_kappa"] == pytest.approx(cohen_kappa_score(*vectors))


# ---------------------------------------------------------------------------- recomputed from the CSV files
def test_code_frequencies_match_the_csv(kg, csv_study):
    c = csv_study["consensus"]
    expected = c.groupby(["codebook", "code_id"]).agg(codings=("segment_id", "size"),
                                                      participants=("participant_id", "nunique"))
    got = kg.query("code_frequencies").set_index(["codebook", "code_id"])[["codings", "participants"]]
    pd.testing.assert_frame_equal(got.sort_index(), expected.sort_index(), check_dtype=False)


def test_code_frequencies_filter_by_participant_attribute_and_group(kg, csv_study):
    c, people = csv_study["consensus"], csv_study["participants"]
    security = set(people.loc[people["works_in_security"] == "true", "participant_id"])
    mine = c[c["participant_id"].isin(security) & (c["codebook"] == "interview") & c["code_id"].str.startswith("A.")]
    got = kg.query("code_frequencies", attribute="works_in_security", attribute_value="TRUE",
                   codebook="interview", code_group="AML attacks")
    expected = mine.groupby("code_id")["participant_id"].nunique().to_dict()
    assert dict(zip(got["code_id"], got["participants"])) == expected


def test_security_vs_aml_per_participant_matches_the_csv(kg, csv_study):
    from mmkg.ontology import concept_tables

    kinds = concept_tables()["concepts"].set_index("uid")["kind"]
    cmap = csv_study["concept_map"].assign(concept_kind=lambda m: m["concept"].map(kinds))
    cmap = cmap[cmap["match"].isin(["exact", "close", "broad"])]
    c = csv_study["consensus"].merge(cmap, on=["codebook", "code_id"])
    got = kg.query("security_vs_aml").set_index("participant_id")
    for kind in ("aml_threat", "security_threat", "aml_defense", "security_defense"):
        mine = c[c["concept_kind"] == kind].drop_duplicates(["participant_id", "codebook", "code_id"])
        expected = mine.groupby("participant_id").size().reindex(got.index, fill_value=0)
        assert got[f"{kind}_codes"].to_dict() == expected.to_dict(), kind
    groups = kg.query("security_vs_aml_groups").set_index("attribute_value")
    assert groups["participants"].sum() == len(csv_study["participants"])
    assert groups.loc["true", "mentioning_aml"] == got.loc[got["attribute_value"] == "true", "mentions_aml"].sum()


def test_threat_map_counts_participants_and_shows_figure_1_links(kg, csv_study):
    tm = kg.query("threat_map", source_kind="interview").set_index("threat")
    assert tm.loc["ModelStealing", "controls"] == ["deployment"] and tm.loc["ModelStealing", "affects"] == ["model"]
    c = csv_study["consensus"]
    assert tm.loc["ModelStealing", "participants"] == c[(c["codebook"] == "interview") & (c["code_id"] == "A.3")][
        "participant_id"].nunique()


def test_participant_model_and_drawn_pipeline_match_the_csv(kg, csv_study):
    c = csv_study["consensus"]
    p1 = c[c["participant_id"] == "P3"]
    model = kg.query("participant_model", participant="P3")
    assert set(zip(model["codebook"], model["code_id"])) == set(zip(p1["codebook"], p1["code_id"]))
    drawn = kg.query("drawn_pipeline")
    pipeline_codes = set(csv_study["concept_map"].query("codebook == 'drawing'")["code_id"])
    assert set(drawn["participant_id"]) <= set(c.loc[(c["kind"] == "drawing") & c["code_id"].isin(pipeline_codes),
                                                      "participant_id"])


def test_code_names_resolve_by_id_codebook_and_label(kg):
    by_id = kg.query("code_neighbourhood", code="A.3", limit=0)
    assert set(by_id["code_a"]) == {"A.3"} and set(by_id["codebook_a"]) == {"interview"}
    by_label = kg.query("code_neighbourhood", code="Model Stealing", limit=0)
    pd.testing.assert_frame_equal(by_id, by_label)
    drawing = kg.query("code_neighbourhood", code="drawing:A.3", limit=3, rank_by="jaccard")
    assert set(drawing["label_a"]) == {"model"} and drawing["c_coefficient"].is_monotonic_decreasing
    with pytest.raises(NotFoundError, match="did you mean"):
        kg.query("code_neighbourhood", code="model stealin")
    with pytest.raises(QueryError, match="rank_by"):
        kg.query("code_neighbourhood", rank_by="popularity")


@pytest.mark.parametrize("unit", ["source", "participant"])
def test_concept_cooccurrence_matches_the_csv(kg, csv_study, unit):
    """Concept pairs per unit, recomputed with pandas from the shipped CSVs and the concept map (the segment
    unit counts passages of overlapping selections, as `cooccurrence` does: tests/test_concept_cooccurrence.py)."""
    mapping = csv_study["concept_map"]
    mapping = mapping[mapping["match"].isin(["exact", "close", "broad"])]
    rows = csv_study["consensus"].merge(mapping, on=["codebook", "code_id"])
    column = {"segment": "segment_id", "source": "source_id", "participant": "participant_id"}[unit]
    carried = rows.groupby(column)["concept"].agg(lambda s: sorted(set(s)))
    pairs = pd.Series([(a, b) for concepts in carried for a in concepts for b in concepts if a < b]).value_counts()

    found = kg.query("concept_cooccurrence", study_id="founding", unit=unit)
    assert set(found["n_units"]) == {len(carried)}
    got = dict(zip(zip(found["concept_a"], found["concept_b"]), found["n_ab"]))
    assert got == pairs.to_dict()
