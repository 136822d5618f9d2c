//! The analyst notebooks, executed headless on the job's real outputs for the sample archive:
//! `run`, `replay` and `sweep` write `notebooks/sample-reports/` (the notebooks' default input),
//! then `notebooks/execute.py` runs both notebooks and fails on any cell error or on a committed
//! notebook that carries outputs.

use std::path::Path;
use std::process::Command;

use crate::common::*;

#[test]
fn notebooks_execute_on_the_sample_outputs() {
    let python = venv_python("notebooks/requirements.txt");
    let reports = "notebooks/sample-reports";
    let _ = std::fs::remove_dir_all(reports);
    on_sample(
        "replay",
        &["--from", "2026-01-08", "--every", "1d"],
        Path::new(reports),
    );
    on_sample("sweep", &[], Path::new(reports));
    for f in [
        "replay/alerts.parquet",
        "replay/by_tick.parquet",
        "sweep/sweep.parquet",
        "sweep/suggested.parquet",
        "baseline/time_to_redeem.parquet",
        "replay/summary.json",
        "sweep/summary.json",
    ] {
        assert!(Path::new(reports).join(f).exists(), "{f} not written");
    }
    let out = Command::new(python)
        .args(["notebooks/execute.py", "--reports", reports])
        .args([
            "notebooks/threshold_tuning.ipynb",
            "notebooks/retro_hunt.ipynb",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "notebooks failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn committed_notebooks_carry_no_outputs() {
    for nb in [
        "notebooks/threshold_tuning.ipynb",
        "notebooks/retro_hunt.ipynb",
    ] {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(nb).unwrap()).unwrap();
        let cells = v["cells"].as_array().unwrap();
        assert!(cells.len() > 3, "{nb}: too few cells");
        for (i, c) in cells.iter().enumerate() {
            if c["cell_type"] == "code" {
                assert!(
                    c["execution_count"].is_null(),
                    "{nb}: cell {i} has an execution count"
                );
                assert_eq!(
                    c["outputs"].as_array().map(Vec::len),
                    Some(0),
                    "{nb}: cell {i} has outputs"
                );
            }
        }
    }
}
