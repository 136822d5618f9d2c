#!/usr/bin/env bash
# End-to-end comparison of `unredeemed run` with an equivalent DuckDB SQL query and an equivalent
# Python polars script on the same generated AuditLogs archive (see README.md beside this file).
#
#   benches/compare/run.sh [options]
#
# 1. installs the pinned peers (requirements.txt) into benches/compare/.venv;
# 2. generates the archive with `unredeemed generate` into benches/compare/data/ (reused when one
#    with the same parameters is already there), unless --archive is given;
# 3. runs unredeemed, duckdb, polars alternately (A B C A B C ...) under /usr/bin/time -v;
# 4. checks after the first round that all three agree on findings and baseline (agree.py), and
#    stops with the mismatches (exit 1) if not;
# 5. prints a markdown table (median wall time, median peak RSS, ratios, machine) and saves it
#    with the raw timings under benches/compare/data/results/.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

TENANTS=5 DAYS=180 ROWS_PER_DAY=11200 INVITES_PER_DAY=3 START=2025-09-01 SEED=1
RUNS=3 ARCHIVE="" DATA="$HERE/data" FORMAT=parquet

usage() {
    cat <<EOF
Usage: benches/compare/run.sh [options]

  --rows-per-day N     AuditLogs rows per tenant and day (default $ROWS_PER_DAY; 5 x 180 x 11200 ~ 10 M rows)
  --tenants N          tenants (default $TENANTS)
  --days N             days of logs (default $DAYS)
  --invites-per-day N  guest invites per tenant and day (default $INVITES_PER_DAY)
  --start YYYY-MM-DD   first day (default $START)
  --seed N             generator seed (default $SEED)
  --runs N             alternating rounds, each runs all three tools once (default $RUNS)
  --format F           parquet (default) or diag-json (Entra diagnostic-settings JSON Lines, one
                       blob per tenant and hour): the generator's format and the peers' reader
  --archive DIR        use this existing archive instead of generating one
  --data DIR           where archives, run outputs and results go (default benches/compare/data)
  -h, --help           this help

Environment: UNREDEEMED_BIN (default <repo>/target/release/unredeemed), PYTHON (default python3,
used only to create the virtualenv).
EOF
}

while [ $# -gt 0 ]; do
    case "$1" in
        --rows-per-day) ROWS_PER_DAY=$2; shift 2 ;;
        --tenants) TENANTS=$2; shift 2 ;;
        --days) DAYS=$2; shift 2 ;;
        --invites-per-day) INVITES_PER_DAY=$2; shift 2 ;;
        --start) START=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --archive) ARCHIVE=$2; shift 2 ;;
        --format) FORMAT=$2; shift 2 ;;
        --data) DATA=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --runs must be a positive integer" >&2; exit 2; }
case "$FORMAT" in
    parquet) EXT=parquet ;;
    diag-json) EXT=json ;;
    *) echo "run.sh: --format must be parquet or diag-json" >&2; exit 2 ;;
esac

log() { echo "[compare] $*" >&2; }

# --- the binary --------------------------------------------------------------------------------
BIN=${UNREDEEMED_BIN:-$ROOT/target/release/unredeemed}
if [ ! -x "$BIN" ]; then
    echo "run.sh: no unredeemed binary at $BIN" >&2
    echo "        build it first:  (cd $ROOT && cargo build --release)" >&2
    echo "        or point UNREDEEMED_BIN at one." >&2
    exit 2
fi
[ -x /usr/bin/time ] || { echo "run.sh: /usr/bin/time is needed (apt-get install time)" >&2; exit 2; }

