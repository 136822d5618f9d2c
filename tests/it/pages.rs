//! The HTML reports in a real browser: headless Chromium (Debian's `chromium`, which
//! scripts/test installs) opens every page type the sample gives (`run`, `replay`, `sweep`,
//! with and without `--config`): each renders (a screenshot that is not blank), holds what it
//! should (finding rows, tenants, chart titles), renders the same with networking cut off, and
//! comes out byte for byte the same from the same run. Hostile archive values render as text.

use std::path::Path;
use std::process::Command;

use polars::prelude::*;

use crate::common::*;

fn chromium() -> Command {
    let found = ["chromium", "chromium-browser"].into_iter().find(|b| {
        Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(bin) = found else {
        panic!("headless Chromium is missing: run ./scripts/test (it installs it as root), or: sudo apt-get install chromium");
    };
    let mut cmd = Command::new(bin);
    // Root (CI) needs --no-sandbox; a fresh profile keeps runs apart.
    let profile = tempfile::tempdir().unwrap().keep();
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
    ])
    .args(["--no-first-run", "--disable-extensions", "--mute-audio"])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

/// Every request to the network fails: no proxy answers, no name resolves.
const OFFLINE: [&str; 3] = [
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    "--host-resolver-rules=MAP * ~NOTFOUND",
];

fn url(page: &Path) -> String {
    url::Url::from_file_path(page.canonicalize().unwrap())
        .unwrap()
        .to_string()
}

/// The page's DOM after it loaded, as Chromium serialises it.
fn dom(page: &Path) -> String {
    let out = succeeded(
        chromium()
            .arg("--dump-dom")
            .arg(url(page))
            .output()
            .unwrap(),
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A screenshot's pixels (RGBA rows) and its size.
fn screenshot(page: &Path, extra: &[&str]) -> (Vec<u8>, u32, u32) {
    let dir = tempfile::tempdir().unwrap();
    let png_path = dir.path().join("shot.png");
    succeeded(
        chromium()
            .args(extra)
            .arg(format!("--screenshot={}", png_path.display()))
            .arg("--window-size=1000,1400")
            .arg(url(page))
            .output()
            .unwrap(),
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png_path).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (buf, info.width, info.height)
}

/// Each pixel's brightness, 0 to 255.
fn lum(pixels: &[u8]) -> Vec<f64> {
    pixels
        .chunks(4)
        .map(|p| p.iter().take(3).map(|&c| f64::from(c)).sum::<f64>() / 3.0)
        .collect()
}

/// Mean brightness of the pixels.
fn brightness(pixels: &[u8]) -> f64 {
    let l = lum(pixels);
    l.iter().sum::<f64>() / l.len() as f64
}

/// Variance of the pixels' brightness: a blank page has none.
fn variance(pixels: &[u8]) -> f64 {
    let l = lum(pixels);
    let mean = brightness(pixels);
    l.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / l.len() as f64
}

/// How many pages the page prints on (Chromium's PDF: the page tree's `/Count`).
fn printed_pages(page: &Path) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let pdf = dir.path().join("page.pdf");
    succeeded(
        chromium()
            .arg("--no-pdf-header-footer")
            .arg(format!("--print-to-pdf={}", pdf.display()))
            .arg(url(page))
            .output()
            .unwrap(),
    );
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF"));
    let text = String::from_utf8_lossy(&bytes);
    let at = text.find("/Count ").expect("a page tree") + "/Count ".len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

/// Rows of the table right after the heading that starts with `heading`.
fn rows_after(dom: &str, heading: &str) -> usize {
    let at = dom
        .find(&format!("<h2>{heading}"))
        .unwrap_or_else(|| panic!("no {heading}"));
    let rest = &dom[at..];
    let table = &rest[rest.find("<tbody>").unwrap()..rest.find("</tbody>").unwrap()];
    table.matches("<tr>").count()
}

/// The `(TargetUPN, InviteInitiator)` pairs of a tenant's findings: the table's rows.
fn finding_groups(dir: &Path) -> usize {
    let f = read_parquet(&dir.join("findings.parquet"));
    f.select([TARGET_UPN, INVITE_INITIATOR])
        .unwrap()
        .unique_stable(None, UniqueKeepStrategy::First, None)
        .unwrap()
        .height()
}

const TARGET_UPN: &str = "TargetUPN";
const INVITE_INITIATOR: &str = "InviteInitiator";

/// The charts a page type shows, by the titles they carry.
fn charts(command: &str, config: bool) -> Vec<&'static str> {
    let mut titles = vec!["Pending age of the findings", "Time to redeem (ECDF)"];
    if config {
        titles.push("Suppressed findings by exclusion rule");
    }
    match command {
        "replay" => titles.push("Alerts per replay tick"),
        "sweep" => titles.push("Flagged per threshold"),
        _ => {}
    }
    titles
}

/// A page is not blank, renders the same with the network cut off, follows dark mode, and
/// (the sweep's) prints on several pages.
fn renders_everywhere(page: &Path, name: &str) {
    let (online, w, h) = screenshot(page, &[]);
    assert!(variance(&online) > 50.0, "{name}: report.html looks blank");
    let (offline, w2, h2) = screenshot(page, &OFFLINE);
    assert_eq!((w, h), (w2, h2));
    assert!(
        online == offline,
        "{name}: report.html renders differently offline"
    );
    // The reader's dark mode: a dark page, still drawn.
    let (dark, ..) = screenshot(page, &["--force-dark-mode"]);
    assert!(
        brightness(&online) > 180.0 && brightness(&dark) < 80.0,
        "{name}"
    );
    assert!(
        variance(&dark) > 50.0,
        "{name}: dark report.html looks blank"
    );
    if name == "sweep-true" {
        assert!(
            printed_pages(page) > 1,
            "report.html prints on several pages"
        );
    }
}

#[test]
fn every_page_type_renders_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "{}/data/example-config/unredeemed.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    for (command, extra) in [
        ("run", &[][..]),
        ("replay", &["--from", "2026-02-01", "--every", "2d"][..]),
        ("sweep", &["--thresholds", "12h,1d,5d,14d"][..]),
    ] {
        for with_config in [false, true] {
            let name = format!("{command}-{with_config}");
            let out = dir.path().join(&name);
            let mut args = extra.to_vec();
            if with_config {
                args.extend(["--config", config.as_str()]);
            }
            on_sample(command, &args, &out);
            // The same run again: the same bytes.
            let again = dir.path().join(format!("{name}-again"));
            on_sample(command, &args, &again);
            let index = out.join("index.html");
            assert_eq!(
                std::fs::read(&index).unwrap(),
                std::fs::read(again.join("index.html")).unwrap(),
                "{name}"
            );

            let tenants = tenant_dirs(&out);
            assert_eq!(
                tenants.len(),
                summary(&out)["tenants"].as_object().unwrap().len()
            );
            let index_dom = dom(&index);
            assert_eq!(rows_after(&index_dom, "Tenants"), tenants.len(), "{name}");
            let (pixels, ..) = screenshot(&index, &[]);
            assert!(variance(&pixels) > 50.0, "{name}: index.html looks blank");

            for t in &tenants {
                let page = t.join("report.html");
                let rel = page.strip_prefix(&out).unwrap();
                assert_eq!(
                    std::fs::read(&page).unwrap(),
                    std::fs::read(again.join(rel)).unwrap(),
                    "{name}: {}",
                    rel.display()
                );
                assert!(index_dom.contains(&format!(
                    "href=\"{}/report.html\"",
                    t.file_name().unwrap().to_string_lossy()
                )));
                let d = dom(&page);
                assert_eq!(
                    rows_after(&d, "Findings"),
                    finding_groups(t),
                    "{name}: {}",
                    rel.display()
                );
                for title in charts(command, with_config) {
                    assert!(
                        d.contains(&format!("<title>{title}</title>")),
                        "{name}: {title} missing in {}",
                        rel.display()
                    );
                }
            }
            // One tenant page, looked at closer.
            renders_everywhere(&tenants[0].join("report.html"), &name);
        }
    }
}

