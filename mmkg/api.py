"""The Python API: open a store, load studies, run named queries — everything returns pandas DataFrames.

The CLI and the HTTP server are thin layers over `Mmkg`.
"""
from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mmkg.config import Neo4jSettings, Settings
from mmkg.errors import MmkgError, QueryError
from mmkg.models import EVERY_STUDY
from mmkg.store import GraphStore, Progress
from mmkg.tables import StudyTables

# the codings table `mmkg load` reads back (mmkg.loader.codings_csv), with each code's label and the study's
# provenance notice; the lossless form of a study is the study folder (`export_study`)
CODINGS_EXPORT_COLUMNS = ["study_id", "participant_id", "source_id", "source_kind", "segment_id",
                          "start", "end", "code_id", "codebook", "coder", "code_label", "provenance"]


@dataclass
class LoadReport:
    """What a load wrote."""

    study_id: str
    counts: dict[str, int]
    seconds: float
    warnings: list[str] = field(default_factory=list)
    provenance: str = ""
    replaced_codings: int | None = None  # codings of the version of the study this load replaced (None: new)

    @property
    def codings(self) -> int:
        return self.counts.get("CODED_AS", 0)


class Mmkg:
    """A knowledge graph of studies, codes and threats, on an embedded or a Neo4j store."""

    def __init__(self, store: GraphStore):
        self.store = store

    # -- lifecycle ------------------------------------------------------------------------------------
    def __enter__(self) -> Mmkg:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    def refresh(self) -> bool:
        """Read the newest version of the graph from now on (the embedded store shows the version it
        opened until then); True when that changed anything. Neo4j always shows its newest state."""
        refresh = getattr(self.store, "refresh", None)
        return bool(refresh()) if refresh is not None else False

    # -- loading --------------------------------------------------------------------------------------
    def load(self, source: str | Path | None = None, *, study_id: str | None = None,
             progress: Progress | None = None, replace: bool = True) -> LoadReport:
        """Validate a study (folder, codings CSV, REFI-QDA file; None = the shipped study), then write it
        atomically, replacing an earlier version of the same study id and nothing else (`replace=False`, as the
        CLI and HTTP uploads do unless asked: refuse with `StudyExistsError` instead; on the embedded store the
        check and the write hold one writer lock, on Neo4j the write's switch transaction repeats the check, so
        two loads of one id cannot both pass it).  The id comes from `study_id`, else from the file (study.json,
        the REFI-QDA project name, the codings table's study_id column, the file name).  The earlier version's
        applied mapping is kept unless the file brings its own (`mmkg.mapping.keep_applied_mapping`)."""
        from mmkg.loader import read_study
        from mmkg.mapping import keep_applied_mapping

        started = time.perf_counter()
        if progress:
            progress("reading and validating", 0, 1)
        with _system_allocator():
            tables = read_study(source, study_id=study_id)
        self.refresh()
        kept = keep_applied_mapping(self, tables)  # reloading a study keeps the mapping applied to it
        handed_over = [tables]  # the read tables are dropped once validated, before the store writes
        del tables
        report = self._validate_and_write(handed_over, progress=progress, started=started, replace=replace)
        report.warnings += kept
        return report

    def load_tables(self, tables: StudyTables, *, progress: Progress | None = None,
                    started: float | None = None, replace: bool = True) -> LoadReport:
        """Validate tables a reader produced (or `mmkg.graph_tables` read back), then write them atomically
        (`replace=False`: refuse a study id the store holds, deciding under the writer lock the write takes)."""
        return self._validate_and_write([tables], progress=progress, started=started, replace=replace)

    def _validate_and_write(self, handed_over: list[StudyTables], *, progress: Progress | None,
                            started: float | None, replace: bool) -> LoadReport:
        """`load_tables` of the one table set in `handed_over`, which it takes out: when nothing else holds
        the tables, their memory (and the validated study's) is free before the store writes."""
        from mmkg.graph import ontology_graph, plain_columns, study_graph
        from mmkg.loader import validate

        started = time.perf_counter() if started is None else started
        with _system_allocator():
            study = validate(handed_over.pop())
            if progress:
                progress("reading and validating", 1, 1)
            rows = study_graph(study)
            meta, warnings = study.meta, study.warnings
            del study
            if not getattr(self.store, "takes_categorical_columns", False):
                rows = plain_columns(rows)
            hold = getattr(self.store, "writing", None)  # the embedded store's writer lock (re-entrant)
            with hold() if hold is not None else nullcontext():
                self.refresh()  # decide on the newest version, under the lock the write takes
                replaced = self._codings_of(meta.id)
                if replaced is not None and not replace:
                    from mmkg.errors import StudyExistsError

                    raise StudyExistsError(f"a study '{meta.id}' is in the store already ({replaced:,} "
                                           "codings): load under another id (--study-id, study_id) or replace it "
                                           "(--replace, replace=true); nothing was written")
                ontology = None if self.store.has_ontology() else ontology_graph()
                # a store without a writer lock (Neo4j) repeats the check inside the write (two loads race)
                write_new = getattr(self.store, "write_new_study", None)
                write = write_new if write_new is not None and not replace else self.store.replace_study
                counts = write(meta.id, rows, ontology, progress)
        return LoadReport(study_id=meta.id, counts=counts, seconds=time.perf_counter() - started,
                          warnings=warnings, provenance=meta.provenance, replaced_codings=replaced)

    def _codings_of(self, study_id: str) -> int | None:
        """The codings the store holds for `study_id` (None: no such study)."""
        studies = self.studies().set_index("study_id")
        return int(studies.loc[study_id, "codings"]) if study_id in studies.index else None

    def delete_study(self, study_id: str) -> None:
        """Remove one study; other studies and the ontology stay."""
        self.require_study(study_id)
        self.store.delete_study(study_id)

    # -- reading --------------------------------------------------------------------------------------
    def query(self, name: str, **params) -> pd.DataFrame:
        """Run a named query from `mmkg.queries` with typed parameters (defaults from its header); a query
        that names an analysis step (`// analysis: …`) is post-processed by `mmkg.analysis` with its options.
        A `mode: read` query runs in a read transaction."""
        from mmkg.queries import get_query

        named = get_query(name)
        statement_params, options = named.split(self._resolve_params(named, named.bind(params)))
        if not named.analysis:
            frame = self.store.execute(named.cypher, statement_params, read=named.mode == "read")
        else:
            from mmkg.analysis import run_analysis

            frame = run_analysis(self, named, statement_params, options)
        return natural_order(frame, named)

    def rows(self, name: str, **params) -> pd.DataFrame:
        """The rows of a named query's or an internal statement's Cypher (`queries/internal/`), without an
        analysis step: what the library's own reads and the analyses that start from another query run."""
        from mmkg.queries import get_statement

        named = get_statement(name)
        statement_params, _ = named.split(self._resolve_params(named, named.bind(params)))
        return self.store.execute(named.cypher, statement_params, read=named.mode == "read")

    def cypher(self, text: str, params: dict | None = None) -> pd.DataFrame:
        """Run Cypher as written against the store."""
        return self.store.execute(text, params)

    def studies(self) -> pd.DataFrame:
        """One row per study with counts and provenance."""
        return self.query("studies")

    def export_codings(self, study_id: str = EVERY_STUDY) -> pd.DataFrame:
        """One row per coding (`CODINGS_EXPORT_COLUMNS`: with the code's label and the study's provenance notice, so
        `load` reads it back with both) of one study or (`EVERY_STUDY`, the default) of every study; '' = the only
        study in the store. Groups, definitions, attributes and texts are in the study folder (`export_study`)."""
        study_id = self.resolve_study(study_id)
        if study_id != EVERY_STUDY:
            self.require_study(study_id)
        frame = self.query("codings", study_id=study_id)
        for column in ("start", "end"):
            frame[column] = pd.array(frame[column], dtype="Int64")
        labels = self.query("codes", study_id=study_id)[["study_id", "codebook", "code_id", "label"]]
        frame = frame.merge(labels.rename(columns={"label": "code_label"}), how="left",
                            on=["study_id", "codebook", "code_id"])
        notices = self.studies()[["study_id", "provenance"]]
        frame = frame.merge(notices, how="left", on="study_id")
        return frame[CODINGS_EXPORT_COLUMNS]

    def export_codes(self, study_id: str = EVERY_STUDY) -> pd.DataFrame:
        """One row per code with label, parent (group or parent code), codable flag and codebook, of one study
        or (`EVERY_STUDY`, the default) of every study; '' = the only study in the store."""
        study_id = self.resolve_study(study_id)
        if study_id != EVERY_STUDY:
            self.require_study(study_id)
        return self.query("codes", study_id=study_id)

    def export_qdpx(self, study_id: str, output: Path | str) -> list[str]:
        """Write study `study_id` ('' = the only study in the store) as a REFI-QDA project (`.qdpx`) to `output`;
        returns export warnings."""
        from importlib.metadata import version

        from mmkg.graph_tables import read_study_tables
        from mmkg.loader.refi_qda_export import write_qdpx

        study_id = self.resolve_study(study_id, every=False)
        return write_qdpx(read_study_tables(self, study_id), output, origin=f"mmkg {version('mmkg')}")

    def export_study(self, study_id: str, folder: Path | str, *, force: bool = False) -> list[Path]:
        """Write study `study_id` ('' = the only study in the store) as a study folder (docs/study-format.md)
        that `load` reads back to the same study: the lossless export. A non-empty `folder` is refused
        (`ExportError`) unless `force`. Returns the files written."""
        from mmkg.graph_tables import read_study_tables
        from mmkg.loader.study_folder import write_study_folder

        study_id = self.resolve_study(study_id, every=False)
        return write_study_folder(read_study_tables(self, study_id), Path(folder), force=force)

    def resolve_study(self, study_id: str = "", *, every: bool = True) -> str:
        """The study a study parameter names: '' = the only study in the store (an error listing the
        studies when there are several or none); `EVERY_STUDY` passes through where `every` allows it."""
        from mmkg.errors import NotFoundError

        if study_id == EVERY_STUDY:
            if not every:
                raise QueryError(f"'{EVERY_STUDY}' (every study) is not accepted here: name one study "
                                 f"(studies: {', '.join(self.study_ids()) or 'none'})")
            return study_id
        if study_id:
            return study_id
        ids = self.study_ids()
        if len(ids) == 1:
            return ids[0]
        if not ids:
            raise NotFoundError("no studies in the store yet: load one first (`mmkg load`)")
        raise QueryError(f"the store holds {len(ids)} studies ({', '.join(ids)}): name one with the study "
                         f"parameter (study_id), or '{EVERY_STUDY}' for every study where a query allows it")

    def _resolve_params(self, named, bound: dict) -> dict:
        """Fill the parameters whose empty default stands for something of the study (`STUDY_DEFAULTS`)."""
        if "study_id" in bound:
            every = f"$study_id = '{EVERY_STUDY}'" in named.cypher
            bound = {**bound, "study_id": self.resolve_study(bound["study_id"], every=every)}
        for parameter, pick in STUDY_DEFAULTS.get(named.name, {}).items():
            if bound.get(parameter) == "" and bound.get("study_id") not in (None, EVERY_STUDY):
                bound = {**bound, parameter: pick(self, bound["study_id"])}
        return bound

    def study_ids(self) -> list[str]:
        return self.rows("study_ids")["id"].tolist()

    def require_study(self, study_id: str) -> None:
        """Raise `NotFoundError` naming the studies there are when `study_id` is not in the graph."""
        if study_id not in self.study_ids():
            from mmkg.errors import NotFoundError

            known = ", ".join(self.study_ids()) or "none"
            raise NotFoundError(f"no study '{study_id}' in the store (studies: {known})")


