#!/usr/bin/env bash
# The job over storage latency: one archive in Azurite, read directly and through a proxy that
# adds a fixed delay to every request and connection (examples/latency_proxy.rs), in
# alternating rounds. Prints the median wall time, CPU and peak RSS of each, the ratio to the
# direct run, and checks that every run found the same.
#
#   benches/latency/run.sh [--objects 1000|10000] [--format parquet|diag-json] [--delays "25 100"]
#                          [--runs 3] [-- EXTRA JOB ARGS]
#
# Needs: node_modules (npm ci: Azurite), .venv (tests/storage/requirements.txt: the container
# is made with its Azure client), /usr/bin/time, a release build of the job and of the proxy
# (`cargo build --release --bins --example latency_proxy`; UNREDEEMED_BIN picks another job).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OBJECTS=1000 FORMAT=parquet DELAYS="25 100" RUNS=3 EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        --objects) OBJECTS=$2; shift 2 ;;
        --format) FORMAT=$2; shift 2 ;;
        --delays) DELAYS=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --) shift; EXTRA=("$@"); break ;;
        -h|--help) sed -n 2,12p "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${UNREDEEMED_BIN:-$TARGET/release/unredeemed}
PROXY=$TARGET/release/examples/latency_proxy
for f in "$BIN" "$PROXY" "$ROOT/node_modules/.bin/azurite-blob" "$ROOT/.venv/bin/python" /usr/bin/time; do
    [ -x "$f" ] || { echo "run.sh: missing $f (see the comment at the top of this script)" >&2; exit 2; }
done

# The same rows (5 tenants, 200 days, one object a day) split in 1,000 or 10,000 objects.
case "$FORMAT:$OBJECTS" in
    parquet:1000) GEN=(--tenants 5 --days 200 --rows-per-day 1000 --rows-per-file 1000) ;;
    parquet:10000) GEN=(--tenants 5 --days 200 --rows-per-day 1000 --rows-per-file 100) ;;
    diag-json:1000) GEN=(--tenants 1 --days 42 --rows-per-day 1000 --format diag-json) ;;  # 1,008 hourly blobs
    diag-json:10000) GEN=(--tenants 5 --days 84 --rows-per-day 1000 --format diag-json) ;; # 10,080
    *) echo "run.sh: --format parquet|diag-json, --objects 1000|10000" >&2; exit 2 ;;
esac

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
log() { echo "[latency] $*" >&2; }

port() { "$ROOT/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
AZ_PORT=$(port)
"$ROOT/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$AZ_PORT" \
    --inMemoryPersistence --skipApiVersionCheck --loose --disableTelemetry --silent >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$AZ_PORT") 2>/dev/null && break; sleep 0.1; done
kill -0 "${PIDS[0]}" 2>/dev/null || { echo "run.sh: Azurite did not start" >&2; exit 1; }
DIRECT=http://127.0.0.1:$AZ_PORT
"$ROOT/.venv/bin/python" "$ROOT/tests/storage/bucket.py" azure "$DIRECT" create logs

log "generating ${GEN[*]} into Azurite"
AZURE_STORAGE_USE_EMULATOR=true AZURITE_BLOB_STORAGE_URL=$DIRECT \
    "$BIN" generate --out az://logs/audit --start 2025-01-01 --seed 1 "${GEN[@]}" >/dev/null

declare -A ENDPOINT=([direct]=$DIRECT)
WAYS=(direct)
for d in $DELAYS; do
    "$PROXY" 127.0.0.1:0 "127.0.0.1:$AZ_PORT" "$d" >"$WORK/proxy-$d.out" &
    PIDS+=($!)
    for _ in $(seq 100); do grep -q listening "$WORK/proxy-$d.out" 2>/dev/null && break; sleep 0.05; done
    ENDPOINT[$d ms]=http://$(awk '{ print $3 }' "$WORK/proxy-$d.out")
    WAYS+=("$d ms")
done

printf 'round\tway\twall_s\tcpu_s\tpeak_rss_kb\tin_flight\n' >"$WORK/timings.tsv"
for round in $(seq "$RUNS"); do
    for way in "${WAYS[@]}"; do
        out=$WORK/out-${way// /}
        rm -rf "$out"
        t0=$(date +%s%N)
        AZURE_STORAGE_USE_EMULATOR=true AZURITE_BLOB_STORAGE_URL=${ENDPOINT[$way]} \
            /usr/bin/time -v -o "$WORK/time" "$BIN" run --archive az://logs/audit --out "$out" \
            --quiet --no-cache "${EXTRA[@]}" >/dev/null 2>"$WORK/stderr" \
            || { cat "$WORK/stderr" >&2; exit 1; }
        t1=$(date +%s%N)
        wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
        cpu=$(awk -F': ' '/(User|System) time \(seconds\)/ { s += $2 } END { printf "%.3f", s }' "$WORK/time")
        rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$WORK/time")
        # The most objects fetched ahead at once (summary.json).
        ahead=$(grep -o '"objects_in_flight": *[0-9]*' "$out/summary.json" | grep -o '[0-9]*$' || echo -)
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$way" "$wall" "$cpu" "$rss" "$ahead" >>"$WORK/timings.tsv"
        log "round $round/$RUNS  $(printf '%-7s' "$way") $wall s  cpu $cpu s  $((rss / 1024)) MiB  $ahead in flight"
        # Every way finds the same: findings and baseline, byte for byte.
        if [ "$way" != direct ]; then
            for f in $(cd "$WORK/out-direct" && find . -name '*.csv' -o -name '*.parquet' | sort); do
                cmp -s "$WORK/out-direct/$f" "$out/$f" || { echo "run.sh: $way differs from direct in $f" >&2; exit 1; }
            done
        fi
    done
done

"$ROOT/.venv/bin/python" - "$WORK/timings.tsv" "$FORMAT" "$OBJECTS" <<'PY'
import csv, statistics as st, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
ways = list(dict.fromkeys(r["way"] for r in rows))
col = lambda w, k: [float(r[k]) for r in rows if r["way"] == w]
print(f"### {sys.argv[3]} {sys.argv[2]} objects in Azurite, median of {len(col(ways[0], 'wall_s'))} alternating rounds")
print()
print("| way | wall (s) | wall min–max | CPU (s) | peak RSS (MiB) | objects in flight | wall / direct, per round (median, min–max) |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for w in ways:
    wall, cpu, rss = col(w, "wall_s"), col(w, "cpu_s"), col(w, "peak_rss_kb")
    r = [a / b for a, b in zip(wall, col("direct", "wall_s"))]
    print(f"| {w} | {st.median(wall):.2f} | {min(wall):.2f}–{max(wall):.2f} | {st.median(cpu):.2f} | "
          f"{st.median(rss) / 1024:.0f} | {'/'.join(sorted({r['in_flight'] for r in rows if r['way'] == w}))} | {st.median(r):.2f} ({min(r):.2f}–{max(r):.2f}) |")
print()
print("Findings and baseline identical in every run.")
PY