#[test]
fn hostile_values_render_as_text() {
    let (_dir, out) = run_rows(&crate::hostile::rows(), &Opts::default());
    let tenants = tenant_dirs(&out);
    assert_eq!(tenants.len(), 1);
    let page = tenants[0].join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    let title = html[html.find("<title>").unwrap()..html.find("</title>").unwrap() + 8].to_string();
    for d in [dom(&page), dom(&out.join("index.html"))] {
        // The page's own markup only: no element came from a value, no script ran.
        assert!(
            !d.contains("<script") && !d.contains("<img") && !d.contains("<b>x</b>"),
            "{d}"
        );
        assert!(!d.contains("<u>") && !d.contains("<i>"), "{d}");
    }
    let d = dom(&page);
    assert!(d.contains(&title), "the title is unchanged");
    // The index links to the page, whose folder name holds `%`.
    let dir = tenants[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .replace('%', "%25");
    assert!(dom(&out.join("index.html")).contains(&format!("href=\"{dir}/report.html\"")));
    assert!(
        d.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "shown as text"
    );
    assert!(d.contains("&lt;img src=x onerror=y&gt;"), "shown as text");
    assert!(d.contains("line\\nbreak"), "a newline shown as \\n");
    assert_eq!(rows_after(&d, "Findings"), finding_groups(&tenants[0]));
}

/// A tenant with more finding rows than a page holds: the 500 longest pending, longest first,
/// and a link to `findings.csv`, which has them all.
#[test]
fn a_large_tenant_shows_its_longest_pending_and_links_the_rest() {
    let rows: Vec<Audit> = (0..620)
        .map(|i| {
            // Invites from 13.9 days to 5.1 days before T: the older, the longer pending.
            let when = at(&format!("-{}m", 7_350 + 20 * i));
            invite(
                "T",
                &format!("i{i}"),
                &when,
                &format!("g{i:04}@x.example"),
                "a@c.example",
            )
        })
        .collect();
    let (_dir, out) = run_rows(&rows, &Opts::default());
    let tenant = &tenant_dirs(&out)[0];
    assert_eq!(finding_groups(tenant), 620);
    let d = dom(&tenant.join("report.html"));
    assert_eq!(rows_after(&d, "Findings"), 500);
    assert!(d.contains("<a href=\"findings.csv\">findings.csv</a>"));
    assert!(d.contains("The 500 longest pending of 620 rows"));
    // The oldest invites are shown, the youngest 120 are not, the oldest first.
    assert!(d.contains("g0619@x.example") && !d.contains("g0119@x.example"));
    assert!(d.find("g0619@").unwrap() < d.find("g0500@").unwrap());
    // report.md keeps every row.
    let md = std::fs::read_to_string(tenant.join("report.md")).unwrap();
    assert!(md.contains("g0000@x.example") && md.contains("g0619@x.example"));
}
