#!/usr/bin/env bash
# Load benchmark of the reference server: authenticated `GET /me` and `POST /orders`,
# once on embedded SQLite and once on PostgreSQL + Redis (the scale-out configuration).
#
# For each configuration it starts the release binary on loopback with a fresh data
# directory (and, for PostgreSQL, a schema it creates and drops, and a Redis key prefix of
# its own that it deletes afterwards), registers a user, grants it the trader role and the
# account ACC-1 with the `roles grant` and `accounts grant` subcommands, logs in, and measures each route at CONNECTIONS connections for
# DURATION seconds, printing requests/s, p50 and p99. Every step is bounded in time; the
# server, the schema, the Redis keys and the temporary files are removed on exit.
#
# Rate limits are raised far above the offered load (the limiter still runs on every
# request, in memory or in Redis): with the defaults (`api` 10 r/s per principal) the run
# would only measure 429 answers.
#
# Usage: scripts/load.sh [sqlite] [postgres]       (both when none is given)
#
# Environment (defaults in brackets):
#   DURATION      seconds per route [10]
#   CONNECTIONS   concurrent connections [32]
#   THREADS       load generator threads [2]
#   WARMUP        seconds of unmeasured load before each route [2]
#   POSTGRES_URL  an existing database to create the schema in
#                 [$FINSEC_TEST_POSTGRES_URL or postgres://postgres@127.0.0.1:5432/postgres]
#   REDIS_URL     [$FINSEC_TEST_REDIS_URL or redis://127.0.0.1:6379]
#   SERVER_LOG    RUST_LOG of the server [info] (its own start-up lines stay at info)
#   NO_BUILD      set to 1 to use the binary already built
#   SERVER_BIN    the server binary to measure (implies NO_BUILD) [target/release/...]
#   LOADGEN       oha or wrk [whichever is installed; wrk is installed with apt-get, or oha
#                 with cargo, when neither is]
set -euo pipefail

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-2}
POSTGRES_URL=${POSTGRES_URL:-${FINSEC_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}}
REDIS_URL=${REDIS_URL:-${FINSEC_TEST_REDIS_URL:-redis://127.0.0.1:6379}}
SERVER_LOG=${SERVER_LOG:-info}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${SERVER_BIN:-"$ROOT/target/release/finsec-reference-server"}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/finsec-load.XXXXXX")
SERVER_PID=""
SCHEMA=""
PREFIX=""

log() { printf '%s\n' "$*" >&2; }
die() {
    log "load.sh: $*"
    exit 1
}

cleanup() {
    set +e
    stop_server
    drop_backends
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

configs=("$@")
[ ${#configs[@]} -eq 0 ] && configs=(sqlite postgres)
for c in "${configs[@]}"; do
    case $c in sqlite | postgres) ;; *) die "unknown configuration '$c' (sqlite or postgres)" ;; esac
done
for tool in curl jq timeout; do
    command -v "$tool" >/dev/null || die "$tool is required"
done

# --- the load generator -----------------------------------------------------------------
pick_loadgen() {
    if [ -n "${LOADGEN:-}" ]; then
        command -v "$LOADGEN" >/dev/null || die "LOADGEN=$LOADGEN is not installed"
        return
    fi
    if command -v oha >/dev/null; then
        LOADGEN=oha
    elif command -v wrk >/dev/null; then
        LOADGEN=wrk
    elif command -v apt-get >/dev/null && [ "$(id -u)" -eq 0 ]; then
        log "installing wrk with apt-get"
        timeout 300 apt-get install -y wrk >/dev/null 2>&1 ||
            { timeout 300 apt-get update >/dev/null 2>&1 && timeout 300 apt-get install -y wrk >/dev/null; } ||
            die "apt-get install wrk failed"
        LOADGEN=wrk
    else
        log "installing oha with cargo (a few minutes)"
        timeout 1800 cargo install --locked oha >/dev/null || die "cargo install oha failed"
        LOADGEN=oha
    fi
}

# Runs the load: measure NAME METHOD URL [BODY]. Prints one result line.
measure() {
    local name=$1 method=$2 url=$3 body=${4:-}
    local out="$WORK/$LOADGEN-${name//[^a-z]/_}.out" limit=$((DURATION + WARMUP + 60))
    case $LOADGEN in
    wrk)
        local lua="$WORK/request.lua"
        {
            printf 'wrk.method = "%s"\n' "$method"
            printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$TOKEN"
            if [ -n "$body" ]; then
                printf 'wrk.headers["Content-Type"] = "application/json"\n'
                printf 'wrk.body = [[%s]]\n' "$body"
            fi
        } >"$lua"
        if [ "$WARMUP" -gt 0 ]; then
            timeout "$limit" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s "$lua" "$url" >/dev/null
        fi
        timeout "$limit" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$lua" "$url" >"$out" ||
            die "wrk failed on $name"
        local rps p50 p99 total bad
        rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
        p50=$(awk '$1 == "50%" {print $2}' "$out")
        p99=$(awk '$1 == "99%" {print $2}' "$out")
        total=$(awk '/requests in/ {print $1}' "$out")
        bad=$(awk '/Non-2xx or 3xx responses:/ {print $5}' "$out")
        errors=$(awk '/Socket errors:/ {print}' "$out")
        report "$name" "$rps" "$p50" "$p99" "$total" "${bad:-0}" "$errors"
        ;;
    oha)
        local args=(-c "$CONNECTIONS" --no-tui --output-format json -m "$method"
            -H "Authorization: Bearer $TOKEN")
        [ -n "$body" ] && args+=(-T application/json -d "$body")
        if [ "$WARMUP" -gt 0 ]; then
            timeout "$limit" oha "${args[@]}" -z "${WARMUP}s" "$url" >/dev/null
        fi
        timeout "$limit" oha "${args[@]}" -z "${DURATION}s" "$url" >"$out" || die "oha failed on $name"
        local rps p50 p99 total bad
        rps=$(jq -r '.summary.requestsPerSec | floor' "$out")
        p50=$(jq -r '.latencyPercentiles.p50 * 1000 | . * 100 | round / 100 | tostring + "ms"' "$out")
        p99=$(jq -r '.latencyPercentiles.p99 * 1000 | . * 100 | round / 100 | tostring + "ms"' "$out")
        total=$(jq -r '[.statusCodeDistribution[]] | add // 0' "$out")
        bad=$(jq -r '[.statusCodeDistribution | to_entries[] | select(.key | test("^[23]") | not) | .value] | add // 0' "$out")
        report "$name" "$rps" "$p50" "$p99" "$total" "$bad" ""
        ;;
    esac
}

report() {
    local name=$1 rps=$2 p50=$3 p99=$4 total=$5 bad=$6 errors=$7
    printf '%-9s %-13s %10s req/s   p50 %9s   p99 %9s   (%s requests, %s not 2xx)\n' \
        "$CONFIG" "$name" "$rps" "$p50" "$p99" "$total" "$bad"
    [ -n "$errors" ] && log "  $errors"
    if [ "$bad" != 0 ]; then
        log "  $bad answers were not 2xx; a run with errors is not a measurement"
        FAILED=1
    fi
}

# --- the server -------------------------------------------------------------------------
server_args() {
    # Orders of a day count together toward the approval threshold; a threshold no run
    # reaches keeps every measured order on the accepted path (approval is not measured).
    SERVER_ARGS=(--data-dir "$WORK/data-$CONFIG" --rate-limits "$WORK/rate-limits.toml" --registration open
        --approval-notional 1000000000000000)
    if [ "$CONFIG" = postgres ]; then
        local sep='?'
        case $POSTGRES_URL in *\?*) sep='&' ;; esac
        SERVER_ARGS+=(--postgres-url "${POSTGRES_URL}${sep}options[search_path]=$SCHEMA"
            --redis-url "$REDIS_URL" --redis-prefix "$PREFIX")
    fi
}