def natural_order(frame: pd.DataFrame, named) -> pd.DataFrame:
    """`frame` re-sorted, stably, by the query's `// order:` columns with numbers inside text compared as
    numbers (P2 before P10) and empty values last, as Cypher puts them."""
    columns = list(named.natural_order)
    if not columns or len(frame) < 2:
        return frame
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise QueryError(f"{named.path}: '// order:' names {', '.join(missing)}, which the query does not return")
    import numpy as np

    # np.lexsort is stable and takes its primary key last
    order = np.lexsort([_natural_rank(frame[column]) for column in reversed(columns)])
    return frame.iloc[order].reset_index(drop=True)


def _natural_rank(values: pd.Series):
    """Each value's rank in natural order, empty values last; natsort sees each distinct value once (a million
    codings hold a few thousand distinct ids)."""
    import numpy as np
    from natsort import natsorted, ns

    codes, uniques = pd.factorize(values)
    ranks = np.empty(len(uniques) + 1, dtype=np.int64)
    ranks[natsorted(range(len(uniques)), key=lambda i: uniques[i], alg=ns.INT)] = np.arange(len(uniques))
    ranks[-1] = len(uniques)  # factorize's -1 (missing) indexes this last slot: empty values sort last
    return ranks[codes]


def first_participant(kg: Mmkg, study_id: str) -> str:
    """The study's first participant in natural order (P1, P2, …, P10); '' when it has none."""
    ids = kg.query("participants", study_id=study_id)["participant_id"]
    return str(ids.iloc[0]) if len(ids) else ""


