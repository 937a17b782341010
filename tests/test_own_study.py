"""A researcher's own study is first-class (issue 16 item 1): in a store holding only a REFI-QDA study or only a
codings-table study, every named query runs with its default parameters and returns that study's rows, every
view answers 200 with the study's codebooks, and the links of every page work. Real files, real store, real app."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from store_processes import run_cli
from typer.testing import CliRunner

import mmkg
from mmkg.cli.main import app as cli_app
from mmkg.config import Settings
from mmkg.errors import NotFoundError, QueryError
from mmkg.mapping import apply_mapping, suggest
from mmkg.paper import founding_study_id
from mmkg.queries import registry
from mmkg.server.app import create_app

DATA = Path(__file__).parent / "data"
REFI_FILE = DATA / "refi-qda" / "atlasti-8.4-refi-standard-project.qdpx"
CODINGS_FILE = DATA / "own_study" / "threat-interviews.csv"
LOCAL = "http://127.0.0.1"
# queries whose rows come from the ontology's threats (one row per threat, whoever mentions it)
ONTOLOGY_ROWS = {"threat_map"}
# queries that count only codes mapped to ontology concepts: a study about breakfast has none of those
MAPPED_ONLY = {"concepts", "concept_frequencies", "concept_cooccurrence", "drawn_pipeline", "security_vs_aml",
               "security_vs_aml_groups", "shared_goal_pairs", "studies_mentioning", "participant_model"}


def load_mapped(store: Path, source: Path) -> str:
    """Load a study as a new user would, then apply the suggested mapping as it comes (`map suggest` → `apply`)."""
    with mmkg.open_store(store) as kg:
        return load_and_map(kg, source)


def load_and_map(kg, source: Path) -> str:
    study_id = kg.load(source).study_id
    table = suggest(kg, study_id, matcher="string").review_table()
    proposed = table[table["concept"].notna()]
    if len(proposed):
        apply_mapping(kg, study_id, proposed)
    return study_id


@pytest.fixture(scope="module", params=["refi-qda", "codings-table"])
def own_store(request, tmp_path_factory) -> tuple[Path, str, str]:
    store = tmp_path_factory.mktemp(request.param) / "store"
    source = REFI_FILE if request.param == "refi-qda" else CODINGS_FILE
    return store, load_mapped(store, source), request.param


def default_rows(kg, name: str):
    """The query with every parameter at its default (participant_model: a participant of the study)."""
    if name == "participant_model":
        first = kg.query("participants")["participant_id"].iloc[0]
        return kg.query(name, participant=first)
    return kg.query(name)


def test_every_named_query_with_defaults_returns_the_only_studys_rows(own_store):
    store, study_id, kind = own_store
    with mmkg.open_store(store, read_only=True) as kg:
        empty = []
        for name, query in sorted(registry().items()):
            if query.mode != "read":
                continue
            rows = default_rows(kg, name)
            if "study_id" in rows.columns and len(rows):
                assert set(rows["study_id"]) == {study_id}, name
            if name in ONTOLOGY_ROWS:
                assert len(rows) > 0, name
                if kind == "codings-table":
                    assert rows["participants"].sum() > 0, "the study's threat codes are counted"
            elif not len(rows):
                empty.append(name)
        # a codings table has no segment text, so no quotes
        mapped_expected = {"quotes"} if kind == "codings-table" else set(MAPPED_ONLY)
        if len(kg.rows("study_coders")) < 2:
            mapped_expected.add("agreement")  # agreement compares two coders
        else:
            assert "agreement" not in empty
        # a codings table about ML threats has rows everywhere; a breakfast study only where no mapping is needed
        assert set(empty) <= mapped_expected, f"empty with default parameters: {sorted(set(empty) - mapped_expected)}"
        applied, codes = kg.query("code_frequencies"), kg.query("codes")
        assert len(applied) > 0 and set(applied["code_id"]) <= set(codes["code_id"])


def test_several_studies_need_a_choice_and_star_means_every_study(own_store, tmp_path):
    store, study_id, _ = own_store
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    with mmkg.open_store(copy) as kg:
        kg.load(DATA / "mini_study")
        with pytest.raises(QueryError) as raised:
            kg.query("codes")
        assert "2 studies" in str(raised.value) and study_id in str(raised.value) and "mini" in str(raised.value)
        every = kg.query("codes", study_id="*")
        assert set(every["study_id"]) == {study_id, "mini"}
        assert set(kg.query("codes", study_id="mini")["study_id"]) == {"mini"}
        with pytest.raises(QueryError, match="every study"):
            kg.query("segments", study_id="*", code_a="x")
    result = CliRunner().invoke(cli_app, ["query", "codes", "--store", str(copy)])
    assert isinstance(result.exception, QueryError), result.output  # `mmkg.cli.main` maps it to exit code 4
    assert "mini" in str(result.exception) and study_id in str(result.exception)


def test_the_cli_runs_a_query_on_the_only_study_without_parameters(own_store):
    store, study_id, _ = own_store
    result = CliRunner().invoke(cli_app, ["query", "code_frequencies", "--store", str(store), "--format", "csv"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) > 1 and all(line.startswith(study_id + ",") for line in lines[1:])


@pytest.fixture(scope="module")
def own_client(own_store):
    store, study_id, kind = own_store
    with TestClient(create_app(Settings(store=store, upload_token=None)), base_url=LOCAL) as client:
        yield client, study_id, kind


def api_rows(client, name: str) -> list[dict]:
    response = client.get(f"/api/queries/{name}")
    assert response.status_code == 200, response.text[:300]
    body = response.json()
    return body["rows"] if isinstance(body, dict) else body


def hrefs(page: str, within: str = "") -> list[str]:
    if within:
        page = re.search(rf"<{within}[^>]*>(.*?)</{within}>", page, re.S).group(1)
    return [h.replace("&amp;", "&") for h in re.findall(r'href="([^"#]+)"', page)]


def options_of(page: str, name: str) -> list[str]:
    select = re.search(rf'<select name="{name}">(.*?)</select>', page, re.S)
    return re.findall(r'<option value="([^"]*)"', select.group(1)) if select else []


def view_pages(client) -> list[tuple[str, set[str]]]:
    """Every view the app serves (its GET paths under /views/ in the app's OpenAPI description, so a new view is
    covered), as a URL for the only study with path parameters filled from its data, and its query parameters."""
    first = api_rows(client, "participants")[0]["participant_id"]
    fill = {"participant_id": first}
    pages = []
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        if not path.startswith("/views/") or "get" not in operations:
            continue
        parameters = operations["get"].get("parameters", [])
        names = {p["name"] for p in parameters if p["in"] == "path"}
        assert names <= set(fill), f"{path}: give its path parameters {sorted(names)} a value here"
        pages.append((path.format(**fill), {p["name"] for p in parameters if p["in"] == "query"}))
    assert len(pages) >= 4
    return pages


def test_every_view_answers_200_with_the_studys_codebooks(own_client):
    client, study_id, _ = own_client
    codebooks = sorted({r["codebook"] for r in api_rows(client, "codes")})
    assert codebooks
    for url, parameters in view_pages(client):
        page = client.get(url, headers={"accept": "text/html"})
        assert page.status_code == 200, (url, page.text[:500])
        if "codebook" in parameters:  # a view that draws codes offers the study's own codebooks
            shown = options_of(page.text, "codebook")
            if shown or "no participant attributes" not in page.text:  # (a comparison needs attributes)
                assert set(shown) == {*codebooks, ""}, url
            for book in [*codebooks, ""]:
                assert client.get(url, params={"codebook": book}).status_code == 200, (url, book)
    threat_map = client.get("/views/threat-map")
    assert threat_map.status_code == 200
    kinds = {r["kind"] for r in api_rows(client, "sources")}
    assert set(options_of(threat_map.text, "source_kind")) == {*kinds, ""}, "the study's own source kinds"
    comparison = client.get("/views/comparison")
    assert comparison.status_code == 200, comparison.text[:500]
    attributes = options_of(comparison.text, "attribute")
    assert "synthetic_participant" not in attributes and "table1_uncertain_cells" not in attributes
    first = api_rows(client, "participants")[0]["participant_id"]
    participant = client.get(f"/views/participants/{first}")
    assert participant.status_code == 200, participant.text[:500]
    shown = [h.split("?")[0].rsplit("/", 1)[-1] for h in hrefs(participant.text) if "/views/participants/" in h]
    numbers = [int(p[1:]) for p in shown if re.fullmatch(r"P\d+", p)]
    assert numbers == sorted(numbers), "participants in natural order (P1, P2, …, P10)"


def test_the_index_and_every_pages_links_work(own_client):
    client, study_id, _ = own_client
    index = client.get("/")
    assert index.status_code == 200
    links = [h for h in hrefs(index.text) if h.startswith(("/views/", "/api/queries/", "/upload"))]
    assert any(f"study_id={study_id}" in h for h in links if h.startswith("/views/"))
    for link in links:
        assert client.get(link).status_code == 200, link
    for view, _ in view_pages(client):
        page = client.get(view).text
        nav = hrefs(page, "nav")
        assert all(f"study_id={study_id}" in h for h in nav if h.startswith("/views/")), nav
        for link in nav:
            if link != "/docs":
                assert client.get(link).status_code == 200, link


@pytest.mark.slow
def test_every_shared_refi_export_works_alone_in_a_store(shared_dir, tmp_path):
    files = sorted((shared_dir / "external" / "refi-qda").glob("*.qdpx"))
    assert files
    for path in files:
        store = tmp_path / path.stem
        study_id = load_mapped(store, path)
        with mmkg.open_store(store, read_only=True) as kg:
            for name, query in sorted(registry().items()):
                if query.mode == "read":
                    rows = default_rows(kg, name) if name != "participant_model" or len(kg.query("participants")) \
                        else None
                    if rows is not None and "study_id" in rows.columns and len(rows):
                        assert set(rows["study_id"]) == {study_id}, (path.name, name)
            has_codes = len(kg.query("codes")) > 0
        with TestClient(create_app(Settings(store=store, upload_token=None)), base_url=LOCAL) as client:
            for view in ("/", "/views/cooccurrence", "/views/threat-map", "/views/comparison"):
                response = client.get(view)
                assert response.status_code == 200 or (not has_codes and response.status_code in (404, 422)), \
                    (path.name, view, response.text[:300])


def test_with_several_studies_every_studys_views_are_linked_and_an_unnamed_study_is_a_clear_error(own_store,
                                                                                                   tmp_path):
    store, study_id, _ = own_store
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    with mmkg.open_store(copy) as kg:
        kg.load(DATA / "mini_study")
    with TestClient(create_app(Settings(store=copy, upload_token=None)), base_url=LOCAL) as client:
        unnamed = client.get("/views/cooccurrence")
        assert unnamed.status_code == 400 and "mini" in unnamed.text and study_id in unnamed.text
        page = client.get("/views/cooccurrence", headers={"accept": "text/html"})
        assert page.status_code == 400 and "2 studies" in page.text
        links = [h for h in hrefs(client.get("/").text) if h.startswith(("/views/", "/api/queries/"))]
        for study in (study_id, "mini"):
            assert sum(f"study_id={study}" in h for h in links) >= 3, study
        for link in links:
            assert client.get(link).status_code == 200, link


def every_query_with_defaults(kg) -> dict[str, object]:
    return {name: default_rows(kg, name) for name, query in sorted(registry().items()) if query.mode == "read"}


def test_participants_and_sources_come_in_natural_order_on_every_store(kg):
    kg.load(CODINGS_FILE)
    assert kg.query("participants")["participant_id"].tolist() == ["P1", "P2", "P9", "P10"]
    assert kg.query("sources")["participant_id"].tolist() == ["P1", "P2", "P9", "P10"]
    for name in ("codings", "security_vs_aml"):
        shown = kg.query(name)["participant_id"].drop_duplicates().tolist()
        assert shown == sorted(shown, key=lambda p: int(p[1:])), name
    segments = kg.query("segments", code_a="model stealing")["participant_id"].drop_duplicates().tolist()
    assert segments == ["P1", "P9", "P10"]


def test_every_query_gives_the_same_rows_in_the_same_order_whatever_order_the_study_was_written_in(kg, tmp_path):
    """Rows and the lists inside them do not depend on the order the store happens to keep: the study loaded
    from its file and from the file's rows reversed give identical results (every ORDER BY is total)."""
    load_and_map(kg, CODINGS_FILE)
    first = every_query_with_defaults(kg)
    header, *rows = CODINGS_FILE.read_text(encoding="utf-8").splitlines()
    reversed_file = tmp_path / CODINGS_FILE.name
    reversed_file.write_text("\n".join([header, *reversed(rows)]) + "\n", encoding="utf-8")
    kg.delete_study("threat-interviews")
    load_and_map(kg, reversed_file)
    second = every_query_with_defaults(kg)
    empty = sorted(name for name, frame in first.items() if frame.empty)
    assert empty == ["quotes"], "a codings table has no segment text; every other query has rows to order"
    for name, frame in first.items():
        pd.testing.assert_frame_equal(frame, second[name], obj=name)


