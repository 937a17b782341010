"""A sandboxed worker that checks ad-hoc Cypher (mmkg's grammar) and runs it against one embedded
database file, read-only — or, for Neo4j, only checks it.

Started by `mmkg.adhoc.pool` (`python -I -m mmkg.adhoc.worker CONFIG`); it imports the standard library,
lark, `mmkg.adhoc.statement`, LadybugDB and the two sandbox libraries — not pandas, not the rest of mmkg —
so parsing a hostile statement costs this process, which the deadline can kill, never the server. Its
first input frame is the parser the server built (`statement.parser_bytes`). Before it reads a request it
locks itself in, in this order (see docs/security.md):

1. a new user and network namespace where the kernel allows it: no network interface at all;
2. Landlock: the file system is read-only and only the Python installation, the system libraries and the
   store folder are visible; TCP bind/connect, abstract UNIX sockets and signals to other processes denied;
3. the database is opened read-only (bounded buffer pool, one thread), a warm-up query runs;
4. resource limits: address space (the memory budget on top of what is mapped now), no file growth,
   no core dumps;
5. seccomp, on every thread: no open/openat/creat, no socket/connect/bind, no exec, fork, mount, ptrace, …

After that the process can read the database file it already holds, its pipes and nothing else. The
parent enforces the wall clock (it kills the worker) and caps what it reads back.

Frames on stdin/stdout: 4-byte big-endian length, then UTF-8 JSON (a reply is a header frame followed
by a frame holding the rows as a JSON array, or the checked statement when it only checks).
"""
from __future__ import annotations

import ctypes
import errno
import json
import math
import os
import resource
import signal
import struct
import sys

PR_SET_PDEATHSIG = 1
CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
DENIED_SYSCALLS = (
    "open", "openat", "openat2", "creat", "open_by_handle_at", "name_to_handle_at",
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4",
    "execve", "execveat", "fork", "vfork",
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "ptrace", "process_vm_readv",
    "process_vm_writev", "kexec_load", "init_module", "finit_module", "delete_module", "bpf",
    "perf_event_open", "userfaultfd", "io_uring_setup", "memfd_create", "keyctl", "add_key",
    "request_key", "mknod", "mknodat", "symlink", "symlinkat", "link", "linkat", "rename", "renameat",
    "renameat2", "unlink", "unlinkat", "mkdir", "mkdirat", "rmdir", "truncate", "chmod", "fchmodat",
    "chown", "fchownat", "lchown", "setxattr", "lsetxattr", "fsetxattr", "removexattr", "quotactl",
    "swapon", "swapoff", "reboot", "sethostname", "setdomainname", "iopl", "ioperm",
)


def main(argv: list[str]) -> int:
    config = json.loads(argv[1])
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    from mmkg.adhoc import statement

    try:
        statement.load_parser(_read_raw(stdin) or b"")
        layers, database = _lock_in(config)
    except _DatabaseUnavailable as exc:
        _write(stdout, {"ready": False, "stage": "database", "message": str(exc)})
        return 1
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which refuses to use this worker
        _write(stdout, {"ready": False, "stage": "sandbox", "message": f"{type(exc).__name__}: {exc}"})
        return 1
    _write(stdout, {"ready": True, "layers": layers})
    while True:
        request = _read(stdin)
        if request is None:
            return 0
        header, payload = _serve(statement, database, request)
        _write(stdout, header)
        _write_raw(stdout, payload)


def _serve(statement, database, request: dict) -> tuple[dict, bytes]:
    """Check the request's statement; then run it (embedded store) or hand it back (Neo4j)."""
    from mmkg.errors import QueryRefusedError

    try:
        checked = statement.check_read_statement(request["cypher"], request.get("parameters"),
                                                 dialect=request["dialect"])
    except QueryRefusedError as exc:
        return {"ok": False, "kind": "refused", "message": exc.message}, b"[]"
    if database is None:
        return {"ok": True}, json.dumps({"text": checked.text, "parameters": checked.parameters}).encode("utf-8")
    import ladybug

    connection = ladybug.Connection(database, num_threads=1)
    try:
        return _run(connection, checked.text, checked.parameters, request)
    finally:
        connection.close()


# ------------------------------------------------------------------------------------------ sandbox

class _DatabaseUnavailable(Exception):
    """The database file could not be opened (e.g. a newer version was published and this one collected)."""


