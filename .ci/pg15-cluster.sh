# Sourced, not run: starts a throwaway PostgreSQL 15 cluster (Debian's postgresql-15,
# installed when missing) in a temp dir on a free port, password auth, and removes it
# on exit whatever happens (its own EXIT trap, set before initdb). Afterwards: PG_BIN,
# PG_URL (superuser URL, database `postgres`) and PG_PORT are set. Used by pg15.sh and
# image.sh.

PG_BIN=${PG15_BIN:-/usr/lib/postgresql/15/bin}

if [ ! -x "$PG_BIN/initdb" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "pg15-cluster.sh: $PG_BIN/initdb is missing and installing postgresql-15 needs root" >&2
    exit 1
  fi
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15
  # The package starts a default cluster; only the binaries are needed.
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

pg15_cluster_cleanup() {
  if [ -f "$PG_WORK/data/postmaster.pid" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_WORK/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$PG_WORK"
}
PG_WORK=$(mktemp -d "${TMPDIR:-/tmp}/pg15-ci.XXXXXX")
# Before initdb: a start that fails half-way (pg_ctl's -t) leaves nothing running.
# A caller with a trap of its own sets PG15_CLUSTER_TRAP=0 and calls pg15_cluster_cleanup.
[ "${PG15_CLUSTER_TRAP:-1}" = 1 ] && trap pg15_cluster_cleanup EXIT
chmod 0755 "$PG_WORK"
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$PG_WORK"

PG_PASSWORD=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$PG_PASSWORD" >"$PG_WORK/pwfile"
chmod 0644 "$PG_WORK/pwfile"
as_pg "$PG_BIN/initdb" -D "$PG_WORK/data" --auth=password --username=postgres \
  --pwfile="$PG_WORK/pwfile" --encoding=UTF8 --locale=C >"$PG_WORK/initdb.log"
rm -f "$PG_WORK/pwfile"

PG_PORT=$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
as_pg "$PG_BIN/pg_ctl" -D "$PG_WORK/data" -l "$PG_WORK/server.log" -w -t 60 start -o \
  "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$PG_WORK -c fsync=off -c synchronous_commit=off -c max_connections=300"
PG_URL="postgres://postgres:$PG_PASSWORD@127.0.0.1:$PG_PORT/postgres"
echo "pg15-cluster.sh: PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on port $PG_PORT"
