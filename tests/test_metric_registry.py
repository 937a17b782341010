"""One registration adds a metric everywhere: the Sørensen–Dice coefficient, registered in a fixture, appears in
the query results, `rank_by`, the CLI's description of the query, the API, the view's edge-width control and
its OpenAPI enum; the docs table is the registry's."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mmkg.cli.main import app as cli
from mmkg.config import Settings
from mmkg.metrics import Metric, docs_table, register_metric, unregister_metric
from mmkg.queries import every_query, registry
from mmkg.server.app import create_app

ROOT = Path(__file__).resolve().parents[1]
LOCAL = "http://127.0.0.1"
runner = CliRunner()


@pytest.fixture
def dice():
    """Sørensen–Dice = 2·n_ab / (n_a + n_b), registered for the test only."""
    def formula(n_units, n_a, n_b, n_ab):
        with np.errstate(divide="ignore", invalid="ignore"):
            return 2 * n_ab / (n_a + n_b)

    register_metric(Metric("dice", "Sørensen–Dice", "2·n_ab / (n_a + n_b)", formula, aliases=("sorensen",),
                           view_name="dice"))
    every_query.cache_clear(), registry.cache_clear()  # query descriptions name the metrics
    yield
    unregister_metric("dice")
    every_query.cache_clear(), registry.cache_clear()


def independent_dice(rows: list[dict]) -> list[float]:
    return [2 * r["n_ab"] / (r["n_a"] + r["n_b"]) for r in rows]


def test_a_registered_metric_reaches_the_cli(dice, founding_template):
    result = runner.invoke(cli, ["query", "cooccurrence", "--store", str(founding_template), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows and list(rows[0])[-2:] == ["dice", "imbalanced"]
    assert [r["dice"] for r in rows] == pytest.approx(independent_dice(rows))
    ranked = runner.invoke(cli, ["query", "code_neighbourhood", "-p", "rank_by=sorensen", "-p", "limit=0",
                                 "--store", str(founding_template), "--format", "json"])
    assert ranked.exit_code == 0, ranked.output
    values = [r["dice"] for r in json.loads(ranked.stdout)]
    assert len(values) > 3 and values == sorted(values, reverse=True)
    described = runner.invoke(cli, ["query", "code_neighbourhood", "--help-query"])
    assert "dice" in described.stdout and "sorensen" in described.stdout


def test_a_registered_metric_reaches_the_api_and_the_views(dice, founding_template, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(founding_template, store)
    with TestClient(create_app(Settings(store=store)), base_url=LOCAL) as client:
        body = client.get("/api/queries/code_neighbourhood", params={"rank_by": "dice", "limit": 0}).json()
        assert "dice" in body["columns"]
        rows = body["rows"]
        values = [r["dice"] for r in rows]
        assert values == pytest.approx(independent_dice(rows)) and values == sorted(values, reverse=True)
        page = client.get("/views/cooccurrence", params={"metric": "dice", "min_count": 1})
        assert page.status_code == 200, page.text
        assert "edge width: Sørensen–Dice" in page.text
        assert re.search(r'<option value="dice"[^>]*selected[^>]*>Sørensen–Dice</option>', page.text)
        schema = client.get("/openapi.json").json()
        (metric,) = [p for p in schema["paths"]["/views/cooccurrence"]["get"]["parameters"] if p["name"] == "metric"]
        assert "dice" in json.dumps(metric["schema"])
        assert client.get("/views/cooccurrence", params={"metric": "vibes"}).status_code == 422


def test_without_the_registration_the_metric_is_nowhere(founding_template, tmp_path):
    result = runner.invoke(cli, ["query", "cooccurrence", "--store", str(founding_template), "--format", "json"])
    assert "dice" not in json.loads(result.stdout)[0]
    store = tmp_path / "store"
    shutil.copytree(founding_template, store)
    with TestClient(create_app(Settings(store=store)), base_url=LOCAL) as client:
        assert client.get("/views/cooccurrence", params={"metric": "dice"}).status_code == 422


def test_the_docs_table_is_the_registry():
    page = (ROOT / "docs" / "analysis.md").read_text(encoding="utf-8")
    table = re.search(r"<!-- generated: metrics [^>]*-->\n(.*?)\n<!-- end -->", page, re.S)
    assert table and table.group(1) == docs_table()
