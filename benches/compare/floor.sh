#!/usr/bin/env bash
# The job's CPU against the decompression floor, per archive (issue 26, item 2).
#
#   benches/compare/floor.sh [--runs N] [--passes N] ARCHIVE...
#
# For each local Parquet archive:
# 1. run.sh --archive: unredeemed, DuckDB and Python polars alternated (--runs rounds, default 3),
#    their agreement checked; the median CPU-seconds (user + system) of each;
# 2. examples/floor.rs: the page bytes the rule must decompress at least (all of OperationName,
#    of the other columns the pages holding a candidate, zstd and snappy ones and dictionaries
#    up to the last candidate's value)
#    and the time decompressing exactly those takes in one thread, best of --passes (default
#    3); beside it what the job's late reader decompresses, and its whole scan in one thread;
# 3. the job pinned to one CPU (taskset), --runs times: its CPU without the cost of running on two;
# 4. one markdown table: the job's CPU over the floor, and over the faster peer's CPU.
#
# Environment: UNREDEEMED_BIN (default <repo>/target/release/unredeemed), FLOOR_BIN (default
# <repo>/target/release/examples/floor; `cargo build --release --example floor`).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUNS=3 PASSES=3 ARCHIVES=()
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=$2; shift 2 ;;
        --passes) PASSES=$2; shift 2 ;;
        -h|--help) sed -n 2,18p "$0"; exit 0 ;;
        -*) echo "floor.sh: unknown option $1" >&2; exit 2 ;;
        *) ARCHIVES+=("$1"); shift ;;
    esac
done
[ ${#ARCHIVES[@]} -gt 0 ] || { echo "floor.sh: give at least one archive" >&2; exit 2; }
BIN=${UNREDEEMED_BIN:-$ROOT/target/release/unredeemed}
FLOOR=${FLOOR_BIN:-$ROOT/target/release/examples/floor}
for b in "$BIN" "$FLOOR"; do
    [ -x "$b" ] || { echo "floor.sh: no binary at $b (cargo build --release && cargo build --release --example floor, or set UNREDEEMED_BIN / FLOOR_BIN)" >&2; exit 2; }
done
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
ROWS=$WORK/rows.tsv
for a in "${ARCHIVES[@]}"; do
    data=$WORK/$(basename "$a")
    echo "[floor] $a: peers, $RUNS rounds" >&2
    UNREDEEMED_BIN=$BIN "$HERE/run.sh" --archive "$a" --runs "$RUNS" --data "$data" >&2
    echo "[floor] $a: the job on one CPU, $RUNS runs" >&2
    for _ in $(seq "$RUNS"); do
        /usr/bin/time -f '%U %S' -o "$data/one.time" taskset -c 0 "$BIN" run --no-cache -q \
            --archive "$a" --out "$data/one" >/dev/null
        awk '{ print $1 + $2 }' "$data/one.time" >>"$data/one.cpu"
    done
    echo "[floor] $a: floor, best of $PASSES passes" >&2
    "$FLOOR" --passes "$PASSES" "$a" >"$data/floor.json"
    printf '%s\t%s\t%s\t%s\n' "$(basename "$a")" "$(ls "$data"/results/*.tsv)" "$data/floor.json" \
        "$(sort -n "$data/one.cpu" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')" >>"$ROWS"
done
"$HERE/.venv/bin/python" - "$ROWS" <<'EOF'
import csv, json, statistics as st, sys
print("| archive | objects | rows | floor: pages, GB out, CPU s | late reader: pages, GB out, CPU s "
      "| late reader's whole scan, CPU s | job on one CPU, CPU s | job CPU s | **job / floor** "
      "| faster peer CPU s | job / peer | floor / peer |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for name, tsv, floor, one in csv.reader(open(sys.argv[1]), delimiter="\t"):
    rows = list(csv.DictReader(open(tsv), delimiter="\t"))
    cpu = {t: st.median(float(r["cpu_s"]) for r in rows if r["tool"] == t)
           for t in {r["tool"] for r in rows}}
    f = json.load(open(floor))
    job = cpu.pop("unredeemed")
    peer, pcpu = min(cpu.items(), key=lambda kv: kv[1])
    fl, rd = f["floor"], f["reader"]
    m = lambda x: f'{x["pages"]:,}, {x["bytes"] / 1e9:.2f}, {x["seconds"]:.2f}'
    print(f'| {name} | {f["objects"]:,} | {f["rows"]:,} | {m(fl)} | {m(rd)} '
          f'| {f["scan_seconds"]:.2f} | {float(one):.2f} | {job:.2f} '
          f'| **{job / fl["seconds"]:.2f}** | {pcpu:.2f} ({peer}) | {job / pcpu:.2f} '
          f'| {fl["seconds"] / pcpu:.2f} |')
    if f["declined"]:
        print(f'\n{f["declined"]} objects of {name} are not read by the late reader: left out of the floor.')
EOF
