//! `unredeemed replay`: the rule at every tick from `--from` to `--to`, in one pass.

use super::pipeline::{prepare, write};
use super::run::RunOutcome;
use crate::analysis::replay_ticks;
use crate::error::Result;
use crate::job::ReplayJob;
use crate::time::Laps;

pub fn replay(job: &ReplayJob) -> Result<RunOutcome> {
    let (progress, s, mut a) = prepare(&job.run)?;
    let mut laps = Laps::new();
    let r = replay_ticks(&s.x.events, &s.keys, job, a.window.as_of)?;
    a.summary.replay = Some(r.summary(laps.lap()));
    progress.log(&format!(
        "replayed {} tick(s): {} alert(s) on {} invite(s)",
        r.ticks,
        r.alerts.height(),
        r.alerting_invites
    ));
    write(&s, &mut a, Some(&r), None, &progress)?;
    Ok(RunOutcome { summary: a.summary })
}
