#!/usr/bin/env bash
# Reproduces the tables of BENCHMARKS.md on this machine:
#   1. the criterion benches (the physical limits: RS256 signing, argon2id, ...),
#   2. the static-body ceiling for JWKS (examples/static_ceiling),
#   3. every load scenario against a release server on SQLite and on PostgreSQL,
#   4. the refresh sweep over concurrency on both stores, drawn as an SVG,
#   5. a login flood (256 concurrent password logins) with the server's peak RSS.
#
# Usage: benches/load.sh [OUT_DIR]        (default: target/bench-results)
# Environment: DURATION (seconds per run, default 20), PG_ADMIN_URL (default
# postgres://postgres@127.0.0.1:5432/postgres), SKIP_CRITERION=1, SKIP_PG=1.
# Everything listens on loopback; nothing here is part of the test run.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT="${1:-target/bench-results}"
DURATION="${DURATION:-20}"
PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
PORT=18080
CEILING_PORT=18081
BIN=target/release/latchkey
LOAD=target/release/examples/load
mkdir -p "$OUT"
CSV="$OUT/load.csv"
rm -f "$CSV"

echo "== build (release)"
cargo build --release --bin latchkey --example load --example chart --example static_ceiling

machine() {
    echo "date:    $(date -u +%FT%TZ)"
    echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
    echo "memory:  $(free -g | awk '/Mem:/ {print $2}') GiB"
    echo "kernel:  $(uname -r)"
    echo "rustc:   $(rustc --version)"
    echo "pg:      $(psql "$PG_ADMIN_URL" -tAc 'SHOW server_version' 2>/dev/null || echo none)"
    echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min, before the runs)"
}
machine | tee "$OUT/machine.txt"

if [ "${SKIP_CRITERION:-0}" != 1 ]; then
    echo "== criterion"
    cargo bench --bench crypto -- --noplot 2>&1 | tee "$OUT/criterion.txt" | grep -E '^[a-z0-9_/]+ *$|time:' || true
fi

# Where the CPU goes: ticks (1/100 s) of the server, of every PostgreSQL
# process, and of the whole machine, read from /proc around each run.
ticks_of() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_ticks() {
    local sum=0 pid
    for pid in $(pgrep -x postgres || true); do sum=$((sum + $(ticks_of "$pid"))); done
    echo "$sum"
}
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }

# run_measured FILE DRIVER-ARGS...: one driver run, its report in FILE, and a
# line saying how many milliseconds of CPU each successful request cost the
# server, PostgreSQL, and everything else (the driver, mostly).
run_measured() {
    local file="$1"
    shift
    local s0 p0 b0 s1 p1 b1 ok
    s0=$(ticks_of "$SERVER_PID") p0=$(pg_ticks) b0=$(busy_ticks)
    "$LOAD" "$@" | tee "$file"
    s1=$(ticks_of "$SERVER_PID") p1=$(pg_ticks) b1=$(busy_ticks)
    ok=$(sed -nE 's/^requests +[0-9]+ \(([0-9]+) ok.*/\1/p' "$file" | tail -n 1)
    awk -v s=$((s1 - s0)) -v p=$((p1 - p0)) -v b=$((b1 - b0)) -v n="${ok:-0}" 'BEGIN {
        if (n == 0) exit
        printf "cpu          server %.3f ms, postgres %.3f ms, rest %.3f ms per successful request\n",
            s * 10 / n, p * 10 / n, (b - s - p) * 10 / n
    }' | tee -a "$file"
    echo
}

SERVER_PID=""
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
trap stop_server EXIT

wait_ready() {
    for _ in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "server on port $1 did not come up" >&2
    exit 1
}

# wrk (Debian package `wrk`), when installed, as a second client for the
# static-body ceiling and JWKS: it spends less CPU per request than the
# driver, so on a shared machine it shows more of what the server can do.
wrk_run() {
    local label="$1" url="$2"
    if command -v wrk >/dev/null 2>&1; then
        echo "-- wrk, $label"
        wrk -t2 -c64 -d"${DURATION}s" --latency "$url" | tee "$OUT/wrk-$label.txt" \
            | grep -E "Requests/sec|99%|Non-2xx|Socket errors" || true
    fi
}

