#!/usr/bin/env bash
# The image runs Node 22 LTS and this machine has Node 20: the whole suite again on
# Node 22, a binary from npm's `node` package in a temporary folder (nothing global).
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# shellcheck source=node22-bin.sh
. .ci/node22-bin.sh "$WORK"
PATH="$NODE22_BIN:$PATH" npm test
