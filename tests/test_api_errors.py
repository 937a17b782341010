"""A bug is a bug: an unexpected exception in a route leaves as a logged 500 `internal_error` in the one JSON
error shape — never as a 4xx that looks like the client's fault — and the one function builds every body."""
from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

import mmkg
from mmkg.api import Mmkg
from mmkg.config import Settings
from mmkg.errors import QueryError, error_body
from mmkg.server.app import create_app

LOCAL = "http://127.0.0.1"


class BuggyMmkg(Mmkg):
    """The real graph, with a programming error in one method (what a regression looks like)."""

    def studies(self):
        return {}["no such key"]


@pytest.fixture
def buggy_client(founding_template):
    factory = lambda read_only: BuggyMmkg(mmkg.open_store(founding_template, read_only=True).store)  # noqa: E731
    app = create_app(Settings(store=founding_template), kg_factory=factory)
    with TestClient(app, base_url=LOCAL, raise_server_exceptions=False) as client:
        yield client


def test_an_unexpected_exception_is_a_logged_500_in_the_one_shape(buggy_client, caplog):
    with caplog.at_level(logging.ERROR, logger="mmkg.server"):
        response = buggy_client.get("/api/studies")
    assert response.status_code == 500
    assert response.json() == error_body("internal_error", "internal error: KeyError")
    assert any(r.levelno == logging.ERROR and "/api/studies" in r.getMessage() and r.exc_info for r in caplog.records)
    one = buggy_client.get("/api/studies/founding")  # the same bug behind another route
    assert one.status_code == 500 and one.json()["error"]["kind"] == "internal_error"
    assert buggy_client.get("/api/queries/studies").status_code == 200  # the rest of the API still answers


def test_errors_mmkg_raises_keep_their_status(buggy_client):
    response = buggy_client.get("/api/queries/code_neighbourhood", params={"rank_by": "vibes"})
    assert response.status_code == 400
    body = response.json()
    assert body == error_body(QueryError.kind, body["error"]["message"]) and "rank_by" in body["error"]["message"]
