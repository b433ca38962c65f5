#!/usr/bin/env bash
# Makes FUSE usable for the power-cut and storage-fault tests
# (testkit/faultfs, cmd/relay's TestPowerCut and TestFault*): /dev/fuse,
# and Debian's fuse3 for fusermount3, go-fuse's fallback when a direct
# mount or unmount fails. Idempotent; without root it only says that the
# tests will skip (they fail under CI=true).
set -euo pipefail

log() { printf '[fuse] %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
  log "not root: the FUSE tests skip (and fail under CI=true)"
  exit 0
fi
if [ ! -e /dev/fuse ]; then
  modprobe fuse 2>/dev/null || true
fi
if [ ! -e /dev/fuse ] && grep -qw fuse /proc/filesystems; then
  mknod -m 0666 /dev/fuse c 10 229
fi
if ! command -v fusermount3 >/dev/null 2>&1 && ! command -v fusermount >/dev/null 2>&1; then
  log "installing fuse3"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends fuse3 >/dev/null
fi
if [ ! -e /dev/fuse ]; then
  log "/dev/fuse is missing and the kernel has no fuse module"
  exit 1
fi