# --- the peers' virtualenv (pinned; reinstalled when requirements.txt changes) -------------------
VENV=$HERE/.venv
PY=$VENV/bin/python
REQ_SUM=$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)
if [ ! -x "$PY" ] || [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$REQ_SUM" ]; then
    log "installing the peers (requirements.txt) into $VENV"
    rm -rf "$VENV"
    "${PYTHON:-python3}" -m venv "$VENV"
    "$PY" -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
    echo "$REQ_SUM" >"$VENV/.requirements.sha256"
fi

# --- the archive -------------------------------------------------------------------------------
mkdir -p "$DATA"
if [ -n "$ARCHIVE" ]; then
    [ -d "$ARCHIVE" ] || { echo "run.sh: no archive folder $ARCHIVE" >&2; exit 2; }
    ARCHIVE_DESC="given archive \`$ARCHIVE\`"
else
    GEN_ARGS=(--tenants "$TENANTS" --days "$DAYS" --start "$START" --rows-per-day "$ROWS_PER_DAY"
              --invites-per-day "$INVITES_PER_DAY" --seed "$SEED" --format "$FORMAT")
    KEY="t$TENANTS-d$DAYS-r$ROWS_PER_DAY-i$INVITES_PER_DAY-s$SEED-$START-$FORMAT"
    ARCHIVE=$DATA/archives/$KEY
    STAMP=$DATA/archives/$KEY.done
    if [ -f "$STAMP" ] && [ -d "$ARCHIVE" ]; then
        log "reusing $ARCHIVE"
    else
        log "generating $ARCHIVE"
        rm -rf "$ARCHIVE" "$STAMP"
        mkdir -p "$DATA/archives"
        "$BIN" generate --out "$ARCHIVE" "${GEN_ARGS[@]}" >&2
        echo "unredeemed generate ${GEN_ARGS[*]}" >"$STAMP"
    fi
    ARCHIVE_DESC="\`unredeemed generate ${GEN_ARGS[*]}\`"
fi
ARCHIVE=$(cd "$ARCHIVE" && pwd -P)  # absolute, symlinks resolved
FILES=$(find "$ARCHIVE" -name "*.$EXT" -type f | wc -l)
[ "$FILES" -gt 0 ] || { echo "run.sh: no *.$EXT under $ARCHIVE" >&2; exit 2; }
SIZE_MB=$(du -sm "$ARCHIVE" | cut -f1)

# --- the runs ----------------------------------------------------------------------------------
RUNDIR=$DATA/runs
mkdir -p "$RUNDIR" "$DATA/results"
STAMP_UTC=$(date -u +%Y%m%dT%H%M%SZ)
TIMINGS=$DATA/results/$STAMP_UTC.tsv
printf 'round\ttool\twall_s\tcpu_s\tpeak_rss_kb\n' >"$TIMINGS"

measure() {  # round tool
    local round=$1 tool=$2 out=$RUNDIR/$2 tv=$RUNDIR/$2.time t0 t1 wall cpu rss
    local -a cmd
    case "$tool" in
        # --no-cache: every round scans the archive, as the peers do (reruns are measured apart).
        unredeemed) cmd=("$BIN" run --archive "$ARCHIVE" --out "$out" --quiet --no-cache) ;;
        duckdb) cmd=("$PY" "$HERE/peer_duckdb.py" "$ARCHIVE" "$out" --format "$FORMAT") ;;
        polars) cmd=("$PY" "$HERE/peer_polars.py" "$ARCHIVE" "$out" --format "$FORMAT") ;;
    esac
    rm -rf "$out"
    t0=$(date +%s%N)
    if ! /usr/bin/time -v -o "$tv" "${cmd[@]}" >"$RUNDIR/$tool.log" 2>&1; then
        echo "run.sh: $tool failed (round $round): ${cmd[*]}" >&2
        tail -n 30 "$RUNDIR/$tool.log" >&2
        exit 1
    fi
    t1=$(date +%s%N)
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$tv")
    # CPU-seconds (user + system): what the run cost, less moved by other load than wall time.
    cpu=$(awk -F': ' '/(User|System) time \(seconds\)/ { s += $2 } END { printf "%.3f", s }' "$tv")
    printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$tool" "$wall" "$cpu" "$rss" >>"$TIMINGS"
    log "round $round/$RUNS  $(printf '%-10s' "$tool") ${wall} s  cpu ${cpu} s  $((rss / 1024)) MiB"
}