start_server() {
    local log_file="$WORK/server-$CONFIG.log"
    # The start-up line (which names the address) is logged by the server at info level.
    RUST_LOG="$SERVER_LOG,finsec_reference_server=info" NO_COLOR=1 "$BIN" --listen 127.0.0.1:0 "${SERVER_ARGS[@]}" \
        </dev/null >"$log_file" 2>&1 &
    SERVER_PID=$!
    local deadline=$((SECONDS + 60))
    BASE=""
    while [ -z "$BASE" ]; do
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$log_file" >&2; die "the server exited at start"; }
        [ $SECONDS -ge $deadline ] && { cat "$log_file" >&2; die "the server did not listen within 60 s"; }
        BASE=$(grep -o 'listening on http://[0-9.:]*' "$log_file" | head -n1 | sed 's|listening on http://||') || true
        [ -z "$BASE" ] && sleep 0.2
    done
    log "[$CONFIG] server $SERVER_PID listening on $BASE"
}

stop_server() {
    [ -z "$SERVER_PID" ] && return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    local deadline=$((SECONDS + 20))
    while kill -0 "$SERVER_PID" 2>/dev/null; do
        if [ $SECONDS -ge $deadline ]; then
            kill -KILL "$SERVER_PID" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

create_backends() {
    SCHEMA="finsec_load_$$_$RANDOM"
    PREFIX="finsec-load-$$-$RANDOM:"
    command -v psql >/dev/null || die "psql is required for the postgres configuration"
    command -v redis-cli >/dev/null || die "redis-cli is required for the postgres configuration"
    timeout 30 psql "$POSTGRES_URL" -qAtc "CREATE SCHEMA $SCHEMA" >/dev/null ||
        die "cannot create schema $SCHEMA at $POSTGRES_URL"
    timeout 10 redis-cli -u "$REDIS_URL" PING >/dev/null || die "redis at $REDIS_URL does not answer"
}

drop_backends() {
    if [ -n "$SCHEMA" ]; then
        timeout 30 psql "$POSTGRES_URL" -qAtc "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null ||
            log "could not drop schema $SCHEMA"
        SCHEMA=""
    fi
    if [ -n "$PREFIX" ]; then
        timeout 60 redis-cli -u "$REDIS_URL" --scan --pattern "${PREFIX}*" |
            timeout 60 xargs -r -n 500 redis-cli -u "$REDIS_URL" DEL >/dev/null ||
            log "could not delete the keys under $PREFIX"
        PREFIX=""
    fi
}

# POST JSON: call PATH BODY [TOKEN] -> body on stdout, fails unless 2xx.
call() {
    local path=$1 body=$2 token=${3:-}
    local auth=()
    [ -n "$token" ] && auth=(-H "Authorization: Bearer $token")
    curl -sS --fail-with-body --max-time 30 -H 'Content-Type: application/json' "${auth[@]}" \
        -d "$body" "http://$BASE$path" || die "POST $path failed"
}

prepare_user() {
    local user="load.trader" password="load test passphrase 7d1f0a"
    local credentials
    credentials=$(jq -nc --arg u "$user" --arg p "$password" '{username: $u, password: $p}')
    call /auth/register "$credentials" >/dev/null
    timeout 60 "$BIN" roles grant "$user" trader "${SERVER_ARGS[@]}" >/dev/null ||
        die "roles grant failed"
    timeout 60 "$BIN" accounts grant "$user" ACC-1 "${SERVER_ARGS[@]}" >/dev/null ||
        die "accounts grant failed"
    TOKEN=$(call /auth/login "$credentials" | jq -er .access_token) || die "login gave no token"
    # A token that works, and an order the trader may place, before measuring.
    curl -sS --fail --max-time 10 -H "Authorization: Bearer $TOKEN" "http://$BASE/me" >/dev/null ||
        die "GET /me refused the token"
    call /orders "$ORDER" "$TOKEN" >/dev/null
}

ORDER='{"symbol":"AAPL","side":"buy","order_type":"limit","quantity":"10","limit_price":"100.00","account_id":"ACC-1"}'

cat >"$WORK/rate-limits.toml" <<'EOF'
[[global]]
per = "ip"
limit = 10000000
period = "1s"

[[auth]]
per = "ip"
limit = 10000000
period = "1s"

[[login]]
per = "ip"
limit = 10000000
period = "1m"

[[login]]
per = "account"
limit = 10000000
period = "1m"

[[api]]
per = "key"
limit = 10000000
period = "1s"
EOF

# --- main -------------------------------------------------------------------------------
if [ "${NO_BUILD:-0}" != 1 ] && [ -z "${SERVER_BIN:-}" ]; then
    log "building the release server"
    (cd "$ROOT" && timeout 3600 cargo build --release --quiet -p finsec-reference-server) ||
        die "build failed"
fi
[ -x "$BIN" ] || die "$BIN is missing"
pick_loadgen
log "load generator: $LOADGEN, $CONNECTIONS connections, $THREADS threads, ${DURATION}s per route (after ${WARMUP}s warm-up), $(nproc) cores"

FAILED=0
for CONFIG in "${configs[@]}"; do
    [ "$CONFIG" = postgres ] && create_backends
    server_args
    start_server
    prepare_user
    measure "GET /me" GET "http://$BASE/me"
    measure "POST /orders" POST "http://$BASE/orders" "$ORDER"
    stop_server
    drop_backends
done
exit "$FAILED"
