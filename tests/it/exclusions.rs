//! Exclusion rules, watchlists, grace periods and the rule file: each false-positive scenario
//! suppresses exactly its own findings, grace periods move findings by their length, replay and
//! sweep honour the same rules, and every configuration error names file, line and field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::*;
use polars::prelude::*;
use unredeemed::job::ReplayJob;
use unredeemed::job::RunJob;
use unredeemed::job::SweepJob;
use unredeemed::parse_thresholds;
use unredeemed::progress::Progress;
use unredeemed::replay_ticks;
use unredeemed::scenario;
use unredeemed::time::{format_instant, NANOS_PER_SECOND};
use unredeemed::Config;
use unredeemed::Semantics;

const DAY: i64 = 86_400 * NANOS_PER_SECOND;
const EXAMPLE: &str = "data/example-config/unredeemed.toml";

fn example() -> Config {
    Config::load(Path::new(EXAMPLE)).unwrap()
}

/// The rule that should suppress a finding, worked out from the scenario identities alone.
fn expected_rule(initiator: &str, ip: &str, upn: &str, age: i64) -> Option<&'static str> {
    let email = match upn.to_lowercase().split_once("#ext#@") {
        Some((local, _)) => match local.rsplit_once('_') {
            Some((user, domain)) => format!("{user}@{domain}"),
            None => local.to_string(),
        },
        None => upn.to_lowercase(),
    };
    let domain = email
        .rsplit_once('@')
        .map(|d| d.1.to_string())
        .unwrap_or_default();
    if scenario::AUTOMATION.contains(&initiator) && ip == scenario::AUTOMATION_IP {
        Some("maintenance-automation")
    } else if initiator == scenario::FUTURE_USE_ADMIN && age < 10 * DAY {
        Some("admin-future-use")
    } else if scenario::ON_LEAVE.contains(&email.as_str()) {
        Some("invitee-on-leave")
    } else if scenario::ACCESS_TEST.contains(&email.as_str()) {
        Some("access-test")
    } else if scenario::PENDING_APPROVAL.contains(&email.as_str()) {
        Some("onboarding-pending-approval")
    } else if domain == scenario::PROGRAM_DOMAIN && age < 12 * DAY {
        Some("partner-program-grace")
    } else {
        None
    }
}

fn generated(seed: u64, days: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let spec = unredeemed::GenSpec {
        tenants: 3,
        days,
        start: ts("2026-01-01"),
        rows_per_day: 30,
        invites_per_day: 3.0,
        seed,
        nested: false,
        rows_per_file: 1_000_000,
        format: unredeemed::GenFormat::Parquet,
        gzip: false,
    };
    generate_local(&spec, &dir.path().join("archive"));
    dir
}

fn base_job(dir: &Path, semantics: Semantics) -> RunJob {
    let mut j = job(
        &dir.join("archive"),
        &dir.join("out"),
        &Opts {
            as_of: None,
            ..Opts::default()
        },
    );
    j.semantics = semantics;
    j
}

/// Which near miss a finding is, if it is one: it looks like a scenario but falls outside the
/// rule's condition.
fn near_miss(upn: &str, who: &str, ip: &str) -> Option<&'static str> {
    if upn.starts_with("ana.active_") {
        Some("active")
    } else if who == scenario::HELPDESK_ADMIN {
        Some("helpdesk")
    } else if ip == scenario::AUTOMATION_ELSEWHERE_IP {
        Some("elsewhere")
    } else {
        None
    }
}