# Introspection under wrk: one client-credentials token, introspected over
# and over with client_secret_basic (a Lua script sets method, body, headers).
wrk_introspect() {
    local label="$1" id="$2" secret="$3"
    command -v wrk >/dev/null 2>&1 || return 0
    local basic token script="$OUT/introspect-$label.lua"
    basic=$(printf '%s:%s' "$id" "$secret" | base64 -w0)
    token=$(curl -fsS -H "Authorization: Basic $basic" -d grant_type=client_credentials \
        "http://127.0.0.1:$PORT/oauth/token" | jq -r .access_token)
    cat >"$script" <<LUA
wrk.method = "POST"
wrk.body = "token=$token"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $basic"
LUA
    echo "-- wrk, introspect-$label"
    wrk -t2 -c64 -d"${DURATION}s" --latency -s "$script" "http://127.0.0.1:$PORT/oauth/introspect" \
        | tee "$OUT/wrk-introspect-$label.txt" | grep -E "Requests/sec|99%|Non-2xx|Socket errors" || true
    rm -f "$script"
}

# The ceiling: a bare actix-web server with a body the size of latchkey's JWKS.
echo "== static ceiling"
target/release/examples/static_ceiling "$CEILING_PORT" >/dev/null &
SERVER_PID=$!
wait_ready "$CEILING_PORT"
"$LOAD" jwks --url "http://127.0.0.1:$CEILING_PORT" --concurrency 64 --requests 100000000 \
    --duration-secs "$DURATION" --label ceiling --csv "$CSV" | tee "$OUT/ceiling.txt"
wrk_run ceiling "http://127.0.0.1:$CEILING_PORT/.well-known/jwks.json"
stop_server

# One backend: a fresh store and keys folder, clients made with the CLI, then
# every scenario, the refresh sweep and, on SQLite, the login flood.
run_backend() {
    local label="$1" url="$2"
    local dir="$OUT/$label"
    rm -rf "$dir" && mkdir -p "$dir"
    export LATCHKEY__DATABASE__URL="$url"
    export LATCHKEY__KEYS__DIR="$dir/keys"
    export LATCHKEY__SERVER__PORT="$PORT"
    export LATCHKEY__DEMO__ENABLED=false
    # Access logs go to a file, as under journald; the run measures them too.
    "$BIN" migrate >/dev/null
    local public confidential secret
    public=$("$BIN" clients create --json --name bench-public --kind public \
        --grants password,refresh_token --scopes openid,email,api | jq -r .client_id)
    confidential=$("$BIN" clients create --json --name bench-service --kind confidential \
        --grants client_credentials --scopes read | jq -cr '[.client_id, .client_secret] | @tsv')
    secret=$(cut -f2 <<<"$confidential")
    confidential=$(cut -f1 <<<"$confidential")
    "$BIN" serve 2>"$dir/server.log" >/dev/null &
    SERVER_PID=$!
    wait_ready "$PORT"

    local common=(--url "http://127.0.0.1:$PORT" --duration-secs "$DURATION" --requests 100000000
        --csv "$CSV" --server-pid "$SERVER_PID"
        --public-client-id "$public" --client-id "$confidential")
    export LATCHKEY_LOAD_CLIENT_SECRET="$secret"
    # Sessions with scope `api`: each refresh signs one access token, as a
    # third-party API consumer's does. With `openid email` it also signs an
    # id_token and reads the user, measured once at 64 chains below.
    local c
    for c in 1 4 16 64 128; do
        echo "== $label: refresh, $c chains"
        run_measured "$dir/refresh-$c.txt" refresh "${common[@]}" --label "$label" --scope api --concurrency "$c"
    done
    echo "== $label: refresh with openid email, 64 chains"
    run_measured "$dir/refresh-openid.txt" refresh "${common[@]}" --label "$label-openid" \
        --scope "openid email" --concurrency 64
    for scenario in client-credentials introspect jwks; do
        echo "== $label: $scenario"
        run_measured "$dir/$scenario.txt" "$scenario" "${common[@]}" --label "$label" --concurrency 64
    done
    wrk_run "jwks-$label" "http://127.0.0.1:$PORT/.well-known/jwks.json"
    wrk_introspect "$label" "$confidential" "$secret"
    echo "== $label: password (64 concurrent logins over 64 users)"
    run_measured "$dir/password.txt" password "${common[@]}" --label "$label" --concurrency 64
    if [ "$label" = sqlite ]; then
        echo "== $label: login flood (256 concurrent logins) — peak RSS"
        run_measured "$dir/flood.txt" password "${common[@]}" --concurrency 256 --users 64 --label flood
    fi
    stop_server
    unset LATCHKEY_LOAD_CLIENT_SECRET
}

run_backend sqlite "sqlite://$OUT/sqlite/latchkey.db"

if [ "${SKIP_PG:-0}" != 1 ]; then
    db="latchkey_bench"
    psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
    run_backend postgres "${PG_ADMIN_URL%/*}/$db"
    psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
fi

echo "== chart"
target/release/examples/chart --csv "$CSV" --out "$OUT/refresh-sweep.svg"
echo "results: $OUT (load.csv, refresh-sweep.svg, per-backend text, criterion.txt)"