def test_paper_names_the_founding_study_it_needs_and_how_to_load_it(own_store):
    store, study_id, _ = own_store
    result = CliRunner().invoke(cli_app, ["paper", "--store", str(store)])
    assert isinstance(result.exception, NotFoundError), result.output  # `mmkg.cli.main`: exit code 3
    message = str(result.exception)
    assert f"no study '{founding_study_id()}'" in message and study_id in message and "`mmkg load`" in message
    named = CliRunner().invoke(cli_app, ["paper", "--store", str(store), "--study", "elsewhere"])
    assert isinstance(named.exception, NotFoundError) and "no study 'elsewhere'" in str(named.exception)


def bad_store_paths(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """A store path that is missing, a file, and a folder whose version pointer names nothing: each with the
    words its error must carry."""
    a_file = tmp_path / "a-file"
    a_file.write_text("not a store", encoding="utf-8")
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "CURRENT").write_text("nonsense", encoding="utf-8")
    return {"missing": (tmp_path / "missing", "no mmkg store here yet"), "file": (a_file, "is a file"),
            "damaged": (damaged, "does not name a database file")}


@pytest.mark.parametrize("case", ["missing", "file", "damaged"])
def test_a_missing_or_unreadable_store_is_a_clear_error_naming_its_path(case, tmp_path, capsys):
    from mmkg.errors import StoreError

    path, words = bad_store_paths(tmp_path)[case]
    done = run_cli("query", "participants", "--store", path, capsys=capsys)
    assert done.returncode == StoreError.exit_code, done.stderr
    assert str(path) in done.stderr and words in done.stderr and "Traceback" not in done.stderr
    if case != "missing":  # a missing store is created by a load
        refused = run_cli("load", CODINGS_FILE, "--store", path, capsys=capsys)
        assert refused.returncode == StoreError.exit_code and str(path) in refused.stderr, refused.stderr
    with TestClient(create_app(Settings(store=path, upload_token=None)), base_url=LOCAL,
                    raise_server_exceptions=False) as client:
        for url in ("/api/studies", "/api/queries/participants", "/", "/views/cooccurrence"):
            response = client.get(url)
            assert response.status_code == 503, (url, response.status_code, response.text[:200])
            error = response.json()["error"]
            assert error["kind"] == "store_unavailable" and str(path) in error["message"] and words in error["message"]


