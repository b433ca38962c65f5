#!/usr/bin/env bash
# Builds the systems `go run ./bench peers` compares the relay with, from
# their Go modules at pinned versions, into a scratch directory outside the
# relay's module (they are measuring tools, not dependencies):
#
#   scripts/peers.sh build [minio|benthos]   build them (cached; minutes the first time)
#   scripts/peers.sh path      print the directory holding the binaries
#
# PEERS_DIR overrides the scratch directory (default: $HOME/.cache/bucketrelay-peers).
set -euo pipefail

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c   # github.com/minio/minio, the newest the module proxy serves
BENTHOS_VERSION=v4.60.0                              # github.com/redpanda-data/benthos/v4 (MIT)

DIR=${PEERS_DIR:-$HOME/.cache/bucketrelay-peers}
BIN=$DIR/bin

log() { printf '[peers] %s\n' "$*" >&2; }

build_minio() {
  if [ -x "$BIN/minio" ] && [ "$(cat "$BIN/minio.version" 2>/dev/null)" = "$MINIO_VERSION" ]; then return; fi
  log "building minio $MINIO_VERSION (several minutes the first time)"
  (cd "$DIR" && GOBIN=$BIN GOFLAGS=-mod=mod go install "github.com/minio/minio@$MINIO_VERSION")
  echo "$MINIO_VERSION" > "$BIN/minio.version"
}

build_benthos() {
  if [ -x "$BIN/benthos" ] && [ "$(cat "$BIN/benthos.version" 2>/dev/null)" = "$BENTHOS_VERSION" ]; then return; fi
  log "building benthos $BENTHOS_VERSION with its io and pure components"
  local src=$DIR/benthos-src
  mkdir -p "$src"
  cat > "$src/main.go" <<'GO'
// Command benthos is Benthos with the components the relay's bench uses.
package main

import (
	"context"

	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	"github.com/redpanda-data/benthos/v4/public/service"
)

func main() { service.RunCLI(context.Background()) }
GO
  (cd "$src" && { [ -f go.mod ] || go mod init benchpeers/benthos >/dev/null 2>&1; } \
    && go get "github.com/redpanda-data/benthos/v4@$BENTHOS_VERSION" >/dev/null 2>&1 \
    && go mod tidy >/dev/null 2>&1 && go build -o "$BIN/benthos" .)
  echo "$BENTHOS_VERSION" > "$BIN/benthos.version"
}

mkdir -p "$BIN"
case "${1:-build}" in
  build)
    shift
    for p in ${@:-minio benthos}; do
      case $p in minio|benthos) "build_$p" ;; *) echo "unknown peer $p" >&2; exit 2 ;; esac
    done
    log "binaries in $BIN" ;;
  path) echo "$BIN" ;;
  *) echo "usage: $0 build|path" >&2; exit 2 ;;
esac
