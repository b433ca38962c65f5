#!/usr/bin/env bash
# Installs (Debian packages) and starts the real servers the tests and
# benchmarks use, on loopback. Idempotent; runs as root without systemd.
#
#   scripts/services.sh install            install every package
#   scripts/services.sh start [NAME...]    start servers (default: all)
#   scripts/services.sh stop NAME...       stop servers
#
# NAME is one of: rabbitmq mosquitto redis nats postgres mariadb.
set -euo pipefail

ALL="rabbitmq mosquitto redis nats postgres mariadb"
PKGS="rabbitmq-server mosquitto mosquitto-clients redis-server nats-server postgresql postgresql-client mariadb-server mariadb-client kcat"

log() { printf '[services] %s\n' "$*" >&2; }

wait_port() { # host port name
  for _ in $(seq 1 120); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.5
  done
  log "$3 did not open $1:$2"; return 1
}

install() {
  local missing=()
  for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Keep package scripts from starting services: we start them ourselves.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

start_rabbitmq() {
  if ! rabbitmqctl -q status >/dev/null 2>&1; then
    log "starting rabbitmq"
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 rabbitmq-server -detached
  fi
  wait_port 127.0.0.1 5672 rabbitmq
  rabbitmqctl -q await_startup >/dev/null 2>&1 || true
  rabbitmqctl -q add_user relay relay 2>/dev/null || true
  rabbitmqctl -q set_permissions -p / relay '.*' '.*' '.*' >/dev/null
}
stop_rabbitmq() { rabbitmqctl -q stop >/dev/null 2>&1 || true; }

start_mosquitto() {
  if ! pgrep -x mosquitto >/dev/null; then
    log "starting mosquitto"
    printf 'listener 1883 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n' > /tmp/relay-mosquitto.conf
    mosquitto -d -c /tmp/relay-mosquitto.conf
  fi
  wait_port 127.0.0.1 1883 mosquitto
}
# wait_gone NAME: wait until no process of that name is left (pkill returns at once).
wait_gone() {
  for _ in $(seq 1 100); do pgrep -x "$1" >/dev/null || return 0; sleep 0.1; done
  pkill -9 -x "$1" || true
}
stop_mosquitto() { pkill -x mosquitto || true; wait_gone mosquitto; }

start_redis() {
  if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
    log "starting redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no >/dev/null
  fi
  wait_port 127.0.0.1 6379 redis
}
stop_redis() { redis-cli -h 127.0.0.1 shutdown nosave >/dev/null 2>&1 || true; }

start_nats() {
  if ! pgrep -x nats-server >/dev/null; then
    log "starting nats-server with JetStream"
    mkdir -p /tmp/relay-nats
    nohup nats-server -a 127.0.0.1 -p 4222 -js -sd /tmp/relay-nats >/tmp/relay-nats.log 2>&1 &
  fi
  wait_port 127.0.0.1 4222 nats
}
stop_nats() { pkill -x nats-server || true; wait_gone nats-server; }

start_postgres() {
  log "starting postgresql"
  service postgresql start >/dev/null
  wait_port 127.0.0.1 5432 postgres
  su postgres -c "psql -qtAc \"ALTER USER postgres PASSWORD 'password'\"" >/dev/null
  su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='minio_events'\"" | grep -q 1 ||
    su postgres -c "createdb minio_events"
}
stop_postgres() { service postgresql stop >/dev/null || true; }

start_mariadb() {
  log "starting mariadb"
  service mariadb start >/dev/null
  wait_port 127.0.0.1 3306 mariadb
  mysql -uroot -e "CREATE DATABASE IF NOT EXISTS miniodb; CREATE USER IF NOT EXISTS 'relay'@'127.0.0.1' IDENTIFIED BY 'password'; CREATE USER IF NOT EXISTS 'relay'@'localhost' IDENTIFIED BY 'password'; GRANT ALL ON *.* TO 'relay'@'127.0.0.1'; GRANT ALL ON *.* TO 'relay'@'localhost'; FLUSH PRIVILEGES;"
}
stop_mariadb() { service mariadb stop >/dev/null || true; }

cmd=${1:-start}; shift || true
names=${*:-$ALL}
case "$cmd" in
  install) install ;;
  start) for n in $names; do "start_$n"; done ;;
  stop) for n in $names; do "stop_$n"; done ;;
  *) echo "usage: $0 install | start [NAME...] | stop NAME..." >&2; exit 2 ;;
esac