def variables_qdpx(path: Path) -> Path:
    """A small REFI-QDA project written here: six cases with a text, an integer, a boolean and a naturally
    numbered variable, one interview each, every interview coded with one of two codes."""
    import zipfile

    years = [1, 2, 3, 5, 8, 13]
    variables = {"f1": ("role", "Text"), "f2": ("years", "Integer"), "f3": ("lead", "Boolean"),
                 "f4": ("item 10", "Text"), "f5": ("item 2", "Text"), "f6": ("team", "Text")}

    def guid(prefix: str, number: int) -> str:
        return f"{prefix}0000000-0000-4000-8000-{number:012d}"

    cases, sources = [], []
    for n, year in enumerate(years, start=1):
        values = {"f1": "engineer" if n % 2 else "manager", "f2": str(year), "f3": "true" if n < 3 else "false",
                  "f4": "x", "f5": "y", "f6": str(n)}
        cells = "".join(f'<VariableValue><VariableRef targetGUID="{guid("f", int(key[1:]))}"/>'
                        f'<{kind}Value>{values[key]}</{kind}Value></VariableValue>'
                        for key, (_, kind) in variables.items())
        cases.append(f'<Case guid="{guid("e", n)}" name="P{n}">{cells}<SourceRef targetGUID="{guid("5", n)}"/></Case>')
        code = guid("c", 1 + n % 2)
        sources.append(f'<TextSource guid="{guid("5", n)}" name="Interview P{n}"><PlainTextContent>We worry about '
                       f'stolen models.</PlainTextContent><PlainTextSelection guid="{guid("b", n)}" startPosition="0" '
                       f'endPosition="10"><Coding guid="{guid("d", n)}" creatingUser="{guid("a", 1)}"><CodeRef '
                       f'targetGUID="{code}"/></Coding></PlainTextSelection></TextSource>')
    declared = "".join(f'<Variable guid="{guid("f", int(key[1:]))}" name="{name}" typeOfVariable="{kind}"/>'
                       for key, (name, kind) in variables.items())
    xml = (f'<?xml version="1.0" encoding="utf-8"?><Project xmlns="urn:QDA-XML:project:1.0" name="Variables study" '
           f'origin="hand-written test project"><Users><User guid="{guid("a", 1)}" name="lea"/></Users>'
           f'<CodeBook><Codes><Code guid="{guid("c", 1)}" name="model stealing" isCodable="true"/>'
           f'<Code guid="{guid("c", 2)}" name="data poisoning" isCodable="true"/></Codes></CodeBook>'
           f'<Variables>{declared}</Variables><Cases>{"".join(cases)}</Cases><Sources>{"".join(sources)}</Sources>'
           f'</Project>')
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("project.qde", xml)
    return path