def _lock_in(config: dict) -> tuple[dict, object]:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # die with the server
    if os.getppid() == 1:
        raise RuntimeError("the server is gone")
    layers = {"network_namespace": libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0}

    import landlockpy
    import seccompy

    if not seccompy.supported():
        raise RuntimeError("seccomp filters are not supported by this kernel")
    syscall_filter = _syscall_filter(seccompy)  # built (and libc resolved) while files can still be opened
    statm = open("/proc/self/statm", "rb", buffering=0)  # noqa: SIM115 - read again after the lock-in
    database_file = config.get("database_file")
    store_folder = os.path.dirname(os.path.abspath(database_file)) if database_file else None
    layers["landlock_abi"] = _restrict_files(landlockpy, store_folder)

    megabyte = 1 << 20
    database = None
    if database_file:
        import ladybug

        try:
            database = ladybug.Database(database_file, read_only=True, max_num_threads=1,
                                        buffer_pool_size=int(config["buffer_pool_mb"]) * megabyte,
                                        max_db_size=_max_db_size(database_file))
        except (RuntimeError, OSError) as exc:
            raise _DatabaseUnavailable(f"cannot open {database_file}: {exc}") from None
        warm = ladybug.Connection(database, num_threads=1)
        warm.execute("RETURN 1 AS x").get_next()
        warm.close()
    json.dumps({"warm": [1.5, "x", None]})

    mapped = int(os.pread(statm.fileno(), 256, 0).split()[0]) * os.sysconf("SC_PAGE_SIZE")
    statm.close()
    budget = int(config["memory_mb"]) * megabyte
    resource.setrlimit(resource.RLIMIT_AS, (mapped + budget, mapped + budget))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.nice(int(config.get("nice", 10)))
    syscall_filter.load()
    layers["seccomp"] = True
    layers["memory_limit_mb"] = int(config["memory_mb"])
    return layers, database


def _restrict_files(landlockpy, store_folder: str | None) -> int:
    """Read-only view of what the worker still has to load; everything else invisible. Returns the ABI."""
    abi = landlockpy.abi_version()
    if abi < 1:
        raise RuntimeError("Landlock is not available in this kernel")
    readable = {sys.prefix, sys.base_prefix, sys.exec_prefix, *([store_folder] if store_folder else []),
                *(p for p in sys.path if p and os.path.isdir(p)),
                "/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib", "/etc/ld.so.cache"}
    read_dir = landlockpy.AccessFS.READ_FILE | landlockpy.AccessFS.READ_DIR
    with landlockpy.Ruleset(scoped=landlockpy.scope_for_abi(abi)) as ruleset:
        for path in sorted(readable):
            if os.path.exists(path):
                ruleset.allow_path(path, read_dir if os.path.isdir(path) else landlockpy.AccessFS.READ_FILE)
        ruleset.restrict()
    return abi


def _syscall_filter(seccompy):
    syscall_filter = seccompy.Filter(default=seccompy.Action.ALLOW, flags=seccompy.FilterFlag.TSYNC)
    for name in DENIED_SYSCALLS:
        try:
            syscall_filter.errno(name, errno.EPERM)
        except (ValueError, KeyError, seccompy.SeccompError):  # not a syscall on this architecture
            continue
    syscall_filter.errno("clone3", errno.ENOSYS)  # threads fall back to clone(2)
    return syscall_filter


def _max_db_size(database_file: str) -> int:
    """The address space LadybugDB reserves for the file: a power of two well above its size."""
    size = max(os.path.getsize(database_file) * 4, 1 << 30)
    return 1 << (size - 1).bit_length()


# ------------------------------------------------------------------------------------------ queries

def _run(connection, text: str, parameters: dict, request: dict) -> tuple[dict, bytes]:
    connection.set_query_timeout(int(float(request["timeout_s"]) * 1000))
    try:
        result = connection.execute(text, parameters)
        columns = [str(c) for c in result.get_column_names()]
        encoded, count, truncated = encode_rows(columns, _while_next(result), int(request["max_rows"]),
                                                int(request["max_bytes"]))
    except RuntimeError as exc:
        message = str(exc)
        kind = "timeout" if "interrupted" in message.lower() or "timeout" in message.lower() else "engine"
        return {"ok": False, "kind": kind, "message": message[:2000]}, b"[]"
    except MemoryError:
        return {"ok": False, "kind": "memory", "message": "the query needed more memory than allowed"}, b"[]"
    return {"ok": True, "columns": columns, "row_count": count, "truncated": truncated}, encoded


def _while_next(result):
    while result.has_next():
        yield result.get_next()


def encode_rows(columns: list[str], rows, max_rows: int, max_bytes: int) -> tuple[bytes, int, str | None]:
    """Rows (sequences of values) as a JSON array of objects, stopping before `max_rows` rows or
    `max_bytes` bytes would be passed; returns (the array, rows in it, "rows"/"bytes"/None)."""
    encoded: list[bytes] = []
    size, truncated = 2, None
    for row in rows:
        if len(encoded) >= max_rows:
            truncated = "rows"
            break
        item = json.dumps(dict(zip(columns, _jsonable(list(row)))), ensure_ascii=False,
                          allow_nan=False).encode("utf-8")
        if size + len(item) + 1 > max_bytes:
            truncated = "bytes"
            break
        encoded.append(item)
        size += len(item) + 1
    return b"[" + b",".join(encoded) + b"]", len(encoded), truncated


def _jsonable(value):
    """Rows as JSON values: non-finite floats become null, anything else without a JSON form a string."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


# ------------------------------------------------------------------------------------------ frames

def _read(stream) -> dict | None:
    payload = _read_raw(stream)
    return None if payload is None else json.loads(payload)


def _read_raw(stream) -> bytes | None:
    head = stream.read(4)
    if len(head) < 4:
        return None
    (length,) = struct.unpack(">I", head)
    return stream.read(length)


def _write(stream, message: dict) -> None:
    _write_raw(stream, json.dumps(message, ensure_ascii=False).encode("utf-8"))


def _write_raw(stream, payload: bytes) -> None:
    stream.write(struct.pack(">I", len(payload)) + payload)
    stream.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
