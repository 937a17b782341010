"""Equal answers on both stores: the same studies loaded into the embedded store and into Neo4j give the
same rows for every named query (defaults and other parameters), the same API responses and the same view
data.

Studies: the founding study, a synthetic study of 10^5 codings and, where ../shared is present, every
REFI-QDA file in ../shared/external/refi-qda that loads.  Rows are compared in the order each store returns
them (every query's order is total, so it is the same on both) and, inside a cell, lists in their order
(queries sort the lists they collect); floats agree within 1e-9.  Needs the Neo4j test server (neo4j tier).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import NEO4J_URI, SHARED, open_backend
from fastapi.testclient import TestClient

import mmkg
from mmkg.config import Settings
from mmkg.errors import MmkgError
from mmkg.queries import registry
from mmkg.synthetic import synthetic_codings

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]

REFI_QDA = SHARED / "external" / "refi-qda"
SYNTHETIC_CODINGS = 100_000
# Parameters besides the defaults: every study at once, the other units, the synthetic study, a coder.
OTHER_PARAMETERS = {
    "code_frequencies": [{"study_id": "*"}, {"study_id": "synthetic"}, {"coder": "C2"},
                         {"attribute": "works_in_security", "attribute_value": "true"}],
    "cooccurrence": [{"unit": "participant"}, {"unit": "source", "min_count": 2},
                     {"study_id": "synthetic", "unit": "segment"}, {"study_id": "*", "unit": "participant"}],
    "code_neighbourhood": [{"unit": "participant", "rank_by": "lift"}, {"code": "C.4", "limit": 0}],
    "participants": [{"study_id": "*"}],
    "codes": [{"study_id": "*"}],
    "code_index": [{"study_id": "*"}],
    "concepts": [{"study_id": "*"}, {"kind": "aml_threat"}],
    "concept_frequencies": [{"kind": "security_threat"}, {"matches": "exact"}],
    "concept_cooccurrence": [{"unit": "participant"}, {"pooled": True, "min_count": 2}],
    "threat_map": [{"study_id": "*"}, {"kind": "aml_threat"}],
    "drawn_pipeline": [{"source_kind": ""}],
    "participant_model": [{"participant": "P7"}],
    "security_vs_aml": [{"study_id": "*"}],
    "security_vs_aml_groups": [{"attribute": "ml_knowledge_any"}],
    "studies_mentioning": [{"concept": "Evasion", "include_narrower": False}],
    "agreement": [{"level": "code"}],
    "shared_goal_pairs": [{"unit": "participant"}],
}


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """(embedded, neo4j) holding the same studies, and the names of the REFI-QDA studies loaded."""
    folder = tmp_path_factory.mktemp("cross-store")
    codings = folder / "synthetic.csv"
    synthetic_codings(SYNTHETIC_CODINGS).to_csv(codings, index=False)
    embedded = mmkg.open_store(folder / "store")
    neo4j = open_backend("neo4j", folder)
    refi: dict[str, str] = {}
    for kg in (embedded, neo4j):
        kg.load()
        kg.load(codings)
    if REFI_QDA.is_dir():
        for path in sorted(REFI_QDA.glob("*.qd[pc]*")):
            study_id = "refi-" + path.stem.lower().replace(".", "-")
            try:
                embedded.load(path, study_id=study_id)
            except MmkgError as exc:  # the same validation error on Neo4j, and nothing written there
                with pytest.raises(type(exc)):
                    neo4j.load(path, study_id=study_id)
                continue
            neo4j.load(path, study_id=study_id)
            refi[path.name] = study_id
    yield embedded, neo4j, refi
    embedded.close()
    neo4j.close()


def same(a, b) -> bool:
    """Equal values: missing is missing, numbers within 1e-9, lists and dicts element by element in order."""
    if _missing(a) or _missing(b):
        return _missing(a) and _missing(b)
    if isinstance(a, (list, tuple, np.ndarray)) or isinstance(b, (list, tuple, np.ndarray)):
        return (isinstance(a, (list, tuple, np.ndarray)) and isinstance(b, (list, tuple, np.ndarray))
                and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b)))
    if isinstance(a, dict) or isinstance(b, dict):
        return isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (bool, np.bool_)) or isinstance(b, (bool, np.bool_)):
        return bool(a) == bool(b) and isinstance(a, (bool, np.bool_)) == isinstance(b, (bool, np.bool_))
    if isinstance(a, (int, float, np.integer, np.floating)) and isinstance(b, (int, float, np.integer, np.floating)):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def differences(embedded: pd.DataFrame, neo4j: pd.DataFrame, limit: int = 5) -> list[str]:
    """Where two results differ: columns, row count, then the first differing rows (in each store's order)."""
    if list(embedded.columns) != list(neo4j.columns):
        return [f"columns {list(embedded.columns)} vs {list(neo4j.columns)}"]
    if len(embedded) != len(neo4j):
        return [f"{len(embedded)} rows vs {len(neo4j)} rows"]
    found = []
    for i, (a, b) in enumerate(zip(embedded.itertuples(index=False), neo4j.itertuples(index=False))):
        cells = [(c, x, y) for c, x, y in zip(embedded.columns, a, b) if not same(x, y)]
        if cells:
            found.append(f"row {i}: " + "; ".join(f"{c}: {x!r} vs {y!r}" for c, x, y in cells))
            if len(found) == limit:
                break
    return found


def on_founding(name: str, params: dict) -> dict:
    """`params` with the founding study named where the query's study parameter defaults to the only study
    (the stores hold several, so an empty one is an error)."""
    study = next((p for p in registry()[name].parameters if p.name == "study_id"), None)
    return {"study_id": "founding", **params} if study is not None and study.default == "" else params


def cases() -> list[tuple[str, dict]]:
    queries = sorted(name for name, q in registry().items() if q.mode == "read")
    return [(name, {}) for name in queries] + [(name, p) for name in queries for p in OTHER_PARAMETERS.get(name, [])]


@pytest.mark.parametrize(("name", "params"), cases(), ids=lambda v: v if isinstance(v, str) else
                         ",".join(f"{k}={x}" for k, x in v.items()) or "defaults")
def test_every_named_query_gives_the_same_rows_in_the_same_order(stores, name, params):
    embedded, neo4j, _ = stores
    named = on_founding(name, params)
    expected, found = embedded.query(name, **named), neo4j.query(name, **named)
    assert len(expected) > 0 or name in ("agreement",) or params, f"{name} {params}: no rows to compare"
    problems = differences(expected, found)
    assert not problems, f"query {name} {params} differs between the stores:\n" + "\n".join(problems)


def test_every_query_with_defaults_compared_has_rows(stores):
    """The comparison above is not vacuous: most queries return rows with their defaults."""
    embedded, _, _ = stores
    empty = [name for name, q in registry().items()
             if q.mode == "read" and embedded.query(name, **on_founding(name, {})).empty]
    assert len(empty) <= 2, empty


def test_refi_qda_files_load_into_both_stores(stores, shared_dir):
    embedded, neo4j, refi = stores
    assert refi, "no REFI-QDA file loaded"
    assert set(refi.values()) <= set(neo4j.study_ids()) and neo4j.study_ids() == embedded.study_ids()


# ------------------------------------------------------------------------------------------ API and views
def _app(kg_factory):
    from mmkg.server.app import create_app

    return create_app(Settings(), kg_factory=kg_factory)


@pytest.fixture(scope="module")
def clients(stores, tmp_path_factory):
    embedded, _, _ = stores
    path = embedded.store.path
    apps = (_app(lambda read_only: mmkg.open_store(path, read_only=True)),
            _app(lambda read_only: mmkg.open_store(neo4j_uri=NEO4J_URI, read_only=True)))
    with TestClient(apps[0], base_url="http://127.0.0.1") as first, \
            TestClient(apps[1], base_url="http://127.0.0.1") as second:
        yield first, second


def api_paths(stores) -> list[str]:
    embedded, _, refi = stores
    paths = ["/api/studies", "/api/concepts", "/api/concepts/ModelStealing"]
    for study in embedded.study_ids():
        paths += [f"/api/studies/{study}", f"/api/studies/{study}/participants", f"/api/studies/{study}/codes"]
    for name, q in sorted(registry().items()):
        if q.mode == "read":  # the store holds several studies: a query about one names it
            study = "?study_id=founding&" if any(p.name == "study_id" for p in q.parameters) else "?"
            paths += [f"/api/queries/{name}{study.rstrip('?&')}", f"/api/queries/{name}{study}format=csv"]
    return paths


def test_the_api_answers_the_same_on_both_stores(stores, clients):
    embedded_client, neo4j_client = clients
    for path in api_paths(stores):
        a, b = embedded_client.get(path), neo4j_client.get(path)
        assert a.status_code == b.status_code == 200, (path, a.status_code, b.status_code, b.text[:300])
        if "format=csv" in path:
            assert a.text == b.text, path
        else:
            assert same(a.json(), b.json()), f"{path}: {a.text[:300]} vs {b.text[:300]}"


def view_data(kg) -> dict:
    """The nodes and edges every view draws for the founding study."""
    from mmkg.server import views

    study = "founding"
    networks = {"cooccurrence": views.cooccurrence_network(kg, study),
                "cooccurrence participant lift": views.cooccurrence_network(kg, study, unit="participant",
                                                                            metric="lift"),
                "threat map": views.threat_map_network(kg, study),
                "participant P1": views.participant_network(kg, "P1", study)}
    networks.update({f"comparison {i}": n for i, n in enumerate(views.comparison_networks(kg, study))})
    return {name: (sorted(map(repr, n.nodes)), sorted(map(repr, n.edges))) for name, n in networks.items()}


def test_the_views_draw_the_same_graphs_on_both_stores(stores):
    embedded, neo4j, _ = stores
    expected, found = view_data(embedded), view_data(neo4j)
    assert expected.keys() == found.keys()
    for name in expected:
        assert expected[name][0] and expected[name] == found[name], name