def most_frequent_code(kg: Mmkg, study_id: str) -> str:
    """The study's code carried by the most analysis codings, as codebook:code_id ('' when it has none)."""
    counts = kg.query("code_frequencies", study_id=study_id)
    return "" if counts.empty else f"{counts['codebook'].iloc[0]}:{counts['code_id'].iloc[0]}"


def attribute_names(kg: Mmkg, study_id: str) -> list[str]:
    """The study's participant attributes a reader compares by, in natural order (bookkeeping ones hidden)."""
    from natsort import natsorted, ns

    from mmkg.models import BOOKKEEPING_ATTRIBUTES

    names = kg.rows("attribute_names", study_id=study_id)["name"].drop_duplicates().tolist()
    return natsorted((n for n in names if n not in BOOKKEEPING_ATTRIBUTES), alg=ns.INT | ns.IGNORECASE)


def comparison_attribute(kg: Mmkg, study_id: str) -> str:
    """The attribute participants are compared by unless one is named: `works_in_security` where the study
    has it (the security vs AML comparison), else its first attribute with two or more values, else its first
    attribute; '' when it has none."""
    names = attribute_names(kg, study_id)
    if "works_in_security" in names:
        return "works_in_security"
    # the participant nodes' attributes (the `participants` query would count every coding)
    values = kg.rows("participant_attributes", study_id=study_id).groupby("name")["value"].nunique()
    return next((name for name in names if values.get(name, 0) >= 2), names[0] if names else "")


