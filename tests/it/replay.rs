//! `replay` against per-tick evaluation: on random generated archives, with random parameters
//! and ticks placed exactly on interval boundaries, the alerts at every tick are exactly the
//! findings `run --as-of` that tick gives, in both semantics.

use std::collections::{BTreeMap, BTreeSet};

use crate::common::*;
use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use unredeemed::job::AsOf;
use unredeemed::job::ReplayJob;
use unredeemed::progress::Progress;
use unredeemed::replay_ticks;
use unredeemed::time::{format_instant, NANOS_PER_SECOND};
use unredeemed::TenantKey;
use unredeemed::{findings, Semantics, Window};

const HOUR: i64 = 3_600 * NANOS_PER_SECOND;

/// One finding/alert, as compared: every output column but the tick.
type Row = (String, String, i64, String, String, String);

fn rows(df: &DataFrame) -> Vec<Row> {
    let s = |c: &str| -> Vec<String> {
        df.column(c)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|v| v.unwrap_or("<null>").to_string())
            .collect()
    };
    let (tenant, upn, id, who, ip) = (
        s("TenantId"),
        s("TargetUPN"),
        s("Id"),
        s("InviteInitiator"),
        s("IPAddress"),
    );
    let t = col_i64(df, "InviteTime");
    (0..df.height())
        .map(|i| {
            (
                tenant[i].clone(),
                id[i].clone(),
                t[i],
                upn[i].clone(),
                who[i].clone(),
                ip[i].clone(),
            )
        })
        .collect()
}

/// Runs replay and per-tick `detect::findings` on the same events; returns alert count.
fn check(
    events: &DataFrame,
    tenants: &[TenantKey],
    job: &ReplayJob,
    to: i64,
    label: &str,
) -> usize {
    let r = replay_ticks(events, tenants, job, to).unwrap();
    let ticks = col_i64(&r.alerts, "EvaluatedAt");
    let first = col_bool(&r.alerts, "FirstAlert");
    let got_rows = rows(&r.alerts);
    let mut got: BTreeMap<i64, Vec<Row>> = BTreeMap::new();
    for (i, row) in got_rows.iter().enumerate() {
        got.entry(ticks[i]).or_default().push(row.clone());
    }
    let mut seen: BTreeSet<Row> = BTreeSet::new();
    let mut expected_first = 0;
    let mut total = 0;
    for tick in r.tick_times() {
        let w = Window {
            as_of: tick,
            lookback: job.run.lookback,
            threshold: job.run.threshold,
        };
        let want = rows(&findings(events, w, job.run.semantics).unwrap());
        let have = got.remove(&tick).unwrap_or_default();
        assert_eq!(
            have,
            want,
            "{label}: alerts differ from run --as-of {}",
            format_instant(tick)
        );
        for row in &want {
            if seen.insert(row.clone()) {
                expected_first += 1;
            }
        }
        total += want.len();
    }
    assert!(
        got.is_empty(),
        "{label}: alerts at ticks outside the grid: {:?}",
        got.keys()
    );
    // FirstAlert: exactly once per invite, on its earliest alerting tick (rows are tick-sorted).
    let mut firsts = BTreeSet::new();
    for (i, row) in got_rows.iter().enumerate() {
        assert_eq!(
            first[i],
            firsts.insert(row.clone()),
            "{label}: FirstAlert of {row:?}"
        );
    }
    assert_eq!(firsts.len(), expected_first, "{label}");
    // by_tick counts agree with the alerts, for every tick and tenant.
    let by = &r.by_tick;
    assert_eq!(
        by.height(),
        r.ticks * tenants.len(),
        "{label}: by_tick grid"
    );
    let n: i64 = by.column("Alerts").unwrap().i64().unwrap().sum().unwrap();
    let new: i64 = by
        .column("NewAlerts")
        .unwrap()
        .i64()
        .unwrap()
        .sum()
        .unwrap();
    assert_eq!(
        (n as usize, new as usize),
        (total, expected_first),
        "{label}: by_tick sums"
    );
    total
}

