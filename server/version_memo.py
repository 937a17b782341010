"""Answers kept per published version of a read-only embedded store — the server's, whose one published
version never changes — so what a request needs again (a study's co-occurrence pairs, the studies' provenance)
is not counted again until a newer version is opened."""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

_KEPT: OrderedDict[tuple, Any] = OrderedDict()  # (store folder, version, key) -> answer, least recent first
_MAX_KEPT = 32
_LOCK = threading.Lock()


def per_version(kg, key: Hashable, compute: Callable[[], T]) -> T:
    """`compute()`, kept under `key` for the version `kg` reads when that never changes (a read-only embedded
    store); elsewhere (a writable store, Neo4j) computed every time. Callers must not change what it returns."""
    store = kg.store
    version = getattr(store, "version", None)
    if not (getattr(store, "read_only", False) and store.name == "ladybug" and version):
        return compute()
    slot = (str(store.path), version, key)
    with _LOCK:
        if slot in _KEPT:
            _KEPT.move_to_end(slot)
            return _KEPT[slot]
    answer = compute()
    if store.version == version:  # not reopened on a newer version meanwhile
        with _LOCK:
            _KEPT[slot] = answer
            while len(_KEPT) > _MAX_KEPT:
                _KEPT.popitem(last=False)
    return answer


def studies(kg):
    """The named query `studies` (`kg.studies()`), kept per version (`per_version`)."""
    return per_version(kg, "studies", lambda: kg.query("studies"))


def provenance(kg) -> dict[str, str]:
    """Study id → where its data come from ('' when the study says nothing), kept per version."""
    return per_version(kg, "provenance", lambda: {
        str(row.study_id): row.provenance if isinstance(row.provenance, str) else ""
        for row in studies(kg).itertuples()})
