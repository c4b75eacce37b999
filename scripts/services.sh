#!/usr/bin/env bash
# Starts the services the integration tests need, when they are not running already:
# PostgreSQL and Redis (this machine kind normally has both), and a local OpenStack
# Swift (Swift API + S3 API) for the cloud storage backends. Idempotent.
# Prints KEY=VALUE lines the test suite reads (tests/services.env); says on stderr what
# it installs and starts.
# The local Swift's ports are settable, so two runs on one machine do not collide:
#   SWIFT_PORT (proxy, default 8081), SWIFT_BASE_PORT (account/container/object servers on
#   it, +1, +2; default 6210), SWIFT_MEMCACHE_PORT (default 11311); non-default ports get
#   their own state directory (SWIFT_DIR, default /tmp/havarti-swift[-PORT]).
#   scripts/swift-saio.sh stop (with the same variables) stops that Swift.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

log() { echo "services: $*" >&2; }

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null && ls /etc/postgresql >/dev/null 2>&1; then
    log "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  else
    log "installing PostgreSQL"
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  fi
  for _ in $(seq 50); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.2; done
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  if ! command -v redis-server >/dev/null; then
    log "installing Redis"
    apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
  fi
  log "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.2; done
fi

echo "HAVARTI_TEST_POSTGRES=postgresql://postgres@127.0.0.1:5432/postgres"
echo "HAVARTI_TEST_REDIS=redis://127.0.0.1:6379"

if [ -f "$here/swift-saio.sh" ]; then
  log "Swift on 127.0.0.1:${SWIFT_PORT:-8081} (servers ${SWIFT_BASE_PORT:-6210}-$(( ${SWIFT_BASE_PORT:-6210} + 2 )), memcached ${SWIFT_MEMCACHE_PORT:-11311})"
  bash "$here/swift-saio.sh" | sed 's/^/HAVARTI_TEST_/'
fi
