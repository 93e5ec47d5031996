#!/usr/bin/env bash
# The image runs Node 22 LTS and this machine has Node 20: the whole suite again on
# Node 22, a binary from npm's `node` package in a temporary folder (nothing global).
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
npm install --prefix "$WORK" --no-save --no-audit --no-fund --loglevel=error node@22 >/dev/null
BIN="$WORK/node_modules/.bin"
version=$("$BIN/node" --version)
case "$version" in
  v22.*) echo "node22.sh: Node $version" ;;
  *) echo "node22.sh: expected Node 22 from npm's node package, got $version" >&2; exit 1 ;;
esac
PATH="$BIN:$PATH" npm test
