#!/usr/bin/env bash
# Builds the Temporal server and its SQL schema tool at the versions pinned in deploy/temporal-server/go.mod
# (Go module proxy, the installed Go; no Docker). The output folder is keyed by the hash of go.mod and go.sum,
# so a pin change builds anew and an unchanged one is skipped. Prints the folder's path as the last line; it
# holds `temporal-server` and `temporal-sql-tool`. First build about 9 min on 2 cores, a relink seconds.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
module="$root/deploy/temporal-server"

if ! command -v go >/dev/null; then
  echo "build_temporal_server: Go is not installed (needs the version in $module/go.mod)" >&2
  exit 1
fi

key="$(cat "$module/go.mod" "$module/go.sum" | sha256sum | cut -c1-16)"
out="$root/build/temporal-server/$key"
if [ -x "$out/temporal-server" ] && [ -x "$out/temporal-sql-tool" ]; then
  echo "build_temporal_server: up to date ($out)" >&2
else
  echo "build_temporal_server: building with $(go version | cut -d' ' -f3) (first build ~9 min, ~4 GB of caches)" >&2
  start=$(date +%s)
  mkdir -p "$root/build"
  # Built beside the final folder, then moved there: an interrupted build never looks finished.
  staging="$(mktemp -d "$root/build/temporal-server.XXXXXX")"
  chmod 755 "$staging"
  trap 'rm -rf "$staging"' EXIT
  # GOTOOLCHAIN=local: an older Go fails here with the version it needs instead of silently downloading one.
  (cd "$module" && GOTOOLCHAIN=local go build -trimpath -buildvcs=false -o "$staging/" \
    go.temporal.io/server/cmd/server go.temporal.io/server/cmd/tools/sql)
  mv "$staging/server" "$staging/temporal-server"
  mv "$staging/sql" "$staging/temporal-sql-tool"
  mkdir -p "$(dirname "$out")"
  rm -rf "$out"
  mv "$staging" "$out"
  trap - EXIT
  echo "build_temporal_server: built in $(( $(date +%s) - start ))s ($out)" >&2
fi
echo "$out"
