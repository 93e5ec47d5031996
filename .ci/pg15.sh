#!/usr/bin/env bash
# Runs the migration and fault tests on PostgreSQL 15 (Debian's postgresql-15),
# the oldest version the service supports; the default test run uses the newest
# the embedded package ships (18). A throwaway cluster (pg15-cluster.sh), removed
# on exit whatever happens. Exits with vitest's status.
#
# The outage test stops and starts a server of its own; RESTARTABLE_PG_BINDIR
# makes it use the same PostgreSQL 15 binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=pg15-cluster.sh
. .ci/pg15-cluster.sh

status=0
TEST_DATABASE_URL="$PG_URL" RESTARTABLE_PG_BINDIR="$PG_BIN" \
  npx vitest run test/migrate test/faults "$@" || status=$?
exit "$status"