#[test]
fn each_scenario_suppresses_exactly_its_findings_and_nothing_else() {
    let mut per_rule: BTreeMap<String, usize> = BTreeMap::new();
    // Findings that look like a scenario but fall outside a rule's condition: always kept.
    let mut near_misses: BTreeMap<&str, usize> = BTreeMap::new();
    for (seed, semantics, as_of) in [
        (7, Semantics::Intended, "2026-02-20T12:00:00Z"),
        (8, Semantics::Intended, "2026-02-27T00:00:00Z"),
        (7, Semantics::Sentinel, "2026-02-20T12:00:00Z"),
    ] {
        let dir = generated(seed, 60);
        let plain = base_job(dir.path(), semantics);
        let s = unredeemed::scan(&plain, None, &Progress::new(true)).unwrap();
        let t = ts(as_of);
        let raw = unredeemed::assess(&plain, &s, t).unwrap();
        assert!(raw.suppressed.is_none());
        let mut with = plain.clone();
        with.exclusions = Some(example().exclusions);
        let a = unredeemed::assess(&with, &s, t).unwrap();
        let gone = a.suppressed.as_ref().unwrap();
        assert_eq!(a.findings.height() + gone.height(), raw.findings.height());

        let rules: BTreeMap<String, String> = col_str(gone, "Id")
            .into_iter()
            .zip(col_str(gone, "Rule"))
            .collect();
        let kept: Vec<String> = col_str(&a.findings, "Id");
        let (ids, who, ip, upn) = (
            col_str(&raw.findings, "Id"),
            col_str(&raw.findings, "InviteInitiator"),
            col_str(&raw.findings, "IPAddress"),
            col_str(&raw.findings, "TargetUPN"),
        );
        let times = col_i64(&raw.findings, "InviteTime");
        for i in 0..ids.len() {
            let want = expected_rule(&who[i], &ip[i], &upn[i], t - times[i]);
            let got = rules.get(&ids[i]).map(String::as_str);
            assert_eq!(
                got, want,
                "{semantics:?} {as_of}: finding {} ({}, {})",
                ids[i], upn[i], who[i]
            );
            assert_eq!(kept.contains(&ids[i]), want.is_none());
            if let Some(r) = want {
                *per_rule.entry(r.to_string()).or_default() += 1;
            }
            if let (None, Some(kind)) = (want, near_miss(&upn[i], &who[i], &ip[i])) {
                *near_misses.entry(kind).or_default() += 1;
            }
        }
        // Reasons come from the config, never empty.
        assert!(col_str(gone, "Reason").iter().all(|r| !r.is_empty()));
        // Counts in the summary agree.
        let ex = a.summary.exclusions.as_ref().unwrap();
        let total: u64 = ex.rules.iter().map(|r| r.suppressed).sum();
        assert_eq!(total as usize, gone.height());
        assert_eq!(a.summary.suppressed as usize, gone.height());
    }
    for r in [
        "maintenance-automation",
        "admin-future-use",
        "invitee-on-leave",
        "access-test",
        "onboarding-pending-approval",
        "partner-program-grace",
    ] {
        assert!(
            per_rule.get(r).copied().unwrap_or(0) > 0,
            "{r} never suppressed anything: {per_rule:?}"
        );
    }
    for kind in ["active", "helpdesk", "elsewhere"] {
        assert!(
            near_misses.get(kind).copied().unwrap_or(0) > 0,
            "no kept {kind} near miss: {near_misses:?}"
        );
    }
}

