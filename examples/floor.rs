//! The decompression floor of local Parquet archives (`benches/compare/floor.sh` runs it):
//! for each archive, the page bytes the rule must decompress at least and the time that
//! takes, beside what the job's late reader decompresses, in one thread, best of `--passes`.
//!
//!     cargo run --release --example floor -- [--passes N] ARCHIVE...
//!
//! Prints one JSON object per archive on stdout.

use std::path::{Path, PathBuf};
use std::time::Duration;

use unredeemed::{decompression_floor, Floor, Meter};

fn parquet_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            parquet_files(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
    Ok(())
}

/// The archive's totals over one pass; the objects the late reader declines counted apart.
fn pass(files: &[PathBuf]) -> std::io::Result<(Floor, usize)> {
    let mut total = Floor::default();
    let mut declined = 0;
    for f in files {
        let bytes = bytes::Bytes::from(std::fs::read(f)?);
        match decompression_floor(&bytes) {
            Ok(fl) => {
                total.rows += fl.rows;
                total.candidates += fl.candidates;
                total.floor = total.floor.plus(fl.floor);
                total.reader = total.reader.plus(fl.reader);
                total.scan += fl.scan;
            }
            Err(e) => {
                eprintln!("floor: {}: {e}", f.display());
                declined += 1;
            }
        }
    }
    Ok((total, declined))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut passes = 3;
    if let Some(i) = args.iter().position(|a| a == "--passes") {
        passes = args.get(i + 1).ok_or("--passes N")?.parse()?;
        args.drain(i..i + 2);
    }
    if args.is_empty() {
        return Err("usage: floor [--passes N] ARCHIVE...".into());
    }
    for dir in &args {
        let mut files = Vec::new();
        parquet_files(Path::new(dir), &mut files)?;
        files.sort();
        let mut best: Option<(Floor, usize)> = None;
        for _ in 0..passes {
            let (f, declined) = pass(&files)?;
            best = match best {
                // The quickest pass of each: a machine's noise only ever adds time.
                Some((mut b, d)) => {
                    b.floor.time = b.floor.time.min(f.floor.time);
                    b.reader.time = b.reader.time.min(f.reader.time);
                    b.scan = b.scan.min(f.scan);
                    Some((b, d))
                }
                None => Some((f, declined)),
            };
        }
        let (f, declined) = best.ok_or("--passes must be at least 1")?;
        let secs = |d: Duration| d.as_secs_f64();
        let meter = |m: &Meter| serde_json::json!({"pages": m.pages, "bytes": m.bytes, "seconds": secs(m.time)});
        let line = serde_json::json!({
            "archive": dir,
            "objects": files.len(),
            "declined": declined,
            "rows": f.rows,
            "candidates": f.candidates,
            "floor": meter(&f.floor),
            "reader": meter(&f.reader),
            "scan_seconds": secs(f.scan),
        });
        println!("{line}");
    }
    Ok(())
}
