"""Helpers for tests that run mmkg in other processes against one store: the CLI, a writer-lock holder."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MMKG = Path(sys.executable).with_name("mmkg")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without MMKG_*/NEO4J_* settings of the caller, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MMKG_", "NEO4J_"))}
    env.update(extra)
    return env


def mmkg_cli(*args: object, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the installed `mmkg` command; text output captured."""
    return subprocess.run([str(MMKG), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=env or clean_env())


def run_cli(*args: object, capsys) -> subprocess.CompletedProcess:
    """Run the real `mmkg` entry point in this process (much faster than a new one); output captured."""
    from mmkg.cli.main import main

    old_argv = sys.argv
    sys.argv = ["mmkg", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = old_argv
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(sys.argv, code, out, err)


def start_mmkg(*args: object, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([str(MMKG), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env or clean_env())


@contextmanager
def lock_holder(store: Path, hold_s: float = 120.0) -> Iterator[subprocess.Popen]:
    """Another process that holds the store's writer lock (as a long load does) until it is killed or
    `hold_s` passes."""
    code = ("import sys, time; from pathlib import Path; from mmkg.store.embedded import writer_lock\n"
            f"with writer_lock(Path({str(store)!r})):\n"
            "    print('held', flush=True)\n"
            f"    time.sleep({hold_s})\n")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=clean_env())
    try:
        assert process.stdout.readline().strip() == "held"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
