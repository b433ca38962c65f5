#!/usr/bin/env bash
# Builds the MinIO client (mc) from its Go module, as a test tool outside the
# relay's module, and prints the binary's path. Idempotent: an mc already
# built at the pinned version is reused.
#
#   scripts/mc.sh            # prints e.g. /root/.cache/bucketrelay/mc-<version>/mc
#   MC_GOBIN=/tmp/mc scripts/mc.sh
set -euo pipefail

# The pinned mc version: a pseudo-version, as mc publishes no semver tags.
MC_VERSION=${MC_VERSION:-v0.0.0-20250313080218-cf909e1063a9}
GOBIN_DIR=${MC_GOBIN:-${XDG_CACHE_HOME:-$HOME/.cache}/bucketrelay/mc-$MC_VERSION}
GO=${GO:-go}

if [ -x "$GOBIN_DIR/mc" ]; then
	echo "$GOBIN_DIR/mc"
	exit 0
fi
mkdir -p "$GOBIN_DIR"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# Outside any module, so mc's requirements never touch the relay's go.mod.
(cd "$scratch" && GOFLAGS=-mod=mod GOBIN="$GOBIN_DIR" GOWORK=off "$GO" install "github.com/minio/mc@$MC_VERSION") >&2
echo "$GOBIN_DIR/mc"
