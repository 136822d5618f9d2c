//! `unredeemed sweep`: flagged counts over a list of thresholds, and a suggested one.

use super::pipeline::{prepare, write};
use super::run::RunOutcome;
use crate::analysis::sweep as sweep_thresholds;
use crate::error::Result;
use crate::job::SweepJob;

pub fn sweep(job: &SweepJob) -> Result<RunOutcome> {
    let (progress, s, mut a) = prepare(&job.run)?;
    let w = sweep_thresholds(&a.time_to_redeem, &s.keys, job, a.window.as_of)?;
    a.summary.sweep = Some(w.summary()?);
    write(&s, &mut a, None, Some(&w), &progress)?;
    Ok(RunOutcome { summary: a.summary })
}