#[test]
fn replay_equals_per_tick_evaluation_on_random_archives() {
    let mut checked = 0;
    let mut alerts = [0usize; 3];
    for seed in 1..=6u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let dir = tempfile::tempdir().unwrap();
        let spec = unredeemed::GenSpec {
            tenants: rng.gen_range(1..=3),
            days: rng.gen_range(12..=30),
            start: ts("2026-01-01"),
            rows_per_day: 40,
            invites_per_day: rng.gen_range(2.0..8.0),
            seed,
            nested: seed % 3 == 0,
            rows_per_file: 1_000_000,
            format: unredeemed::GenFormat::Parquet,
            gzip: false,
        };
        generate_local(&spec, dir.path());
        // Scanned as `precise` reads: the life cycle too, which the other readings ignore.
        let opts = Opts {
            as_of: None,
            semantics: Semantics::Precise,
            ..Opts::default()
        };
        let base = job(dir.path(), &dir.path().join("out"), &opts);
        let s = unredeemed::scan(&base, None, &Progress::new(true)).unwrap();
        let events = &s.x.events;
        let times = col_i64(events, "Time");
        let (lo, hi) = (*times.iter().min().unwrap(), *times.iter().max().unwrap());
        for case in 0..4 {
            let lookback = rng.gen_range(1..=20 * 24) * HOUR;
            // Thresholds above the lookback too (sentinel takes the smaller) and zero.
            let threshold = match case {
                0 => 0,
                _ => rng.gen_range(0..=(lookback / HOUR + 72)) * HOUR,
            };
            let every = rng.gen_range(1..=48) * HOUR + rng.gen_range(0..3_600) * NANOS_PER_SECOND;
            // Put one tick exactly on a boundary: an event time plus 0, the threshold, the
            // lookback or the sentinel span.
            let anchor = times[rng.gen_range(0..times.len())]
                + [0, threshold, lookback, lookback.min(threshold)][case];
            // `from` lies on the anchor's grid and `to` after the anchor, so a tick is on it.
            let back = rng.gen_range(0..((anchor - lo) / every + 3).clamp(1, 60));
            let from = anchor - back * every;
            let to = (hi + rng.gen_range(0..5 * 24) * HOUR).max(anchor);
            for (k, semantics) in [Semantics::Intended, Semantics::Sentinel, Semantics::Precise]
                .into_iter()
                .enumerate()
            {
                let mut run = base.clone();
                run.semantics = semantics;
                run.lookback = lookback;
                run.threshold = threshold;
                run.as_of = AsOf::At(to);
                let rj = ReplayJob { run, from, every };
                let label = format!(
                    "seed {seed} case {case} {semantics:?} lookback {}h threshold {}h every {}s from {}",
                    lookback / HOUR,
                    threshold / HOUR,
                    every / NANOS_PER_SECOND,
                    format_instant(from)
                );
                alerts[k] += check(events, &s.keys, &rj, to, &label);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 72);
    // The comparison must have had something to compare in every reading.
    assert!(
        alerts.iter().all(|&a| a > 500),
        "too few alerts: {alerts:?}"
    );
}

/// The binary end to end: replay's alerts at a tick equal `run --as-of` that tick's findings
/// files, for the sample archive.
#[test]
fn replay_files_match_run_as_of_each_tick() {
    let dir = tempfile::tempdir().unwrap();
    let replay_out = dir.path().join("replay");
    on_sample(
        "replay",
        &[
            "--semantics",
            "sentinel",
            "--from",
            "2026-02-20T06:00:00Z",
            "--to",
            "2026-02-27",
            "--every",
            "36h",
        ],
        &replay_out,
    );
    let alerts = read_parquet(&replay_out.join("replay/alerts.parquet"));
    let by_tick = read_parquet(&replay_out.join("replay/by_tick.parquet"));
    assert_eq!(by_tick.height(), 5 * 4, "5 ticks × 4 tenants");
    for tick in [
        "2026-02-20T06:00:00Z",
        "2026-02-21T18:00:00Z",
        "2026-02-26T06:00:00Z",
    ] {
        let out = dir.path().join(tick.replace(':', "-"));
        on_sample("run", &["--semantics", "sentinel", "--as-of", tick], &out);
        let mut want: Vec<String> = finding_ids(&out);
        want.sort();
        let at = alerts
            .clone()
            .lazy()
            .filter(
                col("EvaluatedAt").eq(lit(ts(tick) / 1_000).cast(DataType::Datetime(
                    TimeUnit::Microseconds,
                    Some(TimeZone::UTC),
                ))),
            )
            .collect()
            .unwrap();
        let mut got: Vec<String> = at
            .column("Id")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|v| v.unwrap().to_string())
            .collect();
        got.sort();
        assert!(!want.is_empty(), "{tick}: the sample should have findings");
        assert_eq!(got, want, "{tick}");
    }
}