/// One invite by the future-use admin (grace 10d) and one to the partner program (grace 12d):
/// replayed hourly, their first alert moves from t + 5d to t + 10d and t + 12d exactly.
#[test]
fn grace_periods_move_first_alerts_by_their_length() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let rows = [
        invite(
            "t1",
            "admin-inv",
            &at("-30d"),
            "lee_contoso.com#EXT#@t1.onmicrosoft.com",
            scenario::FUTURE_USE_ADMIN,
        ),
        invite(
            "t1",
            "program-inv",
            &at("-30d"),
            "mo_partner-program.example#EXT#@t1.onmicrosoft.com",
            "admin@t1",
        ),
        invite(
            "t1",
            "plain-inv",
            &at("-30d"),
            "zed_contoso.com#EXT#@t1.onmicrosoft.com",
            "admin@t1",
        ),
    ];
    write_parquet(&frame(&rows), &archive.join("part-0.parquet"));
    let mut run = job(&archive, &dir.path().join("out"), &Opts::default());
    run.lookback = 20 * DAY;
    let s = unredeemed::scan(&run, None, &Progress::new(true)).unwrap();
    let first_alerts = |exclusions: bool| -> BTreeMap<String, String> {
        let mut r = run.clone();
        r.exclusions = exclusions.then(|| example().exclusions);
        let rj = ReplayJob {
            run: r,
            from: ts(&at("-30d")),
            every: 3_600 * NANOS_PER_SECOND,
        };
        let out = replay_ticks(&s.x.events, &s.keys, &rj, ts(T0)).unwrap();
        let firsts = out
            .alerts
            .lazy()
            .filter(col("FirstAlert"))
            .collect()
            .unwrap();
        col_str(&firsts, "Id")
            .into_iter()
            .zip(
                col_i64(&firsts, "EvaluatedAt")
                    .into_iter()
                    .map(format_instant),
            )
            .collect()
    };
    let raw = first_alerts(false);
    let graced = first_alerts(true);
    assert_eq!(raw["admin-inv"], at("-25d"));
    assert_eq!(raw["program-inv"], at("-25d"));
    assert_eq!(graced["admin-inv"], at("-20d"), "10d grace");
    assert_eq!(graced["program-inv"], at("-18d"), "12d grace");
    assert_eq!(raw["plain-inv"], graced["plain-inv"]);
    // At the tick just before the grace ends it is suppressed, at the end it alerts: run agrees.
    for (tick, expect) in [("-20d", true), ("-481h", false)] {
        let mut r = run.clone();
        r.exclusions = Some(example().exclusions);
        let a = unredeemed::assess(&r, &s, ts(&at(tick))).unwrap();
        assert_eq!(
            col_str(&a.findings, "Id").contains(&"admin-inv".to_string()),
            expect,
            "{tick}"
        );
        let gone = col_str(a.suppressed.as_ref().unwrap(), "Id");
        assert_eq!(gone.contains(&"admin-inv".to_string()), !expect, "{tick}");
    }
}

/// Replay with exclusions: the alerts at each tick are `run --as-of` that tick's kept findings,
/// and suppressed alerts are kept aside with their rule.
#[test]
fn replay_honours_exclusions_tick_by_tick() {
    let dir = generated(11, 40);
    for semantics in [Semantics::Intended, Semantics::Sentinel] {
        let mut run = base_job(dir.path(), semantics);
        run.exclusions = Some(example().exclusions);
        let s = unredeemed::scan(&run, None, &Progress::new(true)).unwrap();
        let rj = ReplayJob {
            run: run.clone(),
            from: ts("2026-01-03T06:00:00Z"),
            every: 29 * 3_600 * NANOS_PER_SECOND,
        };
        let to = ts("2026-02-09");
        let r = replay_ticks(&s.x.events, &s.keys, &rj, to).unwrap();
        let gone = r.suppressed.as_ref().unwrap();
        assert!(gone.height() > 0);
        let at = col_i64(&r.alerts, "EvaluatedAt");
        let ids = col_str(&r.alerts, "Id");
        let gat = col_i64(gone, "EvaluatedAt");
        let gids = col_str(gone, "Id");
        for tick in r.tick_times() {
            let a = unredeemed::assess(&run, &s, tick).unwrap();
            let mut want = col_str(&a.findings, "Id");
            let mut got: Vec<String> = (0..ids.len())
                .filter(|&i| at[i] == tick)
                .map(|i| ids[i].clone())
                .collect();
            want.sort();
            got.sort();
            assert_eq!(got, want, "{semantics:?} at {}", format_instant(tick));
            let mut want_gone = col_str(a.suppressed.as_ref().unwrap(), "Id");
            let mut got_gone: Vec<String> = (0..gids.len())
                .filter(|&i| gat[i] == tick)
                .map(|i| gids[i].clone())
                .collect();
            want_gone.sort();
            got_gone.sort();
            assert_eq!(
                got_gone,
                want_gone,
                "{semantics:?} suppressed at {}",
                format_instant(tick)
            );
        }
    }
}

