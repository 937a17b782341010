"""The embedded store: LadybugDB database files in a folder, one published version at a time.

Multi-process model (docs/store.md): many readers, one writer, always consistent.

* A published version is a database file `graph-<generation>-<random>.lbug` that nobody writes again.
  The small file `CURRENT` names the version readers should open; a reader (a notebook, the server, a CLI
  command, a sandboxed query worker) opens that file read-only and sees that one complete version for as
  long as it keeps it open.  Readers take no lock, so they never lock anyone out.
* A writer (a load or a delete, in any process) takes the store's writer lock (`writer.lock`, an OS file
  lock that the kernel releases when the process ends, kill -9 included), writes a new database file in
  `staging/` (a copy of the current version changed in one transaction or, for large loads, a rebuilt
  file), checks it, moves it beside the others, opens it read-only once, then publishes it by replacing
  `CURRENT` with one rename.  A second writer is refused with a message that names the holder's PID.
* Nothing is published before that rename: a failure, a full disk or a kill at any earlier moment leaves
  `CURRENT` and the file it names untouched, and the next open cleans up what was left.  Versions that
  `CURRENT` no longer names are deleted by the next writer (or by any open that finds no writer active);
  a reader that still has one open keeps reading it (POSIX keeps an open file until it is closed).
"""
from __future__ import annotations

import errno
import glob
import json
import os
import re
import secrets
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from mmkg.errors import NoSpaceError, QueryError, StoreBusyError, StoreError
from mmkg.models import GraphRows
from mmkg.schema import (
    CARRIED_COLUMN,
    INT,
    NODE_BY_LABEL,
    NODES,
    PAIR_COLUMNS,
    PASSAGE_COLUMNS,
    REL_BY_TYPE,
    RELS,
    SCHEMA_VERSION,
    STUDY_COUNTS,
    STUDY_NODE_LABELS,
)
from mmkg.store import Progress, StepTicker
from mmkg.store.ddl import ladybug_ddl
from mmkg.store.keys import is_packed
from mmkg.tables import release_freed_heap

POINTER_FILE = "CURRENT"  # names the published version
# Columns and relationship tables added to the schema after stores were first written: a store without them is
# upgraded in place, once
ADDED_COLUMNS = tuple(("Study", name, INT) for name in STUDY_COUNTS) + PASSAGE_COLUMNS + (CARRIED_COLUMN,) + \
    PAIR_COLUMNS
ADDED_TABLES = ("CARRIES", "COOCCURS_WITH")
SCHEMA_FILE = "SCHEMA"  # the schema version (`mmkg.schema.SCHEMA_VERSION`) the store's graph was written with
LOCK_FILE = "writer.lock"  # held by the one writer; says who it is
STAGING_FOLDER = "staging"  # a writer's new database file before it is published
LEGACY_FILE = "graph.lbug"  # the single database file of stores written before versions were published
VERSION_NAME = re.compile(r"^graph-(\d{1,12})-[0-9a-f]{8}\.lbug$")
REBUILD_COST_RATIO = 10  # kept segments per replaced segment above which a copy is changed (_rebuilds)
SMALL_CHANGE = 10_000  # segments: a change this small is one transaction (see EmbeddedStore._change_copy)
LARGE_COPY_ROWS = 50_000  # see _copy_all
SMALL_TABLE_ROWS = 2_048  # node tables up to this many rows are written by CREATE, not COPY (see _create)
OPEN_ATTEMPTS = 5  # a version can be collected between reading CURRENT and opening it: read CURRENT again
NOTHING_WRITTEN = "nothing was written: the store still holds its previous version"


# --------------------------------------------------------------------------------------- versions