#[test]
fn replay_rejects_bad_tick_ranges() {
    for (args, needle) in [
        (
            vec!["--from", "2026-02-20", "--to", "2026-02-10"],
            "before --from",
        ),
        (vec!["--from", "2026-02-20", "--every", "0s"], "--every"),
        (
            vec![
                "--from",
                "2020-01-01",
                "--to",
                "2026-01-01",
                "--every",
                "1s",
            ],
            "ticks",
        ),
    ] {
        let out = bin().arg("replay").args(&args).arg("-q").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// Literal rows with ticks exactly on every edge of the closed forms.
#[test]
fn alert_intervals_are_half_open_at_every_edge() {
    let guest = "ada_partner.example#EXT#@t1.onmicrosoft.com";
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let rows = [
        // Sentinel: a redeem of the key, then a re-invite 1d later. The redeem stays in the
        // window for ticks [r, r + 14d); the invite alerts from r + 14d, never before.
        redeem_text_in_upn("t1", "r0", &at("-20d"), guest),
        invite("t1", "i1", &at("-19d"), guest, "admin@t1"),
        // Intended: an invite redeemed exactly 8d later: alerts on [t + 5d, t + 8d).
        invite(
            "t1",
            "i2",
            &at("-30d"),
            "bo_partner.example#EXT#@t1.onmicrosoft.com",
            "admin@t1",
        ),
        redeem(
            "t1",
            "r2",
            &at("-22d"),
            "bo_partner.example#EXT#@t1.onmicrosoft.com",
        ),
    ];
    write_parquet(&frame(&rows), &archive.join("part-0.parquet"));
    let base = job(&archive, &dir.path().join("out"), &Opts::default());
    let s = unredeemed::scan(&base, None, &Progress::new(true)).unwrap();
    let tick_ids = |semantics, threshold: &str| {
        let mut run = base.clone();
        run.semantics = semantics;
        run.threshold = unredeemed::time::parse_duration(threshold).unwrap();
        let rj = ReplayJob {
            run,
            from: ts(&at("-30d")),
            every: 12 * HOUR,
        };
        let to = ts(T0);
        check(&s.x.events, &s.keys, &rj, to, &format!("{semantics:?}"));
        let r = replay_ticks(&s.x.events, &s.keys, &rj, to).unwrap();
        let t = r
            .alerts
            .column("EvaluatedAt")
            .unwrap()
            .i64()
            .unwrap()
            .clone();
        let id = r.alerts.column("Id").unwrap().str().unwrap().clone();
        (0..r.alerts.height())
            .map(|i| {
                (
                    format_instant(t.get(i).unwrap()),
                    id.get(i).unwrap().to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    let sentinel: Vec<_> = tick_ids(Semantics::Sentinel, "20d")
        .into_iter()
        .filter(|(_, id)| id == "i1")
        .map(|(t, _)| t)
        .collect();
    // [t, t + 14d) minus [r, r + 14d) = [r + 14d, t + 14d) = [-6d, -5d): ticks -6d and -5d12h.
    assert_eq!(sentinel, [at("-6d"), at("-132h")]);
    let intended: Vec<_> = tick_ids(Semantics::Intended, "5d")
        .into_iter()
        .filter(|(_, id)| id == "i2")
        .map(|(t, _)| t)
        .collect();
    // [t + 5d, min(t + 14d, r)) = [-25d, -22d): six ticks, the last at -22d12h.
    assert_eq!(intended.len(), 6);
    assert_eq!(
        (intended[0].as_str(), intended[5].as_str()),
        (at("-25d").as_str(), at("-540h").as_str())
    );
}
