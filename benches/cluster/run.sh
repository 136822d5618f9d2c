#!/usr/bin/env bash
# The cluster fan-out measured on one machine: for each shard count, `plan` the archive, run
# every shard's `extract` (two at a time on 2 cores: each pod of a real cluster has its own
# cores), and report the per-shard wall times, their balance (max / mean), the projected wall
# time at N pods (the slowest shard plus the final run) and the final `run --plan
# --require-cached` from the full cache, with its peak RSS.
#
#   benches/cluster/run.sh ARCHIVE [SHARDS...]      (default shard counts: 8 32 128)
#
# Environment: UNREDEEMED_BIN (default <repo>/target/release/unredeemed), WORK (default a
# temporary folder; the caches, plans and outputs go there), PARALLEL (default 2).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${UNREDEEMED_BIN:-$ROOT/target/release/unredeemed}
ARCHIVE=${1:?usage: benches/cluster/run.sh ARCHIVE [SHARDS...]}
shift
if [ $# -gt 0 ]; then SHARDS=("$@"); else SHARDS=(8 32 128); fi
WORK=${WORK:-$(mktemp -d)}
PARALLEL=${PARALLEL:-2}
[ -x "$BIN" ] || { echo "no binary at $BIN: cargo build --release --locked" >&2; exit 1; }
command -v /usr/bin/time >/dev/null || { echo "/usr/bin/time is required: apt-get install time" >&2; exit 1; }

echo "| shards | objects/shard | shard wall: median, min–max (s) | balance max/mean | shard peak RSS max (MB) | final run (s) | final RSS (MB) | projected wall at N pods (s) |"
echo "|---|---|---|---|---|---|---|---|"
for n in "${SHARDS[@]}"; do
    dir="$WORK/n$n"
    rm -rf "$dir" && mkdir -p "$dir/times"
    "$BIN" plan -q --archive "$ARCHIVE" --cache "$dir/cache" --shards "$n" --plan "$dir/plan.json" >"$dir/table.txt"
    seq 0 $((n - 1)) | xargs -P "$PARALLEL" -I{} \
        /usr/bin/time -f "%e %M" -o "$dir/times/{}" "$BIN" extract -q --plan "$dir/plan.json" --shard {} >/dev/null
    /usr/bin/time -f "%e %M" -o "$dir/final.time" \
        "$BIN" run -q --plan "$dir/plan.json" --require-cached --out "$dir/out" >/dev/null
    python3 - "$dir" "$n" <<'PY'
import json, pathlib, statistics, sys
d, n = pathlib.Path(sys.argv[1]), int(sys.argv[2])
t = [tuple(map(float, (d / "times" / str(i)).read_text().split())) for i in range(n)]
wall = [w for w, _ in t]
rss = max(m for _, m in t) / 1024
fw, fm = map(float, (d / "final.time").read_text().split())
plan = json.loads((d / "plan.json").read_text())
s = json.loads((d / "out" / "summary.json").read_text())
assert s["cache_misses"] == 0 and s["bytes_read"] == 0, s
mean = statistics.mean(wall)
print(f"| {n} | {len(plan['objects']) / n:.1f} | {statistics.median(wall):.2f}, {min(wall):.2f}–{max(wall):.2f} "
      f"| {max(wall) / mean:.2f} | {rss:.0f} | {fw:.2f} | {fm / 1024:.0f} | {max(wall) + fw:.2f} |")
PY
done
echo
echo "work folder: $WORK"