/// Sweep: fully excluded invites leave the counts; a grace period raises the threshold.
#[test]
fn sweep_honours_exclusions() {
    let g = |email: &str| format!("{}#EXT#@t1.onmicrosoft.com", email.replace('@', "_"));
    let rows = [
        invite(
            "t1",
            "p11",
            &at("-11d"),
            &g("a@partner-program.example"),
            "admin@t1",
        ),
        invite(
            "t1",
            "p13",
            &at("-13d"),
            &g("b@partner-program.example"),
            "admin@t1",
        ),
        invite(
            "t1",
            "leave",
            &at("-20d"),
            &g(scenario::ON_LEAVE[0]),
            "admin@t1",
        ),
        invite("t1", "plain", &at("-2d"), &g("c@contoso.com"), "admin@t1"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    write_parquet(&frame(&rows), &archive.join("part-0.parquet"));
    let counts = |exclusions: bool| {
        let out = dir.path().join(format!("out-{exclusions}"));
        let mut run = job(&archive, &out, &Opts::default());
        run.exclusions = exclusions.then(|| example().exclusions);
        let sj = SweepJob {
            run,
            thresholds: parse_thresholds("1d,12d").unwrap(),
            target_quantile: 0.99,
        };
        unredeemed::sweep(&sj).unwrap();
        let t = read_parquet(&out.join("sweep/sweep.parquet"));
        (col_i64(&t, "Invites"), col_i64(&t, "Flagged"))
    };
    // Rows: 1d, 12d.
    assert_eq!(counts(false), (vec![4, 4], vec![4, 2]));
    // On-leave left out; the program invites need 12d: only the 13-day-old one is flagged.
    assert_eq!(counts(true), (vec![3, 3], vec![2, 1]));
}

fn config_error(text: &str, files: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).unwrap();
    let err = Config::load(&path).unwrap_err();
    // Configuration errors are usage errors: exit 2, before any scan.
    assert!(matches!(err, unredeemed::Error::Usage(_)), "{err:?}");
    err.to_string()
        .replace(&dir.path().display().to_string(), "DIR")
}

#[test]
fn configuration_errors_name_file_line_and_field() {
    let wl = "[watchlists.admins]\nfile = \"admins.csv\"\nkey = \"UPN\"\n";
    let csv = [("admins.csv", "UPN,Role\na@x,GA\n")];
    // (config text, files beside it, what the error must say)
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "[rule]\nlookback = \"14d\"\nthreshhold = \"5d\"\n".into(),
            vec![],
            vec!["DIR/bad.toml:3", "unknown field `threshhold`"],
        ),
        (
            format!("{wl}\n[[exclusions]]\nname = \"x\"\nreason = \"r\"\nip = [\"10.0.0.0/8\", \"10.1.2/40\"]\n"),
            csv.to_vec(),
            vec!["DIR/bad.toml:8", "exclusions[0].ip", "10.1.2/40"],
        ),
        (
            "[rule]\nthreshold = \"5 days\"\n".into(),
            vec![],
            vec!["DIR/bad.toml:2", "rule.threshold", "5 days"],
        ),
        (
            format!("{wl}\n[[exclusions]]\nname = \"x\"\nreason = \"r\"\ninitiator = [\"a@x\"]\ngrace = \"ten days\"\n"),
            csv.to_vec(),
            vec!["DIR/bad.toml:9", "exclusions[0].grace", "ten days"],
        ),
        (
            "[watchlists.admins]\nfile = \"missing.csv\"\nkey = \"UPN\"\n".into(),
            vec![],
            vec!["DIR/bad.toml:2", "watchlists.admins.file", "missing.csv", "not found"],
        ),
        (
            "[watchlists.admins]\nfile = \"admins.csv\"\nkey = \"Email\"\n".into(),
            csv.to_vec(),
            vec!["DIR/admins.csv:1", "no key column `Email`", "UPN, Role", "DIR/bad.toml:3", "watchlists.admins.key"],
        ),
        (
            format!("{wl}\n[[exclusions]]\nname = \"x\"\nreason = \"r\"\nwatchlist = {{ name = \"admins\", match = \"InviteInitiator\", where = {{ team = \"a\" }} }}\n"),
            csv.to_vec(),
            vec!["DIR/admins.csv:1", "no column `team`", "DIR/bad.toml:8", "exclusions[0].watchlist.where"],
        ),
        (
            format!("{wl}\n[[exclusions]]\nname = \"x\"\nreason = \"r\"\nwatchlist = {{ name = \"admin\", match = \"InviteInitiator\" }}\n"),
            csv.to_vec(),
            vec!["DIR/bad.toml:8", "exclusions[0].watchlist.name", "no watchlist `admin`"],
        ),
        (
            format!("{wl}\n[[exclusions]]\nname = \"x\"\nreason = \"r\"\nwatchlist = {{ name = \"admins\", match = \"Initiator\" }}\n"),
            csv.to_vec(),
            vec!["DIR/bad.toml:8", "exclusions[0].watchlist.match", "unknown field `Initiator`"],
        ),
        (
            "[[exclusions]]\nname = \"everything\"\nreason = \"r\"\n".into(),
            vec![],
            vec!["DIR/bad.toml:2", "exclusions[0].name", "no condition"],
        ),
        (
            "[[exclusions]]\nname = \"x\"\nreason = \"r\"\ninitiator_type = \"robot\"\n".into(),
            vec![],
            vec!["DIR/bad.toml:4", "exclusions[0].initiator_type", "robot"],
        ),
    ];
    for (text, files, needles) in cases {
        let err = config_error(&text, &files);
        for n in needles {
            assert!(
                err.contains(n),
                "`{n}` missing from: {err}\n--- config:\n{text}"
            );
        }
    }
}

