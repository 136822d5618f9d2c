"""Python polars peer of `unredeemed run` (default intended semantics), as an analyst would write it.

    peer_polars.py ARCHIVE OUT [--lookback 14d] [--threshold 5d] [--format parquet|diag-json]

A lazy scan_parquet over ARCHIVE/**/*.parquet (plain files: hive partitioning off, so folder names
such as `y=2025` do not become columns) run by the streaming engine: filter Category/OperationName
first, then pull the JSON fields with str.json_path_match on the surviving rows only, collect that
small frame, and do the pairing in memory (join_asof). As-of T = the latest TimeGenerated.
With --format diag-json, a lazy scan_ndjson over ARCHIVE/**/*.json (Entra diagnostic-settings
records) with the schema of the fields read, nested values as structs.

Writes OUT/findings.parquet, OUT/time_to_redeem.parquet, OUT/by_tenant.parquet and OUT/as_of.json.
"""
import argparse
import json
import os
import sys
from datetime import timedelta

import polars as pl

UPN_PATTERN = r"UPN:\s(.+),\sEmail"  # same as src/detect.rs (Rust regex, as polars uses)
INVITE_OP, REDEEM_OP = "invite external user", "redeem external user invite"


def dur(s):
    n, unit = int(s[:-1]), s[-1]
    return timedelta(seconds=n * {"d": 86400, "h": 3600, "m": 60, "s": 1}[unit])


