"""Run raw statements inside an ad-hoc worker's sandbox, without the grammar (as if a statement had slipped
past it): `python sandbox_probe.py CONFIG_JSON < statements.json`; prints one JSON line per statement, each
on a fresh connection as the worker uses, after a first line with the sandbox layers."""
from __future__ import annotations

import json
import sys

from mmkg.adhoc import worker


def main() -> None:
    config = json.loads(sys.argv[1])
    statements = json.loads(sys.stdin.read())
    layers, database = worker._lock_in(config)
    import ladybug

    print(json.dumps({"layers": layers}), flush=True)
    for text in statements:
        connection = ladybug.Connection(database, num_threads=1)
        header, rows = worker._run(connection, text, {}, {"timeout_s": 5, "max_rows": 100, "max_bytes": 100_000})
        connection.close()
        print(json.dumps({"statement": text, "header": header, "rows": rows.decode("utf-8")}), flush=True)


if __name__ == "__main__":
    main()
