#!/usr/bin/env bash
# make e2e: the browser end-to-end test of the Next-Auth path, for one
# example app: run.sh [APP_DIR] (default examples/nextjs; make e2e runs it
# for examples/nextjs and examples/nextjs-v4).
# Builds sdk/next (@authex/next, which the app installs from ../../sdk/next),
# starts authex --dev (bin/authex, a temporary data file, e2e/authex.yaml:
# access tokens live 4s, the app a confidential client with verifies_nonce),
# builds and starts the app, runs e2e/signin.test.mjs in Debian's chromium,
# stops everything, and checks authex's audit trail for refresh token reuse.
# Non-zero on any failure.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
APP="$(cd "${1:-$ROOT/examples/nextjs}" && pwd)"
E2E="$ROOT/examples/nextjs/e2e"
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
AUTHEX_PORT="${AUTHEX_PORT:-$(free_port)}"
APP_PORT="${APP_PORT:-$(free_port)}"
ARTIFACTS="${ARTIFACTS:-$ROOT/test-artifacts}"
TMP="$(mktemp -d)"
AUTHEX_PID="" APP_PID=""

say() { echo "== e2e: $*"; }

stop() { # stop PID: SIGTERM, then SIGKILL after 10s
  local pid=$1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  stop "$APP_PID"; stop "$AUTHEX_PID"
  if [ $rc -ne 0 ]; then
    mkdir -p "$ARTIFACTS"
    cp "$TMP/authex.log" "$ARTIFACTS/$(basename "$APP")-authex.log" 2>/dev/null || true
    cp "$TMP/next.log" "$ARTIFACTS/$(basename "$APP")-next.log" 2>/dev/null || true
    say "FAILED (rc $rc); logs in $ARTIFACTS"
  fi
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT INT TERM

wait_http() { # wait_http URL NAME PID
  for _ in $(seq 300); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
    kill -0 "$3" 2>/dev/null || { say "$2 exited"; return 1; }
    sleep 0.1
  done
  say "$2 not ready at $1 after 30s"; return 1
}

for port in "$AUTHEX_PORT" "$APP_PORT"; do
  if curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then
    say "port $port is taken (set AUTHEX_PORT / APP_PORT)"; exit 1
  fi
done
[ -x /usr/bin/chromium ] || { say "/usr/bin/chromium missing: apt-get install -y chromium"; exit 1; }
# The app installs @authex/next as a copy of sdk/next (install-links): build
# the package, and reinstall the app when its copy is not this build.
(cd "$ROOT/sdk/next" && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run --silent build)
if ! diff -rq "$ROOT/sdk/next/dist" "$APP/node_modules/@authex/next/dist" >/dev/null 2>&1; then
  say "installing $(basename "$APP")'s dependencies (npm ci)"
  (cd "$APP" && npm ci --no-audit --no-fund)
fi

start=$(date +%s.%N)
say "starting authex --dev on 127.0.0.1:$AUTHEX_PORT"
# The app is authex's confidential client "nextjs" (e2e/authex.yaml).
export AUTHEX_CLIENT_ID=nextjs
export AUTHEX_CLIENT_SECRET="e2e-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
AUTHEX_LISTEN="127.0.0.1:$AUTHEX_PORT" AUTHEX_PUBLIC_URL="http://localhost:$AUTHEX_PORT" \
AUTHEX_BOLT_PATH="$TMP/data/authex.db" AUTHEX_NEXTJS_SECRET="$AUTHEX_CLIENT_SECRET" \
  "$ROOT/bin/authex" serve -config "$E2E/authex.yaml" --dev >"$TMP/authex.log" 2>&1 &
AUTHEX_PID=$!

say "building $(basename "$APP")"
(cd "$APP" && NEXT_TELEMETRY_DISABLED=1 node node_modules/next/dist/bin/next build >"$TMP/next-build.log" 2>&1) ||
  { tail -50 "$TMP/next-build.log"; exit 1; }
wait_http "http://127.0.0.1:$AUTHEX_PORT/readyz" authex "$AUTHEX_PID"

export AUTH_SECRET="e2e-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export NEXTAUTH_SECRET="$AUTH_SECRET" # next-auth v4's name
export AUTHEX_URL="http://localhost:$AUTHEX_PORT"
export APP_URL="http://localhost:$APP_PORT"
say "starting the Next app on $APP_URL"
# node .../next start, not npm start: the PID we hold is the server's.
(cd "$APP" && AUTH_URL="$APP_URL" NEXTAUTH_URL="$APP_URL" AUTHEX_REFRESH_MARGIN=1 NEXT_TELEMETRY_DISABLED=1 \
  exec node node_modules/next/dist/bin/next start -p "$APP_PORT" -H 127.0.0.1 >"$TMP/next.log" 2>&1) &
APP_PID=$!
wait_http "http://127.0.0.1:$APP_PORT/" next "$APP_PID"
ready=$(date +%s.%N)

say "running the browser test"
APP_DIR="$APP" AUTHEX_LOG="$TMP/authex.log" ARTIFACTS="$ARTIFACTS" ACCESS_TTL_SECONDS=4 node "$E2E/signin.test.mjs"
tested=$(date +%s.%N)

stop "$APP_PID"; APP_PID=""
stop "$AUTHEX_PID"; AUTHEX_PID=""
grep -q '"msg":"stopped"' "$TMP/authex.log" || { say "authex did not stop cleanly"; exit 1; }
(cd "$ROOT" && go run ./examples/nextjs/e2e/auditcheck -db "$TMP/data/authex.db" -require nonce.attested)
say "$(basename "$APP") passed: setup $(awk "BEGIN{printf \"%.1f\", $ready - $start}")s, browser test $(awk "BEGIN{printf \"%.1f\", $tested - $ready}")s"