def seconds(later, earlier):
    return (later - earlier).dt.total_microseconds() / 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("archive")
    ap.add_argument("out")
    ap.add_argument("--lookback", default="14d")
    ap.add_argument("--threshold", default="5d")
    ap.add_argument("--format", choices=["parquet", "diag-json"], default="parquet",
                    help="*.parquet with Log Analytics columns, or Entra diagnostic-settings *.json")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)

    if a.format == "parquet":
        lf = pl.scan_parquet(os.path.join(a.archive, "**", "*.parquet"), hive_partitioning=False,
                             extra_columns="ignore")
        time = pl.col("TimeGenerated").dt.cast_time_unit("us").dt.replace_time_zone("UTC")
        tenant = pl.col("TenantId").fill_null("")
        category, operation, result, event_id = (pl.col(c) for c in ("Category", "OperationName", "Result", "Id"))
        tr, ib = pl.col("TargetResources").str, pl.col("InitiatedBy").str
        tr_upn, tr_disp = tr.json_path_match("$[0].userPrincipalName"), tr.json_path_match("$[0].displayName")
        init_upn, init_ip = ib.json_path_match("$.user.userPrincipalName"), ib.json_path_match("$.user.ipAddress")
    else:
        # Entra diagnostic-settings records: scan_ndjson with the schema of the fields read (every
        # other field is skipped), the nested values read as structs.
        S = pl.String
        user = pl.Struct({"userPrincipalName": S, "ipAddress": S})
        props = pl.Struct({"id": S, "category": S, "result": S, "activityDisplayName": S,
                           "targetResources": pl.List(pl.Struct({"userPrincipalName": S, "displayName": S})),
                           "initiatedBy": pl.Struct({"user": user})})
        lf = pl.scan_ndjson(os.path.join(a.archive, "**", "*.json"),
                            schema={"time": S, "tenantId": S, "operationName": S, "properties": props})
        p = pl.col("properties").struct
        time = pl.col("time").str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_unit="us", time_zone="UTC")
        tenant = pl.col("tenantId").fill_null("").alias("TenantId")
        category, result, event_id = p.field("category"), p.field("result"), p.field("id").alias("Id")
        operation = p.field("activityDisplayName").fill_null(pl.col("operationName"))
        first = p.field("targetResources").list.first().struct
        tr_upn, tr_disp = first.field("userPrincipalName"), first.field("displayName")
        u = p.field("initiatedBy").struct.field("user").struct
        init_upn, init_ip = u.field("userPrincipalName"), u.field("ipAddress")

    # Every tenant seen and its latest row (two narrow columns) ...
    tenants_q = lf.group_by(tenant).agg(time.max().alias("last"))
    # ... and the candidate events: filter on the cheap columns, then parse JSON on the survivors.
    op = operation.str.to_lowercase()
    events_q = (
        lf.filter((category.str.to_lowercase() == "usermanagement") & op.is_in([INVITE_OP, REDEEM_OP]))
        .select(
            tenant,
            event_id,
            time.alias("t"),
            (op == INVITE_OP).alias("is_invite"),
            (result.str.to_lowercase() == "success").fill_null(False).alias("ok"),
            tr_upn.alias("tr_upn"),
            tr_disp.alias("tr_disp"),
            init_upn.alias("init_upn"),
            init_ip.alias("init_ip"),
        )
    )
    tenants, events = pl.collect_all([tenants_q, events_q], engine="streaming")
    if tenants.height == 0:
        sys.exit(f"no rows under {a.archive}")
    T = tenants["last"].max()
    lo, hi = T - dur(a.lookback), T - dur(a.threshold)

    # Deliveries repeat: one event per (TenantId, Id), the earliest kept; Id-less events all kept.
    events = events.sort("t", maintain_order=True)
    events = pl.concat([
        events.filter(pl.col("Id").is_not_null()).unique(["TenantId", "Id"], keep="first", maintain_order=True),
        events.filter(pl.col("Id").is_null()),
    ]).filter(pl.col("t") <= T)

    inv = (
        events.filter(pl.col("is_invite") & (pl.col("init_upn").fill_null("") != ""))
        .select("TenantId", "Id", pl.col("t").alias("InviteTime"),
                pl.col("tr_upn").fill_null("").alias("TargetUPN"),
                pl.col("init_upn").alias("InviteInitiator"),
                pl.col("init_ip").fill_null("").alias("IPAddress"))
        .filter(pl.col("TargetUPN") != "")
        .with_columns(pl.col("TargetUPN").str.to_lowercase().alias("key"))
    )
    upn = pl.col("tr_upn")
    red = (
        events.filter(~pl.col("is_invite") & pl.col("ok") & (upn.fill_null("") != ""))
        .select("TenantId", pl.col("t").alias("RedeemTime"),
                pl.col("tr_disp").str.extract(UPN_PATTERN, 1)
                .fill_null(upn.str.extract(UPN_PATTERN, 1))
                .fill_null(pl.when(~upn.str.contains(r"\s")).then(upn))
                .str.to_lowercase().alias("key"))
        .drop_nulls("key")
    )

    # Earliest redeem of the same guest at or after the invite.
    ttr = (
        inv.sort("InviteTime")
        .join_asof(red.sort("RedeemTime"), left_on="InviteTime", right_on="RedeemTime",
                   by=["TenantId", "key"], strategy="forward", check_sortedness=False)
        .with_columns(seconds(pl.col("RedeemTime"), pl.col("InviteTime")).alias("TimeToRedeemSeconds"))
        .sort("TenantId", "InviteTime", "TargetUPN", "Id", maintain_order=True)
    )

    ttr.filter(pl.col("RedeemTime").is_null() & (pl.col("InviteTime") > lo) & (pl.col("InviteTime") <= hi)).select(
        "TenantId", "TargetUPN", "InviteTime", "InviteInitiator", "IPAddress", "Id",
        seconds(pl.lit(T), pl.col("InviteTime")).alias("PendingSeconds"),
    ).write_parquet(os.path.join(a.out, "findings.parquet"))
    ttr.select("TenantId", "Id", "TargetUPN", "InviteTime", "InviteInitiator", "RedeemTime",
               "TimeToRedeemSeconds").write_parquet(os.path.join(a.out, "time_to_redeem.parquet"))

    s = pl.col("TimeToRedeemSeconds")
    stats = ttr.group_by("TenantId").agg(
        pl.len().cast(pl.Int64).alias("Invites"),
        pl.col("RedeemTime").count().cast(pl.Int64).alias("Redeemed"),
        *[s.quantile(p, interpolation="linear").alias(f"P{int(p * 100)}Seconds") for p in (.5, .9, .95, .99)],
        s.max().alias("MaxSeconds"),
    )
    (
        tenants.select("TenantId").join(stats, on="TenantId", how="left")
        .with_columns(pl.col("Invites", "Redeemed").fill_null(0))
        .with_columns((pl.col("Invites") - pl.col("Redeemed")).alias("Pending"))
        .select("TenantId", "Invites", "Redeemed", "Pending", "P50Seconds", "P90Seconds", "P95Seconds",
                "P99Seconds", "MaxSeconds")
        .sort("TenantId")
        .write_parquet(os.path.join(a.out, "by_tenant.parquet"))
    )
    as_of_us = int(pl.select(pl.lit(T).dt.epoch("us")).item())
    with open(os.path.join(a.out, "as_of.json"), "w") as f:
        json.dump({"as_of_us": as_of_us, "tool": "polars", "version": pl.__version__}, f)


if __name__ == "__main__":
    main()