def comparison_groups(client, attribute: str) -> list[str]:
    page = client.get("/views/comparison", params={"attribute": attribute}, headers={"accept": "text/html"})
    assert page.status_code == 200, page.text[:300]
    return page.text


@pytest.mark.parametrize("kind", ["refi-qda with variables", "codings-table"])
def test_comparison_attributes_are_sorted_typed_and_without_bookkeeping(kind, tmp_path):
    from mmkg.server import views

    source = variables_qdpx(tmp_path / "variables.qdpx") if kind != "codings-table" else CODINGS_FILE
    store = tmp_path / "store"
    study_id = load_mapped(store, source)
    with mmkg.open_store(store, read_only=True) as kg:
        stored = set(kg.rows("attribute_names", study_id=study_id)["name"])
        names = views.attribute_names(kg, study_id)
        groups = {name: views.attribute_groups(kg, study_id, name) for name in names}
        default_groups = kg.query("security_vs_aml_groups")
        per_participant = kg.query("security_vs_aml")
    if kind != "codings-table":
        # no works_in_security in this study: by default participants are compared by the first attribute,
        # in natural order, with two or more values ('item 2' and 'item 10' have one value each)
        assert set(default_groups["attribute"]) == {"lead"}
        assert default_groups["attribute_value"].tolist() == ["false", "true"]
        assert default_groups["participants"].tolist() == [4, 2]
        assert set(per_participant["attribute"]) == {"lead"} and per_participant["attribute_value"].notna().all()
    else:
        assert default_groups["attribute_value"].tolist() == ["(missing)"]
    with TestClient(create_app(Settings(store=store, upload_token=None)), base_url=LOCAL) as client:
        page = client.get("/views/comparison", headers={"accept": "text/html"})
        if kind == "codings-table":  # a codings table carries no participant attributes: nothing to offer
            assert stored == set() and names == [] and options_of(page.text, "attribute") == []
            return
        assert page.status_code == 200, page.text[:300]
        assert options_of(page.text, "attribute") == ["item 2", "item 10", "lead", "role", "team", "years"]
        assert "synthetic_participant" not in names
        # years is an Integer variable: three ranges of two participants, in numeric order
        assert [(g["label"], g["participants"]) for g in groups["years"]] == [
            ("years 1–2", 2), ("years 3–5", 2), ("years 8–13", 2)]
        # team is Text that looks like numbers: one group per value, in natural order
        assert [g["label"] for g in groups["team"]] == [f"team = {n}" for n in range(1, 7)]
        assert [g["label"] for g in groups["lead"]] == ["lead = false", "lead = true"]
        text = comparison_groups(client, "years")
        assert "years 8–13" in text and "years = 13" not in text
