#!/usr/bin/env bash
# Stop the Neo4j test server that run.sh started, by the PID in server.pid (NEO4J_TEST_PID_FILE).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PID_FILE="${NEO4J_TEST_PID_FILE:-$HERE/server.pid}"
source "$HERE/lib.sh"

if [ ! -f "$PID_FILE" ]; then
  echo "neo4j-test-server: not running (no $PID_FILE)"
  exit 0
fi
PID="$(cat "$PID_FILE")"
if ! is_test_server "$PID"; then
  echo "neo4j-test-server: PID $PID is not running (or not the test server); removing $PID_FILE"
  rm -f "$PID_FILE"
  exit 0
fi
kill -TERM "$PID"
for _ in $(seq 1 60); do  # the shutdown hook stops Neo4j cleanly; give it a minute
  kill -0 "$PID" 2>/dev/null || break
  sleep 1
done
if kill -0 "$PID" 2>/dev/null; then
  echo "neo4j-test-server: PID $PID did not stop within 60 s; killing it" >&2
  kill -KILL "$PID" 2>/dev/null || true
fi
rm -f "$PID_FILE"
echo "neo4j-test-server: stopped PID $PID"