fn summary_of(out: &Path) -> serde_json::Value {
    summary(out)
}

/// The `report.md` of the first tenant folder under `out`.
fn first_report(out: &Path) -> String {
    std::fs::read_to_string(first_tenant_dir(out).join("report.md")).unwrap()
}

#[test]
fn rule_file_sets_metadata_and_parameters_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let run_with = |name: &str, extra: &[&str]| -> PathBuf {
        let out = dir.path().join(name);
        let args = [&["--rule", "tests/fixtures/rule.yaml"], extra].concat();
        on_sample("run", &args, &out);
        out
    };
    let out = run_with("rule", &[]);
    let s = summary_of(&out);
    assert_eq!(
        (
            s["lookback_seconds"].as_i64(),
            s["threshold_seconds"].as_i64()
        ),
        (Some(21 * 86_400), Some(2 * 86_400))
    );
    assert_eq!(s["rule"]["id"], "7d3c5a2e-0b1f-4c55-9a61-2f4e8b9d0c13");
    assert_eq!(s["rule"]["severity"], "High");
    assert_eq!(
        s["rule"]["techniques"],
        serde_json::json!(["T1078.004", "T1136.003"])
    );
    let md = first_report(&out);
    assert!(md.starts_with("# Guest invite not redeemed (tuned for the partner tenant)"));
    assert!(md.contains("| Severity | High |"));
    // The config's [rule] overrides the rule file; a flag overrides both.
    let cfg = dir.path().join("params.toml");
    std::fs::write(
        &cfg,
        "[rule]\nlookback = \"10d\"\nthreshold = \"3d\"\nsemantics = \"sentinel\"\n",
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    let s = summary_of(&run_with("config", &["--config", cfg]));
    assert_eq!(
        (
            s["lookback_seconds"].as_i64(),
            s["threshold_seconds"].as_i64(),
            s["semantics"].as_str()
        ),
        (Some(10 * 86_400), Some(3 * 86_400), Some("sentinel"))
    );
    let s = summary_of(&run_with(
        "flag",
        &[
            "--config",
            cfg,
            "--threshold",
            "4d",
            "--semantics",
            "intended",
        ],
    ));
    assert_eq!(
        (
            s["lookback_seconds"].as_i64(),
            s["threshold_seconds"].as_i64(),
            s["semantics"].as_str()
        ),
        (Some(10 * 86_400), Some(4 * 86_400), Some("intended"))
    );
    let s = summary_of(&run_with("flag2", &["--lookback", "30d"]));
    assert_eq!(
        (
            s["lookback_seconds"].as_i64(),
            s["threshold_seconds"].as_i64()
        ),
        (Some(30 * 86_400), Some(2 * 86_400))
    );
}

