#!/usr/bin/env bash
# Signing on the actix workers (`tokens.signing = "inline"`) against signing
# on the dedicated pool (`"pool"`): refresh chains at 32 and 128 connections,
# on SQLite and on PostgreSQL, rounds alternating inline, pool, inline, pool,
# ... on the same store and keys, so that whatever else runs on the machine
# weighs on both alike. Prints one line per run and, at the end, the median
# requests/s and p99 of each mode, store and concurrency.
#
# Usage: benches/signing.sh [OUT_DIR]      (default: target/bench-results/signing)
# Environment: DURATION (seconds per run, default 15), ROUNDS (default 3),
# MODES (default "inline pool"; a mode may end in -wN to run the server with
# N actix workers, e.g. "inline-w4 pool", the control for "more threads"),
# ALGORITHM (RS256, ES256 or EdDSA; default RS256), STORES (default
# "sqlite postgres"), PG_ADMIN_URL (default
# postgres://postgres@127.0.0.1:5432/postgres), NO_BUILD=1 to use the release
# binaries as they are. Everything listens on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT="${1:-target/bench-results/signing}"
DURATION="${DURATION:-15}"
ROUNDS="${ROUNDS:-3}"
ALGORITHM="${ALGORITHM:-RS256}"
STORES="${STORES:-sqlite postgres}"
MODES="${MODES:-inline pool}"
PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
PORT="${PORT:-18090}"
BIN=target/release/latchkey
LOAD=target/release/examples/load
mkdir -p "$OUT"
CSV="$OUT/signing.csv"
RESULTS="$OUT/results.tsv"
rm -f "$CSV"
printf 'store\talg\tmode\tround\tchains\trps\tp50_ms\tp99_ms\terrors\tserver_cpu_ms\tload1\tidle_pct\n' >"$RESULTS"

if [ "${NO_BUILD:-0}" != 1 ]; then
    cargo build --release --bin latchkey --example load
fi

ticks_of() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# Idle and total ticks of the whole machine: how much CPU nobody wanted.
idle_total() { awk '/^cpu / { print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }

SERVER_PID=""
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
trap stop_server EXIT

start_server() {
    local mode="$1" log="$2" workers=0
    case "$mode" in *-w*) workers="${mode##*-w}" ;; esac
    LATCHKEY__TOKENS__SIGNING="${mode%%-w*}" LATCHKEY__SERVER__WORKERS="$workers" \
        "$BIN" serve 2>"$log" >/dev/null &
    SERVER_PID=$!
    for _ in $(seq 1 300); do
        curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "server ($mode) on port $PORT did not come up; see $log" >&2
    exit 1
}

# One store: fresh database and keys, one public client, then the rounds.
run_store() {
    local store="$1" url="$2"
    local dir="$OUT/$store-$ALGORITHM"
    rm -rf "$dir" && mkdir -p "$dir"
    export LATCHKEY__DATABASE__URL="$url"
    export LATCHKEY__KEYS__DIR="$dir/keys"
    export LATCHKEY__KEYS__ALGORITHM="$ALGORITHM"
    export LATCHKEY__SERVER__PORT="$PORT"
    export LATCHKEY__DEMO__ENABLED=false
    # Every chain signs up a user at set-up; the default limit per address
    # would refuse the 129th.
    export LATCHKEY__THROTTLE__SIGNUP_MAX_PER_ADDRESS=1000000
    "$BIN" migrate >/dev/null
    local public
    public=$("$BIN" clients create --json --name bench-signing --kind public \
        --grants password,refresh_token --scopes api | jq -r .client_id)
    local round mode chains file s0 s1 load1 i0 i1
    for round in $(seq 1 "$ROUNDS"); do
        for mode in $MODES; do
            load1=$(cut -d' ' -f1 /proc/loadavg)
            echo "== $store $ALGORITHM round $round $mode; uptime: $(uptime)" | tee -a "$OUT/uptime.txt"
            start_server "$mode" "$dir/server-$mode-$round.log"
            for chains in 32 128; do
                file="$dir/$mode-$round-$chains.txt"
                s0=$(ticks_of "$SERVER_PID")
                i0=$(idle_total)
                "$LOAD" refresh --url "http://127.0.0.1:$PORT" --public-client-id "$public" \
                    --scope api --concurrency "$chains" --duration-secs "$DURATION" \
                    --requests 100000000 --server-pid "$SERVER_PID" --csv "$CSV" \
                    --label "$store-$mode" >"$file"
                s1=$(ticks_of "$SERVER_PID")
                i1=$(idle_total)
                tail -n 1 "$CSV" | awk -F, -v store="$store" -v alg="$ALGORITHM" -v mode="$mode" \
                    -v round="$round" -v ticks=$((s1 - s0)) -v load1="$load1" \
                    -v i0="$i0" -v i1="$i1" '{
                        cpu = $4 > 0 ? ticks * 10 / $4 : 0
                        split(i0, a, " "); split(i1, b, " ")
                        idle = b[2] > a[2] ? 100 * (b[1] - a[1]) / (b[2] - a[2]) : 0
                        printf "%s\t%s\t%s\t%s\t%s\t%.0f\t%.1f\t%.1f\t%s\t%.3f\t%s\t%.1f\n",
                            store, alg, mode, round, $3, $6, $7, $9, $11, cpu, load1, idle
                    }' | tee -a "$RESULTS"
            done
            stop_server
        done
    done
}

for store in $STORES; do
    case "$store" in
    sqlite) run_store sqlite "sqlite://$OUT/sqlite-$ALGORITHM/latchkey.db" ;;
    postgres)
        db="latchkey_signing_bench"
        psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
        run_store postgres "${PG_ADMIN_URL%/*}/$db"
        psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
        ;;
    *) echo "unknown store $store (sqlite or postgres)" >&2; exit 2 ;;
    esac
done

# Medians over the rounds (the middle one of three; the mean of the two
# middle ones for an even count).
echo
echo "median over $ROUNDS rounds ($ALGORITHM, $DURATION s per run):"
printf 'store\tmode\tchains\treq/s [each round]\tp99 ms\tserver CPU ms/req\tidle %%\n'
python3 - "$RESULTS" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
groups = {}
for r in rows:
    groups.setdefault((r["store"], r["chains"], r["mode"]), []).append(r)
for (store, chains, mode), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], int(kv[0][1]), kv[0][2])):
    med = lambda k: statistics.median(float(r[k]) for r in rs)
    each = " ".join(r["rps"] for r in rs)
    print(f"{store}\t{mode}\t{chains}\t{med('rps'):.0f} [{each}]\t{med('p99_ms'):.1f}\t{med('server_cpu_ms'):.3f}\t{med('idle_pct'):.1f}")
PY
