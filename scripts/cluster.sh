#!/usr/bin/env bash
# Builds nats-server from its Go module at a pinned version and runs a
# three-node JetStream cluster on loopback, for the relay's cluster mode,
# its tests and `make cluster-demo`.
#
#   scripts/cluster.sh bin          build if needed, print the binary's path
#   scripts/cluster.sh start        start every node not running
#   scripts/cluster.sh stop         stop every node (SIGTERM, then wait)
#   scripts/cluster.sh kill N       kill -9 node N (1..3)
#   scripts/cluster.sh restart N    start node N again (after kill or stop)
#   scripts/cluster.sh status       one line per node: pid, ports, health
#   scripts/cluster.sh urls         the client URLs, comma-separated
#
# Settings (environment):
#   CLUSTER_DIR          data, configs, logs and pids (default /tmp/bucketrelay-cluster)
#   CLUSTER_CLIENT_PORT  first client port, nodes use +0..+2 (default 14222)
#   CLUSTER_ROUTE_PORT   first route port (default 16222)
#   CLUSTER_HTTP_PORT    first monitoring port (default 18222)
#   SYNC_INTERVAL        JetStream sync_interval: "always" (default: fsync
#                        before every acknowledgement) or a duration such
#                        as 2m (the server's own default; see README)
#   NATS_SERVER_BIN      use this binary instead of building one
#
# The binary is cached under ${XDG_CACHE_HOME:-~/.cache}/bucketrelay and
# named nats-server-v<version>, so that `pgrep -x nats-server` (the
# Debian server that scripts/services.sh runs on port 4222) never matches it.
set -euo pipefail

NATS_SERVER_VERSION=v2.15.2
DIR=${CLUSTER_DIR:-/tmp/bucketrelay-cluster}
CPORT=${CLUSTER_CLIENT_PORT:-14222}
RPORT=${CLUSTER_ROUTE_PORT:-16222}
HPORT=${CLUSTER_HTTP_PORT:-18222}
SYNC=${SYNC_INTERVAL:-always}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/bucketrelay/nats-server-$NATS_SERVER_VERSION
NODES="1 2 3"

log() { printf '[cluster] %s\n' "$*" >&2; }

bin() {
  if [ -n "${NATS_SERVER_BIN:-}" ]; then echo "$NATS_SERVER_BIN"; return; fi
  local b=$CACHE/nats-server-$NATS_SERVER_VERSION
  if [ ! -x "$b" ]; then
    mkdir -p "$CACHE"
    # Test packages run in parallel and may all ask at once: one builds,
    # the others wait for it.
    exec 9>"$CACHE/.build.lock"
    flock 9
    if [ ! -x "$b" ]; then
      log "building nats-server $NATS_SERVER_VERSION into $CACHE (about 2 minutes)"
      # Outside any module, so the relay's go.mod is neither read nor changed.
      (cd "$CACHE" && GOBIN="$CACHE" GOFLAGS=-buildvcs=false GO111MODULE=on \
        go install "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION")
      mv "$CACHE/nats-server" "$b"
    fi
    flock -u 9
  fi
  echo "$b"
}

node_ok() { [ "$1" = 1 ] || [ "$1" = 2 ] || [ "$1" = 3 ] || { log "node must be 1, 2 or 3, not $1"; exit 2; }; }
pidfile() { echo "$DIR/n$1.pid"; }
running() { local p; p=$(cat "$(pidfile "$1")" 2>/dev/null) && kill -0 "$p" 2>/dev/null; }

config() { # N
  local n=$1 routes="" i
  for i in $NODES; do routes="$routes    nats-route://127.0.0.1:$((RPORT + i - 1))
"; done
  cat > "$DIR/n$n.conf" <<EOF
server_name: n$n
listen: 127.0.0.1:$((CPORT + n - 1))
http: 127.0.0.1:$((HPORT + n - 1))
jetstream {
  store_dir: "$DIR/n$n"
  sync_interval: $SYNC
}
cluster {
  name: bucketrelay
  listen: 127.0.0.1:$((RPORT + n - 1))
  routes: [
$routes  ]
}
EOF
}

wait_port() { # port
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  log "port $1 did not open; see $DIR/n*.log"; return 1
}

start_node() { # N
  local n=$1 b
  if running "$n"; then return; fi
  b=$(bin)
  mkdir -p "$DIR/n$n"
  config "$n"
  nohup "$b" -c "$DIR/n$n.conf" >>"$DIR/n$n.log" 2>&1 &
  echo $! > "$(pidfile "$n")"
  log "node $n: pid $!, client 127.0.0.1:$((CPORT + n - 1))"
}

# wait_healthy: every running node answers /healthz once JetStream has a
# meta leader (the cluster formed).
wait_healthy() {
  local n
  for n in $NODES; do
    running "$n" || continue
    wait_port $((CPORT + n - 1))
    for _ in $(seq 1 200); do
      curl -fsS "http://127.0.0.1:$((HPORT + n - 1))/healthz" >/dev/null 2>&1 && break
      sleep 0.1
    done
  done
}

stop_node() { # N
  local n=$1 p
  p=$(cat "$(pidfile "$n")" 2>/dev/null) || return 0
  if kill -0 "$p" 2>/dev/null; then
    kill -TERM "$p"
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p"
  fi
  rm -f "$(pidfile "$n")"
}

status() {
  local n p h
  for n in $NODES; do
    if running "$n"; then
      p=$(cat "$(pidfile "$n")")
      h=$(curl -fsS "http://127.0.0.1:$((HPORT + n - 1))/healthz" 2>/dev/null || echo unhealthy)
      echo "n$n running pid=$p client=127.0.0.1:$((CPORT + n - 1)) health=$h"
    else
      echo "n$n stopped"
    fi
  done
}

urls() {
  local n out=""
  for n in $NODES; do out="$out${out:+,}nats://127.0.0.1:$((CPORT + n - 1))"; done
  echo "$out"
}

mkdir -p "$DIR"
case "${1:-}" in
  bin) bin ;;
  start) bin >/dev/null; for n in $NODES; do start_node "$n"; done; wait_healthy; log "sync_interval $SYNC; urls $(urls)" ;;
  stop) for n in $NODES; do stop_node "$n"; done ;;
  kill) node_ok "${2:-}"; p=$(cat "$(pidfile "$2")" 2>/dev/null || true); [ -n "$p" ] && kill -KILL "$p" 2>/dev/null || true; rm -f "$(pidfile "$2")"; log "node $2 killed" ;;
  restart) node_ok "${2:-}"; stop_node "$2"; start_node "$2"; wait_healthy ;;
  status) status ;;
  urls) urls ;;
  *) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
