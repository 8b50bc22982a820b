#!/usr/bin/env bash
# Starts a throwaway Postgres and Redis on 127.0.0.1 for the check tests, installing the Debian
# packages first if they are missing. Idempotent: a second run reuses what is running.
#
#   eval "$(.ci/pg-redis.sh)"      # exports CASED_TEST_POSTGRES_URL and CASED_TEST_REDIS_URL
#   .ci/pg-redis.sh stop           # stops both and removes their data
#
# Settings (environment): CASED_PG_PORT (55432), CASED_REDIS_PORT (56379),
# CASED_SERVICES_DIR (/tmp/cased-test-services). Logs go to stderr; stdout is only the exports.
set -euo pipefail

PG_PORT=${CASED_PG_PORT:-55432}
REDIS_PORT=${CASED_REDIS_PORT:-56379}
DIR=${CASED_SERVICES_DIR:-/tmp/cased-test-services}
PG_USER=cased_test
PG_PASSWORD=cased-test-password
PG_DB=cased_test
log() { echo "pg-redis: $*" >&2; }

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
# As root, Postgres must run as another user: the Debian package's `postgres`.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if [ "${1:-}" = stop ]; then
    BIN=$(pg_bin)
    [ -n "$BIN" ] && [ -d "$DIR/pg" ] && as_pg "$BIN/pg_ctl" -D "$DIR/pg" -m immediate stop >&2 || true
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >&2 2>/dev/null || true
    rm -rf "$DIR"
    exit 0
fi

if [ -z "$(pg_bin)" ] || ! command -v redis-server >/dev/null; then
    log "installing postgresql and redis-server"
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q postgresql redis-server >&2
fi
BIN=$(pg_bin)

mkdir -p "$DIR"
chmod 755 "$DIR"
if [ "$(id -u)" = 0 ]; then mkdir -p "$DIR/pg" "$DIR/sock" && chown postgres: "$DIR/pg" "$DIR/sock"; else mkdir -p "$DIR/pg" "$DIR/sock"; fi

if [ ! -f "$DIR/pg/PG_VERSION" ]; then
    log "initdb in $DIR/pg"
    as_pg "$BIN/initdb" -D "$DIR/pg" -U postgres --auth-local=trust --auth-host=scram-sha-256 >/dev/null
fi
if ! as_pg "$BIN/pg_ctl" -D "$DIR/pg" status >/dev/null 2>&1; then
    log "starting postgres on 127.0.0.1:$PG_PORT"
    as_pg "$BIN/pg_ctl" -D "$DIR/pg" -l "$DIR/pg/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$DIR/sock" start >&2
fi
psql_() { as_pg "$BIN/psql" -h "$DIR/sock" -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
if [ "$(psql_ -c "SELECT 1 FROM pg_roles WHERE rolname = '$PG_USER'")" != 1 ]; then
    psql_ -c "CREATE ROLE $PG_USER LOGIN PASSWORD '$PG_PASSWORD'" >&2
fi
if [ "$(psql_ -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != 1 ]; then
    psql_ -c "CREATE DATABASE $PG_DB OWNER $PG_USER" >&2
fi

if ! redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
    log "starting redis on 127.0.0.1:$REDIS_PORT"
    mkdir -p "$DIR/redis"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --save '' --appendonly no \
        --dir "$DIR/redis" --pidfile "$DIR/redis/redis.pid" --logfile "$DIR/redis/redis.log" >&2
    for _ in $(seq 50); do
        redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
        sleep 0.1
    done
fi

echo "export CASED_TEST_POSTGRES_URL=postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB"
echo "export CASED_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT"
