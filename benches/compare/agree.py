"""Check that unredeemed and its peers agree on findings and baseline.

    agree.py UNREDEEMED_OUT NAME=PEER_OUT [NAME=PEER_OUT ...]

UNREDEEMED_OUT is an `unredeemed run --out` folder (tenant=*/findings.parquet,
baseline/time_to_redeem.parquet, baseline/by_tenant.parquet, summary.json); each PEER_OUT holds
findings.parquet, time_to_redeem.parquet, by_tenant.parquet and as_of.json (peer_*.py).

Compared, each peer against unredeemed (so all agree when every peer does):
- as-of T;
- findings: the Ids per tenant exactly (one row per invite event), then every column of each
  finding (times to the microsecond, PendingSeconds within 1e-6 s);
- baseline time_to_redeem: the invites per tenant, RedeemTime, TimeToRedeemSeconds within 1e-6 s;
- baseline by_tenant: the tenants, Invites/Redeemed/Pending exactly, P50/P90/P95/P99/Max within
  1e-6 s (null only where the other is null).
Prints a one-line agreement per peer, or the mismatches with examples, and exits 1 on any mismatch.
"""
import glob
import json
import os
import sys
from datetime import datetime

import polars as pl

pl.Config.set_tbl_width_chars(160)
pl.Config.set_fmt_str_lengths(60)

TOL = 1e-6
SHOW = 5


def load(path):
    df = pl.read_parquet(path, hive_partitioning=False)
    # Times as integer microseconds since the epoch (UTC), whatever unit/zone each tool wrote.
    return df.with_columns(pl.col(c).dt.epoch("us") for c, t in df.schema.items() if isinstance(t, pl.Datetime))


def unredeemed_outputs(d):
    files = sorted(glob.glob(os.path.join(d, "tenant=*", "findings.parquet")))
    if not files:
        sys.exit(f"agree: no tenant=*/findings.parquet under {d}")
    summary = json.load(open(os.path.join(d, "summary.json")))
    as_of = datetime.fromisoformat(summary["as_of"].replace("Z", "+00:00"))
    return dict(
        as_of_us=int(as_of.timestamp()) * 1_000_000 + as_of.microsecond,
        findings=pl.concat([load(f) for f in files], how="vertical_relaxed"),
        time_to_redeem=load(os.path.join(d, "baseline", "time_to_redeem.parquet")),
        by_tenant=load(os.path.join(d, "baseline", "by_tenant.parquet")),
    )


def peer_outputs(d):
    return dict(
        as_of_us=json.load(open(os.path.join(d, "as_of.json")))["as_of_us"],
        findings=load(os.path.join(d, "findings.parquet")),
        time_to_redeem=load(os.path.join(d, "time_to_redeem.parquet")),
        by_tenant=load(os.path.join(d, "by_tenant.parquet")),
    )


def compare(what, ref, other, name, keys, exact, approx):
    """Mismatch messages between two frames keyed by `keys` (unique within each frame)."""
    problems = []
    for label, df in (("unredeemed", ref), (name, other)):
        dup = df.filter(df.select(keys).is_duplicated())
        if dup.height:
            problems.append(f"{what}: {label} has {dup.height} rows with a repeated key {keys}:\n{dup.head(SHOW)}")
    only_ref = ref.join(other.select(keys), on=keys, how="anti", nulls_equal=True)
    only_peer = other.join(ref.select(keys), on=keys, how="anti", nulls_equal=True)
    if only_ref.height:
        problems.append(f"{what}: {only_ref.height} rows only in unredeemed, e.g.\n{only_ref.head(SHOW)}")
    if only_peer.height:
        problems.append(f"{what}: {only_peer.height} rows only in {name}, e.g.\n{only_peer.head(SHOW)}")
    both = ref.join(other, on=keys, how="inner", suffix="_peer", nulls_equal=True)
    for c in exact:
        a, b = pl.col(c), pl.col(c + "_peer")
        bad = both.filter(a.ne_missing(b))
        if bad.height:
            problems.append(f"{what}.{c}: {bad.height} values differ, e.g.\n{bad.select(*keys, c, c + '_peer').head(SHOW)}")
    for c in approx:
        a, b = pl.col(c), pl.col(c + "_peer")
        bad = both.filter((a.is_null() != b.is_null()) | ((a - b).abs() > TOL))
        if bad.height:
            problems.append(f"{what}.{c}: {bad.height} values differ by more than {TOL} s, e.g.\n"
                            f"{bad.select(*keys, c, c + '_peer').head(SHOW)}")
    return problems


def ids_per_tenant(findings):
    return {t: sorted(ids) for t, ids in
            findings.group_by("TenantId").agg(pl.col("Id")).iter_rows()}


def main(argv):
    if len(argv) < 2 or any("=" not in p for p in argv[1:]):
        sys.exit(__doc__)
    ref = unredeemed_outputs(argv[0])
    ok = True
    for spec in argv[1:]:
        name, d = spec.split("=", 1)
        peer = peer_outputs(d)
        problems = []
        if peer["as_of_us"] != ref["as_of_us"]:
            problems.append(f"as_of: unredeemed {ref['as_of_us']} us, {name} {peer['as_of_us']} us")
        ri, pi = ids_per_tenant(ref["findings"]), ids_per_tenant(peer["findings"])
        for t in sorted(set(ri) | set(pi)):
            a, b = ri.get(t, []), pi.get(t, [])
            if a != b:
                problems.append(f"findings of tenant {t}: unredeemed {len(a)}, {name} {len(b)}; "
                                f"only in unredeemed {sorted(set(a) - set(b))[:SHOW]}, "
                                f"only in {name} {sorted(set(b) - set(a))[:SHOW]}")
        problems += compare("findings", ref["findings"], peer["findings"], name, ["TenantId", "Id"],
                            ["TargetUPN", "InviteTime", "InviteInitiator", "IPAddress"], ["PendingSeconds"])
        problems += compare("time_to_redeem", ref["time_to_redeem"], peer["time_to_redeem"], name,
                            ["TenantId", "Id"], ["TargetUPN", "InviteTime", "InviteInitiator", "RedeemTime"],
                            ["TimeToRedeemSeconds"])
        problems += compare("by_tenant", ref["by_tenant"], peer["by_tenant"], name, ["TenantId"],
                            ["Invites", "Redeemed", "Pending"],
                            ["P50Seconds", "P90Seconds", "P95Seconds", "P99Seconds", "MaxSeconds"])
        if problems:
            ok = False
            print(f"MISMATCH unredeemed vs {name} ({d}):")
            for p in problems:
                print("  - " + p.replace("\n", "\n    "))
        else:
            print(f"agree: unredeemed = {name}: as-of {ref['as_of_us']} us, {ref['findings'].height} findings "
                  f"(in {len(ri)} tenants), {ref['time_to_redeem'].height} baseline invites, "
                  f"{ref['by_tenant'].height} by_tenant rows")
    names = ", ".join(p.split("=", 1)[0] for p in argv[1:])
    if ok:
        b = ref["by_tenant"]
        print(f"ALL AGREE (unredeemed, {names}): {ref['findings'].height} findings, baseline "
              f"{b['Invites'].sum()} invites ({b['Redeemed'].sum()} redeemed, {b['Pending'].sum()} pending) "
              f"in {b.height} tenants")
    else:
        print(f"DISAGREE (unredeemed, {names}): see the mismatches above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