def current_database_file(store_path: str | Path) -> tuple[Path, str]:
    """The database file readers should open now, and its version token.

    The token changes whenever a writer publishes a new version (it is the file's name). Costs one small
    file read. Open the file read-only; if it is gone when you open it (a writer published a newer version
    and collected this one in between), call again."""
    folder = Path(store_path).expanduser()
    pointer = folder / POINTER_FILE
    try:
        name = pointer.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        if (folder / LEGACY_FILE).exists():
            raise StoreError(f"{folder}: this store was written by an earlier mmkg; any mmkg command on it "
                             "(e.g. `mmkg studies --store …`) upgrades it") from None
        raise StoreError(f"{folder}: no mmkg store here yet (run `mmkg load --store {folder}` first)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"{pointer}: cannot read the store's version pointer ({exc})") from None
    if not VERSION_NAME.match(name):
        raise StoreError(f"{pointer}: does not name a database file of this store ({name[:80]!r})")
    return folder / name, name


def read_schema_version(store_path: str | Path) -> int | None:
    """The schema version recorded in the store folder (`SCHEMA`), None for a store from before the stamp."""
    try:
        text = (Path(store_path) / SCHEMA_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"{Path(store_path) / SCHEMA_FILE}: cannot read the schema version ({exc.strerror})") from None
    if not text.isdigit():
        raise StoreError(f"{Path(store_path) / SCHEMA_FILE}: not a schema version: {text[:40]!r}")
    return int(text)


def write_schema_version(store_path: str | Path) -> None:
    """Record `SCHEMA_VERSION` in the store folder (one rename; a store that cannot be written keeps none)."""
    target = Path(store_path) / SCHEMA_FILE
    staged = target.with_name(f"{SCHEMA_FILE}.{os.getpid()}.tmp")
    try:
        staged.write_text(f"{SCHEMA_VERSION}\n", encoding="utf-8")
        os.replace(staged, target)
    except OSError:
        staged.unlink(missing_ok=True)


def store_exists(store_path: str | Path) -> bool:
    """True when the folder holds an mmkg store (published, or of an earlier mmkg that an open upgrades)."""
    folder = Path(store_path).expanduser()
    return (folder / POINTER_FILE).exists() or (folder / LEGACY_FILE).exists()


class _PointerWatch:
    """`current_database_file`'s token, read again only when `CURRENT` changed (one stat per call).

    Publishing replaces `CURRENT` by a rename, so its inode and change time differ after every publish."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._pointer = os.fspath(folder / POINTER_FILE)  # a str: joining paths per call costs more than the stat
        self._known: tuple[tuple, str] | None = None  # (stat of CURRENT, token), replaced as one

    def token(self) -> str:
        try:
            stat = os.stat(self._pointer)
        except OSError:
            return current_database_file(self.folder)[1]  # raises the StoreError that says why
        seen = (stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size)
        known = self._known
        if known is None or known[0] != seen:
            known = self._known = (seen, current_database_file(self.folder)[1])
        return known[1]


# --------------------------------------------------------------------------------------- writer lock

class _ProcessSide:
    """This process's share of one store's writer lock: threads queue here, the OS lock is taken once."""

    def __init__(self):
        self.rlock = threading.RLock()
        self.depth = 0
        self.handle = None


_process_sides: dict[str, _ProcessSide] = {}
_process_sides_guard = threading.Lock()


@contextmanager
def writer_lock(folder: Path, *, wait_s: float = 0.0) -> Iterator[None]:
    """Hold the store's writer lock (re-entrant within a process), waiting up to `wait_s` seconds for
    another writer; raises `StoreBusyError` naming the holder when it stays taken."""
    folder = Path(folder)
    key = os.path.realpath(folder)
    with _process_sides_guard:
        side = _process_sides.setdefault(key, _ProcessSide())
    deadline = time.monotonic() + max(wait_s, 0.0)
    acquired = side.rlock.acquire(timeout=wait_s) if wait_s > 0 else side.rlock.acquire(blocking=False)
    if not acquired:
        raise StoreBusyError(_busy_message(folder, _holder(folder)))
    try:
        if side.depth == 0:
            side.handle = _take_os_lock(folder, deadline)
        side.depth += 1
        try:
            yield
        finally:
            side.depth -= 1
            if side.depth == 0:
                _release_os_lock(side.handle)
                side.handle = None
    finally:
        side.rlock.release()


def _take_os_lock(folder: Path, deadline: float):
    try:
        handle = open(folder / LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115 - held for the lock's life
    except OSError as exc:
        raise StoreError(f"{folder}: cannot write to the store folder ({exc.strerror}); loads need a "
                         "writable store folder") from None
    while True:
        try:
            _lock_file(handle)
            break
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK) or time.monotonic() >= deadline:
                handle.close()
                if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise StoreBusyError(_busy_message(folder, _holder(folder))) from None
                raise StoreError(f"{folder / LOCK_FILE}: cannot take the writer lock ({exc.strerror})") from None
            time.sleep(0.05)
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), "command": _command_line(),
                             "since": time.strftime("%Y-%m-%d %H:%M:%S")}))
    handle.flush()
    return handle


def _release_os_lock(handle) -> None:
    try:
        handle.seek(0)
        handle.truncate()
        handle.flush()
    except OSError:
        pass
    finally:
        _unlock_file(handle)
        handle.close()


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock_file(handle) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)

    def _unlock_file(handle) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _lock_file(handle) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock_file(handle) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _command_line() -> str:
    argv = [Path(sys.argv[0]).name] + sys.argv[1:] if sys.argv and sys.argv[0] else ["python"]
    return " ".join(argv)[:200]


def _holder(folder: Path) -> dict:
    try:
        return json.loads((folder / LOCK_FILE).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}


def _busy_message(folder: Path, holder: dict) -> str:
    who = f"process {holder['pid']}" if isinstance(holder.get("pid"), int) else "another process"
    if holder.get("pid") == os.getpid():
        who = f"this process ({os.getpid()}, another thread)"
    what = f" (`{holder['command']}`)" if isinstance(holder.get("command"), str) and holder["command"] else ""
    since = f" since {holder['since']}" if isinstance(holder.get("since"), str) else ""
    return (f"{folder}: {who}{what} is writing this store{since}; nothing was written. Wait for that load "
            "to finish, then run this one again (readers are not affected; MMKG_WRITE_WAIT_S=SECONDS makes "
            "loads wait for the lock)")


# --------------------------------------------------------------------------------------- the store

IDLE_CONNECTIONS = 8  # read-only connections kept open per version; more are opened while more threads read


class _OpenVersion:
    """One published version open read-only: its database, a pool of idle connections and the reads using it.

    Reads take a connection of their own, so threads read in parallel; a version that was replaced is closed
    when its last read returns its connection."""

    def __init__(self, db, conn, token: str):
        self.db, self.token = db, token
        self.idle = [conn]
        self.busy = 0
        self.retired = self.closed = False

    def close(self) -> None:
        _close_quietly(*self.idle, self.db)
        self.idle = []
        self.closed = True


class EmbeddedStore:
    """LadybugDB in folder `path`: the newest published version, open read-only; writes publish new ones.

    `read_only=True` refuses loads and never creates the store; otherwise a missing store is created.
    `version` is the token (see `current_database_file`) of the version this object reads; `refresh()`
    moves it to the newest one. A load waits up to `write_wait_s` for another process's load."""

    name = "ladybug"
    takes_categorical_columns = True  # graph rows may hold repeated strings once (a COPY reads dictionary arrays)

    def __init__(self, path: str | Path, *, read_only: bool = False, write_wait_s: float = 0.0):
        self.path = Path(path).expanduser()
        self.read_only = read_only
        self.write_wait_s = write_wait_s
        self.version: str | None = None
        self._pool_guard = threading.Lock()  # held only to hand out and take back connections
        self._refresh_lock = threading.Lock()
        self._write_lock = threading.RLock()  # this object's loads one after another
        self._open: _OpenVersion | None = None  # None while closed, or let go of during a write (`_let_go`)
        self._closed = False
        self._db = self._conn = None  # the open version's database and first connection (None once closed)
        self._watch = _PointerWatch(self.path)
        if not (self.path / POINTER_FILE).exists():
            self._initialise()
        else:
            self._tidy()
        self._adopt(*self._open_current())
        try:
            if self._has_study_tables() and self._missing_additions():
                self._upgrade()
            self._check_schema()
        except StoreError:
            self.close()
            raise

    # --- versions ----------------------------------------------------------------------------------------
    def latest_version(self) -> str:
        """The token of the newest published version (one stat; a small read when it changed)."""
        return self._watch.token()

    def is_stale(self) -> bool:
        """True when a newer version than the one open here has been published."""
        return self.latest_version() != self.version

    def refresh(self) -> bool:
        """Reopen on the newest published version when this one is stale; True when it reopened."""
        with self._refresh_lock:
            if not self.is_stale():
                return False
            self._adopt(*self._open_current())
            return True

    def _open_current(self):
        import ladybug

        previous = None
        for _ in range(OPEN_ATTEMPTS):
            file, token = current_database_file(self.path)
            try:
                db = ladybug.Database(str(file), read_only=True)
                return db, ladybug.Connection(db), token
            except RuntimeError as exc:
                if file.exists():
                    raise StoreError(f"{self.path}: cannot open the graph store ({exc})") from None
                if token == previous:
                    raise StoreError(f"{self.path}: {POINTER_FILE} names {token}, which is missing; something "
                                     "other than mmkg changed the store folder") from None
                previous = token  # collected after a newer version was published: read CURRENT again
        raise StoreError(f"{self.path}: new versions were published faster than one could be opened; try again")

    def _adopt(self, db, conn, token: str) -> None:
        """Read the version `db` from now on; the one it replaces closes when its last read ends."""
        with self._pool_guard:
            old, self._open = self._open, _OpenVersion(db, conn, token)
            self._db, self._conn, self.version = db, conn, token
            self._retire(old)

    def _retire(self, version: _OpenVersion | None) -> None:
        if version is not None:
            version.retired = True
            if version.busy == 0:
                version.close()

    def _let_go(self) -> None:
        """Close the open version while this object writes a new one, when no read is using it: an open
        database holds ~40 MB however small (LadybugDB's page table for a buffer pool of 80% of RAM) and the
        pages its reads brought in. A read in the meantime opens the same version again (`_connection`)."""
        with self._pool_guard:
            version = self._open
            if version is not None and version.busy == 0:
                self._open = None
                self._db = self._conn = None
                self._retire(version)
        release_freed_heap()

    def _open_again(self) -> _OpenVersion:
        """The version this object reads, opened again after `_let_go`; call holding `_pool_guard`."""
        import ladybug

        assert self.version is not None
        try:
            db = ladybug.Database(str(self.path / self.version), read_only=True)
            conn = ladybug.Connection(db)
        except RuntimeError as exc:
            raise StoreError(f"{self.path}: cannot open the graph store ({exc})") from None
        self._open = _OpenVersion(db, conn, self.version)
        self._db, self._conn = db, conn
        return self._open

    @contextmanager
    def _connection(self) -> Iterator:
        """A connection of the open version for one read, taken from (and given back to) its pool."""
        import ladybug

        with self._pool_guard:
            version = self._open
            if version is None:
                if self._closed or self.version is None:
                    raise StoreError(f"{self.path}: the store is closed")
                version = self._open_again()
            conn = version.idle.pop() if version.idle else None
            version.busy += 1
        try:
            if conn is None:
                conn = ladybug.Connection(version.db)
            yield conn
        finally:
            with self._pool_guard:
                version.busy -= 1
                if conn is not None and not version.retired and len(version.idle) < IDLE_CONNECTIONS:
                    version.idle.append(conn)
                elif conn is not None:
                    _close_quietly(conn)
                if version.retired and version.busy == 0:
                    version.close()

    def _initialise(self) -> None:
        """Create the store, or upgrade one written by an earlier mmkg (one `graph.lbug`), under the lock."""
        legacy = self.path / LEGACY_FILE
        if self.read_only and not legacy.exists():
            raise StoreError(f"{self.path}: no mmkg store here yet (run `mmkg load --store {self.path}` first)")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create the store folder ({exc.strerror})") from None
        with writer_lock(self.path, wait_s=max(self.write_wait_s, 10.0)):
            if (self.path / POINTER_FILE).exists():
                return  # another process created it meanwhile
            staging = self._fresh_staging()
            try:
                staged = staging / _version_name(1)
                if legacy.exists():  # recover it (WAL included) in a copy; the old file is left as it was
                    for part in _database_files(legacy):
                        _copy_file(part, staging / (staged.name + part.name[len(legacy.name):]))
                with _writable(staged) as conn:
                    for statement in ladybug_ddl():
                        conn.execute(statement)
                self._publish(staged, adopt=False)
                write_schema_version(self.path)
            except (OSError, RuntimeError) as exc:
                raise _write_failure(self.path, exc, "creating the store") from None
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            self._collect()

    def _tidy(self) -> None:
        """Remove what a killed writer left (staging files, unpublished versions) when no writer is active;
        never waits and never fails: a read-only folder or an active writer just leaves things for later."""
        if not self._leftovers():
            return
        try:
            with writer_lock(self.path):
                shutil.rmtree(self.path / STAGING_FOLDER, ignore_errors=True)
                self._collect()
        except StoreError:
            pass

    def _leftovers(self) -> bool:
        try:
            names = os.listdir(self.path)
        except OSError:
            return False
        current = _read_pointer_name(self.path)
        return any(n in (STAGING_FOLDER, LEGACY_FILE) or n.endswith(".tmp")
                   or (n.startswith("graph-") and not n.startswith(current or "\0")) for n in names)

    def _collect(self) -> None:
        """Delete versions `CURRENT` does not name (with their side files); call under the writer lock."""
        current = _read_pointer_name(self.path)
        if current is None:
            return
        for entry in self.path.iterdir():
            name = entry.name
            stale_version = name.startswith(("graph-", LEGACY_FILE)) and not name.startswith(current)
            if stale_version or (name.startswith(POINTER_FILE + ".") and name.endswith(".tmp")):
                try:
                    entry.unlink()
                except OSError:
                    pass  # e.g. still open on Windows; the next writer tries again

    def _fresh_staging(self) -> Path:
        staging = self.path / STAGING_FOLDER
        shutil.rmtree(staging, ignore_errors=True)
        try:
            staging.mkdir()
        except OSError as exc:
            raise _write_failure(self.path, exc, "preparing the new version") from None
        return staging

    def _publish(self, staged: Path, *, adopt: bool = True) -> None:
        """Move a closed, checkpointed database file beside the others, check that it opens read-only, then
        name it in `CURRENT` (the one rename that publishes it) and read it from now on."""
        import ladybug

        leftovers = [p.name for p in _database_files(staged) if p != staged]
        if leftovers:
            raise StoreError(f"the database engine did not finish the new version ({', '.join(leftovers)} "
                             f"remain); {NOTHING_WRITTEN}")
        final = self.path / staged.name
        _fsync(staged)
        os.replace(staged, final)
        try:
            db = ladybug.Database(str(final), read_only=True)
            conn = ladybug.Connection(db)
        except RuntimeError as exc:
            final.unlink(missing_ok=True)
            raise StoreError(f"the new version does not open ({exc}); {NOTHING_WRITTEN}") from None
        try:
            pointer = self.path / f"{POINTER_FILE}.{os.getpid()}.tmp"
            with open(pointer, "w", encoding="ascii") as handle:
                handle.write(final.name + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(pointer, self.path / POINTER_FILE)  # published
        except BaseException:
            _close_quietly(conn, db)
            final.unlink(missing_ok=True)
            raise
        try:
            _fsync(self.path)  # makes the renames durable; directories cannot be opened on Windows
        except OSError:
            pass
        if adopt:
            self._adopt(db, conn, final.name)
        else:
            _close_quietly(conn, db)

    def _missing_schema(self) -> list[str]:
        """The tables and `Table.property`s of `mmkg.schema` that the open version's graph does not have."""
        with self._connection() as conn:
            tables = set(conn.execute("CALL show_tables() RETURN name").get_as_df()["name"])
            missing = []
            tables_of_schema = [*((n.label, n.properties) for n in NODES), *((r.type, r.properties) for r in RELS)]
            for table, properties in tables_of_schema:
                if table not in tables:
                    missing.append(table)
                    continue
                have = _columns(conn, table)
                missing += [f"{table}.{name}" for name, _ in properties if name not in have]
        return missing

    def _check_schema(self) -> None:
        """Refuse a store written by another version of mmkg's schema (`SCHEMA_VERSION`) with a message that
        says what to do; a store from before the stamp whose graph has the whole schema gets the stamp."""
        stamp = read_schema_version(self.path)
        if stamp is not None and stamp > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: the store was written by a newer mmkg (schema version {stamp}; this "
                             f"mmkg knows version {SCHEMA_VERSION}): upgrade mmkg to open it")
        missing = self._missing_schema()
        if len(missing) == len(NODES) + len(RELS):
            raise StoreError(f"{self.path}: store has no mmkg schema")
        if missing:
            raise StoreError(
                f"{self.path}: the store was written by an older mmkg (schema version "
                f"{stamp if stamp is not None else 'from before versions were recorded'}; this mmkg has version "
                f"{SCHEMA_VERSION}) and its graph lacks {', '.join(missing[:8])}{' …' if len(missing) > 8 else ''}. "
                "Nothing was changed: load your studies into a new store (`mmkg load SOURCE --store NEW_FOLDER`)",
                details=[f"missing: {m}" for m in missing])
        if stamp != SCHEMA_VERSION and not self.read_only:
            write_schema_version(self.path)

    def _has_study_tables(self) -> bool:
        with self._connection() as conn:
            return "Study" in set(conn.execute("CALL show_tables() RETURN name").get_as_df()["name"])

    def _missing_additions(self) -> list[tuple[str, str, str] | str]:
        """The columns of `ADDED_COLUMNS` (as they are written there) and the tables of `ADDED_TABLES` the open
        version's graph lacks."""
        with self._connection() as conn:
            tables = set(conn.execute("CALL show_tables() RETURN name").get_as_df()["name"])
            # (a table that is missing is created whole)
            have = {table: _columns(conn, table) for table in {table for table, _, _ in ADDED_COLUMNS} & tables}
        return [table for table in ADDED_TABLES if table not in tables] + \
            [column for column in ADDED_COLUMNS if column[0] in have and column[1] not in have[column[0]]]

    def _upgrade(self) -> None:
        """Upgrade a store written before `ADDED_COLUMNS` and `ADDED_TABLES`, once, publishing the result as a
        new version like any write (a kill leaves the old version): the studies' counts are counted; the stored
        passages, carried codes and code pairs are left empty, so those studies' co-occurrence reads positions
        until each is loaded again."""
        what = "the studies' counts, stored passages, carried codes and code pairs"
        try:
            with self._write_lock, writer_lock(self.path, wait_s=max(self.write_wait_s, 10.0)):
                self.refresh()
                missing = self._missing_additions()
                if not missing:
                    return  # another process upgraded it meanwhile
                self._collect()
                staging = self._fresh_staging()
                staged = staging / _version_name(_generation(self.version) + 1)
                try:
                    _copy_file(current_database_file(self.path)[0], staged)
                    with _writable(staged) as conn:
                        _create_missing_tables(conn)
                        columns = [addition for addition in missing if not isinstance(addition, str)]
                        for table, name, kind in columns:
                            conn.execute(f"ALTER TABLE {table} ADD {name} {kind}")
                        if any(table == "Study" for table, _, _ in columns):
                            _write_study_counts(conn)
                    self._publish(staged)
                except (OSError, RuntimeError, MemoryError, StoreError) as exc:
                    raise _write_failure(self.path, exc, f"adding {what}") from None
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
                self._collect()
        except StoreError as exc:
            self.close()
            raise StoreError(f"{self.path}: this store was written by an earlier mmkg and needs a one-time upgrade "
                             f"({what}), which failed: {exc.message}") from None

    # --- reads -------------------------------------------------------------------------------------------
    def execute(self, cypher: str, params: dict | None = None, *, read: bool = False) -> pd.DataFrame:
        """Run one statement on the open version; a failure becomes `QueryError` with the store's own message.
        Threads read in parallel, each on a connection of its own.  `read` changes nothing here: every version
        is open read-only, loads write through their own copy."""
        with self._connection() as conn:
            try:
                result = conn.execute(cypher, params or {})
            except RuntimeError as exc:
                hint = " (the graph changes only through loads)" if "read-only" in str(exc).lower() else ""
                raise QueryError(f"query failed: {exc}{hint}") from None
            frame = _packed_frame(result) if is_packed(cypher) else result.get_as_df()
        return frame

    def execute_read(self, cypher: str, params: dict | None = None, *, timeout_s: float | None = None,
                     max_rows: int | None = None) -> pd.DataFrame:
        """Run a statement that must not write: every version is open read-only, so the store refuses writes."""
        with self._connection() as conn:
            if timeout_s:
                conn.set_query_timeout(int(timeout_s * 1000))
            try:
                result = conn.execute(cypher, params or {})
                frame = _take(result, max_rows)
            except RuntimeError as exc:
                message = str(exc)
                if "interrupted" in message.lower() or "timeout" in message.lower():
                    raise QueryError(f"query stopped after the time limit of {timeout_s} s") from None
                raise QueryError(f"query refused or failed: {message}") from None
            finally:
                if timeout_s:
                    conn.set_query_timeout(0)
        return frame

    def has_ontology(self) -> bool:
        return int(self.execute("MATCH (c:Concept) RETURN count(c) AS n")["n"].iloc[0]) > 0

    # --- writes ------------------------------------------------------------------------------------------
    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the store's writer lock (e.g. to prepare an upload before loading it); loads inside reuse it."""
        if self.read_only:
            raise StoreError(f"{self.path}: the store is open read-only")
        with writer_lock(self.path, wait_s=self.write_wait_s):
            yield

    def replace_study(self, study_id: str, rows: GraphRows, ontology: GraphRows | None = None,
                      progress: Progress | None = None) -> dict[str, int]:
        """Publish a new version without the study's previous rows and with `rows` (and the ontology when
        given and absent), after checking its counts; all or nothing. Takes `rows` and `ontology` over: each
        table's frame leaves them once it is written, so its memory is free for the next one."""
        return self._write(study_id, rows, ontology, progress)

    def delete_study(self, study_id: str) -> None:
        self._write(study_id, None, None, None)

    def _write(self, study_id: str, rows: GraphRows | None, ontology: GraphRows | None,
               progress: Progress | None) -> dict[str, int]:
        with self._write_lock, self.writing():
            self.refresh()  # decide on, and copy, the newest version
            if ontology is not None and self.has_ontology():
                ontology = None  # another load added it since the caller looked
            self._collect()  # room on the disk for the new version
            staging = self._fresh_staging()  # (without what a killed writer left there)
            staged = staging / _version_name(_generation(self.version) + 1)
            release_freed_heap()  # what reading and validating freed, before LadybugDB takes its own
            kept, replaced = self._segment_counts(study_id)
            try:
                if _rebuilds(kept, replaced):
                    counts = self._rebuild(staged, study_id, rows, ontology, progress)
                else:
                    self._let_go()  # the copy is of the file: nothing below reads the open version
                    counts = self._change_copy(staged, study_id, rows, ontology, progress, replaced)
                self._publish(staged)
            except (OSError, RuntimeError, MemoryError, StoreError) as exc:
                raise _write_failure(self.path, exc, f"writing study {study_id}") from None
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            self._collect()
        return counts

    def _should_rebuild(self, study_id: str) -> bool:
        """Whether writing `study_id` now rebuilds the database file (`_rebuilds`)."""
        return _rebuilds(*self._segment_counts(study_id))

    def _segment_counts(self, study_id: str) -> tuple[int, int]:
        """(segments the store keeps outside `study_id`, segments of `study_id`) in the open version."""
        with self._connection() as conn:
            total = _count(conn, "MATCH (n:Segment) RETURN count(n) AS n", None)
            replaced = _count(conn, "MATCH (n:Segment) WHERE n.study_id = $s RETURN count(n) AS n", study_id)
        return total - replaced, replaced

    def _change_copy(self, staged: Path, study_id: str, rows: GraphRows | None, ontology: GraphRows | None,
                     progress: Progress | None, replaced: int) -> dict[str, int]:
        """Copy the open version to `staged`, then replace the study there: a small change in one transaction;
        a large one (`replaced` segments deleted or as many written above SMALL_CHANGE) deletes outside it and
        writes each large table in its own, as a rebuild does (nothing reads `staged` before it is published,
        LadybugDB deletes about twice as fast outside a transaction, and the writer's pages are let go between
        tables)."""
        writes = [r for r in (ontology, rows) if r is not None]
        tick = StepTicker(progress, len(list(_tables_to_write(writes))) + 1)
        file, _ = current_database_file(self.path)
        if file.name != self.version:
            raise StoreError(f"{self.path}: a version was published while this load held the writer lock")
        _copy_file(file, staged)
        sizes = [_sizes(r) for r in (rows, None, ontology)]
        with _writable_file(staged) as writer:
            conn = writer.conn
            _create_missing_tables(conn)  # tables added by a newer mmkg
            written = len(rows.nodes.get("Segment", ())) if rows is not None else 0
            if max(replaced, written) > SMALL_CHANGE:
                _delete_study(conn, study_id)
                if ontology is not None:
                    _delete_ontology(conn)
                tick(f"removed previous version of {study_id}")
                _copy_all(conn, writes, tick, own_transactions=True, reopen=writer.reopen)
                return _check_counts(writer.conn, study_id, *sizes)
            conn.execute("BEGIN TRANSACTION")
            try:
                _delete_study(conn, study_id)
                if ontology is not None:
                    _delete_ontology(conn)
                tick(f"removed previous version of {study_id}")
                _copy_all(conn, writes, tick)
                counts = _check_counts(conn, study_id, *sizes)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        return counts

    def _rebuild(self, staged: Path, study_id: str, rows: GraphRows | None, ontology: GraphRows | None,
                 progress: Progress | None) -> dict[str, int]:
        """Write what the store keeps and the new rows into the empty database file `staged`.

        (Dropping and recreating the tables inside one transaction is not safe: LadybugDB 0.22 reopens
        with every table empty when it is killed while checkpointing such a transaction.)"""
        kept = self._read_all(except_study=study_id, with_ontology=ontology is None)
        self._let_go()  # read: its memory is free for the writer
        writes = [r for r in (kept, ontology, rows) if r is not None]
        tick = StepTicker(progress, len(list(_tables_to_write(writes))) + 1)
        with _writable_file(staged, checkpoint_each_commit=False) as writer:
            for statement in ladybug_ddl():
                writer.conn.execute(statement)
            tick(f"new database file without the previous version of {study_id}")
            sizes = [_sizes(r) for r in (rows, kept, ontology)]
            del kept
            _copy_all(writer.conn, writes, tick, own_transactions=True, reopen=writer.reopen)
            return _check_counts(writer.conn, study_id, *sizes)

    def _read_all(self, except_study: str, with_ontology: bool) -> GraphRows:
        """Every row the store holds outside one study (and the ontology's, when it is to be kept)."""
        kept = GraphRows()
        for node in NODES:
            if not node.study_scoped and not with_ontology:
                continue
            where = "WHERE n.study_id <> $s" if node.study_scoped else ""
            columns = ", ".join(f"n.{c} AS {c}" for c in node.columns)
            kept.nodes[node.label] = self._frame(f"MATCH (n:{node.label}) {where} RETURN {columns}",
                                                 except_study if node.study_scoped else None)
        for rel in RELS:
            source = NODE_BY_LABEL[rel.source]
            if not source.study_scoped and not with_ontology:
                continue
            where = "WHERE a.study_id <> $s" if source.study_scoped else ""
            columns = ", ".join(["a.uid AS `from`", "b.uid AS `to`"] + [f"r.{p} AS {p}" for p, _ in rel.properties])
            kept.rels[rel.type] = self._frame(
                f"MATCH (a:{rel.source})-[r:{rel.type}]->(b:{rel.target}) {where} RETURN {columns}",
                except_study if source.study_scoped else None)
        return kept

    def _frame(self, cypher: str, study_id: str | None) -> pd.DataFrame:
        with self._connection() as conn:
            return conn.execute(cypher, {"s": study_id} if study_id is not None else {}).get_as_df()

    def close(self) -> None:
        """Close the store; reads still running finish on their version, which closes after the last one."""
        with self._pool_guard:
            old, self._open = self._open, None
            self._closed = True
            self._conn = self._db = None
            self._retire(old)


# --------------------------------------------------------------------------------------- helpers

def _version_name(generation: int) -> str:
    return f"graph-{generation:06d}-{secrets.token_hex(4)}.lbug"


def _generation(token: str | None) -> int:
    match = VERSION_NAME.match(token or "")
    return int(match.group(1)) if match else 0


def _read_pointer_name(folder: Path) -> str | None:
    try:
        name = (folder / POINTER_FILE).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return name if VERSION_NAME.match(name) else None


class _WritableFile:
    """A read-write database on a file no reader knows yet, which `reopen` closes and opens again.

    `checkpoint_each_commit=False` leaves the checkpoints to `reopen` and the end (`_writable_file`): LadybugDB
    otherwise checkpoints at every commit of a COPY (~10 ms however few rows; under load ~50 ms), and one
    checkpointing a large COPY's table does so while the COPY's own memory is still held (10^6 codings: the
    Segment COPY peaked ~30 MB higher). Nothing reads the file before it is published, and COPY writes its
    rows into the database file, not the WAL, so the WAL stays small until the checkpoint."""

    def __init__(self, file: Path, *, checkpoint_each_commit: bool = True):
        import ladybug

        self.options = {} if checkpoint_each_commit else {"auto_checkpoint": False}
        self.db = ladybug.Database(str(file), **self.options)
        self.conn = ladybug.Connection(self.db)
        self.file = file

    def reopen(self):
        """Checkpoint, close and open the file again; returns the new connection. Until the database closes,
        LadybugDB keeps the pages a COPY wrote in its buffer pool (~80% of RAM by default: nothing evicts them)
        and the connection keeps the Arrow table the COPY read: after the segments of 10^7 codings ~0.9 GB
        that the next COPY does not need."""
        import ladybug

        self.conn.execute("CHECKPOINT")
        self.close()
        release_freed_heap()
        self.db = ladybug.Database(str(self.file), **self.options)
        self.conn = ladybug.Connection(self.db)
        return self.conn

    def close(self) -> None:
        self.conn.close()
        self.db.close()


@contextmanager
def _writable_file(file: Path, *, checkpoint_each_commit: bool = True) -> Iterator[_WritableFile]:
    """A `_WritableFile` on `file`; checkpointed and closed on the way out."""
    writer = _WritableFile(file, checkpoint_each_commit=checkpoint_each_commit)
    try:
        yield writer
        # a failed checkpoint raises here (a full disk, say); while closing it would only leave the WAL behind
        writer.conn.execute("CHECKPOINT")
    except BaseException:
        _close_quietly(writer.conn, writer.db)
        raise
    writer.close()


@contextmanager
def _writable(file: Path):
    """A read-write connection to a database file no reader knows yet; checkpointed and closed on the way out."""
    with _writable_file(file) as writer:
        yield writer.conn


def _close_quietly(*handles) -> None:
    for handle in handles:
        if handle is not None:
            try:
                handle.close()
            except Exception:  # closing after a failure: the file is discarded anyway
                pass


def _copy_file(source: Path, target: Path) -> None:
    """Copy a file inside the kernel: `copy_file_range` shares the blocks where the file system can
    (btrfs, XFS: constant time), else copies them without a pass through Python."""
    with open(source, "rb") as src, open(target, "xb") as dst:
        size, done = os.fstat(src.fileno()).st_size, 0
        try:
            while done < size:
                copied = os.copy_file_range(src.fileno(), dst.fileno(), size - done)
                if copied == 0:
                    break
                done += copied
        except (AttributeError, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
                raise
            src.seek(done)
            dst.seek(done)
            shutil.copyfileobj(src, dst, 1024 * 1024)
        dst.flush()
        if os.fstat(dst.fileno()).st_size != size:
            raise StoreError(f"copying {source.name} stopped after {os.fstat(dst.fileno()).st_size:,} of "
                             f"{size:,} bytes; {NOTHING_WRITTEN}")


# What LadybugDB says when a checkpoint fails after a commit; it speaks of its own file, which here is the
# unpublished new version and is discarded, so its claims (durable, recovered on restart) are not true.
_ENGINE_CLAIMS = re.compile(
    r"Transaction committed successfully, but the post-commit checkpoint failed\. The committed data is durable "
    r"and will be recovered on restart:\s*|Checkpoint failed after its commit record may have reached storage; "
    r"the database refuses further writes until restart\. Original error:\s*")


def _write_failure(folder: Path, exc: BaseException, doing: str) -> StoreError:
    """The error to report for a write that failed before its version was published (so nothing was)."""
    if isinstance(exc, MemoryError):
        text = "out of memory"
    elif isinstance(exc, OSError):
        text = f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")
    else:
        text = exc.message if isinstance(exc, StoreError) else str(exc)
    text = _ENGINE_CLAIMS.sub("", text)
    no_space = (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)) or \
        "no space left on device" in text.lower() or "disk quota exceeded" in text.lower()
    if no_space:
        return NoSpaceError(f"{folder}: the disk is full, so {doing} stopped; {NOTHING_WRITTEN}. Free some "
                            "space (a load needs room for about twice the store's database file), then try again")
    if NOTHING_WRITTEN not in text:
        text = f"{text}; {NOTHING_WRITTEN}"
    if isinstance(exc, StoreError):
        return type(exc)(text, details=exc.details)
    if isinstance(exc, RuntimeError):
        return StoreError(f"{folder}: {doing} failed in the database engine, on the new version before it was "
                          f"published: {text}")
    return StoreError(f"{folder}: {doing} failed: {text}")


# How a store written before studies carried their counts counts them, once (the `studies` query then reads them)
_COUNT_STUDIES = """MATCH (s:Study)
OPTIONAL MATCH (s)-[:HAS_PARTICIPANT]->(p:Participant)
WITH s, count(p) AS participants
OPTIONAL MATCH (s)-[:HAS_PARTICIPANT]->(:Participant)-[:HAS_SOURCE]->(src:Source)
WITH s, participants, count(src) AS sources
OPTIONAL MATCH (k:Code) WHERE k.study_id = s.id
WITH s, participants, sources, count(k) AS codes
OPTIONAL MATCH (:Segment {study_id: s.id})-[c:CODED_AS]->(:Code)
RETURN s.id AS id, participants, sources, codes, count(c) AS codings"""


def _columns(conn, table: str) -> set[str]:
    return set(conn.execute(f"CALL table_info('{table}') RETURN name").get_as_df()["name"])


def _write_study_counts(conn) -> None:
    counts = conn.execute(_COUNT_STUDIES).get_as_df()
    assignments = ", ".join(f"s.{name} = ${name}" for name in STUDY_COUNTS)
    for row in counts.to_dict("records"):
        conn.execute(f"MATCH (s:Study) WHERE s.id = $id SET {assignments}",
                     {"id": row["id"], **{name: int(row[name]) for name in STUDY_COUNTS}})


def _create_missing_tables(conn) -> None:
    present = set(conn.execute("CALL show_tables() RETURN name").get_as_df()["name"])
    if not {n.label for n in NODES} | {r.type for r in RELS} <= present:
        for statement in ladybug_ddl():
            conn.execute(statement)


def _rebuilds(kept: int, replaced: int) -> bool:
    """Rebuild the database file when that costs less than changing a copy. Deleting a study in a copy costs
    more per coding than a rebuild writes one (~8 µs), and more the more codings each of its codes has:
    LadybugDB finds every relationship it deletes by scanning its code's list (14–19 µs a coding for a
    10^5-coding study, ~52 µs for the largest codes of a 10^6 one, in a store of its own or beside 10^7 codings
    alike; benchmarks/README.md, reload section). On top of that a change pays for what all studies share
    (the file copy, the code and source lists' checkpoint, the segment key index), which grows with the store.
    So a study much smaller than the rest of the store changes a copy; one that is a tenth of the store or
    more is rebuilt with it. Sizes are in segments, which scale with codings."""
    return kept <= REBUILD_COST_RATIO * replaced


def _delete_study(conn, study_id: str) -> None:
    # Codes first: deleting a code unlinks its codings as one list, 3-5x faster than deleting them segment by
    # segment, which is what deleting the segments first would do.
    for label in sorted(STUDY_NODE_LABELS, key=lambda label: label != "Code"):
        conn.execute(f"MATCH (n:{label}) WHERE n.study_id = $s DETACH DELETE n", {"s": study_id})


def _delete_ontology(conn) -> None:
    # Concept nodes carry MAPS_TO links from study codes; those are study data and reloaded with it,
    # so the ontology is only (re)loaded into a store that has none.
    for label in ("ExternalId", "Concept"):
        conn.execute(f"MATCH (n:{label}) DETACH DELETE n")


def _tables_to_write(parts: list[GraphRows]):
    """(table name, its properties, the parts' non-empty frames, 'nodes' or 'relationships') in schema order,
    nodes first, for every table that has rows."""
    for tables, schema, kind in ((lambda r: r.nodes, NODE_BY_LABEL, "nodes"),
                                 (lambda r: r.rels, REL_BY_TYPE, "relationships")):
        for name, table in schema.items():
            frames = [tables(part)[name] for part in parts if len(tables(part).get(name, ())) > 0]
            if frames:
                yield name, dict(table.properties), frames, kind


def _copy_all(conn, parts: list[GraphRows], tick, *, own_transactions: bool = False,
              reopen: Callable[[], Any] | None = None) -> None:
    """COPY every table of `parts`, one COPY per table (nodes first), and check the row count COPY reports.

    With `own_transactions` (a database file that is not live yet) consecutive small node tables share a
    transaction and each large table and each relationship table commits by itself: a large COPY into an
    empty table is fastest that way, and a relationship COPY holds ~8 MB until its transaction commits,
    however few rows it brings (12 small ones in one transaction: ~100 MB at the end of a small load).
    (A writer that checkpoints at every commit, `_WritableFile`, spends ~10 ms on each.)
    `reopen()` (a new connection to the same file) is called before each large table after the first, so the
    pages the earlier ones left in LadybugDB's buffer pool are not held while it writes."""
    in_transaction = False
    written_large = False
    for name, properties, frames, kind in _tables_to_write(parts):
        rows = sum(map(len, frames))
        alone = rows > LARGE_COPY_ROWS or kind == "relationships"
        if own_transactions and in_transaction == alone:
            conn.execute("COMMIT" if in_transaction else "BEGIN TRANSACTION")
            in_transaction = not in_transaction
        if reopen is not None and own_transactions and rows > LARGE_COPY_ROWS and written_large:
            conn = reopen()
        written_large = written_large or rows > LARGE_COPY_ROWS
        for part in parts:  # from here on the frames live only in `frames`
            (part.nodes if kind == "nodes" else part.rels).pop(name, None)
        arrow = [_arrow_table(frame, properties) for frame in frames]
        frames.clear()  # what the Arrow table does not share (a column cast to its type) is free before writing
        if len(arrow) > 1:  # another study's rows beside these: one type per column
            arrow = [_decoded(a) for a in arrow]
        table = pa.concat_tables([a.select(arrow[0].column_names) for a in arrow], promote_options="permissive")
        del arrow
        few = kind == "nodes" and rows <= SMALL_TABLE_ROWS
        written = _create(conn, name, table) if few else _copy(conn, name, table)
        del table  # written: its memory is free for the next table
        if rows > LARGE_COPY_ROWS:
            release_freed_heap()
        _expect(written, rows, name)
        tick(f"{name}: {rows:,} {kind}")
    if in_transaction:
        conn.execute("COMMIT")


def _create(conn, label: str, rows: pa.Table) -> int:
    """Write a few nodes with one `LOAD FROM … CREATE` (the count created): COPY reserves a whole node group's
    columns (~14 MB) for every node table it writes, however few rows it brings, and LadybugDB keeps them until
    the process ends. (Relationships stay with COPY: matching both ends of each loaded row plans as a cross
    product of the two node tables.)"""
    values = ", ".join(f"`{c}`: `{c}`" for c in rows.column_names)
    try:
        found = conn.execute(f"LOAD FROM $rows CREATE (:{label} {{{values}}}) RETURN count(*) AS n", {"rows": rows})
        return int(found.get_as_df()["n"].iloc[0])
    except RuntimeError as exc:
        raise StoreError(f"writing {label} failed: {exc}") from None


def _copy(conn, table: str, rows: pa.Table) -> int:
    try:
        report = conn.execute(f"COPY {table} FROM $rows", {"rows": rows}).get_as_df()
    except RuntimeError as exc:
        raise StoreError(f"writing {table} failed: {exc}") from None
    return _copied_count(report, table)


_Sizes = tuple[dict[str, int], dict[str, int]]  # rows per node label, rows per relationship type


def _sizes(rows: GraphRows | None) -> _Sizes | None:
    """How many rows `rows` brings per table (taken before `_copy_all` empties it)."""
    if rows is None:
        return None
    return {k: len(v) for k, v in rows.nodes.items()}, {k: len(v) for k, v in rows.rels.items()}


def _check_counts(conn, study_id: str, rows: _Sizes | None, kept: _Sizes | None,
                  ontology: _Sizes | None) -> dict[str, int]:
    """Check the nodes the store holds against what was written (`_sizes` of each part), before the commit;
    returns the study's counts.

    Relationships were checked against the counts COPY reported (`_copy_all`): counting relationships that
    are not committed yet scans them all (~0.4 s per million).
    """
    counts = {}
    if rows is not None:
        nodes, rels = rows
        for label, size in nodes.items():
            found = _count(conn, f"MATCH (n:{label}) WHERE n.study_id = $s RETURN count(n) AS n", study_id)
            counts[label] = _expect(found, size, label)
        counts.update(rels)
    written = [r for r in (kept, ontology, rows) if r is not None]
    for node in NODES:
        if kept is not None or (ontology is not None and not node.study_scoped):
            expected = sum(part[0].get(node.label, 0) for part in written)
            _expect(_count(conn, f"MATCH (n:{node.label}) RETURN count(n) AS n", None), expected, node.label)
    return counts


def _database_files(database_file: Path) -> list[Path]:
    """The database file and the files LadybugDB keeps beside it (WAL, shadow pages, locks)."""
    return sorted(database_file.parent.glob(glob.escape(database_file.name) + "*"))


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _count(conn, cypher: str, study_id: str | None) -> int:
    params = {"s": study_id} if study_id is not None else {}
    return int(conn.execute(cypher, params).get_as_df()["n"].iloc[0])


def _rollback(conn) -> None:
    try:
        conn.execute("ROLLBACK")
    except RuntimeError as exc:  # a failed statement has already ended the transaction
        if "no active transaction" not in str(exc).lower():
            raise


def _expect(found: int, expected: int, what: str) -> int:
    if found != expected:
        raise StoreError(f"after writing, the new version holds {found:,} {what} where {expected:,} were written")
    return found


ARROW_TYPES = {"STRING": pa.string(), "INT64": pa.int64(), "INT32": pa.int32(), "DOUBLE": pa.float64(),
               "BOOLEAN": pa.bool_()}


def _copied_count(report: pd.DataFrame, table: str) -> int:
    """The row count in COPY's report, e.g. '1000 tuples have been copied to the Segment table.'."""
    match = re.match(r"\s*(\d+) tuples", str(report.iloc[0, 0]))
    if match is None:
        raise StoreError(f"writing {table}: unexpected COPY report {report.iloc[0, 0]!r}")
    return int(match.group(1))


def _arrow_table(frame: pd.DataFrame, types: dict[str, str]) -> pa.Table:
    """The frame as an Arrow table typed like the store's properties; missing values become nulls.

    LadybugDB scans Arrow tables natively, which avoids converting string columns to Python objects.
    """
    columns = {}
    for column in frame.columns:
        arrow_type = ARROW_TYPES[types.get(column, "STRING")]
        series = frame[column]
        if arrow_type == pa.string() and isinstance(series.dtype, pd.CategoricalDtype):
            columns[column] = pa.Array.from_pandas(series)  # a dictionary array: COPY reads it as strings
            continue
        held = _arrow_strings(series) if arrow_type == pa.string() else None
        if held is not None:  # LadybugDB reads large strings too: no copy of the column
            columns[column] = held
            continue
        if arrow_type == pa.float64():
            series = pd.to_numeric(series)
        elif pa.types.is_integer(arrow_type) and series.dtype == object:
            series = pd.array(series, dtype="Int64")
        columns[column] = pa.Array.from_pandas(series, type=arrow_type)
    return pa.table(columns)


def _decoded(table: pa.Table) -> pa.Table:
    """`table` with each dictionary-encoded column as plain values."""
    for index, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type):
            table = table.set_column(index, field.name, table.column(index).cast(field.type.value_type))
    return table


def _arrow_strings(series: pd.Series) -> pa.Array | pa.ChunkedArray | None:
    """The Arrow strings an Arrow-backed string column already holds (missing values null), or None."""
    dtype = series.dtype
    arrow_backed = (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow") or (
        isinstance(dtype, pd.ArrowDtype) and (pa.types.is_string(dtype.pyarrow_dtype)
                                              or pa.types.is_large_string(dtype.pyarrow_dtype)))
    return pa.array(series.array) if arrow_backed else None  # `__arrow_array__`: the column's own buffers


def _packed_frame(result) -> pd.DataFrame:
    """A fetch of one packed integer column (`mmkg.store.keys.is_packed`) as a frame, through Arrow."""
    column = result.get_as_arrow(1 << 20).column(0)
    return pd.DataFrame({result.get_column_names()[0]: column.to_numpy()}, copy=False)


def _take(result, max_rows: int | None) -> pd.DataFrame:
    if max_rows is None:
        return result.get_as_df()
    columns = result.get_column_names()
    rows = []
    while result.has_next() and len(rows) < max_rows:
        rows.append(result.get_next())
    return pd.DataFrame(rows, columns=columns)
