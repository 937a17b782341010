"""Ad-hoc Cypher from strangers (threat model: docs/security.md).

- `mmkg.adhoc.statement`: the read-only grammar, the allowlists and the canonical printer;
- `mmkg.adhoc.worker`: the sandboxed worker process that checks and runs a statement;
- `mmkg.adhoc.pool`: the server side of the workers (spawn, deadline, kill, replace);
- `mmkg.adhoc.runner.AdhocCypher`: the one entry point the HTTP API uses.

This package imports nothing on its own, so the worker can load `statement` without the rest of mmkg.
"""