log "warming the page cache ($SIZE_MB MB in $FILES files)"
find "$ARCHIVE" -name "*.$EXT" -type f -exec cat {} + >/dev/null

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
TOOLS=(unredeemed duckdb polars)
for round in $(seq 1 "$RUNS"); do
    for tool in "${TOOLS[@]}"; do
        measure "$round" "$tool"
    done
    if [ "$round" = 1 ]; then
        log "checking that the three agree"
        if ! "$PY" "$HERE/agree.py" "$RUNDIR/unredeemed" duckdb="$RUNDIR/duckdb" polars="$RUNDIR/polars" >&2; then
            echo "run.sh: the tools DISAGREE (details above); no timings reported" >&2
            exit 1
        fi
    fi
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the report --------------------------------------------------------------------------------
ROWS=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["rows_scanned"])' "$RUNDIR/unredeemed/summary.json")
AGREE=$("$PY" "$HERE/agree.py" "$RUNDIR/unredeemed" duckdb="$RUNDIR/duckdb" polars="$RUNDIR/polars" | tail -n 1)
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MEM_GB=$(awk '/^MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
VERSIONS=$("$PY" -c 'import sys, duckdb, polars; print(f"python {sys.version.split()[0]}, duckdb {duckdb.__version__}, polars {polars.__version__}")')
REPORT=$DATA/results/$STAMP_UTC.md

export TIMINGS ROWS FILES SIZE_MB ARCHIVE_DESC RUNS CPU MEM_GB VERSIONS AGREE LOAD_BEFORE LOAD_AFTER STAMP_UTC
export NPROC=$(nproc) KERNEL=$(uname -sr) UNREDEEMED_VERSION=$("$BIN" --version)
"$PY" - >"$REPORT" <<'EOF'
import csv, os, statistics as st

e = os.environ
rows = list(csv.DictReader(open(e["TIMINGS"]), delimiter="\t"))
tools = ["unredeemed", "duckdb", "polars"]
wall = {t: [float(r["wall_s"]) for r in rows if r["tool"] == t] for t in tools}
rss = {t: [int(r["peak_rss_kb"]) / 1024 for r in rows if r["tool"] == t] for t in tools}
cpu = {t: [float(r["cpu_s"]) for r in rows if r["tool"] == t] for t in tools}
mw = {t: st.median(wall[t]) for t in tools}
mc = {t: st.median(cpu[t]) for t in tools}
mr = {t: st.median(rss[t]) for t in tools}
what = {"unredeemed": "`unredeemed run` (Rust, polars)", "duckdb": "DuckDB SQL (peer_duckdb.py)",
        "polars": "Python polars (peer_polars.py)"}
print(f"### unredeemed vs DuckDB vs polars, {int(e['ROWS']):,} rows ({e['STAMP_UTC']})")
print()
print(f"Archive: {e['ARCHIVE_DESC']}: {int(e['ROWS']):,} rows, {e['FILES']} files, {e['SIZE_MB']} MB. "
      f"Default intended semantics, as-of = latest TimeGenerated, lookback 14d, threshold 5d.")
print(f"Median of {e['RUNS']} alternating rounds (unredeemed, duckdb, polars, ...), page cache warm; "
      "wall time end to end (process start to exit), CPU (user + system) and peak RSS from `/usr/bin/time -v`.")
print()
print("| tool | median wall (s) | wall min–max (s) | median CPU (s) | median peak RSS (MiB) |")
print("| --- | ---: | ---: | ---: | ---: |")
for t in tools:
    print(f"| {what[t]} | {mw[t]:.2f} | {min(wall[t]):.2f}–{max(wall[t]):.2f} | {mc[t]:.2f} | {mr[t]:.0f} |")
print()
# Each round's ratio, then their median and spread: rounds alternate, so a ratio pairs runs
# made under the same load.
print("| ratio | wall | wall, per round (median, min–max) | CPU | peak RSS |")
print("| --- | ---: | ---: | ---: | ---: |")
for p in ["duckdb", "polars"]:
    r = [a / b for a, b in zip(wall["unredeemed"], wall[p])]
    print(f"| unredeemed / {p} | {mw['unredeemed'] / mw[p]:.2f} | {st.median(r):.2f} ({min(r):.2f}–{max(r):.2f}) "
          f"| {mc['unredeemed'] / mc[p]:.2f} | {mr['unredeemed'] / mr[p]:.2f} |")
print()
print(f"Agreement: {e['AGREE']}")
print()
print(f"Machine: {e['NPROC']} CPUs ({e['CPU']}), {e['MEM_GB']} GiB RAM, {e['KERNEL']}; "
      f"load average {e['LOAD_BEFORE']} before, {e['LOAD_AFTER']} after. "
      f"{e['UNREDEEMED_VERSION']} (release build), {e['VERSIONS']}; every tool uses all CPUs.")
EOF
echo
cat "$REPORT"
echo
log "saved $REPORT (raw timings: $TIMINGS)"
