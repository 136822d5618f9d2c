#!/usr/bin/env bash
# The 480-object archive of the performance issue: 4 tenants x 120 days x 25,000 rows a day
# (12.0 M rows) from `unredeemed generate`, cut into four objects a day and rewritten by
# pyarrow with zstd, dictionary, 1 MiB pages, 122,880-row groups and a page index
# (layouts.py pyarrow-zstd): 480 objects of ~3 MB, 1.5 GB.
#
#   benches/compare/archive-480.sh DIR       # then: benches/compare/run.sh --archive DIR
#
# Needs the release build and benches/compare/.venv (run.sh makes it).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DIR=${1:?usage: archive-480.sh DIR}
BIN=${UNREDEEMED_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/unredeemed}
PY=$HERE/.venv/bin/python
[ -x "$BIN" ] || { echo "archive-480.sh: no binary at $BIN (cargo build --release)" >&2; exit 2; }
[ -x "$PY" ] || { echo "archive-480.sh: no $PY (run benches/compare/run.sh once)" >&2; exit 2; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# 26,000 rows an object: a day's ~100,200 rows (the scenario events come on top) in four.
"$BIN" generate --out "$TMP/generator" --tenants 4 --days 120 --rows-per-day 25000 \
    --start 2025-01-01 --seed 1 --rows-per-file 26000 >/dev/null
"$PY" "$HERE/layouts.py" "$TMP/generator" "$DIR" pyarrow-zstd
echo "archive-480.sh: $(find "$DIR" -name '*.parquet' | wc -l) objects in $DIR"
