#!/usr/bin/env bash
# The layout matrix: the same generated content in every writer's layout (layouts.py), each
# compared by run.sh (unredeemed vs DuckDB vs Python polars, alternated, agreement checked).
#
#   benches/compare/matrix.sh [--tenants N] [--days N] [--rows-per-day N] [--invites-per-day N]
#                             [--seed N] [--layouts "generator pyarrow-zstd ..."] [--runs N]
#                             [--floor]
#
# --floor: one table of the job's CPU against the decompression floor and the peers over every
# layout (floor.sh), instead of a comparison per layout.
#
# Defaults: 4 tenants x 120 days x 25,000 rows/day = 12 M rows, every layout, 3 rounds. The
# archives go to benches/compare/data/matrix/<parameters>/<layout>/ and are reused.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TENANTS=4 DAYS=120 ROWS_PER_DAY=25000 INVITES_PER_DAY=3 SEED=1 START=2025-09-01 RUNS=3
LAYOUTS="generator pyarrow-default pyarrow-spark pyarrow-zstd duckdb polars" FLOOR=0
while [ $# -gt 0 ]; do
    case "$1" in
        --tenants) TENANTS=$2; shift 2 ;;
        --days) DAYS=$2; shift 2 ;;
        --rows-per-day) ROWS_PER_DAY=$2; shift 2 ;;
        --invites-per-day) INVITES_PER_DAY=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        --layouts) LAYOUTS=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --floor) FLOOR=1; shift ;;
        -h|--help) sed -n 2,13p "$0"; exit 0 ;;
        *) echo "matrix.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
BIN=${UNREDEEMED_BIN:-$HERE/../../target/release/unredeemed}
[ -x "$BIN" ] || { echo "matrix.sh: no binary at $BIN (cargo build --release, or set UNREDEEMED_BIN)" >&2; exit 2; }
BASE=$HERE/data/matrix/t$TENANTS-d$DAYS-r$ROWS_PER_DAY-i$INVITES_PER_DAY-s$SEED-$START
mkdir -p "$BASE"
if [ ! -f "$BASE/generator.done" ]; then
    rm -rf "$BASE/generator"
    "$BIN" generate --out "$BASE/generator" --tenants "$TENANTS" --days "$DAYS" --start "$START" \
        --rows-per-day "$ROWS_PER_DAY" --invites-per-day "$INVITES_PER_DAY" --seed "$SEED" >&2
    touch "$BASE/generator.done"
fi
# run.sh installs the pinned peers and pyarrow into benches/compare/.venv; a tiny run does it.
PY=$HERE/.venv/bin/python
[ -x "$PY" ] && "$PY" -c "import pyarrow, duckdb, polars" 2>/dev/null ||
    UNREDEEMED_BIN=$BIN "$HERE/run.sh" --archive "$BASE/generator" --runs 1 >/dev/null
for layout in $LAYOUTS; do
    if [ ! -f "$BASE/$layout.done" ]; then
        rm -rf "${BASE:?}/$layout"
        "$PY" "$HERE/layouts.py" "$BASE/generator" "$BASE/$layout" "$layout"
        touch "$BASE/$layout.done"
    fi
    [ "$FLOOR" = 1 ] && continue
    echo "### Layout: $layout ($(du -sh "$BASE/$layout" | cut -f1))"
    echo
    UNREDEEMED_BIN=$BIN "$HERE/run.sh" --archive "$BASE/$layout" --runs "$RUNS"
    echo
done
if [ "$FLOOR" = 1 ]; then
    dirs=()
    for layout in $LAYOUTS; do dirs+=("$BASE/$layout"); done
    UNREDEEMED_BIN=$BIN "$HERE/floor.sh" --runs "$RUNS" "${dirs[@]}"
fi