# parameters whose empty default means a choice made from the study's own data, per named query
STUDY_DEFAULTS = {"participant_model": {"participant": first_participant},
                  "segments": {"code_a": most_frequent_code},
                  "code_neighbourhood": {"code": most_frequent_code},
                  "security_vs_aml": {"attribute": comparison_attribute},
                  "security_vs_aml_groups": {"attribute": comparison_attribute}}


@contextmanager
def _system_allocator():
    """Let Arrow allocate from the C library's allocator while a study is loaded.

    Arrow's default, mimalloc, commits its arenas eagerly; where the kernel backs them with transparent
    huge pages it may compact memory on the first touch, which stalled a 10^6-coding load for seconds
    (4.6-5.3 s with this allocator, 7.5-8.9 s without, on the same machine within minutes). Buffers keep
    the pool they came from, so restoring the previous default afterwards is safe.
    """
    import pyarrow as pa

    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def open_store(store: str | Path | None = None, *, neo4j_uri: str | None = None,
               read_only: bool = False) -> Mmkg:
    """Open the graph: Neo4j when a URI is given (or NEO4J_URI is set), else the embedded store in
    `store` (or MMKG_STORE, or the user's data directory).

    The embedded store is always read from its newest published version, read-only, so any number of
    notebooks, servers and commands can hold it open at once; a load takes the store's writer lock only
    while it writes, then publishes a new version (see docs/store.md). `read_only=True` refuses loads and
    does not create a missing store; `Mmkg.refresh()` moves to a version another process published."""
    neo4j = Neo4jSettings()
    uri = neo4j_uri or neo4j.uri
    if uri:
        from mmkg.graph import ontology_graph
        from mmkg.store.neo4j_store import Neo4jStore

        return Mmkg(Neo4jStore.connect(uri, neo4j.user, neo4j.password.get_secret_value(), neo4j.database,
                                       read_only=read_only, shipped_ontology=ontology_graph))
    from mmkg.store.embedded import EmbeddedStore

    settings = Settings()
    path = (Path(store) if store is not None else settings.store).expanduser()
    if path.exists() and not path.is_dir():
        from mmkg.errors import StoreError

        raise StoreError(f"{path}: is a file, not a store folder; give --store (MMKG_STORE) a folder, new or "
                         "one mmkg wrote")
    return Mmkg(EmbeddedStore(path, read_only=read_only, write_wait_s=settings.write_wait_s))


__all__ = ["Mmkg", "open_store", "LoadReport", "MmkgError", "EVERY_STUDY"]
