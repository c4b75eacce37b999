#!/usr/bin/env bash
# Single-node OpenStack Swift ("Swift all in one") on 127.0.0.1 for integration tests
# (from ../shared/recipes, verified): the Swift API for swiftstorage/rackspacestorage and,
# through its s3api middleware, a real S3 API for s3storage. Port 8081, not Swift's usual
# 8080, which is Havarti's default.
#   swift-saio.sh         install if missing, configure, start (idempotent), print auth info
#   swift-saio.sh stop    stop every process this script started (by PID file)
# Env: SWIFT_DIR (state dir, default /tmp/havarti-swift, or /tmp/havarti-swift-$SWIFT_PORT
#      for another port, so two instances never share state), SWIFT_PORT (proxy, default 8081),
#      SWIFT_BASE_PORT (account/container/object = +0/+1/+2, default 6210),
#      SWIFT_MEMCACHE_PORT (private memcached, default 11311),
#      SWIFT_VENV (where Swift from PyPI is installed, default /opt/swift-venv).
# Swift API, tempauth v1: GET http://127.0.0.1:$SWIFT_PORT/auth/v1.0
#      with X-Auth-User: test:tester  X-Auth-Key: testing  -> X-Storage-Url, X-Auth-Token
# S3 API (s3api middleware) on the same port: access key test:tester, secret testing.
set -euo pipefail

log() { echo "swift: $*" >&2; }
PORT=${SWIFT_PORT:-8081}
if [ "$PORT" = 8081 ]; then D=${SWIFT_DIR:-/tmp/havarti-swift}; else D=${SWIFT_DIR:-/tmp/havarti-swift-$PORT}; fi
BP=${SWIFT_BASE_PORT:-6210}
MCPORT=${SWIFT_MEMCACHE_PORT:-11311}
VENV=${SWIFT_VENV:-/opt/swift-venv}
RUN=$D/run LOG=$D/log ETC=$D/etc
SERVERS="account container object proxy"

stop_all() {
  for f in "$RUN"/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f"); kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$f"
  done
}

alive() { [ -s "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

print_info() {
  echo "SWIFT_AUTH_URL=http://127.0.0.1:$PORT/auth/v1.0"
  echo "SWIFT_USER=test:tester"
  echo "SWIFT_KEY=testing"
  echo "SWIFT_TEMPURL_KEY=tempurl-secret"
  echo "S3_ENDPOINT_URL=http://127.0.0.1:$PORT"
  echo "S3_ACCESS_KEY=test:tester"
  echo "S3_SECRET_KEY=testing"
  echo "S3_REGION=us-east-1"
}

if [ "${1:-start}" = stop ]; then stop_all; echo "swift stopped"; exit 0; fi

# Already running and healthy? Then just print the info.
all_up=1; for s in memcached $SERVERS; do alive "$s" || all_up=0; done
if [ $all_up = 1 ] && curl -fsS "http://127.0.0.1:$PORT/healthcheck" >/dev/null 2>&1; then
  print_info; exit 0
fi
stop_all   # clean up a half-started instance

# 1. Install: Swift from PyPI into a venv (pyeclib ships a manylinux wheel), memcached from
#    Debian (tempauth keeps its tokens in memcache). Debian's own swift 2.30.1 also works:
#    apt-get install swift-proxy swift-account swift-container swift-object, and VENV=/usr.
if [ ! -x "$VENV/bin/swift-proxy-server" ]; then
  log "installing Swift 2.38.3 from PyPI into $VENV (about a minute)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'swift==2.38.3'
fi
if ! command -v memcached >/dev/null; then
  log "installing memcached (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends memcached >/dev/null ||
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends memcached >/dev/null; }
fi
export PATH="$VENV/bin:$PATH"

# 2. Configure (once: ports are fixed when $D is first configured; delete $D to start afresh).
mkdir -p "$RUN" "$LOG" "$ETC" "$D/srv/d1"
if [ ! -f "$ETC/object.ring.gz" ]; then
  rm -f "$ETC"/*.builder "$ETC"/*.ring.gz
  cat > "$ETC/swift.conf" <<EOF
[swift-hash]
swift_hash_path_prefix = saio-prefix
swift_hash_path_suffix = saio-suffix
[storage-policy:0]
name = gold
default = yes
EOF
  i=0
  for s in account container object; do
    cat > "$ETC/$s-server.conf" <<EOF
[DEFAULT]
swift_dir = $ETC
devices = $D/srv
mount_check = false
bind_ip = 127.0.0.1
bind_port = $((BP + i))
workers = 0
user = $(id -un)
[pipeline:main]
pipeline = $s-server
[app:$s-server]
use = egg:swift#$s
EOF
    # ring: partition power 6, 1 replica, min_part_hours 1, one device
    ( cd "$ETC" && swift-ring-builder $s.builder create 6 1 1 >/dev/null &&
      swift-ring-builder $s.builder add r1z1-127.0.0.1:$((BP + i))/d1 1 >/dev/null &&
      swift-ring-builder $s.builder rebalance >/dev/null )
    i=$((i + 1))
  done
  cat > "$ETC/proxy-server.conf" <<EOF
[DEFAULT]
swift_dir = $ETC
bind_ip = 127.0.0.1
bind_port = $PORT
workers = 0
user = $(id -un)
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl s3api tempauth copy slo dlo versioned_writes proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
[filter:tempauth]
use = egg:swift#tempauth
user_admin_admin = admin .admin .reseller_admin
user_test_tester = testing .admin
user_test2_tester2 = testing2 .admin
storage_url_scheme = default
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MCPORT
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:tempurl]
use = egg:swift#tempurl
[filter:s3api]
use = egg:swift#s3api
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
EOF
fi

# 3. Start: a private memcached + 4 single-process servers (workers = 0), PIDs in $RUN.
log "starting memcached on 127.0.0.1:$MCPORT and Swift on 127.0.0.1:$PORT (servers $BP-$((BP + 2)), state in $D)"
memcached -l 127.0.0.1 -p "$MCPORT" -U 0 -m 32 -u "$(id -un)" >"$LOG/memcached.log" 2>&1 &
echo $! > "$RUN/memcached.pid"
for s in $SERVERS; do
  # -v: log to stdout as well (there is no syslog socket here)
  swift-$s-server "$ETC/$s-server.conf" -v >"$LOG/$s.log" 2>&1 &
  echo $! > "$RUN/$s.pid"
done

# 4. Wait until auth works and the account exists (~1-3 s). The account key enables tempurl
#    (signed GET URLs); setting it needs an .admin user of the account.
token() {
  curl -fsS -D - -o /dev/null -H 'X-Auth-User: test:tester' -H 'X-Auth-Key: testing' \
    "http://127.0.0.1:$PORT/auth/v1.0" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-auth-token"{print $2}'
}
for _ in $(seq 150); do
  if tok=$(token 2>/dev/null) && [ -n "$tok" ] &&
     curl -fsS -o /dev/null -X POST -H "X-Auth-Token: $tok" \
       -H 'X-Account-Meta-Temp-URL-Key: tempurl-secret' "http://127.0.0.1:$PORT/v1/AUTH_test" 2>/dev/null; then
    print_info; exit 0
  fi
  for s in memcached $SERVERS; do
    alive "$s" || { echo "swift: $s died, see $LOG/$s.log" >&2; tail -20 "$LOG/$s.log" >&2; stop_all; exit 1; }
  done
  sleep 0.2
done
echo "swift: not ready after 30 s, see $LOG" >&2; stop_all; exit 1
