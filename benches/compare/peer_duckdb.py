"""DuckDB peer of `unredeemed run` (default intended semantics), as an analyst would write it.

    peer_duckdb.py ARCHIVE OUT [--lookback 14d] [--threshold 5d] [--threads N] [--format parquet|diag-json]

Reads every ARCHIVE/**/*.parquet as plain files (no hive partitioning: folder names such as
`y=2025` must not become columns), filters the guest-invite/redeem rows into a temp table first
(Category/OperationName are cheap string columns; the JSON text is parsed only for the rows that
survive), then pairs invites with redeems in SQL. As-of T = the latest TimeGenerated in the archive.

Writes OUT/findings.parquet, OUT/time_to_redeem.parquet, OUT/by_tenant.parquet and OUT/as_of.json
(see agree.py for how they are compared with unredeemed's reports).
"""
import argparse
import json
import os
import sys

import duckdb

# The guest UPN inside the redeem text: `UPN: <upn>, Email: <mail>, ...` (same as src/detect.rs).
# RE2's `\s` is ASCII-only while Rust's (unredeemed, polars) is Unicode White_Space, so the
# Unicode class is spelled out to keep the three tools identical on odd whitespace.
WS = r"[\t\n\x{0B}\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]"
UPN_PATTERN = rf"UPN:{WS}(.+),{WS}Email"


def dur_us(s):
    n, unit = int(s[:-1]), s[-1]
    return n * {"d": 86400, "h": 3600, "m": 60, "s": 1}[unit] * 1_000_000


