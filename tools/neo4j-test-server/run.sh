#!/usr/bin/env bash
# Start mmkg's Neo4j test server (Neo4j 5.26 Community, in process) in the background on
# 127.0.0.1:${NEO4J_TEST_PORT:-7687}, user neo4j, password ${NEO4J_TEST_PASSWORD:-mmkg-test-password}.
# Builds it first when needed (mvn -q package); writes its PID to server.pid; returns once Bolt answers.
# Test-only: users run Neo4j from docker-compose.yml.
#
# Environment (all optional):
#   NEO4J_TEST_PORT       Bolt port (7687)
#   NEO4J_TEST_PASSWORD   password of user neo4j (mmkg-test-password)
#   NEO4J_TEST_HOME       the server's home: conf/, data/, logs/ (target/neo4j-home); emptied at start
#   NEO4J_TEST_KEEP_DATA  1 = keep the home's data (e.g. a database neo4j-admin imported into it)
#   NEO4J_TEST_IMPORT_DIR the folder LOAD CSV reads file:/// URLs from (the home's import/)
#   NEO4J_TEST_PID_FILE   where the PID goes (server.pid beside this script)
#   NEO4J_TEST_HEAP       JVM heap (1g)
#   NEO4J_TEST_TIMEOUT    seconds to wait for Bolt (180)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PORT="${NEO4J_TEST_PORT:-7687}"
PASSWORD="${NEO4J_TEST_PASSWORD:-mmkg-test-password}"
SERVER_HOME="${NEO4J_TEST_HOME:-$HERE/target/neo4j-home}"
IMPORT_DIR="${NEO4J_TEST_IMPORT_DIR:-$SERVER_HOME/import}"
PID_FILE="${NEO4J_TEST_PID_FILE:-$HERE/server.pid}"
HEAP="${NEO4J_TEST_HEAP:-1g}"
TIMEOUT="${NEO4J_TEST_TIMEOUT:-180}"
LOG="$SERVER_HOME/logs/test-server.log"

source "$HERE/lib.sh"

if [ -f "$PID_FILE" ] && is_test_server "$(cat "$PID_FILE")"; then
  echo "neo4j-test-server: already running (PID $(cat "$PID_FILE"), $PID_FILE); stop it with stop.sh" >&2
  exit 1
fi
if bolt_answers "$PORT"; then
  echo "neo4j-test-server: something already answers Bolt on 127.0.0.1:$PORT; set NEO4J_TEST_PORT" >&2
  exit 1
fi

build_if_needed

if [ "${NEO4J_TEST_KEEP_DATA:-0}" != 1 ]; then
  rm -rf "$SERVER_HOME"
fi
mkdir -p "$SERVER_HOME/conf" "$SERVER_HOME/logs" "$IMPORT_DIR"
write_conf "$SERVER_HOME/conf/neo4j.conf" "$IMPORT_DIR"

# Flags Neo4j's own launcher gives its JVM (module access for its off-heap memory and Netty).
nohup java "-Xms$HEAP" "-Xmx$HEAP" -XX:+UseParallelGC -XX:-OmitStackTraceInFastThrow -XX:+DisableExplicitGC \
  -Djdk.nio.maxCachedBufferSize=1024 -Dio.netty.tryReflectionSetAccessible=true -Dlog4j2.disable.jmx=true \
  --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED \
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/java.lang=ALL-UNNAMED \
  -cp "$(class_path)" mmkg.testserver.Main "$SERVER_HOME" "$SERVER_HOME/conf/neo4j.conf" "$PORT" "$PASSWORD" \
  </dev/null >"$LOG" 2>&1 &
PID=$!
echo "$PID" >"$PID_FILE"

deadline=$((SECONDS + TIMEOUT))
until grep -q "neo4j-test-server: ready" "$LOG" 2>/dev/null && bolt_answers "$PORT"; do
  if ! kill -0 "$PID" 2>/dev/null; then
    rm -f "$PID_FILE"
    echo "neo4j-test-server: the server exited before Bolt answered; the end of $LOG:" >&2
    tail -n 30 "$LOG" >&2
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "neo4j-test-server: Bolt did not answer on 127.0.0.1:$PORT within ${TIMEOUT}s (NEO4J_TEST_TIMEOUT);" \
         "stopping PID $PID; the end of $LOG:" >&2
    tail -n 30 "$LOG" >&2
    bash "$HERE/stop.sh" >/dev/null 2>&1 || true
    exit 1
  fi
  sleep 1
done
echo "neo4j-test-server: PID $PID, Bolt on bolt://127.0.0.1:$PORT (user neo4j), log $LOG"
