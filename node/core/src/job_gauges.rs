//! The `kindling_jobs` gauge: how many jobs are in each state, counted once from the
//! projections when the node starts and moved as this node's commands change states.

use crate::metrics;
use kindling_events::{Job, JobState};
use parking_lot::Mutex;
use std::collections::HashMap;

#[derive(Default)]
pub struct JobGauges {
    states: Mutex<HashMap<JobState, i64>>,
}

impl JobGauges {
    /// Counts `jobs` afresh.
    pub fn count(&self, jobs: &[Job]) {
        let mut states = self.states.lock();
        states.clear();
        for j in jobs {
            *states.entry(j.state).or_default() += 1;
        }
        for s in JobState::ALL {
            metrics::jobs_in_state(s, *states.get(&s).unwrap_or(&0));
        }
    }

    /// One job moved from `from` (none: it is new) to `to`.
    pub fn moved(&self, from: Option<JobState>, to: JobState) {
        if from == Some(to) {
            return;
        }
        let mut states = self.states.lock();
        if let Some(f) = from {
            let n = states.entry(f).or_default();
            *n -= 1;
            metrics::jobs_in_state(f, *n);
        }
        let n = states.entry(to).or_default();
        *n += 1;
        metrics::jobs_in_state(to, *n);
    }
}