def lit(s):
    return "'" + s.replace("'", "''") + "'"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("archive")
    ap.add_argument("out")
    ap.add_argument("--lookback", default="14d")
    ap.add_argument("--threshold", default="5d")
    ap.add_argument("--threads", type=int, default=0, help="DuckDB threads (0: DuckDB's default)")
    ap.add_argument("--format", choices=["parquet", "diag-json"], default="parquet",
                    help="*.parquet with Log Analytics columns, or Entra diagnostic-settings *.json")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)

    con = duckdb.connect()
    if a.threads:
        con.execute(f"SET threads = {a.threads}")
    if a.format == "parquet":
        src = (f"read_parquet({lit(os.path.join(a.archive, '**', '*.parquet'))}, "
               "hive_partitioning = false, union_by_name = true)")
    else:
        # Entra diagnostic-settings records: read_json with the columns read (every other field is
        # skipped; sampling the whole archive to infer a schema runs out of memory), the dynamic
        # values as JSON, renamed to the table's columns.
        props = ("STRUCT(id VARCHAR, category VARCHAR, result VARCHAR, activityDisplayName VARCHAR, "
                 "targetResources JSON, initiatedBy JSON)")
        cols = (f"{{'time': 'TIMESTAMPTZ', 'tenantId': 'VARCHAR', 'operationName': 'VARCHAR', "
                f"'properties': {lit(props)}}}")
        src = f"""(SELECT tenantId AS TenantId, properties.id AS Id, time AS TimeGenerated,
                          properties.category AS Category,
                          coalesce(properties.activityDisplayName, operationName) AS OperationName,
                          properties.result AS Result, properties.targetResources AS TargetResources,
                          properties.initiatedBy AS InitiatedBy
                   FROM read_json({lit(os.path.join(a.archive, '**', '*.json'))},
                                  format = 'newline_delimited', columns = {cols}))"""
    pat = lit(UPN_PATTERN)
    ws = lit(WS)

    # 1. Every tenant seen and the latest TimeGenerated (T): two narrow columns.
    con.execute(f"""
        CREATE TEMP TABLE tenants AS
        SELECT coalesce(TenantId, '') AS TenantId, max(TimeGenerated) AS last
        FROM {src} GROUP BY 1""")
    (T,) = con.execute("SELECT epoch_us(max(last)) FROM tenants").fetchone()
    if T is None:
        sys.exit(f"no rows under {a.archive}")
    lo, hi = T - dur_us(a.lookback), T - dur_us(a.threshold)

    # 2. Filter into a temp table first: candidate events, deduplicated on (TenantId, Id)
    #    (deliveries repeat; the earliest is kept; events without an Id are all kept).
    con.execute(f"""
        CREATE TEMP TABLE ev AS
        WITH raw AS (
            SELECT coalesce(TenantId, '') AS TenantId, Id, epoch_us(TimeGenerated) AS t,
                   lower(OperationName) = 'invite external user' AS is_invite,
                   coalesce(lower(Result) = 'success', false) AS ok,
                   TargetResources AS tr, InitiatedBy AS ib
            FROM {src}
            WHERE lower(Category) = 'usermanagement'
              AND lower(OperationName) IN ('invite external user', 'redeem external user invite')
        ), dedup AS (
            SELECT * FROM raw
            QUALIFY Id IS NULL
                 OR row_number() OVER (PARTITION BY TenantId, Id ORDER BY t) = 1
        )
        SELECT TenantId, Id, t, is_invite, ok,
               CASE WHEN json_valid(tr) THEN json_extract_string(tr, '$[0].userPrincipalName') END AS tr_upn,
               CASE WHEN json_valid(tr) THEN json_extract_string(tr, '$[0].displayName') END AS tr_disp,
               CASE WHEN json_valid(ib) THEN json_extract_string(ib, '$.user.userPrincipalName') END AS init_upn,
               CASE WHEN json_valid(ib) THEN json_extract_string(ib, '$.user.ipAddress') END AS init_ip
        FROM dedup
        WHERE t <= {T}""")

    # 3. Invites by a user; successful redeems with the guest UPN (displayName text, else
    #    userPrincipalName text, else a bare userPrincipalName without whitespace).
    con.execute("""
        CREATE TEMP TABLE inv AS
        SELECT TenantId, Id, t AS InviteTime, coalesce(tr_upn, '') AS TargetUPN,
               init_upn AS InviteInitiator, coalesce(init_ip, '') AS IPAddress
        FROM ev
        WHERE is_invite AND coalesce(init_upn, '') <> '' AND coalesce(tr_upn, '') <> ''""")
    con.execute(f"""
        CREATE TEMP TABLE red AS
        SELECT * FROM (
            SELECT TenantId, t AS RedeemTime,
                   lower(coalesce(nullif(regexp_extract(tr_disp, {pat}, 1), ''),
                                  nullif(regexp_extract(tr_upn, {pat}, 1), ''),
                                  CASE WHEN NOT regexp_matches(tr_upn, {ws}) THEN tr_upn END)) AS guest
            FROM ev
            WHERE NOT is_invite AND ok AND coalesce(tr_upn, '') <> '')
        WHERE guest IS NOT NULL""")

    # 4. Time to redeem: the earliest redeem of the same guest at or after the invite (ASOF).
    con.execute("""
        CREATE TEMP TABLE ttr AS
        SELECT i.*, r.RedeemTime,
               (r.RedeemTime - i.InviteTime) / 1e6 AS TimeToRedeemSeconds
        FROM inv i ASOF LEFT JOIN red r
          ON i.TenantId = r.TenantId AND lower(i.TargetUPN) = r.guest
         AND r.RedeemTime >= i.InviteTime""")

    ts = "make_timestamptz({})"
    out = lambda name: lit(os.path.join(a.out, name))
    con.execute(f"""
        COPY (SELECT TenantId, TargetUPN, {ts.format('InviteTime')} AS InviteTime, InviteInitiator,
                     IPAddress, Id, ({T} - InviteTime) / 1e6 AS PendingSeconds
              FROM ttr
              WHERE RedeemTime IS NULL AND InviteTime > {lo} AND InviteTime <= {hi}
              ORDER BY TenantId, InviteTime, TargetUPN, Id)
        TO {out('findings.parquet')} (FORMAT parquet)""")
    con.execute(f"""
        COPY (SELECT TenantId, Id, TargetUPN, {ts.format('InviteTime')} AS InviteTime, InviteInitiator,
                     {ts.format('RedeemTime')} AS RedeemTime, TimeToRedeemSeconds
              FROM ttr ORDER BY TenantId, InviteTime, TargetUPN, Id)
        TO {out('time_to_redeem.parquet')} (FORMAT parquet)""")
    con.execute(f"""
        COPY (SELECT t.TenantId, coalesce(s.Invites, 0) AS Invites, coalesce(s.Redeemed, 0) AS Redeemed,
                     coalesce(s.Invites, 0) - coalesce(s.Redeemed, 0) AS Pending,
                     s.P50Seconds, s.P90Seconds, s.P95Seconds, s.P99Seconds, s.MaxSeconds
              FROM tenants t LEFT JOIN (
                  SELECT TenantId, count(*) AS Invites, count(RedeemTime) AS Redeemed,
                         quantile_cont(TimeToRedeemSeconds, 0.50) AS P50Seconds,
                         quantile_cont(TimeToRedeemSeconds, 0.90) AS P90Seconds,
                         quantile_cont(TimeToRedeemSeconds, 0.95) AS P95Seconds,
                         quantile_cont(TimeToRedeemSeconds, 0.99) AS P99Seconds,
                         max(TimeToRedeemSeconds) AS MaxSeconds
                  FROM ttr GROUP BY TenantId) s USING (TenantId)
              ORDER BY t.TenantId)
        TO {out('by_tenant.parquet')} (FORMAT parquet)""")
    with open(os.path.join(a.out, "as_of.json"), "w") as f:
        json.dump({"as_of_us": T, "tool": "duckdb", "version": duckdb.__version__}, f)


if __name__ == "__main__":
    main()
