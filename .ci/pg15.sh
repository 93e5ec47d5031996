#!/usr/bin/env bash
# Runs the migration and fault tests on PostgreSQL 15 (Debian's postgresql-15),
# the oldest version the service supports; the default test run uses the newest
# the embedded package ships (18). A throwaway cluster in a temp dir, on a free
# port, removed on exit whatever happens. Exits with vitest's status.
#
# The outage test stops and starts a server of its own; RESTARTABLE_PG_BINDIR
# makes it use the same PostgreSQL 15 binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_BIN=${PG15_BIN:-/usr/lib/postgresql/15/bin}

if [ ! -x "$PG_BIN/initdb" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "pg15.sh: $PG_BIN/initdb is missing and installing postgresql-15 needs root" >&2
    exit 1
  fi
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15
  # The package starts a default cluster; this script needs only the binaries.
  pg_ctlcluster 15 main stop 2>/dev/null || true
fi

# PostgreSQL refuses to run as root: run it as `postgres`, created if missing.
if [ "$(id -u)" -eq 0 ]; then
  if ! id postgres >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --shell /usr/sbin/nologin postgres
  fi
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pg15-ci.XXXXXX")
chmod 0755 "$WORK"
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$WORK"
DATA="$WORK/data"

cleanup() {
  if [ -f "$DATA/postmaster.pid" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PASSWORD=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$PASSWORD" >"$WORK/pwfile"
chmod 0644 "$WORK/pwfile"
as_pg "$PG_BIN/initdb" -D "$DATA" --auth=password --username=postgres \
  --pwfile="$WORK/pwfile" --encoding=UTF8 --locale=C >"$WORK/initdb.log"
rm -f "$WORK/pwfile"

PORT=$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
as_pg "$PG_BIN/pg_ctl" -D "$DATA" -l "$WORK/server.log" -w -t 60 start -o \
  "-p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$WORK -c fsync=off -c synchronous_commit=off -c max_connections=300"

echo "pg15.sh: PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on port $PORT"
status=0
TEST_DATABASE_URL="postgres://postgres:$PASSWORD@127.0.0.1:$PORT/postgres" \
  RESTARTABLE_PG_BINDIR="$PG_BIN" \
  npx vitest run test/migrate test/faults "$@" || status=$?
exit "$status"
