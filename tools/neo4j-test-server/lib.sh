# Shared by run.sh, stop.sh and neo4j-admin (sourced; HERE is this folder).

# True when PID is alive and is this test server's JVM (not a recycled PID).
is_test_server() {
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q "mmkg.testserver.Main"
}

# True when a Bolt server on 127.0.0.1:$1 answers the Bolt handshake with a version it speaks
# (magic 0x6060B017, then four proposals: 5.0-5.4 and 4.4, as big-endian [0, range, minor, major]).
bolt_answers() {
  local reply
  reply="$(timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 \
    && printf '\x60\x60\xb0\x17\x00\x04\x04\x05\x00\x00\x04\x04\x00\x00\x00\x00\x00\x00\x00\x00' >&3 \
    && head -c 4 <&3 | od -An -tx1" 2>/dev/null)" || return 1
  reply="${reply// /}"
  [ -n "$reply" ] && [ "$reply" != "00000000" ]
}

# Build with Maven when the classes or the dependency folder are missing or older than the sources.
build_if_needed() {
  local stamp="$HERE/target/.built"
  if [ ! -f "$stamp" ] || [ "$HERE/pom.xml" -nt "$stamp" ] \
     || [ -n "$(find "$HERE/src" -newer "$stamp" -type f 2>/dev/null)" ]; then
    echo "neo4j-test-server: building with Maven (mvn -q package; the first build downloads Neo4j's jars)"
    mvn -q -B -f "$HERE/pom.xml" package -DskipTests
    touch "$stamp"
  fi
}

class_path() {
  echo "$HERE/target/classes:$HERE/target/lib/*"
}

# neo4j.conf beside this script plus the import folder, written to $1.
write_conf() {
  cp "$HERE/neo4j.conf" "$1"
  echo "server.directories.import=$2" >>"$1"
}
