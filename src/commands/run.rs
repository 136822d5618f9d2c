//! `unredeemed run`: the rule and the baseline at one T.

use super::pipeline::{prepare, write};
use crate::error::Result;
use crate::job::RunJob;
use crate::report::Summary;

/// What a command produced (also written as `summary.json`).
pub struct RunOutcome {
    pub summary: Summary,
}

/// `unredeemed run`: the rule at one T.
pub fn run(job: &RunJob) -> Result<RunOutcome> {
    let (progress, s, mut a) = prepare(job)?;
    write(&s, &mut a, None, None, &progress)?;
    Ok(RunOutcome { summary: a.summary })
}
