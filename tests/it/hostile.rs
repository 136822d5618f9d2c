//! Hostile values from the archive: guest UPNs, initiators, IPs and tenant ids carrying
//! Markdown and HTML (`|`, backticks, `<script>`), newlines and terminal escapes, a megabyte,
//! and bytes that are not UTF-8. Parquet and CSV keep them exactly; report.md and stdout keep
//! every one inside its cell and its line.

use std::path::Path;

use polars::prelude::*;

use crate::common::*;

const TENANT: &str = "t|<b>x</b>\n`y`";

fn hostile_upns() -> Vec<String> {
    vec![
        "evil|pipe`tick`<script>alert(1)</script>@x.example".into(),
        "line\nbreak\r\n| fake | row |@x.example".into(),
        "```fence``` **bold** [a](http://x) <img src=x onerror=y>@x.example".into(),
        "\u{1b}[31mred\u{7}\u{2028}@x.example".into(),
        "`".into(),
        format!("{}@long.example", "a".repeat(1 << 20)),
    ]
}

/// One invite per hostile UPN, never redeemed, initiated by a hostile UPN from a hostile IP.
pub(crate) fn rows() -> Vec<Audit> {
    hostile_upns()
        .iter()
        .enumerate()
        .map(|(i, upn)| {
            let by = format!("by|{i}`<i>\n");
            Audit {
                targets: serde_json::json!([{"id": "g", "type": "User", "userPrincipalName": upn}])
                    .to_string(),
                initiated: serde_json::json!({"user": {"id": "u", "userPrincipalName": by,
                    "ipAddress": format!("10.0.0.{i}|<u>\n")}})
                .to_string(),
                ..invite(TENANT, &format!("id-{i}"), &at("-5d"), "", "")
            }
        })
        .collect()
}

fn run_cli(archive: &Path, out: &Path) -> std::process::Output {
    bin()
        .args(["run", "--no-cache", "-q", "--as-of", T0, "--archive"])
        .arg(archive)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

/// Cells of a Markdown table row, split on its unescaped pipes.
fn cells(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut escaped = false;
    for c in line.chars() {
        match c {
            '|' if !escaped => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
        escaped = c == '\\' && !escaped;
    }
    out
}

/// A code span holds its value: it opens and closes with the same run of backticks, and no run
/// of that length is inside.
fn assert_code_span(cell: &str) {
    let cell = cell.trim();
    if cell == "—" || !cell.starts_with('`') {
        return;
    }
    let fence = cell.chars().take_while(|c| *c == '`').count();
    assert!(cell.ends_with(&"`".repeat(fence)), "{cell}");
    let inner = &cell[fence..cell.len() - fence];
    assert!(
        !inner.split(|c| c != '`').any(|run| run.len() == fence),
        "a run of {fence} backticks inside: {cell}"
    );
}

#[test]
fn hostile_values_keep_every_output_whole() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    write_parquet(&frame(&rows()), &archive.join("part-0.parquet"));
    let out = dir.path().join("out");
    let done = succeeded(run_cli(&archive, &out));

    let tenant_dir = first_tenant_dir(&out);
    let parquet = read_parquet(&tenant_dir.join("findings.parquet"));
    let mut want = hostile_upns();
    want.sort();
    let mut got = col_str(&parquet, "TargetUPN");
    got.sort();
    assert_eq!(got, want, "Parquet keeps the values exactly");
    assert_eq!(col_str(&parquet, "TenantId")[0], TENANT);

    let csv = CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(tenant_dir.join("findings.csv")))
        .unwrap()
        .finish()
        .unwrap();
    let mut from_csv = col_str(&csv, "TargetUPN");
    from_csv.sort();
    assert_eq!(from_csv, want, "CSV keeps the values exactly");
    assert_eq!(col_str(&csv, "IPAddress").len(), want.len());

    let md = std::fs::read_to_string(tenant_dir.join("report.md")).unwrap();
    let table: Vec<&str> = md
        .lines()
        .skip_while(|l| !l.starts_with("| Guest"))
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert_eq!(table.len(), 2 + want.len(), "one row per guest:\n{md}");
    let width = cells(table[0]).len();
    for line in &table {
        let c = cells(line);
        assert_eq!(c.len(), width, "{line}");
        c[1..width - 1]
            .iter()
            .for_each(|cell| assert_code_span(cell));
        assert!(line.len() < 4_000, "a value of 1 MB is cut in report.md");
    }
    assert!(md.lines().all(|l| !l.chars().any(|c| c.is_control())));

    let stdout = String::from_utf8(done.stdout).unwrap();
    assert!(
        stdout.lines().all(|l| !l.chars().any(|c| c.is_control())),
        "{stdout:?}"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("t|<b>x</b>\\n`y`")),
        "{stdout}"
    );
}

/// Invalid UTF-8 in a string column: refused by both readers (exit 3 naming the object and the
/// column, or skipped), never written out half-decoded.
#[test]
fn bytes_that_are_not_utf8_are_refused_naming_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let mut rows = rows();
    rows.truncate(1);
    rows[0].targets = rows[0].targets.replace("evil", "NOTUTF8MARK");
    rows.push(invite(
        "tenant-b",
        "ok",
        &at("-4d"),
        "fine@x.example",
        "a@b.c",
    ));
    let path = archive.join("part-0.parquet");
    std::fs::create_dir_all(&archive).unwrap();
    let mut f = std::fs::File::create(&path).unwrap();
    ParquetWriter::new(&mut f)
        .with_compression(ParquetCompression::Uncompressed)
        .with_statistics(StatisticsOptions::empty())
        .finish(&mut frame(&rows))
        .unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let marker = b"NOTUTF8MARK";
    let mut patched = 0;
    for i in 0..bytes.len() - marker.len() {
        if &bytes[i..i + marker.len()] == marker {
            bytes[i..i + 4].copy_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
            patched += 1;
        }
    }
    assert!(patched > 0);
    std::fs::write(&path, &bytes).unwrap();
    for reader in ["late", "polars", "auto"] {
        let out = dir.path().join(format!("out-{reader}"));
        let got = bin()
            .args([
                "run",
                "--no-cache",
                "-q",
                "--as-of",
                T0,
                "--reader",
                reader,
                "--archive",
            ])
            .arg(&archive)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&got.stderr);
        assert_eq!(got.status.code(), Some(3), "{reader}: {stderr}");
        assert!(
            stderr.contains("part-0.parquet") && stderr.contains("UTF-8"),
            "{reader}: {stderr}"
        );
        // polars' own message does not say which column; the late reader's does.
        if reader != "polars" {
            assert!(stderr.contains("`TargetResources`"), "{reader}: {stderr}");
        }
        assert!(!out.join("summary.json").exists());
    }
}
