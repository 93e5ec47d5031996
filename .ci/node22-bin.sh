# Sourced, not run: installs Node 22 from npm's `node` package into "$1"/node22 (nothing
# global) and sets NODE22_BIN to the folder holding its `node`; exits if it is not 22.
# Used by node22.sh and image.sh (the image runs Node 22 LTS; this machine has Node 20).
npm install --prefix "$1/node22" --no-save --no-audit --no-fund --loglevel=error node@22 >/dev/null
NODE22_BIN="$1/node22/node_modules/.bin"
case "$("$NODE22_BIN/node" --version)" in
  v22.*) echo "$(basename "$0"): Node $("$NODE22_BIN/node" --version)" ;;
  *) echo "$(basename "$0"): expected Node 22 from npm's node package, got $("$NODE22_BIN/node" --version)" >&2; exit 1 ;;
esac