#[test]
fn rule_file_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string("tests/fixtures/rule.yaml").unwrap();
    for (text, needles) in [
        (
            good.replace("let invitethreshold = 2d;", "let invitethreshold = 2 days;"),
            vec![":19:", "invitethreshold", "2 days"],
        ),
        (
            good.replace("query: |", "querry: |"),
            vec!["missing field `query`"],
        ),
        (
            // A YAML syntax error: the parser's line (the broken flow sequence opens on line 6).
            good.replace("severity: High", "severity: [High"),
            vec!["rule.yaml:"],
        ),
    ] {
        let path = dir.path().join("rule.yaml");
        std::fs::write(&path, &text).unwrap();
        let out = bin()
            .args(["run", "--archive", "data/sample", "--no-cache", "--rule"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&path.display().to_string()), "{err}");
        for n in needles {
            assert!(err.contains(n), "`{n}` missing from {err}");
        }
        // Every one names a line: `<path>:<digits>`.
        let after = err
            .split(&format!("{}:", path.display()))
            .nth(1)
            .unwrap_or("");
        assert!(
            after.starts_with(|c: char| c.is_ascii_digit()),
            "no line number in {err}"
        );
    }
}

/// The CLI on the sample with the example config: suppressed.parquet per tenant, counts in
/// summary.json and report.md, stdout line, and `--no-exclusions` gives the raw result.
#[test]
fn example_config_on_the_sample_shows_all_scenarios() {
    let dir = tempfile::tempdir().unwrap();
    let go = |name: &str, extra: &[&str]| -> (PathBuf, String) {
        let out = dir.path().join(name);
        let o = on_sample("run", &[&["--config", EXAMPLE], extra].concat(), &out);
        (out, String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let (out, stdout) = go("with", &[]);
    let (raw, _) = go("raw", &["--no-exclusions"]);
    let s = summary_of(&out);
    let r = summary_of(&raw);
    assert!(r.get("exclusions").is_none());
    let rules = s["exclusions"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 6);
    for rule in rules {
        assert!(rule["suppressed"].as_u64().unwrap() > 0, "{rule}");
    }
    let suppressed = s["suppressed"].as_u64().unwrap();
    assert_eq!(
        s["findings"].as_u64().unwrap() + suppressed,
        r["findings"].as_u64().unwrap()
    );
    assert!(stdout.contains(&format!("{suppressed} finding(s) suppressed by exclusions")));
    let mut rows = 0;
    for e in std::fs::read_dir(&out).unwrap() {
        let p = e.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("tenant=")
        {
            let df = read_parquet(&p.join("suppressed.parquet"));
            assert_eq!(
                df.get_column_names()
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>(),
                [&FINDING_COLUMNS[..], &["Rule", "Reason"]].concat()
            );
            rows += df.height();
            let md = std::fs::read_to_string(p.join("report.md")).unwrap();
            assert!(md.contains(&format!("## Suppressed by exclusions ({})", df.height())));
            assert!(!raw
                .join(p.file_name().unwrap())
                .join("suppressed.parquet")
                .exists());
        }
    }
    assert_eq!(rows as u64, suppressed);
}

/// One finding for each condition kind of [`CONDITION_RULES`], and one no rule matches.
fn condition_rows() -> Vec<Audit> {
    let g = |email: &str| format!("{}#EXT#@t1.onmicrosoft.com", email.replace('@', "_"));
    let mut v6 = invite("t1", "v6", &at("-7d"), &g("v6@contoso.com"), "ops@t1");
    v6.initiated = r#"{"user":{"userPrincipalName":"ops@t1","ipAddress":"2001:db8::17"}}"#.into();
    // An IPv4-mapped IPv6 address inside the IPv4 network of the `cidr` rule.
    let mut mapped = invite("t1", "mapped", &at("-7d"), &g("e@contoso.com"), "ops@t1");
    mapped.initiated =
        r#"{"user":{"userPrincipalName":"ops@t1","ipAddress":"::ffff:203.0.113.9"}}"#.into();
    vec![
        invite(
            "t1",
            "by-init",
            &at("-7d"),
            &g("a@contoso.com"),
            "Svc.Invites@T1",
        ),
        invite("t1", "by-upn", &at("-7d"), &g("b@contoso.com"), "admin@t1"),
        invite(
            "t1",
            "by-email",
            &at("-7d"),
            &g("c@fabrikam.com"),
            "admin@t1",
        ),
        invite(
            "t1",
            "by-domain",
            &at("-7d"),
            &g("d@wingtip.example"),
            "admin@t1",
        ),
        invite("t1", "by-cidr", &at("-7d"), &g("e@contoso.com"), "admin@t1"),
        v6,
        mapped,
        invite(
            "t1",
            "two-rules",
            &at("-7d"),
            &g("f@wingtip.example"),
            "Svc.Invites@T1",
        ),
        invite("t1", "kept", &at("-7d"), &g("g@contoso.com"), "admin@t1"),
    ]
}

/// Every row but v6 comes from 203.0.113.7, so the CIDR rule also names its guest.
const CONDITION_RULES: &str = r#"
[[exclusions]]
name = "initiator"
reason = "scalar form, case-insensitive"
initiator = "svc.invites@t1"
[[exclusions]]
name = "upn"
reason = "exact guest UPN"
target_upn = ["B_CONTOSO.COM#EXT#@t1.onmicrosoft.com"]
[[exclusions]]
name = "email"
reason = "guest e-mail from the #EXT# UPN"
guest_email = "c@fabrikam.com"
[[exclusions]]
name = "domain"
reason = "guest domain"
guest_domain = ["@wingtip.example"]
[[exclusions]]
name = "v6"
reason = "IPv6 CIDR, user initiator"
ip = "2001:db8::/32"
initiator_type = "user"
[[exclusions]]
name = "app"
reason = "apps never appear in findings"
initiator_type = "app"
[[exclusions]]
name = "cidr"
reason = "IPv4 CIDR with a guest UPN condition"
ip = ["203.0.113.0/24"]
target_upn = ["e_contoso.com#EXT#@t1.onmicrosoft.com"]
"#;

/// Each condition kind on literal rows, scalar and list forms, IPv6, and the first rule winning.
#[test]
fn every_condition_kind_matches_what_it_names() {
    let (rows, config) = (condition_rows(), CONDITION_RULES);
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    write_parquet(&frame(&rows), &archive.join("part-0.parquet"));
    let path = dir.path().join("c.toml");
    std::fs::write(&path, config).unwrap();
    let mut run = job(&archive, &dir.path().join("out"), &Opts::default());
    run.exclusions = Some(Config::load(&path).unwrap().exclusions);
    let s = unredeemed::scan(&run, None, &Progress::new(true)).unwrap();
    let a = unredeemed::assess(&run, &s, ts(T0)).unwrap();
    let gone = a.suppressed.unwrap();
    let got: BTreeMap<String, String> = col_str(&gone, "Id")
        .into_iter()
        .zip(col_str(&gone, "Rule"))
        .collect();
    let want: BTreeMap<String, String> = [
        ("by-init", "initiator"),
        ("by-upn", "upn"),
        ("by-email", "email"),
        ("by-domain", "domain"),
        ("by-cidr", "cidr"),
        ("v6", "v6"),
        ("mapped", "cidr"),
        // Matches `initiator` and `domain`: the first in file order wins.
        ("two-rules", "initiator"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, want, "kept: {}", a.findings);
    assert_eq!(col_str(&a.findings, "Id"), ["kept"], "{}", a.findings);
}
