"""Answers kept per published version of a read-only embedded store — the server's, whose one published
version never changes — so what a request needs again (a study's co-occurrence pairs, the studies' provenance)
is not counted again until a newer version is opened."""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import pandas as pd

T = TypeVar("T")

_KEPT: OrderedDict[tuple, tuple[Any, int]] = OrderedDict()  # (store folder, version, key) -> (answer, bytes)
_MAX_BYTES = 256 * 1024 * 1024  # a codebook of 1,000 codes has ~5x10^5 pairs: ~100 MB of frame
_MAX_KEPT = 32
_LOCK = threading.Lock()
_kept_bytes = 0


def _size(answer: Any) -> int:
    return int(answer.memory_usage(index=True).sum()) if isinstance(answer, pd.DataFrame) else 0


def fixed_version(kg) -> str | None:
    """The version `kg` reads when its answers never change — a read-only embedded store reads one published
    version — else None (a writable embedded store moves on with its loads; a Neo4j server anyone may write)."""
    store = kg.store
    version = getattr(store, "version", None)
    return version if getattr(store, "read_only", False) and store.name == "ladybug" and version else None


def per_version(kg, key: Hashable, compute: Callable[[], T]) -> T:
    """`compute()`, kept under `key` for `kg`'s `fixed_version`; without one computed every time. Callers must
    not change what it returns."""
    store = kg.store
    version = fixed_version(kg)
    if version is None:
        return compute()
    slot = (str(store.path), version, key)
    global _kept_bytes
    with _LOCK:
        if slot in _KEPT:
            _KEPT.move_to_end(slot)
            return _KEPT[slot][0]
    answer = compute()
    size = _size(answer)
    if store.version == version and size <= _MAX_BYTES:  # not reopened on a newer version meanwhile
        with _LOCK:
            if slot not in _KEPT:
                _KEPT[slot] = (answer, size)
                _kept_bytes += size
            while len(_KEPT) > _MAX_KEPT or _kept_bytes > _MAX_BYTES:
                _kept_bytes -= _KEPT.popitem(last=False)[1][1]
    return answer


def studies(kg):
    """The named query `studies` (`kg.studies()`), kept per version (`per_version`)."""
    return per_version(kg, "studies", lambda: kg.query("studies"))


def provenance(kg) -> dict[str, str]:
    """Study id → where its data come from ('' when the study says nothing), kept per version."""
    return per_version(kg, "provenance", lambda: {
        str(row.study_id): row.provenance if isinstance(row.provenance, str) else ""
        for row in studies(kg).itertuples()})
